"""The segmentation worker's parts: its thread priority, OpenCV's pool, the motion gate, and the
worker itself on a real source handing stages over between frames."""

from __future__ import annotations

import os
import sys
import threading

import numpy as np
import pytest

from bgcam.config import Config
from bgcam.engine import Engine
from bgcam.frame import Mask, ShrunkFrame
from bgcam.live.masks import MaskExchange
from bgcam.live.worker import (
    SEGMENT_NICE,
    MotionGate,
    SegmentationWorker,
    opencv_threads,
    yield_to_others,
)
from bgcam.sources import SyntheticSource
from bgcam.stats import Stats
from tests.live_media import wait_for


class CountingSegmenter:
    """The left half is the person; counts its calls and whether it was closed."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls = 0
        self.closed = False

    def segment(self, frame: ShrunkFrame) -> Mask:
        self.calls += 1
        mask = np.zeros((36, 64), np.float32)
        mask[:, :32] = 1.0
        return mask

    def close(self) -> None:
        self.closed = True


def test_opencv_pool_size() -> None:
    assert [opencv_threads(n) for n in (1, 2, 3, 4, 8)] == [1, 1, 1, 2, 6]


def test_the_motion_gate_sees_motion_not_noise() -> None:
    rng = np.random.default_rng(1)
    base = rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)
    gate = MotionGate((96, 64))
    assert gate.moving(base) is True  # the first frame: nothing to compare with
    assert gate.moving(base.copy()) is False
    noisy = np.clip(base.astype(np.int16) + rng.integers(-1, 2, base.shape), 0, 255)
    assert gate.moving(noisy.astype(np.uint8)) is False
    assert gate.moving(np.roll(base, 20, axis=1)) is True


def test_the_worker_publishes_and_swaps_stages_between_frames() -> None:
    cfg = Config().replace(**{"compose.backend": "cpu"})
    first, second = CountingSegmenter("first"), CountingSegmenter("second")
    source = SyntheticSource("synthetic:320x180")
    source.open()
    engine = Engine(cfg, source.native_size, segmenter=first)
    masks, stats = MaskExchange(), Stats()
    worker = SegmentationWorker(
        engine,
        masks,
        stats,
        source=lambda: source,
        schedule=lambda: (1, False),
        active=lambda: True,
    )
    source.start()
    worker.start()
    try:
        wait_for(lambda: first.calls > 3, 20, "segmentations")
        assert masks.acquire() is not None
        swap = engine.plan(cfg.replace(**{"segment.segmenter": "hsv"}))
        assert swap.segmenter is not None
        swap.segmenter.close()
        swap.segmenter = second
        worker.hand_over(swap)
        wait_for(lambda: second.calls > 3, 20, "the handed-over segmenter to run")
        assert first.closed and engine.segmenter is second
    finally:
        assert worker.stop(5.0)
        source.stop()
        engine.close()
    assert stats.summary()["segmentations"] >= 6


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice is Linux's")
def test_a_thread_lowers_its_own_priority_only() -> None:
    """The segmentation thread yields to capture and output: its nice rises, the process's
    other threads keep theirs (a real thread, real scheduler priorities)."""
    seen: dict[str, int] = {}

    def body() -> None:
        tid = threading.get_native_id()
        seen["before"] = os.getpriority(os.PRIO_PROCESS, tid)
        yield_to_others(SEGMENT_NICE)
        seen["after"] = os.getpriority(os.PRIO_PROCESS, tid)

    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    thread = threading.Thread(target=body)
    thread.start()
    thread.join(5)
    assert seen["after"] == min(19, seen["before"] + SEGMENT_NICE)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine
