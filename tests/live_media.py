"""Real media for the live-daemon tests: small video clips and an MJPEG-over-HTTP server.

The server is a real ``http.server`` on 127.0.0.1 sending ``multipart/x-mixed-replace`` JPEGs,
the way phones and IP cameras do; it can be stopped and started again on the same port, and it
can be told to go silent after the headers (a read that blocks).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from skimage import data

from bgcam.config import Config
from bgcam.control.client import ControlClient
from bgcam.errors import BgCamError

Image = np.ndarray

ROOT = Path(__file__).resolve().parents[1]
"""The repository root (daemon subprocesses run there)."""


def astronaut_frames(n: int, size: tuple[int, int] = (320, 180)) -> list[Image]:
    """``n`` different BGR frames of a real photo (the astronaut, shifted a little each frame)."""
    base = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (size[0] + n * 2, size[1]))
    return [np.ascontiguousarray(base[:, i * 2 : i * 2 + size[0]]) for i in range(n)]


def write_clip(path: Path, frames: list[Image], fps: float) -> Path:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (w, h))
    assert writer.isOpened()
    for f in frames:
        writer.write(f)
    writer.release()
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MjpegServer:
    """Serves ``frame()`` as an endless MJPEG stream at ``fps`` on 127.0.0.1:``port``."""

    def __init__(
        self,
        frame: Callable[[int], Image],
        *,
        port: int | None = None,
        fps: float = 30.0,
        content_length: bool = True,
        frames_before_silence: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/video"
        self._frame = frame
        self._fps = fps
        self._content_length = content_length
        self._silence_after = frames_before_silence
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.connections = 0

    def start(self) -> MjpegServer:
        server = self
        self._stop.clear()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.connections += 1
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                n = 0
                try:
                    while not server._stop.is_set():
                        if server._silence_after is not None and n >= server._silence_after:
                            server._stop.wait(60)  # hang: the client's read blocks
                            return
                        ok, jpeg = cv2.imencode(".jpg", server._frame(n))
                        assert ok
                        head = b"--frame\r\nContent-Type: image/jpeg\r\n"
                        if server._content_length:
                            head += f"Content-Length: {jpeg.size}\r\n".encode()
                        self.wfile.write(head + b"\r\n" + jpeg.tobytes() + b"\r\n")
                        self.wfile.flush()
                        n += 1
                        time.sleep(1.0 / server._fps)
                except (BrokenPipeError, ConnectionResetError):
                    return

        httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        httpd.daemon_threads = True
        httpd.allow_reuse_address = True
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Kill the server: stop accepting and cut every open stream."""
        self._stop.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(5)


def solid(color: tuple[int, int, int], size: tuple[int, int] = (320, 180)) -> Image:
    img = np.zeros((size[1], size[0], 3), np.uint8)
    img[:] = color
    return img


def wait_for(predicate: Callable[[], object], timeout: float = 30.0, what: str = "it") -> None:
    """Poll until ``predicate()`` is truthy; fail naming ``what`` after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def models_env(request: pytest.FixtureRequest) -> str:
    """The model dir from the suite's ``model_dir`` fixture (tests/conftest.py)."""
    return str(request.getfixturevalue("model_dir"))


def daemon_env(rundir: Path, request: pytest.FixtureRequest) -> dict[str, str]:
    """The environment of a `bgcam run` subprocess: the suite's models, a runtime dir
    (``RUNDIR/run``) and config home of its own, no X display (no hotkeys)."""
    env = dict(os.environ)
    env["BGCAM_MODEL_DIR"] = models_env(request)
    env["BGCAM_RUNTIME_DIR"] = str(rundir / "run")
    env["XDG_CONFIG_HOME"] = str(rundir / "config")
    env.pop("DISPLAY", None)
    return env


def client_ready(socket_path: Path | None = None) -> bool:
    """True once the daemon answers ``status`` (its frame loop runs)."""
    try:
        with ControlClient(socket_path, timeout=5) as c:
            c.call("status")
    except BgCamError:  # not running yet, or running but not yet applying commands
        return False
    return True


class DaemonProcess:
    """A daemon subprocess whose output is collected by a reader thread (no pipe stalls)."""

    def __init__(
        self,
        argv: list[str],
        env: dict[str, str],
        socket_path: Path,
        preexec: Callable[[], None] | None = None,
    ) -> None:
        self.socket_path = socket_path
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=preexec,  # e.g. a lower RLIMIT_NOFILE for the daemon alone
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_log(self, text: str, timeout: float = 60.0) -> None:
        wait_for(
            lambda: text in self.output or self.proc.poll() is not None,
            timeout,
            what=f"{text!r} in the log",
        )
        assert text in self.output, f"daemon exited ({self.proc.returncode}):\n{self.output}"

    def wait_serving(self, timeout: float = 60.0) -> None:
        """Wait until the socket answers; on failure kill the daemon (no stray processes)."""
        try:
            wait_for(
                lambda: self.proc.poll() is not None or client_ready(self.socket_path),
                timeout,
                what="the daemon's socket",
            )
            assert self.proc.poll() is None, (
                f"daemon exited ({self.proc.returncode}):\n{self.output}"
            )
        except BaseException:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait(10)
            raise

    def send_signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def finish(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> str:
        """Send ``sig`` (if still running), wait for the exit, return the whole output."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise
        finally:
            self._reader.join(10)
        return self.output

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode


CHROMIUM = Path("/usr/bin/chromium")


@contextmanager
def debian_chromium(args: list[str]) -> Iterator[Any]:
    """Debian's chromium driven by Playwright (never a downloaded browser); skips without it."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (/usr/bin/chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=args)
        try:
            yield browser
        finally:
            browser.close()


def pipeline_config(source: str = "synthetic:160x90@15", **settings: object) -> Config:
    """A small real daemon's config: ``source``, the null sink, the onnx segmenter on the CPU
    compositor at 15 fps, no governor, hotkeys or periodic log lines (tests run side by side)."""
    base: dict[str, object] = {
        "source.uri": source,
        "output.sink": "null",
        "output.fps": 15.0,
        "output.governor": False,
        "segment.segmenter": "onnx",
        "compose.backend": "cpu",
        "control.hotkeys": False,
        "log.stats_interval": 0.0,
    }
    return Config().replace(**{**base, **settings})


class RunningPipeline:
    """The real :class:`~bgcam.pipeline.Pipeline` running on a thread (not a double): what the
    control and web tests drive. ``start()`` waits for its first frames; ``stop()`` joins it."""

    def __init__(self, cfg: Config | None = None, **kwargs: Any) -> None:
        from bgcam.pipeline import Pipeline

        self.pipeline = Pipeline(cfg or pipeline_config(), loader=lambda: cfg or pipeline_config(),
                                 **kwargs)  # fmt: skip
        self._thread = threading.Thread(target=self.pipeline.run, name="pipeline", daemon=True)

    def start(self, wait: bool = True) -> RunningPipeline:
        self._thread.start()
        if wait:
            wait_for(lambda: self.frames_out() > 0, 120, "the pipeline's first frames")
        return self

    def frames_out(self) -> int:
        return int(self.pipeline.stats.summary()["frames_out"])

    def stop(self) -> None:
        self.pipeline.request_stop()
        self._thread.join(20)
        assert not self._thread.is_alive(), "the pipeline did not stop"
