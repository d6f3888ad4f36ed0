"""The live pipeline in-process: real file sources, real threads, test segmenters.

The segmenters here are real alternate components (registered through the Engine's
``segmenter=`` seam): one raises, one stalls. Fail closed means no output frame may equal its
unprocessed input, whatever the segmenter does.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from bgcam.config import Config, SegmentConfig, load_config
from bgcam.control.grammar import Command
from bgcam.frame import Image, Mask, ShrunkFrame
from bgcam.live.state import PipelineState
from bgcam.live.worker import opencv_threads
from bgcam.pipeline import Pipeline
from bgcam.segment import Segmenter, available, create_segmenter
from bgcam.sources import SourceState
from tests.live_media import astronaut_frames, wait_for, write_clip


class RecordingSink:
    name = "recording"
    device: str | None = None

    def __init__(self) -> None:
        self.frames: list[Image] = []
        self.lock = threading.Lock()

    def locate(self) -> str | None:
        return None

    def open(self, size: tuple[int, int], fps: float) -> None:
        self.size = size

    def send(self, image: Image) -> None:
        with self.lock:
            self.frames.append(image.copy())

    def close(self) -> None:
        pass


class RaisingSegmenter:
    name = "raising"

    def segment(self, frame: ShrunkFrame) -> Mask:
        raise RuntimeError("model exploded")

    def close(self) -> None:
        pass


class StallingSegmenter:
    """Left half person for the first ``good`` frames, then blocks until released."""

    name = "stalling"

    def __init__(self, good: int = 5) -> None:
        self.calls = 0
        self.closed_once = False
        self.good = good
        self.release = threading.Event()
        self.stalled = threading.Event()
        self.mask = np.zeros((36, 64), np.float32)
        self.mask[:, :32] = 1.0

    def segment(self, frame: ShrunkFrame) -> Mask:
        self.calls += 1
        if self.calls > self.good:
            self.stalled.set()
            self.release.wait(30)
        return self.mask

    def close(self) -> None:
        self.closed_once = True
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
        assert fut.result(10).mode == "blur"
        fut = pipe.commands.submit(Command("pause"))
        status = fut.result(10)
        assert status.paused is True
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
        wait_for(lambda: pipe.state is PipelineState.IDLE, 20, "idle with no reader")
        assert pipe.source.state is SourceState.STOPPED  # webcam released
        with open(node, "rb"):  # an application opens the virtual camera
            wait_for(lambda: pipe.state is PipelineState.RUNNING, 20, "the reader to be noticed")
            wait_for(lambda: pipe.stats.summary()["frames_new"] > 5, 20, "frames to flow")
        wait_for(lambda: pipe.state is PipelineState.IDLE, 20, "idle again after the reader left")
        assert pipe.source.state is SourceState.STOPPED
    finally:
        pipe.request_stop()
        thread.join(20)


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


class TimedSink(RecordingSink):
    """Records when each frame arrives (monotonic), not the frames."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def send(self, image: Image) -> None:
        self.times.append(time.monotonic())


