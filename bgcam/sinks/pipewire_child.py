"""The ``gst-launch-1.0`` child behind the PipeWire camera: its command line and its process.

:mod:`bgcam.sinks.pipewire` explains the pipeline; this module builds the command, starts the
process with a large stdin pipe, and reads its CPU time and last error line.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from typing import IO

NODE_NAME = "bgcam"


def child_command(
    launch: str,
    size: tuple[int, int],
    fps: float,
    description: str,
    node_name: str = NODE_NAME,
    shm_socket: str | None = None,
) -> list[str]:
    """The ``gst-launch-1.0`` command line of the child (see the module docstring): frames from
    ``shmsrc`` on ``shm_socket`` when given, else from a pipe on stdin."""
    w, h = size
    rate = Fraction(fps).limit_denominator(1001)
    caps = f"width={w},height={h},framerate={rate.numerator}/{rate.denominator}"
    props = (
        "props,media.class=Video/Source,media.type=Video,media.role=Camera,"
        f'node.name={node_name},node.description="{description}"'
    )
    if shm_socket is not None:
        src = ["shmsrc", f"socket-path={shm_socket}"]
    else:
        src = ["fdsrc", "fd=0", f"blocksize={w * h * 3 // 2}"]
    return [
        launch,
        "-q",
        "--no-fault",  # die on a crash (the default handler spins forever)
        *src,
        "!",
        "rawvideoparse",
        f"width={w}",
        f"height={h}",
        "format=i420",
        f"framerate={rate.numerator}/{rate.denominator}",
        "!",
        "compositor",
        "!",
        f"video/x-raw,format=I420,{caps}",
        "!",
        "pipewiresink",
        "mode=provide",
        "sync=false",
        "async=false",
        f"client-name={node_name}",
        f"stream-properties={props}",
    ]


PIPE_SIZE = 1 << 20
"""Bytes the pipe to the child holds (Linux's limit for users, /proc/sys/fs/pipe-max-size): a
720p frame crosses in two writes instead of 22 (the default 64 KiB), so the writer and the child
are woken twice a frame, not 44 times."""


def set_pipe_size(fd: int, size: int) -> None:
    import fcntl

    setsz = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setsz is None:
        return
    for n in (size, size // 2, size // 4):
        try:
            fcntl.fcntl(fd, setsz, n)
            return
        except OSError:
            continue


def dies_with_parent(cmd: list[str]) -> list[str]:
    """``cmd`` run so that it is terminated when the thread that starts it dies: through
    util-linux's ``setpriv --pdeathsig TERM`` (Linux's parent-death signal, kept across the exec
    into ``cmd``), when it is installed; else ``cmd`` as it is.

    Without it, a BgCam killed outright (SIGKILL, the OOM killer, a crash) leaves its
    ``gst-launch`` child running, and with it a "BgCam" camera node that never gets another
    frame, beside the one the next start publishes. The threads that start children (the
    pipeline's, the sink's writer) live until the sink closes, which stops the child first.
    ``setpriv`` rather than a ``preexec_fn``: that runs Python between fork and exec, which can
    deadlock in a process with threads.
    """
    setpriv = shutil.which("setpriv") if sys.platform.startswith("linux") else None
    return [setpriv, "--pdeathsig", "TERM", "--", *cmd] if setpriv else cmd


class Child:
    """One gst-launch-1.0 process with its stdin pipe and a file holding its stderr; it ends
    with BgCam (:func:`dies_with_parent`)."""

    def __init__(self, cmd: list[str], *, pipe: bool = True) -> None:
        self.err: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed in reap()
        self.proc = subprocess.Popen(
            dies_with_parent(cmd),
            stdin=subprocess.PIPE if pipe else subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self.err,
            start_new_session=True,  # a Ctrl+C in the terminal reaches BgCam, not the child
        )
        self.fd = -1
        if self.proc.stdin is not None:
            self.fd = self.proc.stdin.fileno()
            set_pipe_size(self.fd, PIPE_SIZE)
        self.started = time.monotonic()
        self.expected_exit = False
        self.cpu = 0.0

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu_seconds(self) -> float:
        """User+system CPU seconds used so far (the last value read once it has exited)."""
        try:
            with open(f"/proc/{self.pid}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            self.cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
        return self.cpu

    def last_error(self) -> str:
        with contextlib.suppress(OSError):
            self.err.seek(0)
            lines = [ln for ln in self.err.read().decode(errors="replace").splitlines() if ln]
            return lines[-1].strip() if lines else ""
        return ""

    def kill(self, expected: bool) -> None:
        self.expected_exit = self.expected_exit or expected
        self.cpu_seconds()
        with contextlib.suppress(OSError):
            self.proc.kill()

    def reap(self, timeout: float = 1.0) -> int | None:
        self.cpu_seconds()
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(timeout)
        return code

    def dispose(self) -> None:
        self.err.close()
