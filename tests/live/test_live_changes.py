"""Settings changes in a running pipeline: built off the output thread, in place by the next frame;
the governor's cheaper compositing path. Real file source, real threads, the real compositor."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

import bgcam.compose.cpu as cpu_mod
from bgcam.compose.blur import BackgroundBlur
from bgcam.config import Config
from bgcam.control.grammar import Command
from bgcam.frame import Image
from bgcam.pipeline import Pipeline
from tests.live_media import astronaut_frames, wait_for, write_clip
from tests.test_pipeline import RecordingSink
from tests.test_pipeline import config as pipeline_config


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return write_clip(tmp_path / "clip.avi", astronaut_frames(12), fps=30)


def config(clip: Path, **extra: object) -> Config:
    return pipeline_config(str(clip), **{"segment.segmenter": "hsv", **extra})


def raws(clip: Path) -> list[Image]:
    cap = cv2.VideoCapture(str(clip))
    out = []
    while (res := cap.read())[0]:
        out.append(res[1])
    return out


def is_raw(frame: Image, inputs: list[Image]) -> bool:
    """The frame is (up to the decoder's rounding) one of the inputs: strength 0's look."""
    return min(float(np.abs(frame.astype(np.int16) - r).mean()) for r in inputs) < 1.0


def test_a_strength_change_is_built_off_the_output_thread_and_in_the_next_frame(
    clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builders: list[str] = []

    class SpiedBlur(BackgroundBlur):  # the real blur; records which thread builds it
        def __init__(self, *args: object, **kwargs: object) -> None:
            builders.append(threading.current_thread().name)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(cpu_mod, "BackgroundBlur", SpiedBlur)
    sink = RecordingSink()
    pipe = Pipeline(config(clip, **{"compose.blur": 60}), sink=sink)
    thread = threading.Thread(target=lambda: pipe.run(seconds=30))
    thread.start()
    inputs = raws(clip)
    try:
        wait_for(lambda: len(sink.frames) > 20, 20, "frames")
        builders.clear()
        n_submit = len(sink.frames)
        pipe.commands.submit(Command("blur", 0)).result(10)
        n_reply = len(sink.frames)
        wait_for(lambda: len(sink.frames) > n_reply + 10, 20, "frames after the change")
        pipe.commands.submit(Command("quit")).result(10)
    finally:
        pipe.request_stop()
        thread.join(20)
    assert builders == ["bgcam-build"]  # the strength-0 plan, built off the output thread
    frames = sink.frames
    assert not any(is_raw(f, inputs) for f in frames[:n_submit])  # blurred before
    first = next(i for i, f in enumerate(frames) if is_raw(f, inputs))
    # Every frame sent once the reply came has the new look; the change landed within a few
    # frames of the command (one to pick it up, one to build it, some slack for a busy machine).
    assert all(is_raw(f, inputs) for f in frames[n_reply:])
    assert first <= n_submit + 5, (n_submit, first, n_reply)


def test_the_governor_takes_a_cheaper_blur_when_compositing_is_over_budget(
    clip: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A budget of 0.01 ms per frame (``output.compose_budget_ms``): the real compositor is over
    it at once, so the governor moves the blur to a smaller image (logged in plain words), and,
    when none is smaller, says so once; frames keep coming throughout."""
    sink = RecordingSink()
    cfg = config(clip, **{"output.governor": True, "output.compose_budget_ms": 0.01})
    pipe = Pipeline(cfg, sink=sink)
    thread = threading.Thread(target=lambda: pipe.run(seconds=30))
    with caplog.at_level(logging.INFO, "bgcam.governor_compose"):
        thread.start()
        try:
            wait_for(lambda: "as small as it gets" in caplog.text, 20, "the governor's steps")
            n = len(sink.frames)
            wait_for(lambda: len(sink.frames) > n + 10, 10, "frames after the steps")
            assert pipe.engine is not None
            compositor = pipe.engine.compositor
            assert isinstance(compositor, cpu_mod.CpuCompositor) and compositor.economy == 1
            assert compositor._blur is not None and compositor._blur.plan.factor == 4
            pipe.commands.submit(Command("quit")).result(10)
        finally:
            pipe.request_stop()
            thread.join(20)
    steps = [r.getMessage() for r in caplog.records if r.name == "bgcam.governor_compose"]
    assert len(steps) == 2, steps  # each step once
    assert "over its 0.01 ms budget: same look, cheaper: gaussian blur computed at 1/4" in steps[0]
    assert "already as small as it gets" in steps[1]
