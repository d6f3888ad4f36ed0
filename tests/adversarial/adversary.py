"""What the adversarial tests share: the real daemon on 127.0.0.1, and hostile inputs.

Every test here runs ``bgcam run`` as a subprocess (synthetic or stream source, null sink, the
cheap ``hsv`` segmenter so no model files are needed) and attacks it the way the adversarial
pass did, bounded in time and in count.
"""

from __future__ import annotations

import os
import resource
import struct
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bgcam.control.client import ControlClient
from bgcam.errors import BgCamError
from bgcam.web.access import TOKEN_NAME, read_access
from tests.live_media import DaemonProcess, free_port, wait_for

BASE_ARGS = ["--sink", "null", "--set", "segment.segmenter=hsv",
             "--set", "control.hotkeys=false"]  # fmt: skip


def daemon_env(rundir: Path, home: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "BGCAM_RUNTIME_DIR": str(rundir),
        "XDG_CONFIG_HOME": str(home / "config"),  # no saved user settings
        "XDG_DATA_HOME": str(home / "data"),  # uploads land here
    }
    env.pop("DISPLAY", None)
    return env


def status(rundir: Path, timeout: float = 5.0) -> dict[str, Any] | None:
    try:
        with ControlClient(rundir / "control.sock", timeout=timeout) as c:
            return c.call("status")
    except BgCamError:
        return None


def spawn(
    rundir: Path,
    home: Path,
    *args: str,
    source: str = "synthetic:640x360@30",
    web: bool = False,
    nofile: int | None = None,
    wait: bool = True,
    verbose: bool = False,
) -> DaemonProcess:
    """``bgcam run`` as a subprocess; with ``wait`` until it sends frames (and serves its panel).

    ``nofile``: the daemon's RLIMIT_NOFILE (soft and hard), set before it starts.
    """
    argv = [sys.executable, "-m", "bgcam", *(["-v"] if verbose else []), "run",
            "--source", source, *BASE_ARGS]  # fmt: skip
    if web:
        argv += ["--set", "web.enabled=true", "--set", f"web.port={free_port()}"]
    argv += list(args)
    preexec: Callable[[], None] | None = None
    if nofile is not None:
        limit = nofile

        def preexec() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    d = DaemonProcess(argv, daemon_env(rundir, home), rundir / "control.sock", preexec=preexec)
    if not wait:
        return d

    def ready() -> bool:
        if d.proc.poll() is not None:
            return True
        if web and not (rundir / TOKEN_NAME).exists():
            return False
        st = status(rundir)
        return st is not None and int(st.get("frames_out", 0)) > 0

    try:
        wait_for(ready, 120, what="the daemon to send frames")
        assert d.proc.poll() is None, d.output
    except BaseException:
        d.finish(timeout=10)
        raise
    return d


def panel(rundir: Path) -> tuple[str, str]:
    """(base URL, token) of the daemon's web panel."""
    return read_access(rundir)


def log_lines(d: DaemonProcess) -> int:
    return len(d.lines)


def raise_own_nofile(n: int) -> None:
    """Let this test process hold ``n`` descriptors (up to the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n if hard == resource.RLIM_INFINITY else min(n, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


# --------------------------------------------------------------------------------------------
# Bomb images


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def bomb_png(width: int, height: int, rows_per_block: int = 100) -> bytes:
    """A valid all-black RGB PNG of ``width`` x ``height`` that compresses to almost nothing.

    30000x30000 (2.7 GB decoded) is about 2.6 MB and takes under a second to build: one block of
    rows is deflated with a full flush (so each later block compresses to the same bytes), that
    block is repeated, and the Adler-32 of the all-zero data is written from its closed form.
    """
    assert height % rows_per_block == 0 and height // rows_per_block >= 3
    row_bytes = 1 + 3 * width  # filter byte + RGB
    block = b"\0" * (row_bytes * rows_per_block)
    c = zlib.compressobj(9)
    first = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    middle = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    last = c.compress(block) + c.flush(zlib.Z_FINISH)
    n = row_bytes * height
    adler = ((n % 65521) << 16) | 1  # Adler-32 of n zero bytes
    idat = first + middle * (height // rows_per_block - 2) + last[:-4] + struct.pack(">I", adler)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )
