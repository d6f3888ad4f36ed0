"""Rate-limited logging: a failure that repeats is logged once, then as a count.

:class:`RateLimitFilter` sits on the daemon's log handler (``bgcam.cli.setup_logging`` installs
it), so it covers every log call, ours and the libraries' (uvicorn, asyncio): each call site
(logger, level, source line, message template) may write :data:`BURST` lines per
:data:`WINDOW` seconds; further lines from it are counted, not written, and the next line that
gets through says how many were held back::

    WARNING bgcam.control.socket: accept failed: [Errno 24] Too many open files
    ... (1,843 more like this were not logged in the last 10 s)

A traceback is shown with the first line of a window only. The table of call sites is bounded
(:data:`MAX_SITES`, least recently seen dropped first), so a flood of distinct messages cannot
grow it either. Repeats pass at most :data:`GLOBAL_PER_SECOND` a second in all; the first
line of each call site in a window always passes (the number of call sites is finite).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["BURST", "GLOBAL_PER_SECOND", "MAX_SITES", "WINDOW", "RateLimitFilter", "install"]

WINDOW = 10.0
"""Seconds of the per-call-site window."""
BURST = 10
"""Lines one call site may write per window."""
GLOBAL_PER_SECOND = 10
"""Lines all call sites together may write per second."""
MAX_SITES = 512


@dataclass(slots=True)
class _Site:
    start: float
    passed: int = 0
    held: int = 0


class RateLimitFilter(logging.Filter):
    """A :class:`logging.Filter` that holds back repeats; see the module docstring."""

    def __init__(
        self,
        window: float = WINDOW,
        burst: int = BURST,
        global_per_second: int = GLOBAL_PER_SECOND,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.window = window
        self.burst = burst
        self.global_per_second = global_per_second
        self._clock = clock
        self._sites: OrderedDict[tuple[object, ...], _Site] = OrderedDict()
        self._lock = threading.Lock()
        self._second = 0.0
        self._in_second = 0
        self.held_total = 0
        """Lines held back since start (for tests and status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, record.pathname, record.lineno, str(record.msg))
        now = self._clock()
        with self._lock:
            site = self._sites.get(key)
            if site is None or now - site.start >= self.window:
                held = site.held if site is not None else 0
                site = _Site(now)
                self._sites[key] = site
                if len(self._sites) > MAX_SITES:
                    self._sites.popitem(last=False)
            else:
                held = 0
            self._sites.move_to_end(key)
            # A site's first line in a window always passes (nothing new is ever lost); its
            # repeats count against the site's burst and against all sites' rate together.
            if site.passed >= self.burst or (site.passed and not self._global_ok(now)):
                site.held += 1
                self.held_total += 1
                return False
            site.passed += 1
            repeat = site.passed > 1
        if repeat and record.exc_info is not None:
            # The traceback was shown with the first line of this window: not again.
            record.exc_info = None
            record.exc_text = None
            record.msg = f"{record.msg} (traceback as above)"
        if held:
            record.msg = (
                f"{record.msg}\n... ({held:,} more like this were not logged "
                f"in the last {self.window:.0f} s)"
            )
        return True

    def _global_ok(self, now: float) -> bool:
        if now - self._second >= 1.0:
            self._second = now
            self._in_second = 0
        if self._in_second >= self.global_per_second:
            return False
        self._in_second += 1
        return True


def install(handler: logging.Handler) -> RateLimitFilter:
    """Put one :class:`RateLimitFilter` on ``handler`` (again: the one already there)."""
    for f in handler.filters:
        if isinstance(f, RateLimitFilter):
            return f
    limiter = RateLimitFilter()
    handler.addFilter(limiter)
    return limiter
