"""The governor's compositor side: a cheaper path of the same look when compositing is too dear.

The segmenter ladder (:mod:`bgcam.governor`) cannot help when the compositor itself costs the
output thread its frames. :class:`ComposeGovernor` watches the compositor's cost per frame in
each window against its budget (``output.compose_budget_ms``; 0 = half the frame interval):
over it, the blur moves one power of two below its working size
(:meth:`bgcam.compose.Compositor.economise`): the same kind and strength of blur on a smaller
image, upsampled as before, so the picture keeps its look while the work shrinks. Each step is
logged once, in plain words. When no smaller working size exists, that is logged once too.

Back up one step when the cost, scaled by what the last step down saved, would fit in
:data:`UP_SHARE` of the budget for :data:`UP_AFTER` seconds. A user's settings change keeps the
level (the compositor builds the new blur at it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from bgcam.stats import RunStats

log = logging.getLogger(__name__)

UP_AFTER = 10.0
"""Seconds of headroom before stepping back up."""
UP_SHARE = 0.7
"""Step back up only when the finer path's estimated cost is below this share of the budget."""
MAX_LEVEL = 3
"""At most 2 ** 3 = 8 times less resolution than planned."""


class ComposeGovernor:
    """Decides the compositor's economy level (0 = as planned) from each window's figures."""

    def __init__(
        self,
        fps: float,
        budget_ms: float = 0.0,
        *,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.enabled = enabled
        self._clock = clock
        self.budget_ms = budget_ms if budget_ms > 0 else 0.5 * 1000.0 / fps
        self.level = 0
        self._ceiling = MAX_LEVEL
        self._saved: list[float] = []
        """Per step down: the cost before it over the cost after it (≥ 1)."""
        self._before = 0.0
        self._good_since = clock()

    def observe(self, w: RunStats) -> int | None:
        """Judge one window's compositor cost; the new economy level when it changes."""
        cost = float(w["stage_ms"]["compose"])
        if not self.enabled or w["frames_new"] < 3 or cost <= 0:
            return None
        now = self._clock()
        if len(self._saved) < self.level:  # the first window after a step down: what it saved
            self._saved.append(max(1.0, self._before / cost))
        if cost > self.budget_ms:
            self._good_since = now
            if self.level >= self._ceiling:
                return None
            self._before = cost
            self.level += 1
            return self.level
        finer = cost * (self._saved[-1] if self._saved else 1.0)
        if (
            self.level > 0
            and now - self._good_since >= UP_AFTER
            and finer < UP_SHARE * self.budget_ms
        ):
            self._good_since = now
            self.level -= 1
            del self._saved[self.level :]
            return self.level
        if finer >= UP_SHARE * self.budget_ms:
            self._good_since = now
        return None

    def stepped(self, level: int, what: str | None, cost_ms: float) -> None:
        """The compositor's answer to level ``level``: what its blur does now (None: no
        coarser path exists, the level stays where it was)."""
        if what is None:
            self._ceiling = self.level = level - 1
            del self._saved[self.level :]
            log.warning(
                "governor: compositing takes %.1f ms per frame, over its %.3g ms budget, and the "
                "blur is already as small as it gets; frames may be late",
                cost_ms,
                self.budget_ms,
            )
            return
        if level > 0 and cost_ms > self.budget_ms:
            log.warning(
                "governor: compositing takes %.1f ms per frame, over its %.3g ms budget: same "
                "look, cheaper: %s",
                cost_ms,
                self.budget_ms,
                what,
            )
        else:
            log.info("governor: headroom for compositing again: %s", what)

    def reset(self) -> None:
        """A new compositor (another backend): back to the plan, ceiling unknown again."""
        self.level, self._ceiling = 0, MAX_LEVEL
        self._saved.clear()
