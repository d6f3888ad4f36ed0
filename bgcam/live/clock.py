"""The output clock: one tick per ``1 / fps`` seconds, a late tick made up at once, and a phase
lock to the source's frame arrivals when both run at the same rate.

With the phase lock, each tick sits :data:`PHASE_TARGET` of a period after a frame's capture (a
nudge of at most :data:`PHASE_STEP` per tick), so no source frame is skipped and none waits long.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["CATCH_UP_LIMIT", "PHASE_STEP", "PHASE_TARGET", "OutputClock", "Periodic"]

PHASE_TARGET = 0.3
"""Where in the frame period the output tick sits after a frame arrives (phase lock)."""
PHASE_STEP = 0.001
"""The largest nudge of one tick, in seconds."""
CATCH_UP_LIMIT = 1.0
"""Seconds behind schedule after which the clock restarts instead of catching up."""


class OutputClock:
    """Schedules the output ticks at ``fps`` (output thread only)."""

    def __init__(self, fps: float, now: float | None = None) -> None:
        self.fps = fps
        self.period = 1.0 / fps
        self.next_t = time.monotonic() if now is None else now

    def restart(self, now: float | None = None) -> None:
        """Tick now (after an idle spell)."""
        self.next_t = time.monotonic() if now is None else now

    def phase_lock(self, sched: float, t_capture: float, source_fps: float) -> None:
        """Nudge the schedule towards :data:`PHASE_TARGET` after the frame captured at
        ``t_capture``, shown at the tick scheduled for ``sched``; only when the source runs at the
        output's rate. Measured from the *scheduled* tick, so a late wake-up does not bias the
        rate: with a source at the same rate the nudges average to zero."""
        if not self.same_rate(source_fps):
            return
        period = self.period
        offset = sched - t_capture
        if -period < offset < 2 * period:
            err = offset - PHASE_TARGET * period
            self.next_t -= max(-PHASE_STEP, min(PHASE_STEP, 0.1 * err))

    def same_rate(self, source_fps: float) -> bool:
        """True when a source at ``source_fps`` runs at the output's rate (within 3 %): one new
        frame is due every tick."""
        return abs(source_fps - self.fps) < 0.03 * self.fps

    def advance(self, now: float) -> bool:
        """Schedule the next tick; True when this one ran late (more than half a period)."""
        self.next_t += self.period
        late = now - self.next_t > 0.5 * self.period
        if now - self.next_t > CATCH_UP_LIMIT:
            self.next_t = now  # hopelessly behind (suspended?): restart the clock
        return late

    def sleep(self, stopped: Callable[[], bool]) -> None:
        """Sleep until the next tick, waking every 50 ms to check ``stopped``."""
        while not stopped():
            remaining = self.next_t - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(remaining, 0.05))


class Periodic:
    """Something done every ``interval`` seconds on the output thread (0: never)."""

    def __init__(self, interval: float, now: float | None = None) -> None:
        self.interval = interval
        start = time.monotonic() if now is None else now
        self._next = start + interval if interval > 0 else float("inf")

    def due(self, now: float) -> float:
        """0 when not due; else the seconds since it was last done (and it is done now)."""
        if now < self._next:
            return 0.0
        elapsed = now - self._next + self.interval
        self._next = now + self.interval
        return elapsed