def test_a_model_swap_never_blocks_the_output_clock(clip: tuple[Path, list[Image]]) -> None:
    """A segmenter whose construction takes 1 s is built off the output thread: the output keeps
    sending at its rate meanwhile, and the command's reply comes once the new one is in use."""
    built: list[str] = []

    def slow_segmenter(cfg: SegmentConfig, size: tuple[int, int]) -> Segmenter:
        built.append(threading.current_thread().name)
        time.sleep(1.0)
        return create_segmenter(cfg, size)

    available()  # the backends' modules are loaded (as the daemon's start does): only the
    # construction is timed here, not a first import of onnxruntime, which holds the GIL
    path, _ = clip
    sink = TimedSink()
    cfg = config(str(path), **{"segment.segmenter": "onnx"})
    seg = StallingSegmenter(good=10**9)
    pipe = Pipeline(cfg, sink=sink, segmenter=seg, build_segmenter=slow_segmenter)
    result: dict[str, object] = {}
    thread = threading.Thread(target=lambda: result.update(pipe.run(seconds=30)))
    thread.start()
    try:
        wait_for(lambda: len(sink.times) > 15, 20, "frames")
        t0, n0 = time.monotonic(), len(sink.times)
        reply = pipe.commands.submit(Command("segmenter", "hsv")).result(20)
        t1 = time.monotonic()
        during = [t for t in sink.times[n0:] if t0 <= t <= t1]
        assert reply.config.segment.segmenter == "hsv"
        assert built == ["bgcam-build"]
        # The segmentation thread swaps it in before its next frame, and closes the old one.
        wait_for(lambda: seg.closed_once, 10, "the old segmenter to be closed")
        assert pipe.status().segmenter == "hsv"
        assert t1 - t0 >= 1.0  # the reply waited for the build…
        # …while the output kept sending: no gap near the 1 s build (a blocked clock shows one).
        gaps = np.diff([t0, *during, t1])
        assert len(during) >= 15 and gaps.max() < 0.5, f"longest gap {gaps.max():.3f} s"
        pipe.commands.submit(Command("quit")).result(10)
    finally:
        pipe.request_stop()
        thread.join(20)


def test_roi_is_reported_and_hot_swapped(clip: tuple[Path, list[Image]], model_dir: Path) -> None:
    """The real onnx segmenter with ROI: status reports the crop; `roi off` and `roi on`
    swap the segment stage between frames without stopping the output."""
    path, _ = clip
    sink = RecordingSink()
    pipe = Pipeline(config(str(path), **{"segment.providers": ["CPU"]}), sink=sink)
    thread = threading.Thread(target=lambda: pipe.run(seconds=60))
    thread.start()
    try:
        wait_for(lambda: pipe.stats.summary()["segmentations"] > 3, 60, "segmentations")
        status = pipe.commands.submit(Command("status")).result(10)
        roi = status.roi
        assert roi is not None and roi["shape"] in ("square", "tall", "wide", "whole")
        assert roi["crop"] is None or len(roi["crop"]) == 4
        off = pipe.commands.submit(Command("roi", "off")).result(10)
        assert off.config.segment.roi is False
        wait_for(lambda: pipe.status().roi is None, 20, "the whole-frame segmenter")
        before = len(sink.frames)
        pipe.commands.submit(Command("roi", "on")).result(10)
        wait_for(lambda: pipe.status().roi is not None, 20, "the ROI segmenter")
        wait_for(lambda: len(sink.frames) > before + 10, 20, "frames after the swaps")
    finally:
        pipe.request_stop()
        thread.join(30)
    assert not thread.is_alive()


class SmallPersonSegmenter:
    """A seated person a fifth of the frame wide, left of centre (a real component through the
    Engine's seam, so the test does not depend on what the model sees in the clip)."""

    name = "small-person"

    def __init__(self) -> None:
        self.mask = np.zeros((36, 64), np.float32)
        self.mask[12:, 12:24] = 1.0

    def segment(self, frame: ShrunkFrame) -> Mask:
        return self.mask

    def close(self) -> None:
        pass


def test_fail_closed_with_the_studio_effects_on(clip: tuple[Path, list[Image]]) -> None:
    path, _ = clip
    sink = RecordingSink()
    cfg = config(str(path), **{"effects.autoframe": True, "effects.light": "auto"})
    pipe = Pipeline(cfg, sink=sink, segmenter=RaisingSegmenter())
    stats = pipe.run(seconds=1.5)
    assert stats["frames_unmasked"] == stats["frames_new"] > 0
    assert_never_raw(sink.frames, decoded(path))


