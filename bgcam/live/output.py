"""One output tick: compose the newest frame (or repeat, or a card) and send it.

The output thread calls :meth:`Output.tick` once per :class:`~bgcam.live.clock.OutputClock`
period. A new frame is composed with the newest *usable* matte (fail closed: none, and the whole
frame is blurred), after waiting, within :data:`MATTE_WAIT` and the tick's deadline, for that
frame's own matte while it is being made; no new frame repeats the last output
(``frames_repeated``); a source lost for more than :data:`LOST_GRACE`, or silent for
:data:`STALL`, gets the "camera unavailable" card.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np

from bgcam.compose.i420 import I420, to_i420
from bgcam.config import Config
from bgcam.engine import Engine
from bgcam.frame import Frame, Image, ShrunkFrame
from bgcam.live.cards import Cards, LastOutput
from bgcam.live.clock import OutputClock
from bgcam.live.masks import MaskExchange
from bgcam.sinks import Sink, SinkClosed, takes_i420
from bgcam.sources import Source, SourceState
from bgcam.stats import Stats

log = logging.getLogger(__name__)

__all__ = ["LOST_GRACE", "STALL", "Output", "wants_matte"]

LOST_GRACE = 0.5
"""Seconds of a lost source before the placeholder replaces the repeated last frame."""
STALL = 2.0
"""Seconds without a new frame, source nominally running, before the placeholder shows."""
LATE_GRACE = 0.4
"""Periods a tick waits for a source frame that is due but late (source at the output's rate,
frames flowing): a capture thread held up for a few milliseconds by other work then costs that
much latency once, instead of a repeated frame followed by a skipped one."""
IDLE_CARD_PERIOD = 1.0
"""Seconds between cards while on-demand idles (nobody reads them)."""
MATTE_WAIT = 0.5
"""Periods a tick waits at most for the matte of the frame it composes, while the segmentation
thread is on that frame (see :meth:`Output._matte_deadline`)."""
COST_DECAY = 0.98
"""Per tick decay of the compose+send time estimate (it follows a rise at once, a fall slowly)."""


def wants_matte(cfg: Config) -> bool:
    """Segment while the mode uses the matte, or a studio effect does (auto-framing finds the
    person in it, low-light correction measures them)."""
    return cfg.compose.mode != "off" or cfg.effects.autoframe or cfg.effects.light != "off"


class Output:
    """The output thread's work per tick (output thread only). ``every()`` is how often the
    segmentation thread segments (the mask age policy allows for it); ``masking()`` is False
    while nothing needs mattes (mode off and no studio effect on); ``fail_closed()`` (default:
    ``masking``) is True while a frame without a usable matte counts as unmasked (the mode
    hides the background: the frame is then blurred whole)."""

    def __init__(
        self,
        engine: Engine,
        masks: MaskExchange,
        sink: Sink,
        stats: Stats,
        last: LastOutput,
        *,
        every: Callable[[], int],
        masking: Callable[[], bool],
        fail_closed: Callable[[], bool] | None = None,
    ) -> None:
        self._engine, self._masks, self._sink, self._stats = engine, masks, sink, stats
        self._last = last
        self._every, self._masking = every, masking
        self._fail_closed = fail_closed or masking
        self.cards = Cards(engine.frame_size, last)
        self._last_index = -1
        self._t_new = time.monotonic()
        self._next_card = 0.0
        self._cost = 0.0
        """Seconds compose + send take (a decaying maximum): a matte wait leaves them room."""
        self._t_compose = 0.0
        self._i420 = takes_i420(sink)
        """The sink takes I420: compose straight into it (the CPU compositor), convert the rest."""
        w, h = engine.frame_size
        self._conv: I420 | None = np.empty((h * 3 // 2, w), np.uint8) if self._i420 else None
        self._conv_of: Image | None = None
        """The still (a card) whose I420 :attr:`_conv` holds."""

    def tick(self, source: Source, clock: OutputClock, *, paused: bool) -> bool:
        """Send one frame; False when the source ended or the sink closed."""
        sched, now = clock.next_t, time.monotonic()
        frame = source.latest()
        if not paused and self._due_but_late(frame, source, clock, now):
            frame = source.wait_newer(self._last_index, LATE_GRACE * clock.period) or frame
        new = unmasked = placeholder = False
        dropped = 0
        if paused:
            out, placeholder = self.cards.card("paused"), True
        elif frame is not None and frame.index > self._last_index:
            deadline = self._matte_deadline(sched, clock.period)
            out, unmasked = self._compose(frame, source.fps, deadline)
            dropped = frame.index - self._last_index - 1 if self._last_index >= 0 else 0
            self._last_index, new, self._t_new = frame.index, True, now
            clock.phase_lock(sched, frame.t_capture, source.fps)
        elif source.state is SourceState.ENDED:
            log.info("the source ended: stopping")
            return False
        elif (
            (source.state is SourceState.LOST and source.lost_for > LOST_GRACE)
            or now - self._t_new > STALL
            or self._last.image is None
        ):
            out, placeholder = self.cards.card("camera unavailable"), True
        else:
            out = self._last.image
        if not self.send(out, still=placeholder):
            return False
        if new:
            spent = time.monotonic() - self._t_compose
            self._cost = max(spent, COST_DECAY * self._cost)
        latency = (time.monotonic() - frame.t_capture) * 1e3 if new and frame else None
        self._stats.frame_out(
            new=new, latency_ms=latency, dropped=dropped, placeholder=placeholder, unmasked=unmasked
        )
        return True

    def _matte_deadline(self, sched: float, period: float) -> float:
        """Until when this tick may wait for its frame's matte: :data:`MATTE_WAIT` periods from
        now, and never so long that compose + send (as long as they recently took) would end
        after the next tick's time (the clock would slip)."""
        return min(time.monotonic() + MATTE_WAIT * period, sched + period - self._cost)

    def _due_but_late(
        self, frame: Frame | None, source: Source, clock: OutputClock, now: float
    ) -> bool:
        """No new frame yet, though the source delivers one per tick and the last one came
        within the last period and a half (a stalled source is not waited for each tick)."""
        return (
            frame is not None
            and frame.index <= self._last_index
            and source.state is SourceState.RUNNING
            and clock.same_rate(source.fps)
            and now - self._t_new < 1.5 * clock.period
        )

    def idle(self, clock: OutputClock) -> bool:
        """While nobody reads: a "waiting" card once a second; False when the sink closed."""
        now = time.monotonic()
        clock.restart(now)
        if now < self._next_card:
            return True
        self._next_card = now + IDLE_CARD_PERIOD
        if not self.send(self.cards.card("BgCam: waiting for a viewer"), still=True):
            return False
        self._stats.frame_out(new=False, placeholder=True)
        return True

    def send(self, image: Image, *, still: bool = False) -> bool:
        """Send ``image`` (BGR or I420); False when the sink was closed from its side.
        ``still``: a card, sent again unchanged while it shows (converted once for I420)."""
        t0 = time.monotonic()
        try:
            if self._conv is None:
                self._sink.send(image)
            else:
                self._sink.send_i420(self._as_i420(image, still))  # type: ignore[attr-defined]
        except SinkClosed as exc:
            log.info("%s: stopping", exc)
            return False
        self._stats.stage("send", (time.monotonic() - t0) * 1e3)
        return True

    def _as_i420(self, image: Image, still: bool) -> I420:
        """``image`` in I420: itself, or converted (a card once while it shows; the frames of
        a compositor that makes BGR each time)."""
        assert self._conv is not None
        if still and image is self._conv_of:
            return self._conv
        self._conv_of = image if still else None
        return to_i420(image, self._conv)

    def _compose(self, frame: Frame, source_fps: float, deadline: float) -> tuple[Image, bool]:
        """``frame`` composed with the newest usable matte (its own when it comes before
        ``deadline``); and True when there was none."""
        engine = self._engine
        masking = self._masking()
        waited = self._masks.wait_own(frame.index, deadline) if masking else None
        self._t_compose = time.monotonic()
        got = self._masks.usable(frame, self._every(), source_fps) if masking else None
        if got is not None or waited is not None:
            self._stats.matte(
                own=None if got is None else got[1],
                wait_ms=None if waited is None else waited * 1e3,
            )
        if got is None:
            out = self._last.update(
                lambda: engine.compose(
                    ShrunkFrame(frame.image), None, t=frame.t_capture, i420=self._i420
                )
            )
        else:
            matte, same = got
            # The matte's own frame: its shrunk copy (made for segmenting) saves the blur a pass.
            shrunk = ShrunkFrame(frame.image, matte.small if same else None)
            out = self._last.update(
                lambda: engine.compose(
                    shrunk,
                    matte.alpha8,
                    t=frame.t_capture,
                    matte_small=matte.small,
                    i420=self._i420,
                )
            )
        self._stats.stage("compose", engine.times.compose)
        if engine.times.studio:
            self._stats.stage("studio", engine.times.studio)
        return out, got is None and self._fail_closed()
