"""The live pipeline in-process: real file sources, real threads, test segmenters.

The segmenters here are real alternate components (registered through the Engine's
``segmenter=`` seam): one raises, one stalls. Fail closed means no output frame may equal its
unprocessed input, whatever the segmenter does.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from bgcam.config import Config, OutputConfig
from bgcam.control.commands import Command
from bgcam.frame import Image, Mask
from bgcam.pipeline import (
    SEGMENT_NICE,
    MaskBuffer,
    Pipeline,
    _yield_to_others,
    max_mask_age,
    opencv_threads,
    output_size,
)
from bgcam.sources import SourceState
from tests.live_media import astronaut_frames, wait_for, write_clip


class RecordingSink:
    name = "recording"
    device: str | None = None

    def __init__(self) -> None:
        self.frames: list[Image] = []
        self.lock = threading.Lock()

    def open(self, size: tuple[int, int], fps: float) -> None:
        self.size = size

    def send(self, image: Image) -> None:
        with self.lock:
            self.frames.append(image.copy())

    def close(self) -> None:
        pass


class RaisingSegmenter:
    name = "raising"

    def segment(self, image: Image, small: Image | None = None) -> Mask:
        raise RuntimeError("model exploded")

    def close(self) -> None:
        pass


class StallingSegmenter:
    """Left half person for the first ``good`` frames, then blocks until released."""

    name = "stalling"

    def __init__(self, good: int = 5) -> None:
        self.calls = 0
        self.good = good
        self.release = threading.Event()
        self.stalled = threading.Event()
        self.mask = np.zeros((36, 64), np.float32)
        self.mask[:, :32] = 1.0

    def segment(self, image: Image, small: Image | None = None) -> Mask:
        self.calls += 1
        if self.calls > self.good:
            self.stalled.set()
            self.release.wait(30)
        return self.mask

    def close(self) -> None:
        self.release.set()


@pytest.fixture
def clip(tmp_path: Path) -> tuple[Path, list[Image]]:
    frames = astronaut_frames(12)
    return write_clip(tmp_path / "clip.avi", frames, fps=30), frames


def config(uri: str, **extra: object) -> Config:
    base = {
        "source.uri": uri,
        "output.sink": "null",
        "output.governor": False,
        "compose.backend": "cpu",
        "log.stats_interval": 0.0,
    }
    base.update(extra)
    return Config().replace(**base)


def decoded(clip: Path) -> list[Image]:
    """The clip's frames as the source decodes them (MJPG is lossy)."""
    import cv2

    cap = cv2.VideoCapture(str(clip))
    out = []
    while (res := cap.read())[0]:
        out.append(res[1])
    return out


def assert_never_raw(outputs: list[Image], raws: list[Image]) -> None:
    assert outputs, "no frames reached the sink"
    for i, out in enumerate(outputs):
        for raw in raws:
            diff = np.abs(out.astype(np.int16) - raw).mean()
            assert diff > 2.0, f"output {i} is (nearly) an unprocessed input: mean diff {diff:.2f}"


def test_fail_closed_when_segmentation_raises(clip: tuple[Path, list[Image]]) -> None:
    path, _ = clip
    sink = RecordingSink()
    pipe = Pipeline(config(str(path)), sink=sink, segmenter=RaisingSegmenter())
    stats = pipe.run(seconds=1.5)
    assert stats["segment_errors"] >= 1
    assert stats["frames_unmasked"] == stats["frames_new"] > 0
    assert_never_raw(sink.frames, decoded(path))


@pytest.mark.parametrize("mode", ["blur", "remove"])
def test_fail_closed_when_segmentation_stalls(clip: tuple[Path, list[Image]], mode: str) -> None:
    path, _ = clip
    sink = RecordingSink()
    seg = StallingSegmenter(good=5)
    pipe = Pipeline(config(str(path), **{"compose.mode": mode}), sink=sink, segmenter=seg)
    done: dict[str, object] = {}
    thread = threading.Thread(target=lambda: done.update(pipe.run(seconds=30)))
    thread.start()
    try:
        assert seg.stalled.wait(20), "the segmenter never reached its stall"
        # Keep running well past the mask-age bound while the segmenter is stuck.
        n0 = len(sink.frames)
        wait_for(lambda: len(sink.frames) > n0 + 20, 20, "frames during the stall")
    finally:
        pipe.request_stop()
        thread.join(20)
        seg.release.set()
    assert done["frames_unmasked"] > 0  # stale masks were refused
    raws = decoded(path)
    assert_never_raw(sink.frames, raws)
    # The last frames were made without a mask: the person's half is hidden too.
    left = sink.frames[-1][:, :140].astype(np.int16)
    assert min(np.abs(left - r[:, :140]).mean() for r in raws) > 2.0


