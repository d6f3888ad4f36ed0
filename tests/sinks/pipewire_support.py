"""A private PipeWire session and a real PipeWire camera reader for the tests.

:class:`PipeWireSession` starts, under a temporary ``XDG_RUNTIME_DIR`` (and a private ``HOME``),
a session ``dbus-daemon``, ``pipewire`` and ``wireplumber`` (the order the desktop uses) and
stops them by pid. :class:`Recorder` is a real consumer: ``gst-launch-1.0 pipewiresrc
target-object=bgcam`` writing raw I420 frames to a pipe, read by a thread that keeps each frame's
arrival time and a small grey copy; it starts ``pipewiresrc`` again when it ends (the node
vanishes while BgCam restarts its child, and ``pipewiresrc`` then waits forever instead of
ending), as an application re-opening the camera after its track ended would.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

NEEDED = {
    "dbus-daemon": "dbus",
    "pipewire": "pipewire",
    "wireplumber": "wireplumber",
    "gst-launch-1.0": "gstreamer1.0-tools",
    "pw-dump": "pipewire-bin",
}
SMALL = (320, 180)


def require_pipewire() -> None:
    """Skip (naming the Debian package) when a program the PipeWire tests need is missing."""
    for exe, pkg in NEEDED.items():
        if shutil.which(exe) is None:
            pytest.skip(f"{exe} is not installed (Debian package {pkg}; .ci/run installs it)")
    res = subprocess.run(
        ["gst-inspect-1.0", "pipewiresink"], capture_output=True, timeout=30, check=False
    )
    if res.returncode != 0:
        pytest.skip("GStreamer's pipewiresink is missing (Debian package gstreamer1.0-pipewire)")


def require_shmsrc() -> None:
    """Skip (naming the Debian package) without GStreamer's shmsrc (the shared-memory transport)."""
    try:
        res = subprocess.run(["gst-inspect-1.0", "shmsrc"], capture_output=True, timeout=30)
    except FileNotFoundError:
        pytest.skip("gst-inspect-1.0 is not installed (Debian package gstreamer1.0-tools)")
    if res.returncode != 0:
        pytest.skip("GStreamer's shmsrc is missing (Debian package gstreamer1.0-plugins-bad)")


def wait_for(cond: object, timeout: float, what: str, step: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


class PipeWireSession:
    """dbus + pipewire + wireplumber in a private runtime directory (a context manager)."""

    def __init__(self, *, session_manager: bool = True) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="bgpw-", dir="/tmp"))
        self.runtime = self.root / "run"
        self.home = self.root / "home"
        self.runtime.mkdir(mode=0o700)
        self.home.mkdir()
        self.env = dict(
            os.environ,
            XDG_RUNTIME_DIR=str(self.runtime),
            DBUS_SESSION_BUS_ADDRESS=f"unix:path={self.runtime}/bus",
            HOME=str(self.home),
            XDG_DATA_HOME=str(self.home / ".local/share"),
            XDG_CONFIG_HOME=str(self.home / ".config"),
            XDG_STATE_HOME=str(self.home / ".local/state"),
            BGCAM_RUNTIME_DIR=str(self.runtime / "bgcam"),
        )
        self.env.pop("PIPEWIRE_REMOTE", None)
        self.env.pop("PIPEWIRE_RUNTIME_DIR", None)
        self._procs: list[subprocess.Popen[bytes]] = []
        self._dbus_pid: int | None = None
        self._session_manager = session_manager

    def __enter__(self) -> PipeWireSession:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def spawn(self, cmd: list[str], log: str) -> subprocess.Popen[bytes]:
        with open(self.root / log, "wb") as out:
            proc = subprocess.Popen(
                cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._procs.append(proc)
        return proc

    def _start(self) -> None:
        res = subprocess.run(
            [
                "dbus-daemon",
                "--session",
                "--fork",
                "--print-pid",
                f"--address={self.env['DBUS_SESSION_BUS_ADDRESS']}",
            ],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        self._dbus_pid = int(res.stdout.split()[0])
        self.spawn(["pipewire"], "pipewire.log")
        wait_for(lambda: (self.runtime / "pipewire-0").exists(), 10, "the pipewire socket")
        if self._session_manager:
            self.spawn(["wireplumber"], "wireplumber.log")
            wait_for(lambda: "WirePlumber" in self.pw_dump(), 15, "wireplumber to connect")

    def pw_dump(self) -> str:
        res = subprocess.run(
            ["pw-dump", "--no-colors"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        return res.stdout

    def has_node(self, name: str) -> bool:
        return f'"node.name": "{name}"' in self.pw_dump()

    def close(self) -> None:
        for proc in reversed(self._procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        self._procs.clear()
        if self._dbus_pid is not None:
            with contextlib.suppress(OSError):
                os.kill(self._dbus_pid, signal.SIGTERM)
            self._dbus_pid = None
        # xdg-desktop-portal starts the document portal, a FUSE mount on $XDG_RUNTIME_DIR/doc.
        # Once its process is gone the mount answers every call, stat included, with
        # ECONNABORTED, so it is detached lazily without looking at it first.
        if shutil.which("fusermount3"):
            subprocess.run(
                ["fusermount3", "-u", "-z", str(self.runtime / "doc")],
                capture_output=True,
                check=False,
                timeout=10,
            )
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class Recording:
    times: list[float] = field(default_factory=list)
    small: list[npt.NDArray[np.uint8]] = field(default_factory=list)
    sizes: set[tuple[int, int]] = field(default_factory=set)
    starts: int = 0

    def rate(self, skip: float = 1.0, tail: float = 0.5) -> float:
        """Frames a second, leaving out the first ``skip`` seconds (the frames queued before the
        reader came arrive in a burst) and the last ``tail`` seconds (the daemon stopping)."""
        if not self.times:
            return 0.0
        t0, t1 = self.times[0] + skip, self.times[-1] - tail
        t = [x for x in self.times if t0 <= x <= t1]
        return (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 else 0.0


class Recorder:
    """``pipewiresrc target-object=<node>`` → raw I420 frames of ``size`` on a pipe → memory."""

    CAPS = re.compile(
        r"pipewiresrc0\.GstPad:src: caps = video/x-raw.*?width=\(int\)(\d+), height=\(int\)(\d+)"
    )

    STALL = 0.7
    """Seconds without a frame, after frames came, that end a reading (as a track ending)."""

    def __init__(self, session: PipeWireSession, size: tuple[int, int], node: str = "bgcam"):
        self.session = session
        self.size = size
        self.node = node
        self.rec = Recording()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pw-recorder")
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Recorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
        self._thread.join(15)

    def frames_after(self, t: float) -> int:
        return sum(1 for x in self.rec.times if x > t)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._record_once()
            self._stop.wait(0.1)

    def _record_once(self) -> None:
        w, h = SMALL  # scaled down in the reader process: a busy machine keeps up
        n = w * h * 3 // 2
        r, wfd = os.pipe()
        cmd = [
            "gst-launch-1.0",
            "-v",
            "pipewiresrc",
            f"target-object={self.node}",
            "stream-properties=props,media.type=Video,media.category=Capture,media.role=Camera",
            "!",
            "video/x-raw,format=I420",
            "!",
            "videoscale",
            "!",
            f"video/x-raw,width={w},height={h}",
            "!",
            "fdsink",
            f"fd={wfd}",
            "sync=false",
        ]
        out = tempfile.TemporaryFile()  # noqa: SIM115 - closed below
        proc = subprocess.Popen(
            cmd, env=self.session.env, pass_fds=(wfd,), stdout=out, stderr=subprocess.STDOUT
        )
        os.close(wfd)
        with self._lock:
            self._proc = proc
        self.rec.starts += 1
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        last: float | None = None
        try:
            while not self._stop.is_set():
                if not select.select([r], [], [], 0.1)[0]:
                    if proc.poll() is not None:
                        break
                    if last is not None and time.monotonic() - last > self.STALL:
                        break  # the node went away (its track ended): open the camera again
                    continue
                k = os.readv(r, [view[got:]])
                if k == 0:
                    break
                got += k
                if got == n:
                    got = 0
                    now = last = time.monotonic()
                    self.rec.small.append(np.frombuffer(buf, np.uint8, w * h).reshape(h, w).copy())
                    self.rec.times.append(now)
        finally:
            os.close(r)
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            out.seek(0)
            for m in self.CAPS.finditer(out.read().decode(errors="replace")):
                self.rec.sizes.add((int(m.group(1)), int(m.group(2))))
            out.close()


@contextlib.contextmanager
def recording(session: PipeWireSession, size: tuple[int, int]) -> Iterator[Recorder]:
    with Recorder(session, size) as rec:
        yield rec
