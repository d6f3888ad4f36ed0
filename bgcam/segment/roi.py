"""Region-of-interest segmentation: the model sees a tracked crop around the people.

The selfie models see the whole frame at 256x144 (landscape) or 256x256 (general): a person who
covers a third of the frame gets a third of the model's pixels. :class:`RoiSegmenter` wraps the
configured segmenter and feeds it a crop around everyone found in recent frames instead, then
places the crop's output into **full-frame coordinates** (a probability map at the refiner's
working size, zero outside the crop), so the temporal smoother, the guided filter and the
compositor downstream see one coordinate system whatever the crop was.

Per segmented frame (:class:`RoiTracker` decides, :class:`RoiSegmenter` runs; the tracker, the
crop rule and the constants named below live in :mod:`bgcam.segment.roibox`):

- **Box.** The union of every person pixel (model output ≥ 0.5) of the last frame, widened on
  each side by ``segment.roi_margin`` x its larger side, clipped to the frame.
- **Smoothing.** A side that must move outwards does so at once (nobody is cut off); a side
  that may move inwards does so only when it is more than half a margin too wide, by
  :data:`SHRINK_RATE` of the distance per frame: the box does not jitter with the model's noise
  (a jittering crop would show as flicker). Where the person touches the crop's border (and
  that border is not the frame's), that side grows by a second margin at once. The crop
  itself moves in steps (:data:`~bgcam.segment.roibox.CROP_STEP`): a crop of the same shape as
  the last one is kept while the new one would be within 5 % of its side (unless the box just
  grew: then it follows at once), since the model's mask changes with the crop's placement (a
  box at a shape's limit re-placed its square crop by up to 6 pixels every frame on a still
  DAVIS scene: 1.34e-3 mean alpha change; kept: 0.58e-3).
- **No back-and-forth between shapes.** A box right at a shape's limit can alternate every
  frame: the whole frame's mask gives a box that just fits a square crop, the square model then
  sees the person (or a bystander) reach the crop's border, and the grown box no longer fits.
  The two models' masks differ, so that alternation is flicker (a still DAVIS scene: 22e-3 mean
  alpha change). When the output's shape goes A, B, A, B, A, the larger of the two is held for
  :data:`HOLD_FIRST` frames, twice as long each time it happens again (up to :data:`HOLD_MAX`).
  A hold that runs out while the box has not moved since its middle (a still scene) is renewed,
  without letting the back-and-forth resume first (:data:`HOLD_STILL`).
  A hold only ever keeps a *larger* crop: a box that outgrows it still gets the larger shape.
- **Full-frame pass.** Every ``segment.roi_full_every`` frames (segmented or propagated) the
  whole frame is also segmented (the configured model, exactly as without ROI); when it finds
  someone *outside* the crop (:data:`MIN_OUTSIDE`), its mask is taken into the output there and
  the box grows at once to cover them. Otherwise the pass leaves the output alone: outside the
  crop it is zero in every frame. So someone who enters at the frame's edge is found within
  that many frames (15 = 0.5 s at 30 fps) and shown from then on.
- **Keyframes** (``segment.max_skip``, :meth:`bgcam.engine.Engine.mask`): a frame propagated
  without the model counts towards the full-frame pass (:meth:`RoiSegmenter.skipped`), so the
  pass still comes every ``roi_full_every`` *frames*; a frame with a pass due, a box that just
  grew, or nobody found (searching) is always a keyframe (:meth:`RoiSegmenter.keyframe_due`).
- **Lost / nobody.** When the crop holds no person pixel the box is dropped; with no box, every
  frame is segmented whole (exactly as without ROI; fail-closed handling is downstream and
  unchanged). When a whole frame finds someone, their crop is segmented in the same frame (a
  second model run, only then), so the output never switches from the whole-frame mask to the
  crop's a frame later. The crop's own mask then moves the box (the two models' extents
  differ, and a touched border grows it); while the crop that box asks for is not the one just
  run, it is run again, up to :data:`SETTLE_RUNS` more times, in the same frame (the whole
  frame when the box now asks for it). The model's mask depends on the crop's placement (a
  crop moved by 12 pixels changed single pixels from 0.03 to 0.38), and the temporal smoother
  takes some 30 frames to forget a first frame's mask: one crop for the first frame and
  another from the second on was 0.078 % of a noisy still's pixels flipping (DAVIS lucia,
  docs/BENCHMARKS.md, issue 16).

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
without ROI. **Tall crops** (:data:`TALL`): the general model is convolutional except for sizes
written into its graph, and :func:`~bgcam.segment.ortlayout.narrow_input` gives it inputs
160, 192 and 224 pixels wide (same height, :data:`TALL_WIDTHS`); a box narrower than high gets
the narrowest of those crops that covers it instead of the square one: the same model at the
same scale on 62–88 % of the pixels (and time), at about equal quality (docs/BENCHMARKS.md,
round 4). A crop keeps its input (or the square) while that fits and is at most one step
wider than needed: switching at every crossing of a limit cost J and T on davis-dev.
The ``onnx`` segmenter with the built-in models only.
A custom model file (``segment.model = path``) is used for every crop, at its own
input's aspect.
"""

from __future__ import annotations

import logging
import math

import cv2
import numpy as np

from bgcam.config import RefineConfig, SegmentConfig
from bgcam.frame import Image, Mask, ShrunkFrame
from bgcam.refine import work_size
from bgcam.segment import Segmenter
from bgcam.segment.roibox import (
    MIN_OUTSIDE,
    PERSON_LEVEL,
    SQUARE,
    TALL,
    TALL_WIDTHS,
    WHOLE,
    WIDE,
    Box,
    Plan,
    RoiTracker,
)

log = logging.getLogger(__name__)

SETTLE_RUNS = 2
"""Extra crop runs, in the frame someone is found, while the crop their mask asks for is not
the one just run (see the module docstring, *Lost / nobody*)."""


class _Extent:
    """Bounding box of the person pixels of a low-resolution mask (no allocation per call)."""

    def __init__(self) -> None:
        self._size: tuple[int, int] = (0, 0)
        self._cols = np.empty((1, 1), np.float32)
        self._rows = np.empty(1, np.float32)
        self._cb = np.empty(1, np.bool_)
        self._rb = np.empty(1, np.bool_)

    def __call__(self, mask: Mask) -> tuple[int, int, int, int] | None:
        """(c0, r0, c1, r1) inclusive of the pixels ≥ PERSON_LEVEL, or None."""
        h, w = mask.shape
        if self._size != (w, h):
            self._size = (w, h)
            self._cols = np.empty((1, w), np.float32)
            self._rows = np.empty(h, np.float32)
            self._cb = np.empty(w, np.bool_)
            self._rb = np.empty(h, np.bool_)
        cv2.reduce(mask, 0, cv2.REDUCE_MAX, dst=self._cols)
        # Each row's maximum with numpy: OpenCV's REDUCE_MAX across a row is not vectorised
        # (0.26 ms on a 256x256 mask, against 0.05 ms here and 0.015 ms down the columns).
        np.max(mask, axis=1, out=self._rows)
        cb, rb = self._cb, self._rb
        np.greater_equal(self._cols[0], PERSON_LEVEL, out=cb)
        c0 = int(cb.argmax())
        if not cb[c0]:
            return None
        np.greater_equal(self._rows, PERSON_LEVEL, out=rb)
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
        # Tall crops: the general model with narrower inputs (onnx; the built-in models only).
        narrower = getattr(crops.get(SQUARE), "narrower", None)
        auto = cfg.model in ("auto", "general")
        self._talls: dict[int, Segmenter] = dict(narrower(TALL_WIDTHS)) if narrower and auto else {}
        self._side: int = getattr(crops.get(SQUARE), "input_size", (256, 256))[1]
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
            talls=tuple(w / self._side for w in self._talls),
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
        small = frame.small
        if small is not None and small.shape[:2] != self._canvas.shape:
            h, w = small.shape[:2]
            self.canvas_size = (w, h)  # the refiner's working size (changes with its config)
            self._canvas = np.zeros((h, w), np.float32)
        searching = self.tracker.box is None
        plan = self.tracker.plan()
        canvas = self._canvas
        outside = None
        settle = 0
        fw, fh = self.frame_size
        if plan.crop is None or plan.full:
            low = self._whole.segment(frame)
            keep = False
            if plan.crop is None:
                found = self._frame_box(self._extent(low), low.shape, (0, 0, fw, fh))
                self.tracker.observe(plan, found)
                # Someone found: segment their crop in this very frame, so the output does not
                # switch from the whole-frame mask to the crop's one frame later (on a still
                # scene that switch alone was a 0.013 mean alpha change).
                plan = self.tracker.plan()
                if plan.crop is None:
                    return self._whole_frame(low)
                plan = Plan(plan.crop, plan.shape, True)
                settle = SETTLE_RUNS if searching else 0
            else:
                # Only a newcomer outside the crop takes the whole frame's mask into the output;
                # else the pass changes nothing (its mask of a still scene differs from the
                # crop's, and a periodic switch between the two would be flicker).
                outside = self._outside_box(low, plan.crop)
                keep = outside is not None
            if keep:
                cv2.resize(low, self.canvas_size, dst=canvas, interpolation=cv2.INTER_LINEAR)
            else:
                canvas.fill(0.0)
        else:
            canvas.fill(0.0)
        while True:
            found, touches = self._crop_pass(frame.image, plan)
            self.tracker.observe(plan, found, touches, outside)
            if settle == 0:
                break
            settle -= 1
            nxt = self.tracker.plan()
            if nxt.crop == plan.crop:
                break
            if nxt.crop is None:  # the settled box asks for the whole frame after all
                return self._whole_frame(self._whole.segment(frame))
            log.debug("roi: crop %s settles to %s in the frame it was found", plan.crop, nxt.crop)
            plan, outside = Plan(nxt.crop, nxt.shape, True), None
            canvas.fill(0.0)
        self.crop, self.shape = plan.crop, plan.shape
        self.tracker.settle(plan.shape)
        return canvas

    def _whole_frame(self, low: Mask) -> Mask:
        """This frame's output is the whole frame's mask ``low``, in the canvas."""
        cv2.resize(low, self.canvas_size, dst=self._canvas, interpolation=cv2.INTER_LINEAR)
        self.crop, self.shape = None, WHOLE
        self.tracker.settle(WHOLE)
        return self._canvas

    def _crop_pass(
        self, image: Image, plan: Plan
    ) -> tuple[tuple[float, float, float, float] | None, tuple[bool, bool, bool, bool]]:
        """Segment ``plan``'s crop of ``image`` into the canvas: (the person extent found in
        frame pixels or None, which crop sides it touches that are not the frame's)."""
        assert plan.crop is not None
        fw, fh = self.frame_size
        x0, y0, x1, y1 = plan.crop
        crop = image[y0:y1, x0:x1]
        # The crop given as its own "shrunk copy" too: a segmenter's Shrinker then takes one
        # bilinear pass for a crop up to twice its input (0.16 ms for 520 → 256 px here)
        # instead of INTER_AREA at a fractional ratio (1.36 ms), two passes above that.
        low = self._model(plan).segment(ShrunkFrame(crop, crop))
        self._place(low, plan.crop)
        ext = self._extent(low)
        if ext is None:
            return None, (False, False, False, False)
        h, w = low.shape
        touches = (
            ext[0] == 0 and x0 > 0,
            ext[1] == 0 and y0 > 0,
            ext[2] == w - 1 and x1 < fw,
            ext[3] == h - 1 and y1 < fh,
        )
        return self._frame_box(ext, low.shape, plan.crop), touches

    def _model(self, plan: Plan) -> Segmenter:
        """The segmenter for ``plan``'s crop: a tall crop's is the narrow input of its aspect."""
        if plan.shape != TALL:
            return self._crops[plan.shape]
        assert plan.crop is not None
        x0, y0, x1, y1 = plan.crop
        width = (x1 - x0) * self._side / (y1 - y0)
        return self._talls[min(self._talls, key=lambda w: abs(w - width))]

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

    def keyframe_due(self) -> bool:
        """Must the next frame be segmented (no propagation, see
        :meth:`bgcam.engine.Engine.mask`)? While nobody is found (whole frames, searching),
        after the box grew (someone moved out of it), and when a full-frame pass is due beside
        a crop. (With a box whose crop is the whole frame, close framing, every segmented frame
        is a full pass: nothing extra is due.)"""
        tracker = self.tracker
        if tracker.box is None or tracker.grew:
            return True
        plan = tracker.plan()
        return plan.crop is not None and plan.full

    def skipped(self) -> None:
        """A frame went by without segmentation: it counts towards the full-frame pass."""
        self.tracker.skipped()

    def reset(self) -> None:
        self.tracker.reset()

    def close(self) -> None:
        seen: set[int] = set()
        for seg in (self._whole, *self._crops.values(), *self._talls.values()):
            if id(seg) not in seen:
                seen.add(id(seg))
                seg.close()