def test_start_up_before_the_first_mask_is_blurred(clip: tuple[Path, list[Image]]) -> None:
    path, _ = clip
    sink = RecordingSink()
    seg = StallingSegmenter(good=0)  # never produces a mask
    pipe = Pipeline(config(str(path)), sink=sink, segmenter=seg)
    try:
        stats = pipe.run(seconds=1.0)
    finally:
        seg.release.set()
    assert stats["frames_unmasked"] == stats["frames_new"] > 0
    assert_never_raw(sink.frames, decoded(path))


def test_paced_output_repeats_and_commands(clip: tuple[Path, list[Image]]) -> None:
    path, _ = clip
    sink = RecordingSink()
    # Output at 60 fps from a 30 fps file: every other tick repeats the last frame.
    cfg = config(str(path), **{"output.fps": 60.0, "compose.mode": "off"})
    pipe = Pipeline(cfg, sink=sink, segmenter=RaisingSegmenter())
    result: dict[str, object] = {}
    thread = threading.Thread(target=lambda: result.update(pipe.run(seconds=30)))
    thread.start()
    try:
        wait_for(lambda: len(sink.frames) > 30, 20, "frames")
        fut = pipe.commands.submit(Command("mode", "blur"))
        assert fut.result(10)["mode"] == "blur"
        fut = pipe.commands.submit(Command("pause"))
        status = fut.result(10)
        assert status["paused"] is True
        assert pipe.source.state is SourceState.STOPPED  # camera released while paused
        image, seq = pipe.latest_output()
        assert image is not None and image.shape == (180, 320, 3) and seq > 0
        pipe.commands.submit(Command("resume")).result(10)
        wait_for(lambda: pipe.source.state is SourceState.RUNNING, 10, "the source to resume")
        pipe.commands.submit(Command("quit")).result(10)
    finally:
        pipe.request_stop()
        thread.join(20)
    assert result["frames_repeated"] > 0
    assert result["frames_placeholder"] > 0  # the paused card


def test_on_demand_through_real_inotify(clip: tuple[Path, list[Image]], tmp_path: Path) -> None:
    # The v4l2loopback module cannot be loaded here: a regular file stands in for the device
    # node. The client-usage ioctl fails on it, so the inotify open/close fallback is what runs.
    path, _ = clip
    node = tmp_path / "video10"
    node.write_bytes(b"")
    sink = RecordingSink()
    cfg = config(str(path), **{"output.on_demand": True, "compose.mode": "off"})
    pipe = Pipeline(cfg, sink=sink, segmenter=RaisingSegmenter(), demand_path=str(node))
    thread = threading.Thread(target=lambda: pipe.run(seconds=60))
    thread.start()
    try:
        wait_for(lambda: pipe.state == "idle", 20, "idle with no reader")
        assert pipe.source.state is SourceState.STOPPED  # webcam released
        with open(node, "rb"):  # an application opens the virtual camera
            wait_for(lambda: pipe.state == "running", 20, "the reader to be noticed")
            wait_for(lambda: pipe.stats.summary()["frames_new"] > 5, 20, "frames to flow")
        wait_for(lambda: pipe.state == "idle", 20, "idle again after the reader left")
        assert pipe.source.state is SourceState.STOPPED
    finally:
        pipe.request_stop()
        thread.join(20)


