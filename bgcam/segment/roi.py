"""Region-of-interest segmentation: the model sees a tracked crop around the people.

The selfie models see the whole frame at 256x144 (landscape) or 256x256 (general): a person who
covers a third of the frame gets a third of the model's pixels. :class:`RoiSegmenter` wraps the
configured segmenter and feeds it a crop around everyone found in recent frames instead, then
places the crop's output into **full-frame coordinates** (a probability map at the refiner's
working size, zero outside the crop), so the temporal smoother, the guided filter and the
compositor downstream see one coordinate system whatever the crop was.

Per segmented frame (:class:`RoiTracker` decides, :class:`RoiSegmenter` runs):

- **Box.** The union of every person pixel (model output ≥ 0.5) of the last frame, widened on
  each side by ``segment.roi_margin`` x its larger side, clipped to the frame.
- **Smoothing.** A side that must move outwards does so at once (nobody is cut off); a side
  that may move inwards does so only when it is more than half a margin too wide, by
  :data:`SHRINK_RATE` of the distance per frame: the box does not jitter with the model's noise
  (a jittering crop would show as flicker). Where the person touches the crop's border (and
  that border is not the frame's), that side grows by a second margin at once.
- **No back-and-forth between shapes.** A box right at a shape's limit can alternate every
  frame: the whole frame's mask gives a box that just fits a square crop, the square model then
  sees the person (or a bystander) reach the crop's border, and the grown box no longer fits.
  The two models' masks differ, so that alternation is flicker (a still DAVIS scene: 22e-3 mean
  alpha change). When the output's shape goes A, B, A, B, A, the larger of the two is held for
  :data:`HOLD_FIRST` frames, twice as long each time it happens again (up to :data:`HOLD_MAX`).
  A hold only ever keeps a *larger* crop: a box that outgrows it still gets the larger shape.
- **Full-frame pass.** Every ``segment.roi_full_every`` segmented frames the whole frame is also
  segmented (the configured model, exactly as without ROI); person pixels found *outside* the
  crop are taken into the output there and the box grows at once to cover them. So someone who
  enters at the frame's edge is found within that many frames (15 = 0.5 s at 30 fps) and shown
  from then on.
- **Lost / nobody.** When the crop holds no person pixel the box is dropped; with no box, every
  frame is segmented whole (exactly as without ROI; fail-closed handling is downstream and
  unchanged). When a whole frame finds someone, their crop is segmented in the same frame (a
  second model run, only then), so the output never switches from the whole-frame mask to the
  crop's a frame later.

**Which model, which crop shape** (:func:`crop_for`). The two selfie models give the same
network different inputs: general 256x256, landscape 256x144. Model pixels landing on a box of
aspect a = w/h (≥ 1) are 65536/a for a square crop and 36864·a/1.78 for a 16:9 crop: the square
model puts more of its pixels on the person for every box narrower than 16:9, and measured on
davis-dev (raw model, crop from the previous frame's mask) the general model on a square crop
reaches J 0.76 where the landscape model on a 16:9 crop of the same box reaches 0.69 and on the
whole frame 0.67 (docs/BENCHMARKS.md). So: a **square crop and the general model** whenever the
square fits in the frame (side = the box's larger side, at least :data:`MIN_SIDE` of the frame
height); otherwise a crop of the landscape model's aspect, and the **whole frame** (exactly
today's path, bit for bit up to float rounding) once that crop would span more than
:data:`WHOLE_SHARE` of the frame's width. Close head-and-shoulder framing therefore runs as
without ROI. A custom model file (``segment.model = path``) is used for every crop, at its own
input's aspect.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import cv2
import numpy as np

from bgcam.config import RefineConfig, SegmentConfig
from bgcam.frame import Mask, ShrunkFrame
from bgcam.refine import work_size
from bgcam.segment import Segmenter

log = logging.getLogger(__name__)

Box = tuple[int, int, int, int]
"""x0, y0, x1, y1 in frame pixels (x1, y1 exclusive)."""

PERSON_LEVEL = 0.5
"""Model output at or above which a pixel counts as person for the box."""
MIN_SIDE = 0.3
"""A crop's shorter side is at least this share of the frame's height (the model needs some
context around a small person)."""
WHOLE_SHARE = 0.85
"""A crop wider than this share of the frame is replaced by the whole frame (no gain to speak of,
and the whole-frame path is exactly today's)."""
SHRINK_RATE = 0.15
"""Share of the remaining distance a too-wide side moves inwards per segmented frame."""
GROW_SLACK = 0.1
"""A side grows only when the people come closer to it than (1 − this) x the margin: the
model's noise at the silhouette's extremes must not nudge the crop by a pixel now and then."""
ALTERNATION = 5
"""Frames of strict alternation (A, B, A, B, A) that start a hold. A single excursion (A, B, A)
is common while someone moves (davis-dev: a one-frame whole-frame pass in dance-twirl); holding
on it cost J 0.747 → 0.693 there."""
HOLD_FIRST = 90
"""Segmented frames a larger crop shape is held after the shape went back and forth (3 s)."""
HOLD_MAX = 900
"""The hold doubles each time the back-and-forth comes back, up to this many frames (30 s)."""
HOLD_FORGET = 900
"""After this many frames without a back-and-forth, the hold starts again from HOLD_FIRST."""
MIN_OUTSIDE = 0.002
"""Person pixels outside the crop in a full-frame pass count (a newcomer) only above this share
of the frame: a speck of false positive does not grow the box."""

SQUARE, WIDE, WHOLE = "square", "wide", "whole"
SIZE_ORDER = {SQUARE: 0, WIDE: 1, WHOLE: 2}


@dataclass(frozen=True, slots=True)
class Plan:
    """What to segment this frame: ``crop`` (None: the whole frame only) with the model for
    ``shape`` (square, wide or whole), and whether the whole frame is segmented too."""

    crop: Box | None
    shape: str
    full: bool


def crop_for(
    box: tuple[float, float, float, float],
    frame_size: tuple[int, int],
    wide_aspect: float,
    *,
    square: bool = True,
    wide: bool = True,
) -> tuple[Box | None, str]:
    """The crop for ``box`` and its shape (:data:`SQUARE`, :data:`WIDE` or :data:`WHOLE`).

    A square crop (side = the box's larger side, at least MIN_SIDE x frame height) when
    ``square`` models are available and it fits in the frame; else a crop of ``wide_aspect``
    (width / height) covering the box; the whole frame when that is wider than WHOLE_SHARE
    of the frame or does not fit. Crops are centred on the box and moved inside the frame.

    No hysteresis between the shapes: measured on davis-dev, requiring a smaller shape to fit
    with 10 % to spare before switching to it lost J 0.761 → 0.744 (fewer square crops) for no
    gain in T (0.0186 both).
    """
    fw, fh = frame_size

    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    least = MIN_SIDE * fh
    if square:
        side = math.ceil(max(bw, bh, least))
        if side <= min(fw, fh):
            return _placed(cx, cy, side, side, frame_size), SQUARE
    if not wide:
        return None, WHOLE
    cw = max(bw, bh * wide_aspect, least * wide_aspect)
    ch = cw / wide_aspect
    if cw > WHOLE_SHARE * fw or ch > fh:
        return None, WHOLE
    return _placed(cx, cy, math.ceil(cw), min(fh, math.ceil(ch)), frame_size), WIDE


def _placed(cx: float, cy: float, w: int, h: int, frame_size: tuple[int, int]) -> Box:
    fw, fh = frame_size
    x0 = min(max(0, round(cx - w / 2)), fw - w)
    y0 = min(max(0, round(cy - h / 2)), fh - h)
    return x0, y0, x0 + w, y0 + h


class RoiTracker:
    """The box around the people, updated from each frame's model output (no model inside).

    ``plan()`` says what to segment; ``observe(...)`` takes what was found (boxes in frame
    pixels, floats). ``box`` is the smoothed box (None: nobody found, whole frames).
    """

    def __init__(
        self,
        frame_size: tuple[int, int],
        margin: float,
        full_every: int,
        *,
        wide_aspect: float = 256 / 144,
        square: bool = True,
        wide: bool = True,
    ) -> None:
        self.frame_size = (int(frame_size[0]), int(frame_size[1]))
        self.margin = float(margin)
        self.full_every = max(1, int(full_every))
        self.wide_aspect = float(wide_aspect)
        self.square = square
        self.wide = wide
        self.box: tuple[float, float, float, float] | None = None
        self._since_full = 0
        self._shapes: list[str] = []
        """The output's last ALTERNATION shapes, oldest first."""
        self.held: str | None = None
        """The smallest shape allowed while a hold lasts (None: no hold)."""
        self._hold_left = 0
        self._hold_len = 0
        self._calm = 0

    def reset(self) -> None:
        self.box = None
        self._since_full = 0
        self._shapes.clear()
        self.held, self._hold_left, self._hold_len, self._calm = None, 0, 0, 0

    def plan(self) -> Plan:
        if self.box is None:
            return Plan(None, WHOLE, True)
        held = self.held
        crop, shape = crop_for(
            self.box,
            self.frame_size,
            self.wide_aspect,
            square=self.square and held is None,
            wide=self.wide and held != WHOLE,
        )
        if crop is None:
            return Plan(None, WHOLE, True)
        return Plan(crop, shape, self._since_full + 1 >= self.full_every)

    def settle(self, shape: str) -> None:
        """Record the shape this frame's output was made with; start or end a hold."""
        shapes = self._shapes
        shapes.append(shape)
        del shapes[:-ALTERNATION]
        if self._hold_left > 0:
            self._hold_left -= 1
            if self._hold_left == 0:
                log.debug("roi: %s hold over", self.held)
                self.held = None
        self._calm += 1
        if self._calm >= HOLD_FORGET:
            self._hold_len = 0
        if len(shapes) == ALTERNATION and alternates(shapes):
            pair = sorted(shapes[-2:], key=SIZE_ORDER.__getitem__)
            self._hold_len = min(HOLD_MAX, 2 * self._hold_len or HOLD_FIRST)
            self.held, self._hold_left, self._calm = pair[1], self._hold_len, 0
            shapes.clear()
            log.debug(
                "roi: %s crops went back and forth; %s held for %d frames", *pair, self._hold_len
            )

    def observe(
        self,
        plan: Plan,
        found: tuple[float, float, float, float] | None,
        touches: tuple[bool, bool, bool, bool] = (False, False, False, False),
        outside: tuple[float, float, float, float] | None = None,
    ) -> None:
        """Update from one segmented frame.

        ``found``: the extent of the person pixels in what was segmented for the output (the
        crop, or the whole frame without one); ``touches``: which crop sides (left, top, right,
        bottom) the person pixels reach; ``outside``: the extent of person pixels a full-frame
        pass found outside the crop (newcomers), or None.
        """
        self._since_full = 0 if plan.full else self._since_full + 1
        if found is None and outside is None:
            if self.box is not None:
                log.debug("roi: nobody in the crop; whole frames until someone is found")
            self.box = None
            return
        ext = _union(found, outside)
        target = list(self._widened(ext))
        if found is not None and plan.crop is not None:
            extra = self.margin * max(ext[2] - ext[0], ext[3] - ext[1])
            for side, touched in enumerate(touches):
                if touched:
                    target[side] += extra if side >= 2 else -extra
        fw, fh = self.frame_size
        target = [max(0.0, target[0]), max(0.0, target[1]), min(fw, target[2]), min(fh, target[3])]
        if self.box is None:
            self.box = (target[0], target[1], target[2], target[3])
            return
        box = list(self.box)
        margin = self.margin * max(box[2] - box[0], box[3] - box[1])
        dead, slack = 0.5 * margin, GROW_SLACK * margin
        for side in range(4):
            inward = target[side] - box[side] if side < 2 else box[side] - target[side]
            if inward < -slack:  # the target is outside the box: grow at once
                box[side] = target[side]
            elif inward > dead:
                step = SHRINK_RATE * (inward - dead)
                box[side] += step if side < 2 else -step
        self.box = (box[0], box[1], box[2], box[3])

    def _widened(self, ext: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        x0, y0, x1, y1 = ext
        m = self.margin * max(x1 - x0, y1 - y0)
        return x0 - m, y0 - m, x1 + m, y1 + m


def alternates(shapes: list[str]) -> bool:
    """True when ``shapes`` (oldest first) switches between two shapes at every frame."""
    a, b = shapes[0], shapes[1]
    return a != b and all(x == (a if i % 2 == 0 else b) for i, x in enumerate(shapes))


def _union(
    a: tuple[float, float, float, float] | None, b: tuple[float, float, float, float] | None
) -> tuple[float, float, float, float]:
    if a is None:
        assert b is not None
        return b
    if b is None:
        return a
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


class _Extent:
    """Bounding box of the person pixels of a low-resolution mask (no allocation per call)."""

    def __init__(self) -> None:
        self._size: tuple[int, int] = (0, 0)
        self._cols = np.empty((1, 1), np.float32)
        self._rows = np.empty((1, 1), np.float32)
        self._cb = np.empty(1, np.bool_)
        self._rb = np.empty(1, np.bool_)

    def __call__(self, mask: Mask) -> tuple[int, int, int, int] | None:
        """(c0, r0, c1, r1) inclusive of the pixels ≥ PERSON_LEVEL, or None."""
        h, w = mask.shape
        if self._size != (w, h):
            self._size = (w, h)
            self._cols = np.empty((1, w), np.float32)
            self._rows = np.empty((h, 1), np.float32)
            self._cb = np.empty(w, np.bool_)
            self._rb = np.empty(h, np.bool_)
        cv2.reduce(mask, 0, cv2.REDUCE_MAX, dst=self._cols)
        cv2.reduce(mask, 1, cv2.REDUCE_MAX, dst=self._rows)
        cb, rb = self._cb, self._rb
        np.greater_equal(self._cols[0], PERSON_LEVEL, out=cb)
        c0 = int(cb.argmax())
        if not cb[c0]:
            return None
        np.greater_equal(self._rows[:, 0], PERSON_LEVEL, out=rb)
        r0 = int(rb.argmax())
        c1 = w - 1 - int(cb[::-1].argmax())
        r1 = h - 1 - int(rb[::-1].argmax())
        return c0, r0, c1, r1


class RoiSegmenter:
    """A segmenter that runs its models on a tracked crop (see the module docstring).

    ``segment(frame)`` returns the person probability in full-frame coordinates at the size of
    ``frame.small`` (the frame shrunk to the refiner's working size, so nothing is resampled
    twice), or at the default refiner's working size without it.
    ``crop`` / ``shape`` tell what the last frame's crop was (None / "whole": the whole frame);
    :meth:`status` says it for ``bgcam status``.
    """

    def __init__(
        self,
        whole: Segmenter,
        crops: dict[str, Segmenter],
        cfg: SegmentConfig,
        frame_size: tuple[int, int],
    ) -> None:
        self._whole = whole
        self._crops = crops
        self.name: str = self._whole.name
        self.frame_size = (int(frame_size[0]), int(frame_size[1]))
        self.canvas_size = work_size(self.frame_size, RefineConfig().work_height)
        wide = self._crops.get(WIDE)
        size = getattr(wide, "input_size", (256, 144))
        self.tracker = RoiTracker(
            self.frame_size,
            cfg.roi_margin,
            cfg.roi_full_every,
            wide_aspect=size[0] / size[1],
            square=SQUARE in self._crops,
            wide=WIDE in self._crops,
        )
        cw, ch = self.canvas_size
        self._canvas: Mask = np.zeros((ch, cw), np.float32)
        self._outside: Mask = np.zeros((1, 1), np.float32)
        self._extent = _Extent()
        self._m = np.zeros((2, 3), np.float64)
        self.crop: Box | None = None
        """The last frame's crop in frame pixels (None: the whole frame)."""
        self.shape: str = WHOLE
        """The last crop's shape: square (general model), wide (landscape) or whole."""

    def segment(self, frame: ShrunkFrame) -> Mask:
        image, small = frame.image, frame.small
        if small is not None and small.shape[:2] != self._canvas.shape:
            h, w = small.shape[:2]
            self.canvas_size = (w, h)  # the refiner's working size (changes with its config)
            self._canvas = np.zeros((h, w), np.float32)
        plan = self.tracker.plan()
        canvas = self._canvas
        outside = found = None
        fw, fh = self.frame_size
        if plan.crop is None or plan.full:
            low = self._whole.segment(frame)
            cv2.resize(low, self.canvas_size, dst=canvas, interpolation=cv2.INTER_LINEAR)
            if plan.crop is None:
                found = self._frame_box(self._extent(low), low.shape, (0, 0, fw, fh))
                self.tracker.observe(plan, found)
                # Someone found: segment their crop in this very frame, so the output does not
                # switch from the whole-frame mask to the crop's one frame later (on a still
                # scene that switch alone was a 0.013 mean alpha change).
                plan = self.tracker.plan()
                if plan.crop is None:
                    self.crop, self.shape = None, WHOLE
                    self.tracker.settle(WHOLE)
                    return canvas
                plan = Plan(plan.crop, plan.shape, True)
            else:
                outside = self._outside_box(low, plan.crop)
        else:
            canvas.fill(0.0)
        touches = (False, False, False, False)
        if plan.crop is not None:
            x0, y0, x1, y1 = plan.crop
            crop = image[y0:y1, x0:x1]
            # The crop given as its own "shrunk copy" too: a segmenter's Shrinker then takes one
            # bilinear pass for a crop up to twice its input (0.16 ms for 520 → 256 px here)
            # instead of INTER_AREA at a fractional ratio (1.36 ms), two passes above that.
            low = self._crops[plan.shape].segment(ShrunkFrame(crop, crop))
            self._place(low, plan.crop)
            ext = self._extent(low)
            found = self._frame_box(ext, low.shape, plan.crop)
            if ext is not None:
                h, w = low.shape
                touches = (
                    ext[0] == 0 and x0 > 0,
                    ext[1] == 0 and y0 > 0,
                    ext[2] == w - 1 and x1 < fw,
                    ext[3] == h - 1 and y1 < fh,
                )
        self.tracker.observe(plan, found, touches, outside)
        self.crop, self.shape = plan.crop, plan.shape
        self.tracker.settle(plan.shape)
        return canvas

    @staticmethod
    def _frame_box(
        ext: tuple[int, int, int, int] | None, shape: tuple[int, ...], crop: Box
    ) -> tuple[float, float, float, float] | None:
        """A low-resolution extent (inclusive pixels) in frame pixels of ``crop``."""
        if ext is None:
            return None
        h, w = shape[:2]
        x0, y0, x1, y1 = crop
        kx, ky = (x1 - x0) / w, (y1 - y0) / h
        return x0 + ext[0] * kx, y0 + ext[1] * ky, x0 + (ext[2] + 1) * kx, y0 + (ext[3] + 1) * ky

    def _outside_box(self, low: Mask, crop: Box) -> tuple[float, float, float, float] | None:
        """Extent (frame pixels) of the person pixels of a whole-frame ``low`` outside ``crop``,
        when there are enough of them to be someone."""
        h, w = low.shape
        if self._outside.shape != (h, w):
            self._outside = np.empty((h, w), np.float32)
        out = self._outside
        np.copyto(out, low)
        fw, fh = self.frame_size
        x0, y0, x1, y1 = crop
        c0, c1 = math.floor(x0 * w / fw), math.ceil(x1 * w / fw)
        r0, r1 = math.floor(y0 * h / fh), math.ceil(y1 * h / fh)
        out[r0:r1, c0:c1] = 0.0
        cv2.threshold(out, PERSON_LEVEL, 1.0, cv2.THRESH_BINARY, dst=out)
        if cv2.countNonZero(out) < MIN_OUTSIDE * out.size:
            return None
        return self._frame_box(self._extent(out), low.shape, (0, 0, fw, fh))

    def _place(self, low: Mask, crop: Box) -> None:
        """Write ``low`` (the model output for ``crop``) into the canvas pixels whose centres
        lie inside the crop, sampled (bilinear) at their exact frame positions."""
        fw, fh = self.frame_size
        cw, ch = self.canvas_size
        sx, sy = cw / fw, ch / fh
        x0, y0, x1, y1 = crop
        c0 = max(0, math.ceil(x0 * sx - 0.5))
        c1 = min(cw, math.floor(x1 * sx - 0.5) + 1)
        r0 = max(0, math.ceil(y0 * sy - 0.5))
        r1 = min(ch, math.floor(y1 * sy - 0.5) + 1)
        if c1 <= c0 or r1 <= r0:
            return
        h, w = low.shape
        kx, ky = (x1 - x0) / w, (y1 - y0) / h
        # Model pixel u (centre u + 0.5) sits at frame x0 + (u + 0.5) kx, canvas x·sx − 0.5:
        # canvas column X = u·kx·sx + (x0 + 0.5 kx)·sx − 0.5, shifted by the view's origin c0.
        m = self._m
        m[0, 0] = kx * sx
        m[0, 2] = (x0 + 0.5 * kx) * sx - 0.5 - c0
        m[1, 1] = ky * sy
        m[1, 2] = (y0 + 0.5 * ky) * sy - 0.5 - r0
        view = self._canvas[r0:r1, c0:c1]
        cv2.warpAffine(
            low,
            m,
            (c1 - c0, r1 - r0),
            dst=view,
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )

    @property
    def provider(self) -> str | None:
        """The inner segmenter's runtime provider (onnx), for ``bgcam doctor``."""
        provider: str | None = getattr(self._whole, "provider", None)
        return provider

    def status(self) -> dict[str, object]:
        """The current crop for ``bgcam status``: box [x0, y0, x1, y1] (None: whole frame)."""
        box = self.tracker.box
        return {
            "crop": None if self.crop is None else list(self.crop),
            "shape": self.shape,
            "people": None if box is None else [round(v) for v in box],
        }

    def reset(self) -> None:
        self.tracker.reset()

    def close(self) -> None:
        seen: set[int] = set()
        for seg in (self._whole, *self._crops.values()):
            if id(seg) not in seen:
                seen.add(id(seg))
                seg.close()
