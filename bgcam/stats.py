"""What the live pipeline measures: rates, latency percentiles, repeats, drops, stage times, CPU.

Several views of the same counters: *windows* (since the last stats line, logged every
``log.stats_interval`` seconds; since the quality governor last looked) and the *run* (since the
pipeline started running, written by ``--stats-json``). Latencies (and the output's waits for a
frame's own matte) go into fixed histograms (0.25 ms bins up to 2 s), so percentiles cost no
allocation and no sorting however long the daemon runs.

``cpu_percent`` is the process's user+system CPU time over wall time, in percent of one core (two
busy cores = 200).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, TypedDict

import numpy as np
import numpy.typing as npt

STAGES = ("segment", "refine", "studio", "compose", "send")
WINDOWS = ("log", "gov")
"""Independent windows: the stats log line and the quality governor each take their own."""
BIN_MS = 0.25
MAX_MS = 2000.0

if sys.version_info >= (3, 11):
    from typing import NotRequired
else:  # pragma: no cover - exercised on Python 3.10 only
    from typing_extensions import NotRequired


class StageMs(TypedDict):
    """Mean milliseconds per call of each stage (0 when it did not run)."""

    segment: float
    refine: float
    studio: float
    compose: float
    send: float


class RunStats(TypedDict):
    """The figures of a window or of the whole run: the one declaration of the stats keys.

    ``--stats-json``, ``bgcam status``, the web panel, the quality governor and the stats log
    line all read these; the JSON forms are this dict as it is.
    """

    seconds: float
    fps_out: float
    fps_in: float
    """Frames the source delivered per second, the dropped ones included."""
    latency_ms_p50: float
    latency_ms_p99: float
    latency_ms_max: float
    cpu_percent: float
    frames_out: int
    frames_new: int
    """Output frames made from a new source frame."""
    frames_repeated: int
    """Output ticks that sent the last frame again (no new source frame)."""
    frames_dropped: int
    """Source frames replaced by a newer one before the output took them."""
    frames_placeholder: int
    frames_unmasked: int
    late_ticks: int
    mattes_own: int
    """New frames composed with the matte of that very frame (the edge where the person is)."""
    mattes_older: int
    """New frames composed with a matte of another (earlier) frame: its edge trails motion."""
    matte_waits: int
    """New frames whose tick waited for their own matte (it was being made)."""
    matte_wait_ms_p50: float
    matte_wait_ms_max: float
    """How long those ticks waited (the latency the exact edge costs)."""
    segmentations: int
    """Mattes made (keyframes and propagated frames; the stage times are means over them)."""
    keyframes: int
    """Mattes the model ran for."""
    propagated: int
    """Mattes carried from the last one along the optical flow, without the model
    (``segment.max_skip``)."""
    segment_errors: int
    stage_ms: StageMs
    sink: NotRequired[dict[str, Any]]
    """The sink's own figures, at the end of a run where it has them (the PipeWire camera)."""


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


