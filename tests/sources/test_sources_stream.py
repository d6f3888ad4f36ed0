"""The MJPEG-over-HTTP source against a real server on 127.0.0.1."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import bgcam.sources.stream as stream_mod
from bgcam.errors import InputError
from bgcam.sources import OpenCancelled, SourceState
from bgcam.sources.stream import StreamSource
from tests.live_media import MjpegServer, astronaut_frames, free_port, solid, wait_for


@pytest.mark.parametrize("content_length", [True, False])
def test_reads_frames(content_length: bool) -> None:
    frames = astronaut_frames(4)
    server = MjpegServer(lambda n: frames[n % 4], content_length=content_length).start()
    src = StreamSource(server.url)
    try:
        assert src.open() == (320, 180)
        src.start()
        wait_for(lambda: src.frames_captured >= 5, 20, "five frames")
        frame = src.latest()
        assert frame is not None
        # JPEG is lossy: close to one of the frames sent, not equal.
        err = min(np.abs(frame.image.astype(int) - f).mean() for f in frames)
        assert err < 6
    finally:
        src.stop()
        server.stop()


def test_stop_returns_while_a_read_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    # The server sends one frame, then nothing: the capture thread blocks in recv(). With a
    # 60 s read timeout only the socket shutdown in stop() can free it.
    monkeypatch.setattr(stream_mod, "READ_TIMEOUT", 60.0)
    server = MjpegServer(lambda n: solid((0, 0, 200)), frames_before_silence=1).start()
    src = StreamSource(server.url)
    try:
        src.open()
        src.start()
        time.sleep(0.5)  # let the thread enter the blocking read
        assert src.state is SourceState.RUNNING
        t0 = time.monotonic()
        src.stop(timeout=1.0)
        took = time.monotonic() - t0
        assert src._thread is not None and not src._thread.is_alive()
        assert took < 10, f"stop() took {took:.1f} s"  # generous: the alternative is 60 s
    finally:
        server.stop()


def test_reconnects_when_the_server_returns() -> None:
    port = free_port()
    first = MjpegServer(lambda n: solid((0, 0, 255)), port=port).start()
    src = StreamSource(f"http://127.0.0.1:{port}/video")
    src.open()
    src.start()
    try:
        wait_for(lambda: src.frames_captured > 3, 20, "frames from the first server")
        first.stop()
        wait_for(lambda: src.state is SourceState.LOST, 20, "the loss to be noticed")
        second = MjpegServer(lambda n: solid((0, 255, 0)), port=port).start()
        t_back = time.monotonic()
        try:
            wait_for(
                lambda: (f := src.latest()) is not None and f.image[..., 1].mean() > 200,
                20,
                "green frames from the restarted server",
            )
            print(f"frames again {time.monotonic() - t_back:.2f} s after the server returned")
            assert src.state is SourceState.RUNNING
        finally:
            src.stop()
            second.stop()
    finally:
        src.stop()


def test_unreachable_url_is_an_input_error() -> None:
    src = StreamSource(f"http://127.0.0.1:{free_port()}/video")
    with pytest.raises(InputError, match="cannot connect"):
        src.open()


def _silent_server() -> tuple[socket.socket, str]:
    """A listening socket that accepts (the kernel does) and never answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    return srv, f"http://127.0.0.1:{srv.getsockname()[1]}/video"


@pytest.mark.parametrize("scheme", ["http", "tcp"])
def test_open_gives_up_at_once_when_cancelled(scheme: str) -> None:
    """A stop while the open blocks (HTTP: no answer; tcp://: FFmpeg's own open timeout)."""
    srv, url = _silent_server()
    try:
        source = StreamSource(url.replace("http", scheme, 1).removesuffix("/video"))
        flag = {"stop": False}
        t0 = time.monotonic()
        threading.Timer(0.3, lambda: flag.update(stop=True)).start()
        with pytest.raises(OpenCancelled):
            source.open(cancelled=lambda: flag["stop"])
        # Well before the open's own limits (HTTP 3 s, FFmpeg 5 s), even on a busy machine.
        assert time.monotonic() - t0 < 2.5
        assert source.state is SourceState.STOPPED
    finally:
        srv.close()


def test_a_single_client_server_is_read_on_the_first_connection(tmp_path: Path) -> None:
    """`ffmpeg -listen 1` serves one client: probing it must not use up that connection."""
    port = free_port()
    server = subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi",
         "-i", "testsrc=size=320x240:rate=30", "-t", "20", "-c:v", "mpeg4", "-f", "mpegts",
         "-listen", "1", f"http://127.0.0.1:{port}/v"],
    )  # fmt: skip
    source = StreamSource(f"http://127.0.0.1:{port}/v")
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                size = source.open()
                break
            except InputError:  # ffmpeg not listening yet
                assert time.monotonic() < deadline and server.poll() is None
                source = StreamSource(f"http://127.0.0.1:{port}/v")
                time.sleep(0.2)
        assert size == (320, 240) and source.mode == "ffmpeg"
        source.start()
        wait_for(lambda: source.frames_captured >= 10, 20, what="10 frames")
        source.stop()
        assert source.state is SourceState.STOPPED
    finally:
        source.stop()
        server.kill()
        server.wait(10)
