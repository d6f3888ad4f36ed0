"""The quality governor: step quality down when the output cannot hold its rate, back up later.

The ladder, cheapest last, built from the user's ``[segment]`` settings:

1. as configured;
2. with ``segment.every = 0`` (automatic) only: segment every 2nd, then every 3rd frame (the
   temporal smoother carries the mask in between; the pipeline still segments every frame while
   the picture moves, see :mod:`bgcam.live.worker`);
3. a cheaper model: the landscape model instead of the square one, else the same model on
   onnxruntime instead of MediaPipe (faster); with ``segment.roi`` also whole frames (ROI's
   square crops run the general model, which costs more; figures in docs/BENCHMARKS.md);
4. the ``hsv`` segmenter (no neural network at all).

Every :data:`WINDOW` seconds the pipeline hands over the figures of the last window. *Overload* is
an output below 97 % of its rate, more than 5 % late ticks, more than 10 % of the source's frames
dropped (only when the source is not faster than the output), more than 20 % of new frames
without a fresh mask, or a segmentation thread busy more than 90 % of the time. Two overloaded
windows in a row step down one level. *Headroom* is no overload for :data:`UP_AFTER` seconds with
both threads under half busy; then one level up. The gap between the two thresholds and the
waiting time are the hysteresis that keeps it from oscillating. Each step is logged with its
reason. A level whose segmenter cannot be built here is skipped.

**Keyframes are not a step.** ``segment.max_skip`` propagates a frame only when nothing near the
person moves beyond the optical flow (:meth:`bgcam.refine.MaskRefiner.track`); raising it would
not loosen that gate, so under load from a moving picture, the only case the governor sees, it
would save nothing and only delay the steps that do. Still pictures already get the saving at
level 0, and the stage times (means over keyframes and propagated frames) carry it into the
busy figures the governor judges.

**What the segmenter cannot fix.** When a window is overloaded while the segmentation thread is
not the busy one, a cheaper model would not help: the governor logs what costs the output
thread its time instead (compositing and sending per frame against the frame budget), once per
such episode, so that a user sees it is the compositor (or the sink) and not the model. Every
compositor setting costs about the same since issue 12 (``bgcam bench --sweep``), so this points
at a machine that is busy with something else, or a slow sink. When the compositor itself is over
its budget, :mod:`bgcam.governor_compose` moves the blur to a smaller image (same look, cheaper).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from bgcam.config import Config, SegmentConfig
from bgcam.governor_compose import ComposeGovernor
from bgcam.stats import RunStats

log = logging.getLogger(__name__)

WINDOW = 2.0
UP_AFTER = 10.0
DOWN_WINDOWS = 2


@dataclass(frozen=True, slots=True)
class Level:
    every: int
    """Segment at most every Nth frame (0 = the user's fixed setting applies: see pipeline)."""
    segment: SegmentConfig
    label: str


def build_levels(seg: SegmentConfig) -> list[Level]:
    auto = seg.every == 0
    base_every = 1 if auto else seg.every
    levels = [Level(base_every, seg, "as configured")]
    if auto:
        levels += [
            Level(2, seg, "segment every 2nd frame"),
            Level(3, seg, "segment every 3rd frame"),
        ]
    every = levels[-1].every
    cheaper: SegmentConfig | None = None
    if seg.segmenter != "hsv":
        if seg.model == "general":
            cheaper = seg.model_copy(update={"model": "landscape"})
        elif seg.segmenter == "mediapipe" and not seg.model.endswith(".tflite"):
            cheaper = seg.model_copy(update={"segmenter": "onnx"})
        if seg.roi:  # ROI's square crops run the dearer general model
            cheaper = (cheaper or seg).model_copy(update={"roi": False})
    if cheaper is not None:
        roi = ", no ROI" if seg.roi and not cheaper.roi else ""
        levels.append(
            Level(every, cheaper, f"cheaper model ({cheaper.segmenter}, {cheaper.model}{roi})")
        )
    if seg.segmenter != "hsv":
        levels.append(Level(every, seg.model_copy(update={"segmenter": "hsv"}), "hsv segmenter"))
    return levels


class Governor:
    def __init__(
        self,
        seg: SegmentConfig,
        fps: float,
        *,
        enabled: bool = True,
        compose_budget_ms: float = 0.0,
    ) -> None:
        self.fps = fps
        self.enabled = enabled
        self.compose = ComposeGovernor(fps, compose_budget_ms, enabled=enabled)
        """The compositor's side: a cheaper blur of the same look when compositing is too dear."""
        self.levels = build_levels(seg)
        self.level = 0
        self._bad_windows = 0
        self._good_since = time.monotonic()
        self._unavailable: set[int] = set()
        self._told_costs = False

    @classmethod
    def of(cls, cfg: Config) -> Governor:
        """The governor of ``cfg``'s segmentation and output settings."""
        out = cfg.output
        return cls(
            cfg.segment, out.fps, enabled=out.governor, compose_budget_ms=out.compose_budget_ms
        )

    @property
    def current(self) -> Level:
        return self.levels[self.level]

    def overlay(self, cfg: Config) -> Config:
        """``cfg`` with the current level's segment settings (the one place they are applied)."""
        seg = self.current.segment
        return cfg if seg == cfg.segment else cfg.model_copy(update={"segment": seg})

    def every(self, seg: SegmentConfig) -> tuple[int, bool]:
        """Segment at most every Nth frame, and whether still frames may be skipped beyond that
        (``segment.every = 0``: automatic, the governor's level decides N)."""
        return (self.current.every, True) if seg.every == 0 else (seg.every, False)

    def reset(self, seg: SegmentConfig) -> None:
        """The user changed ``[segment]``: rebuild the ladder and start from the top."""
        self.levels = build_levels(seg)
        self.level = 0
        self._unavailable.clear()
        self._good_since = time.monotonic()

    def unavailable(self, index: int, reason: str) -> Level:
        """Level ``index`` cannot run here (its segmenter failed to build): skip it from now on.

        Returns the level to use instead (the next cheaper one, else the one before).
        """
        log.warning(
            "governor: %s is not available (%s); skipping it", self.levels[index].label, reason
        )
        self._unavailable.add(index)
        if self.level == index:
            nxt = self._next(index, +1)
            self.level = nxt if nxt is not None else (self._next(index, -1) or 0)
            log.info("governor: now at %s", self.current.label)
        return self.current

    def overload_reasons(self, w: RunStats, source_fps: float, seconds: float) -> list[str]:
        reasons = []
        ticks = w["frames_out"] + w["late_ticks"]
        if w["frames_out"] > 5 and w["fps_out"] < 0.97 * self.fps:
            reasons.append(f"output {w['fps_out']:.1f} of {self.fps:g} fps")
        if ticks and w["late_ticks"] > 0.05 * ticks:
            reasons.append(f"{w['late_ticks']} late ticks")
        seen = w["frames_new"] + w["frames_dropped"]
        if source_fps <= 1.05 * self.fps and seen and w["frames_dropped"] > 0.1 * seen:
            reasons.append(f"{w['frames_dropped']} of {seen} source frames dropped")
        if w["frames_new"] > 5 and w["frames_unmasked"] > 0.2 * w["frames_new"]:
            reasons.append(f"{w['frames_unmasked']} frames without a fresh mask")
        seg_busy = self._seg_busy(w, seconds)
        if seg_busy > 0.9:
            reasons.append(f"segmentation busy {seg_busy:.0%}")
        return reasons

    @staticmethod
    def _seg_busy(w: RunStats, seconds: float) -> float:
        st = w["stage_ms"]
        return float((st["segment"] + st["refine"]) * w["segmentations"] / 1000.0 / seconds)

    @staticmethod
    def _out_busy(w: RunStats, seconds: float) -> float:
        st = w["stage_ms"]
        return float(st["compose"] * w["frames_new"] + st["send"] * w["frames_out"]) / 1e3 / seconds

    def output_costs(self, w: RunStats, seconds: float) -> str | None:
        """When the output thread, not segmentation, is the busy one: what costs its time."""
        seg_busy, out_busy = self._seg_busy(w, seconds), self._out_busy(w, seconds)
        if seg_busy > 0.9 or out_busy < max(0.5, seg_busy):
            return None
        st = w["stage_ms"]
        budget = 1000.0 / self.fps
        return (
            f"the output thread is busy {out_busy:.0%} (compose {st['compose']:.1f} ms, "
            f"send {st['send']:.1f} ms per frame of a {budget:.1f} ms budget; segmentation "
            f"{seg_busy:.0%}): a cheaper segmenter cannot fix this"
        )

    def observe(self, w: RunStats, source_fps: float, seconds: float) -> Level | None:
        """Judge one window; return the new level when it changes, else None."""
        if not self.enabled:
            return None
        now = time.monotonic()
        reasons = self.overload_reasons(w, source_fps, seconds)
        costs = self.output_costs(w, seconds) if reasons else None
        if costs is not None:
            if not self._told_costs:
                log.warning(
                    "governor: cannot hold %g fps (%s): %s", self.fps, "; ".join(reasons), costs
                )
                self._told_costs = True
            return None
        self._told_costs = False
        if reasons:
            self._good_since = now
            self._bad_windows += 1
            if self._bad_windows >= DOWN_WINDOWS:
                self._bad_windows = 0
                nxt = self._next(self.level, +1)
                if nxt is not None:
                    self.level = nxt
                    log.warning(
                        "governor: cannot hold %g fps (%s): stepping down to %s",
                        self.fps,
                        "; ".join(reasons),
                        self.current.label,
                    )
                    return self.current
            return None
        self._bad_windows = 0
        if (
            self.level > 0
            and now - self._good_since >= UP_AFTER
            and self._seg_busy(w, seconds) < 0.5
            and self._out_busy(w, seconds) < 0.5
        ):
            nxt = self._next(self.level, -1)
            self._good_since = now
            if nxt is not None:
                self.level = nxt
                log.info("governor: headroom again: stepping up to %s", self.current.label)
                return self.current
        return None

    def _next(self, level: int, step: int) -> int | None:
        i = level + step
        while 0 <= i < len(self.levels):
            if i not in self._unavailable:
                return i
            i += step
        return None
