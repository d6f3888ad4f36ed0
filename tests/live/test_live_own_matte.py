"""The output composes a frame with that frame's own matte when it is being made, within a budget.

A real :class:`~bgcam.live.output.Output` and a real
:class:`~bgcam.live.worker.SegmentationWorker` (real engine and threads) share a
:class:`~bgcam.live.masks.MaskExchange`; the source's frames are pushed by the test (the
capture-thread hand-over of :class:`HandSource`) and each is ticked once it has arrived, like the
phase-locked output clock does. The segmenter's speed is the test's: a fast one (far below the
budget: own mattes), one gated by an event (never within the budget: the tick falls back and
returns first; stop wakes it). The outcomes are counts and orderings, never durations.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest

from bgcam.config import Config
from bgcam.engine import Engine
from bgcam.frame import Mask, ShrunkFrame
from bgcam.live import output as output_module
from bgcam.live.cards import LastOutput
from bgcam.live.clock import OutputClock
from bgcam.live.masks import MaskExchange
from bgcam.live.output import Output
from bgcam.live.worker import SegmentationWorker
from bgcam.sinks.null import NullSink
from bgcam.stats import Stats
from tests.live.test_live_output import SIZE, HandSource
from tests.live_media import wait_for


class GatedSegmenter:
    """The left half is the person. Frames whose index is in ``hold`` wait for ``release``."""

    name = "gated"

    def __init__(self) -> None:
        self.calls = 0
        self.hold: set[int] = set()
        self.release = threading.Event()
        self.started = threading.Event()

    def segment(self, frame: ShrunkFrame) -> Mask:
        if self.calls in self.hold:
            self.started.set()
            self.release.wait(60.0)
        self.calls += 1
        mask = np.zeros((SIZE[1], SIZE[0]), np.float32)
        mask[:, : SIZE[0] // 2] = 1.0
        return mask

    def close(self) -> None:
        self.release.set()


@dataclass
class Rig:
    output: Output
    source: HandSource
    segmenter: GatedSegmenter
    masks: MaskExchange
    stats: Stats
    worker: SegmentationWorker

    def tick(self, clock: OutputClock) -> None:
        """Push a frame, tick once it has arrived (the tick is due now)."""
        last = self.source.frames_captured - 1
        self.source.push()
        assert self.source.wait_newer(last, 20.0) is not None
        clock.restart()
        assert self.output.tick(self.source, clock, paused=False)

    def settle(self, index: int) -> None:
        """Wait until frame ``index``'s matte is out (the worker then expects the next frame)."""

        def published() -> bool:
            got = self.masks.acquire()  # the output thread's call: the test ticks it itself
            return got is not None and got[1] >= index

        wait_for(published, 20.0, f"frame {index}'s matte")


@pytest.fixture
def rig() -> Iterator[Rig]:
    cfg = Config().replace(**{"compose.backend": "cpu", "segment.max_skip": 0})
    segmenter = GatedSegmenter()
    engine = Engine(cfg, SIZE, segmenter=segmenter)
    masks, stats = MaskExchange(), Stats()
    source = HandSource(fps=30.0)
    source.open()
    source.start()
    worker = SegmentationWorker(
        engine, masks, stats, source=lambda: source, schedule=lambda: (1, False),
        active=lambda: True,
    )  # fmt: skip
    output = Output(
        engine, masks, NullSink(), stats, LastOutput(), every=lambda: 1, masking=lambda: True
    )
    worker.start()
    yield Rig(output, source, segmenter, masks, stats, worker)
    segmenter.release.set()
    assert worker.stop(20.0)
    source.stop()
    engine.close()


def test_a_segmenter_within_the_budget_gives_every_frame_its_own_matte(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(output_module, "MATTE_WAIT", 50.0)  # 25 s at 2 fps: never runs out here
    clock = OutputClock(2.0)
    rig.tick(clock)  # warm-up: the first frame finds the worker idle (no matte is coming yet)
    rig.settle(0)
    for _ in range(11):
        rig.tick(clock)
    s = rig.stats.summary()
    # Every later frame gets its own matte (waited for, or out already), however the threads
    # happen to be scheduled.
    assert s["frames_new"] == 12 and s["frames_repeated"] == 0, s
    assert s["mattes_own"] >= 11 and s["mattes_older"] == 0 and s["frames_unmasked"] <= 1, s


def test_a_segmenter_slower_than_the_budget_falls_back_to_the_newest_matte(rig: Rig) -> None:
    clock = OutputClock(30.0)  # the default budget: half a period
    rig.segmenter.hold = {2}  # frame 2 is stuck in the segmenter until the test releases it
    for index in range(2):
        rig.tick(clock)
        rig.settle(index)
    rig.tick(clock)  # frame 2: its matte is not coming within the budget
    assert not rig.segmenter.release.is_set() and rig.segmenter.calls == 2  # returned first
    s = rig.stats.summary()
    assert s["frames_new"] == 3 and s["frames_repeated"] == 0, s
    assert s["mattes_older"] >= 1 and s["frames_unmasked"] <= 1, s  # frame 1's matte, usable
    rig.segmenter.release.set()


def test_a_stop_wakes_an_output_that_waits_for_its_matte(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(output_module, "MATTE_WAIT", 200.0)  # 100 s at 2 fps
    clock = OutputClock(2.0)
    rig.segmenter.hold = {1}
    rig.tick(clock)
    rig.settle(0)
    # Frame 0 waits for its matte too when the worker took it before the tick (a busy machine
    # schedules either first): count frame 1's waits alone.
    waits_before = rig.stats.summary()["matte_waits"]
    # The stop must come while the output waits, not before it starts to (then there is nothing
    # to wake, and no wait is counted): the exchange's condition tells when the output sleeps
    # in it (the stop's notify needs the lock, which that sleep releases).
    waiting = threading.Event()
    sleep = rig.masks._changed.wait

    def flagged_sleep(timeout: float | None = None) -> bool:
        waiting.set()
        return sleep(timeout)

    monkeypatch.setattr(rig.masks._changed, "wait", flagged_sleep)
    done = threading.Event()
    thread = threading.Thread(target=lambda: (rig.tick(clock), done.set()))
    thread.start()  # frame 1: the worker holds it, the output waits for its matte
    assert rig.segmenter.started.wait(20.0)
    assert waiting.wait(20.0)
    assert rig.worker.stop(0.05) is False  # still stuck in the segmenter, but told to stop
    thread.join(20.0)  # far less than the 100 s budget: the stop ended the wait
    assert done.is_set() and not rig.segmenter.release.is_set()
    s = rig.stats.summary()
    assert s["frames_new"] == 2 and s["matte_waits"] - waits_before == 1, s
    assert s["mattes_own"] <= 1, s