def test_mask_buffer_hands_over_without_tearing() -> None:
    buf = MaskBuffer()
    assert buf.acquire() is None
    alpha8, small = np.full((2, 4), 255, np.uint8), np.full((2, 4, 3), 7, np.uint8)
    buf.publish(alpha8, small, 7, 1.5)
    alpha8[:] = 0  # the published matte is a copy, not the refiner's buffer
    got = buf.acquire()
    assert got is not None
    matte, index, t = got
    assert index == 7 and t == 1.5 and matte.alpha8.min() == 255 and matte.small.min() == 7
    buf.publish(np.full((2, 4), 128, np.uint8), small, 8, 1.6)  # the one being read is untouched
    assert matte.alpha8.min() == 255
    got = buf.acquire()
    assert got is not None and got[1] == 8 and got[0].alpha8.min() == 128
    # A new refiner with another working size: the next matte has that size.
    buf.publish(np.full((3, 5), 9, np.uint8), np.zeros((3, 5, 3), np.uint8), 9, 1.7)
    got = buf.acquire()
    assert got is not None and got[0].alpha8.shape == (3, 5) and got[0].small.shape == (3, 5, 3)
    buf.invalidate()
    assert buf.acquire() is None


@pytest.mark.parametrize(
    ("width", "height", "native", "expected"),
    [
        (0, 0, (1280, 720), (1280, 720)),
        (0, 0, (641, 361), (640, 360)),
        (640, 0, (1280, 720), (640, 360)),
        (0, 480, (640, 480), (640, 480)),
        (1920, 1080, (640, 480), (1920, 1080)),
    ],
)
def test_output_size(
    width: int, height: int, native: tuple[int, int], expected: tuple[int, int]
) -> None:
    assert output_size(OutputConfig(width=width, height=height), native) == expected


def test_mask_age_bound() -> None:
    assert max_mask_age(1, 30.0) == pytest.approx(0.2)
    assert max_mask_age(10, 30.0) == pytest.approx(11 / 30)


def test_opencv_gets_the_cores_the_pipeline_threads_leave(clip: tuple[Path, list[Image]]) -> None:
    """While running, OpenCV's pool only gets the cores left by the pipeline's two busy
    threads; the caller's setting is back after the run."""
    assert [opencv_threads(n) for n in (1, 2, 3, 4, 8)] == [1, 1, 1, 2, 6]
    before = cv2.getNumThreads()
    seen: list[int] = []

    class CountingSink(RecordingSink):
        def send(self, image: Image) -> None:
            seen.append(cv2.getNumThreads())
            super().send(image)

    path, _ = clip
    Pipeline(config(str(path)), sink=CountingSink(), segmenter=RaisingSegmenter()).run(0.5)
    assert seen and set(seen) == {opencv_threads()}
    assert cv2.getNumThreads() == before


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice is Linux's")
def test_a_thread_lowers_its_own_priority_only() -> None:
    """The segmentation thread yields to capture and output: its nice rises, the process's
    other threads keep theirs (a real thread, real scheduler priorities)."""
    seen: dict[str, int] = {}

    def body() -> None:
        tid = threading.get_native_id()
        seen["before"] = os.getpriority(os.PRIO_PROCESS, tid)
        _yield_to_others(SEGMENT_NICE)
        seen["after"] = os.getpriority(os.PRIO_PROCESS, tid)

    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    thread = threading.Thread(target=body)
    thread.start()
    thread.join(5)
    assert seen["after"] == min(19, seen["before"] + SEGMENT_NICE)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine


def test_a_refiner_with_another_working_size_keeps_the_frames_masked(
    clip: tuple[Path, list[Image]],
) -> None:
    """Reloading a config with another refine.work_height hands over a refiner whose matte has
    another size: the mattes follow it, segmentation keeps working, frames stay masked."""
    path, _ = clip
    cfg = config(str(path))
    resized = cfg.replace(**{"refine.work_height": 32})
    sink = RecordingSink()
    pipe = Pipeline(cfg, sink=sink, segmenter=StallingSegmenter(good=10**9), loader=lambda: resized)
    result: dict[str, object] = {}
    thread = threading.Thread(target=lambda: result.update(pipe.run(seconds=30)))
    thread.start()
    try:
        wait_for(lambda: len(sink.frames) > 10, 20, "frames")
        pipe.commands.submit(Command("reload")).result(10)
        engine = pipe.engine
        assert engine is not None
        wait_for(lambda: engine.refiner.cfg.work_height == 32, 10, "the new refiner")
        done = len(sink.frames)
        wait_for(lambda: len(sink.frames) > done + 20, 20, "frames after the reload")
        pipe.commands.submit(Command("quit")).result(10)
    finally:
        pipe.request_stop()
        thread.join(20)
    assert result["segment_errors"] == 0
    assert result["frames_unmasked"] <= 1  # the very first frame, before any mask exists