def test_autoframe_live_with_mode_off_and_switched_off_by_command(
    clip: tuple[Path, list[Image]],
) -> None:
    path, _ = clip
    sink = RecordingSink()
    cfg = config(str(path), **{"compose.mode": "off", "effects.autoframe": True})
    pipe = Pipeline(cfg, sink=sink, segmenter=SmallPersonSegmenter())
    result: dict[str, object] = {}
    thread = threading.Thread(target=lambda: result.update(pipe.run(seconds=60)))
    thread.start()
    try:
        # Mode off, yet the matte is made: auto-framing needs it. It zooms in on the person.
        wait_for(lambda: pipe.status().studio["autoframe"]["zoom"] > 1.8, 30, "the zoom")
        status = pipe.status()
        assert (
            status.studio["autoframe"]["on"] is True
            and status.studio["autoframe"]["person"] is True
        )
        x, _y, w, _h = status.studio["autoframe"]["crop"]
        assert abs(x + w / 2 - 0.28 * 320) < 0.1 * 320  # centred on the person
        assert status.studio["light"] == {"mode": "off", "gain": 1.0, "highlights": None}
        reply = pipe.commands.submit(Command("autoframe", "off")).result(10)
        assert reply.studio["autoframe"]["on"] is False
        wait_for(lambda: pipe.status().studio["autoframe"]["zoom"] == 1.0, 30, "the full view")
    finally:
        pipe.request_stop()
        thread.join(20)
    assert result["frames_unmasked"] == 0  # mode off: nothing to hide
    assert result["stage_ms"]["studio"] > 0


def test_light_live_measures_the_person_on_the_mattes_own_frame(tmp_path: Path) -> None:
    dim = [cv2.convertScaleAbs(f, alpha=0.35) for f in astronaut_frames(12)]
    path = write_clip(tmp_path / "dim.avi", dim, fps=30)
    sink = RecordingSink()
    pipe = Pipeline(
        config(str(path), **{"effects.light": "auto"}), sink=sink, segmenter=SmallPersonSegmenter()
    )
    thread = threading.Thread(target=lambda: pipe.run(seconds=60))
    thread.start()
    try:
        wait_for(lambda: pipe.status().studio["light"]["gain"] > 1.5, 30, "the gain")
        n = len(sink.frames)
        wait_for(lambda: len(sink.frames) > n + 5, 20, "frames")
    finally:
        pipe.request_stop()
        thread.join(20)
    with sink.lock:
        last = sink.frames[-1]
    assert last.mean() > 1.5 * np.mean([f.mean() for f in dim])  # brightened


def test_studio_settings_hot_reload_from_the_config_file(
    clip: tuple[Path, list[Image]], tmp_path: Path
) -> None:
    path, _ = clip
    file = tmp_path / "bgcam.toml"
    file.write_text("[effects]\nautoframe = false\n", encoding="utf-8")
    cfg = config(str(path))
    loader = lambda: config(str(path)).replace(  # noqa: E731 - the file on top of the test's
        **{f"effects.{k}": v for k, v in load_config(file).effects.model_dump().items()}
    )
    pipe = Pipeline(cfg, loader=loader, sink=RecordingSink(), segmenter=SmallPersonSegmenter())
    thread = threading.Thread(target=lambda: pipe.run(seconds=60))
    thread.start()
    try:
        wait_for(lambda: pipe.status().stats["frames_out"] > 5, 30, "frames")
        assert pipe.status().studio["autoframe"]["on"] is False
        file.write_text(
            '[effects]\nautoframe = true\nautoframe_zoom = 1.5\nlight = "auto"\n', encoding="utf-8"
        )
        reply = pipe.commands.submit(Command("reload")).result(10)
        assert reply.studio["autoframe"]["on"] is True and reply.studio["light"]["mode"] == "auto"
        wait_for(lambda: pipe.status().studio["autoframe"]["zoom"] > 1.4, 30, "the zoom")
        assert pipe.status().studio["autoframe"]["zoom"] <= 1.5 + 1e-6  # the reloaded cap
        file.write_text('[effects]\nlight = "dim"\n', encoding="utf-8")
        with pytest.raises(Exception, match=r"effects\.light"):
            pipe.commands.submit(Command("reload")).result(10)
        assert (
            pipe.status().studio["light"]["mode"] == "auto"
        )  # a bad file keeps the running config
    finally:
        pipe.request_stop()
        thread.join(20)
