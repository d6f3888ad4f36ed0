"""Sources that misbehave (findings 1, 4 and 5 of issue 13), against the real daemon.

- an MJPEG camera that comes back at another resolution (a server written here: 1280x720, killed,
  restarted on the same port at 640x480);
- TERM and INT while the start-up open blocks (a silent HTTP server; a silent ``tcp://`` one,
  where FFmpeg's own open would wait 5 s);
- a server that serves one client only (``ffmpeg -listen 1``).
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.adversarial.adversary import spawn, status
from tests.live_media import MjpegServer, free_port, wait_for

pytestmark = pytest.mark.slow

OUT = ["--set", "output.width=960", "--set", "output.height=540"]
PERSON = Path(__file__).parents[2] / "bgcam" / "data" / "astronaut.jpg"
STUDIO = [
    *("--set", "segment.segmenter=onnx"),  # the model: the region tracker wraps it, not hsv
    *("--set", "segment.roi=true"),
    *("--set", "effects.autoframe=true"),
    *("--set", "effects.light=auto"),
    *("--set", "output.governor=false"),  # a busy machine must not turn the tracker off
]


def frame_of(size: tuple[int, int], value: int) -> np.ndarray:
    image = np.full((size[1], size[0], 3), value, np.uint8)
    image[size[1] // 4 : size[1] // 2, size[0] // 3 : size[0] // 2] = 255 - value  # some detail
    return image


def person_of(size: tuple[int, int], value: int) -> np.ndarray:
    """The bundled photo of a person, small on a plain room of ``value``: the region tracker
    and the auto-framer then hold a box in the old frame's coordinates when the size changes."""
    image = np.full((size[1], size[0], 3), value, np.uint8)
    photo = cv2.imread(str(PERSON))
    h = size[1] * 3 // 4
    w = photo.shape[1] * h // photo.shape[0]
    image[size[1] - h :, size[0] // 3 : size[0] // 3 + w] = cv2.resize(photo, (w, h))
    return image


@pytest.mark.parametrize(
    ("settings", "picture"),
    [([], frame_of), (STUDIO, person_of)],
    ids=["defaults", "roi-autoframe-light"],
)
def test_a_stream_that_returns_at_another_resolution(
    tmp_path: Path,
    rundir: Path,
    settings: list[str],
    picture: object,
    request: pytest.FixtureRequest,
) -> None:
    assert callable(picture)
    if settings:
        request.getfixturevalue("model_dir")  # BGCAM_MODEL_DIR for the daemon
    port = free_port()
    # 10 fps: a busy machine still reads faster, so no backlog of old frames hides the loss.
    big = MjpegServer(lambda n: picture((1280, 720), 60), port=port, fps=10).start()
    d = spawn(rundir, tmp_path, *OUT, *settings, source=big.url)
    try:
        before = status(rundir)
        assert before is not None and before["size"] == [960, 540]
        if settings:  # the person is tracked before the change, so a box in old coordinates
            wait_for(lambda: _tracked(rundir), 20, what="the region tracker and framer to hold")
        big.stop()
        wait_for(
            lambda: (s := status(rundir)) is not None and s["source"]["state"] == "lost",
            30,
            what="the daemon to notice the stream is gone",
        )
        small = MjpegServer(lambda n: picture((640, 480), 200), port=port, fps=10).start()
        back = time.monotonic()
        try:
            frames0 = status(rundir)
            assert frames0 is not None

            def running_again() -> bool:
                s = status(rundir)
                return (
                    s is not None
                    and s["source"]["state"] == "running"
                    and s["frames_new"] > frames0["frames_new"]
                )

            wait_for(running_again, 20, what="real frames after the server's return")
            took = time.monotonic() - back
            after = status(rundir)
            assert after is not None and after["size"] == [960, 540]
            if settings:
                wait_for(lambda: _tracked(rundir), 20, what="the person tracked at the new size")
            assert d.proc.poll() is None, d.output
        finally:
            small.stop()
    finally:
        out = d.finish()
    assert d.returncode == 0, out
    assert "Traceback" not in out
    print(f"resolution change: real frames {took:.2f} s after the server came back")


def _tracked(rundir: Path) -> bool:
    """The daemon's region tracker holds a crop and its framer sees a person."""
    s = status(rundir)
    return (
        s is not None
        and s["roi"] is not None
        and s["roi"]["people"] is not None
        and s["autoframe"]["person"]
    )


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port whose listener accepts (the kernel does) and never says a word."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    yield int(srv.getsockname()[1])
    srv.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("scheme", ["http", "tcp"])
def test_a_stop_signal_during_the_start_up_open(
    tmp_path: Path, rundir: Path, silent_server: int, scheme: str, sig: signal.Signals
) -> None:
    url = f"{scheme}://127.0.0.1:{silent_server}" + ("/video" if scheme == "http" else "")
    d = spawn(rundir, tmp_path, source=url, wait=False)
    try:
        d.wait_log("control socket", timeout=60)  # the signal handlers are in place
        time.sleep(0.5)  # the open is under way (it would block for seconds)
        assert d.proc.poll() is None, d.output
        t0 = time.monotonic()
        d.send_signal(sig)
        d.proc.wait(10)
        took = time.monotonic() - t0
    finally:
        out = d.finish(timeout=10)
    assert d.returncode == 0, out
    assert "error:" not in out and "Traceback" not in out
    assert "stopped while the source was opening" in out
    print(f"{sig.name} during the {scheme} open: exit 0 in {took * 1000:.0f} ms")


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg program")
def test_a_single_client_stream(tmp_path: Path, rundir: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi",
         "-i", "testsrc=size=640x360:rate=30", "-t", "60", "-c:v", "mpeg4", "-f", "mpegts",
         "-listen", "1", f"http://127.0.0.1:{port}/v"],
    )  # fmt: skip
    try:
        wait_for(lambda: _listening(port), 20, what="ffmpeg to listen")
        d = spawn(rundir, tmp_path, source=f"http://127.0.0.1:{port}/v")
        try:
            s0 = status(rundir)
            assert s0 is not None
            wait_for(
                lambda: (s := status(rundir)) is not None and s["frames_new"] > s0["frames_new"],
                20,
                what="new frames from the single-client server",
            )
        finally:
            out = d.finish()
        assert d.returncode == 0, out
    finally:
        server.kill()
        server.wait(10)


def _listening(port: int) -> bool:
    """True once something listens on ``port`` (checked without connecting to it)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":
            return True
    return False
