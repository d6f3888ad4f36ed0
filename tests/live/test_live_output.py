"""The output tick waits briefly for a due frame that is late, and only for that.

A real :class:`~bgcam.live.output.Output` (real engine, HSV segmenter, mode off, null sink) is
ticked by hand against a source whose frames the test publishes itself, at chosen moments, from
another thread: the same capture-thread hand-over the daemon uses, with the timing in the test's
control. The grace is widened here (:func:`wide_grace`) so that a loaded machine's timer cannot
flip a result: the rule under test is *whether* the tick waits, not the default's length.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from queue import Queue

import numpy as np
import pytest

from bgcam.config import Config
from bgcam.engine import Engine
from bgcam.frame import Image
from bgcam.live import output as output_module
from bgcam.live.cards import LastOutput
from bgcam.live.clock import OutputClock
from bgcam.live.masks import MaskExchange
from bgcam.live.output import Output
from bgcam.sinks.null import NullSink
from bgcam.sources import Source
from bgcam.stats import Stats

SIZE = (64, 36)
GRACE = 3.0
"""Periods waited in these tests (100 ms at 30 fps); a late frame comes one period late."""


class HandSource(Source):
    """Frames arrive when the test puts them (``push``); ``fps`` is the nominal rate."""

    kind = "hand"

    def __init__(self, fps: float) -> None:
        super().__init__("hand:")
        self.fps = fps
        self._queue: Queue[Image | None] = Queue()

    def push(self, delay: float = 0.0) -> None:
        image = np.full((SIZE[1], SIZE[0], 3), self.frames_captured % 200, np.uint8)
        if delay:
            threading.Timer(delay, self._queue.put, (image,)).start()
        else:
            self._queue.put(image)

    def _connect(self) -> None:
        self.native_size = SIZE

    def _read(self) -> Image | None:
        return self._queue.get()

    def _interrupt(self) -> None:
        self._queue.put(None)


Rig = tuple[Output, HandSource, OutputClock, Stats]


@pytest.fixture
def rig(monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    monkeypatch.setattr(output_module, "LATE_GRACE", GRACE)
    cfg = Config.model_validate({"segment": {"segmenter": "hsv"}, "compose": {"mode": "off"}})
    engine = Engine(cfg, SIZE)
    stats = Stats()
    output = Output(
        engine, MaskExchange(), NullSink(), stats, LastOutput(), every=lambda: 1,
        masking=lambda: False,
    )  # fmt: skip
    source = HandSource(fps=30.0)
    source.open()
    source.start()
    yield output, source, OutputClock(30.0), stats
    source.stop()
    engine.close()


def _first(output: Output, source: HandSource, clock: OutputClock) -> None:
    """Show the first frame (nothing is waited for before it)."""
    source.push()
    assert source.wait_newer(-1, 5.0) is not None
    assert output.tick(source, clock, paused=False)


def test_a_due_frame_a_little_late_is_waited_for_not_repeated(rig: Rig) -> None:
    output, source, clock, stats = rig
    _first(output, source, clock)
    # The next frame is due now but arrives a period late: well within the grace.
    source.push(delay=clock.period)
    assert output.tick(source, clock, paused=False)
    s = stats.summary()
    assert (s["frames_new"], s["frames_repeated"], s["frames_dropped"]) == (2, 0, 0), s


def test_a_frame_later_than_the_grace_is_a_repeat(rig: Rig) -> None:
    output, source, clock, stats = rig
    _first(output, source, clock)
    source.push(delay=(GRACE + 2.0) * clock.period)
    assert output.tick(source, clock, paused=False)
    s = stats.summary()
    assert (s["frames_new"], s["frames_repeated"]) == (1, 1), s


def test_no_wait_for_a_source_at_another_rate(rig: Rig) -> None:
    output, source, clock, stats = rig
    source.fps = 15.0  # every other tick has no new frame, by design: nothing is late
    _first(output, source, clock)
    source.push(delay=clock.period)
    assert output.tick(source, clock, paused=False)
    s = stats.summary()
    assert (s["frames_new"], s["frames_repeated"]) == (1, 1), s


def test_no_wait_once_the_source_has_stalled(rig: Rig) -> None:
    output, source, clock, stats = rig
    _first(output, source, clock)
    time.sleep(2 * clock.period)  # the source has been silent for two periods: stalled
    source.push(delay=clock.period)
    assert output.tick(source, clock, paused=False)  # no wait: a repeat
    s = stats.summary()
    assert (s["frames_new"], s["frames_repeated"]) == (1, 1), s