class LatencyHistogram:
    """Counts of latencies in :data:`BIN_MS` bins; the last bin holds everything longer."""

    def __init__(self) -> None:
        self.counts: npt.NDArray[np.int64] = np.zeros(int(MAX_MS / BIN_MS) + 1, np.int64)
        self.n = 0
        self.max_ms = 0.0

    def add(self, ms: float) -> None:
        self.counts[min(int(ms / BIN_MS), self.counts.size - 1)] += 1
        self.n += 1
        self.max_ms = max(self.max_ms, ms)

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile in ms (upper edge of its bin); 0 when empty."""
        if self.n == 0:
            return 0.0
        rank = q / 100.0 * self.n
        idx = int(np.searchsorted(np.cumsum(self.counts), max(rank, 1)))
        return min((idx + 1) * BIN_MS, self.max_ms) if idx < self.counts.size - 1 else self.max_ms

    def reset(self) -> None:
        self.counts[:] = 0
        self.n = 0
        self.max_ms = 0.0


@dataclass
class Counters:
    frames_in: int = 0
    """Source frames that reached the output thread."""
    frames_out: int = 0
    frames_new: int = 0
    frames_repeated: int = 0
    frames_dropped: int = 0
    """Source frames that were replaced before the output thread took them."""
    frames_placeholder: int = 0
    frames_unmasked: int = 0
    """New frames composed without a usable mask (blurred whole: fail closed)."""
    late_ticks: int = 0
    mattes_own: int = 0
    mattes_older: int = 0
    segmentations: int = 0
    keyframes: int = 0
    segment_errors: int = 0
    stage_ms: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    stage_n: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STAGES, 0))
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    matte_wait: LatencyHistogram = field(default_factory=LatencyHistogram)
    t0: float = field(default_factory=time.monotonic)
    cpu0: float = field(default_factory=_cpu_seconds)
    t_first_out: float | None = None
    t_last_out: float | None = None


class Stats:
    """Thread-safe counters for the run and the current window."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.run = Counters()
        self.windows: dict[str, Counters] = {name: Counters() for name in WINDOWS}

    def restart(self) -> None:
        """Start counting now (when the pipeline starts running, after models are loaded)."""
        with self._lock:
            self.run = Counters()
            self.windows = {name: Counters() for name in WINDOWS}

    def _both(self) -> tuple[Counters, ...]:
        return (self.run, *self.windows.values())

    def frame_out(
        self,
        *,
        new: bool,
        latency_ms: float | None = None,
        dropped: int = 0,
        placeholder: bool = False,
        unmasked: bool = False,
    ) -> None:
        now = time.monotonic()
        with self._lock:
            for c in self._both():
                c.frames_out += 1
                if c.t_first_out is None:
                    c.t_first_out = now
                c.t_last_out = now
                if new:
                    c.frames_new += 1
                    c.frames_in += 1
                    c.frames_dropped += dropped
                    c.frames_unmasked += unmasked
                    if latency_ms is not None:
                        c.latency.add(latency_ms)
                elif placeholder:
                    c.frames_placeholder += 1
                else:
                    c.frames_repeated += 1

    def late(self) -> None:
        with self._lock:
            for c in self._both():
                c.late_ticks += 1

    def matte(self, *, own: bool | None, wait_ms: float | None) -> None:
        """A new frame composed with its ``own`` matte (False: an older one; None: no usable
        one), after waiting ``wait_ms`` for it (None: nothing to wait for)."""
        with self._lock:
            for c in self._both():
                if own is not None:
                    c.mattes_own += own
                    c.mattes_older += not own
                if wait_ms is not None:
                    c.matte_wait.add(wait_ms)

    def stage(self, name: str, ms: float) -> None:
        with self._lock:
            for c in self._both():
                c.stage_ms[name] += ms
                c.stage_n[name] += 1

    def segmented(self, *, error: bool = False, keyframe: bool = True) -> None:
        """One matte made (``keyframe``: by the model), or a failure (``error``)."""
        with self._lock:
            for c in self._both():
                if error:
                    c.segment_errors += 1
                else:
                    c.segmentations += 1
                    c.keyframes += keyframe

    def take_window(self, name: str) -> RunStats:
        """The figures of window ``name`` ("log" or "gov"); starts a new one."""
        with self._lock:
            w, self.windows[name] = self.windows[name], Counters()
        return summarize(w)

    def summary(self) -> RunStats:
        with self._lock:
            return summarize(self.run)


def summarize(c: Counters) -> RunStats:
    now = time.monotonic()
    wall = max(now - c.t0, 1e-6)
    if c.t_first_out is not None and c.t_last_out is not None and c.frames_out > 1:
        fps_out = (c.frames_out - 1) / max(c.t_last_out - c.t_first_out, 1e-6)
    else:
        fps_out = 0.0

    def mean(name: str) -> float:
        n = c.stage_n[name]
        return round(c.stage_ms[name] / n, 2) if n else 0.0

    stage = StageMs(
        segment=mean("segment"),
        refine=mean("refine"),
        studio=mean("studio"),
        compose=mean("compose"),
        send=mean("send"),
    )
    return {
        "seconds": round(wall, 2),
        "fps_out": round(fps_out, 2),
        "fps_in": round((c.frames_in + c.frames_dropped) / wall, 2),
        "latency_ms_p50": round(c.latency.percentile(50), 2),
        "latency_ms_p99": round(c.latency.percentile(99), 2),
        "latency_ms_max": round(c.latency.max_ms, 2),
        "cpu_percent": round((_cpu_seconds() - c.cpu0) / wall * 100.0, 1),
        "frames_out": c.frames_out,
        "frames_new": c.frames_new,
        "frames_repeated": c.frames_repeated,
        "frames_dropped": c.frames_dropped,
        "frames_placeholder": c.frames_placeholder,
        "frames_unmasked": c.frames_unmasked,
        "late_ticks": c.late_ticks,
        "mattes_own": c.mattes_own,
        "mattes_older": c.mattes_older,
        "matte_waits": c.matte_wait.n,
        "matte_wait_ms_p50": round(c.matte_wait.percentile(50), 2),
        "matte_wait_ms_max": round(c.matte_wait.max_ms, 2),
        "segmentations": c.segmentations,
        "keyframes": c.keyframes,
        "propagated": c.segmentations - c.keyframes,
        "segment_errors": c.segment_errors,
        "stage_ms": stage,
    }


def format_line(s: RunStats) -> str:
    """One log line from a summary."""
    st = s["stage_ms"]
    return (
        f"out {s['fps_out']:.1f} fps (in {s['fps_in']:.1f}), latency p50 {s['latency_ms_p50']:.0f}"
        f" / p99 {s['latency_ms_p99']:.0f} ms, repeated {s['frames_repeated']}, dropped "
        f"{s['frames_dropped']}, unmasked {s['frames_unmasked']}, cpu {s['cpu_percent']:.0f}% | "
        f"segment {st['segment']:.1f} refine {st['refine']:.1f} "
        + (f"studio {st['studio']:.1f} " if st.get("studio") else "")
        + f"compose {st['compose']:.1f} send {st['send']:.1f} ms"
    )
