"""Mask refinement: the low-resolution model output becomes a steady, edge-aligned alpha matte.

Everything numeric happens at one *working resolution*: the frame divided by a power of two so
that its height stays at or above ``refine.work_height`` (1280x720 → 320x180, 1920x1080 →
480x270, 854x480 → 427x240). Per frame:

1. **Guide.** The frame is shrunk to the working size (bilinear, one pass) and turned to grey.
2. **Edge alignment.** The model mask, upsampled to the working size, goes through a guided
   filter (He et al.) with the grey frame as guide: where the image has an edge near the mask's
   edge, the alpha snaps to it; in flat regions the mask is only smoothed.
3. **Temporal smoothing.** An exponential moving average whose weight is chosen per pixel from
   the image motion (frame difference, minus the global exposure change, box-averaged): strong
   (``still_weight``) where the scene is still, almost none (``motion_weight``) where it moves, so
   flicker is suppressed without the "cut-off head" lag. A whole-frame change (a scene cut)
   resets the state.
4. **Hysteresis.** Each working pixel keeps a person/background label that flips only when the
   smoothed value crosses ``0.5 ± hysteresis``; the output is nudged towards the kept label near
   0.5 so that noise cannot make the edge flicker by a pixel back and forth.
5. **Upsampling** to the full frame size (bilinear) into the alpha buffer the refiner owns.

Every array kept from one frame to the next (``_state``, ``_label``, ``_prev``) is owned by the
refiner and written by copy: the segmenter's output buffer is reused by it and never kept here.
"""

from __future__ import annotations

import logging
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from bgcam.config import RefineConfig
from bgcam.frame import Image, Mask

log = logging.getLogger(__name__)

_F32 = npt.NDArray[np.float32]

CUT_LEVEL = 40.0
"""Mean absolute grey change (0–255) between consecutive frames above which the scene is new."""

FLOW_PRESET = cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST

FLOW_MAX_HEIGHT = 180
"""Optical flow runs at the working size, scaled down to at most this height (its cost)."""


CHANGE_LO = 0.15
CHANGE_HI = 0.5
"""Where the new mask and the (warped) history differ by more than CHANGE_LO, the smoother follows
faster, fully from CHANGE_HI: a confident change of the model is taken even without image motion."""


def work_size(frame_size: tuple[int, int], min_height: int) -> tuple[int, int]:
    """The (width, height) the frame is refined at: halved while the height stays ≥ min_height."""
    w, h = frame_size
    f = 1
    while h // (f * 2) >= min_height and w // (f * 2) >= 8:
        f *= 2
    return max(1, round(w / f)), max(1, round(h / f))


def _remap(src: npt.NDArray[Any], xy: _F32, dst: npt.NDArray[Any], interpolation: int) -> None:
    """dst(p) = src(xy(p)), edges replicated (OpenCV's stubs do not allow the absent map2)."""
    cv2.remap(src, xy, None, interpolation, dst, cv2.BORDER_REPLICATE)  # type: ignore[call-overload]


class GuidedFilter:
    """A grey-guided filter (He, Sun, Tang 2013) on preallocated float32 buffers of one size.

    ``filter(guide, src, dst)`` aligns ``src`` with the edges of ``guide`` (both (h, w) float32,
    guide in [0, 1]). ``radius`` is the box radius in pixels, ``eps`` the regularisation in the
    guide's units squared: edges with a contrast well below ``sqrt(eps)`` are smoothed away.
    """

    def __init__(self, size: tuple[int, int], radius: int, eps: float) -> None:
        w, h = size
        self.radius = max(1, int(radius))
        self.eps = float(eps)
        self._ksize = (2 * self.radius + 1, 2 * self.radius + 1)
        self._buf = [np.empty((h, w), np.float32) for _ in range(6)]

    def filter(self, guide: _F32, src: _F32, dst: _F32) -> _F32:
        mean_i, mean_p, corr, var, tmp, tmp2 = self._buf
        k = self._ksize
        box = cv2.BORDER_REFLECT
        cv2.boxFilter(guide, -1, k, dst=mean_i, borderType=box)
        cv2.boxFilter(src, -1, k, dst=mean_p, borderType=box)
        cv2.multiply(guide, src, dst=tmp)
        cv2.boxFilter(tmp, -1, k, dst=corr, borderType=box)
        cv2.multiply(guide, guide, dst=tmp)
        cv2.boxFilter(tmp, -1, k, dst=var, borderType=box)
        # cov = corr - mean_i * mean_p ; var = var - mean_i^2
        cv2.multiply(mean_i, mean_p, dst=tmp)
        cv2.subtract(corr, tmp, dst=corr)
        cv2.multiply(mean_i, mean_i, dst=tmp)
        cv2.subtract(var, tmp, dst=var)
        np.add(var, np.float32(self.eps), out=var)
        a, b = corr, var
        cv2.divide(corr, var, dst=a)  # a = cov / (var + eps)
        cv2.multiply(a, mean_i, dst=tmp)
        cv2.subtract(mean_p, tmp, dst=b)  # b = mean_p - a * mean_i
        cv2.boxFilter(a, -1, k, dst=tmp, borderType=box)
        cv2.boxFilter(b, -1, k, dst=tmp2, borderType=box)
        cv2.multiply(tmp, guide, dst=dst)
        cv2.add(dst, tmp2, dst=dst)
        return dst


class MaskRefiner:
    """Turns the segmenter's low-resolution mask into a steady full-resolution alpha.

    ``refine(mask_low, image)`` returns a float32 (H, W) alpha in [0, 1] that the refiner owns and
    overwrites on the next call. ``reset()`` forgets the history (call it on a scene change).
    """

    def __init__(self, cfg: RefineConfig, frame_size: tuple[int, int]) -> None:
        self.cfg = cfg
        self.frame_size = (int(frame_size[0]), int(frame_size[1]))
        w, h = self.frame_size
        self.work_size = work_size(self.frame_size, cfg.work_height)
        ww, wh = self.work_size
        radius = max(1, round(cfg.edge_radius * wh))
        self._guided = GuidedFilter(self.work_size, radius, cfg.edge_eps)

        def f32() -> _F32:
            return np.empty((wh, ww), np.float32)

        self._small = np.empty((wh, ww, 3), np.uint8)
        self._gray8 = np.empty((wh, ww), np.uint8)
        self._gray, self._mask, self._edge = f32(), f32(), f32()
        self._diff, self._motion, self._out, self._tmp = f32(), f32(), f32(), f32()
        self._hi = np.empty((wh, ww), np.bool_)
        self._lo = np.empty((wh, ww), np.bool_)
        self._alpha = np.zeros((h, w), np.float32)
        # History: owned, written only by copy (never a view of a caller's buffer).
        self._prev = f32()
        self._state = f32()
        self._label8 = np.zeros((wh, ww), np.uint8)
        self._label = self._label8.view(np.bool_)
        # Motion compensation: optical flow at half the working size, the history warped along it.
        fs = min(1.0, FLOW_MAX_HEIGHT / wh)
        self._flow_size = (max(8, round(ww * fs)), max(8, round(wh * fs)))
        self._flow_scale = np.array([ww / self._flow_size[0], wh / self._flow_size[1]], np.float32)
        self._dis = cv2.DISOpticalFlow.create(FLOW_PRESET)
        self._fgray = np.empty(self._flow_size[::-1], np.uint8)
        self._fprev = np.empty(self._flow_size[::-1], np.uint8)
        self._flow = np.zeros((*self._flow_size[::-1], 2), np.float32)
        self._flow_up = np.empty((wh, ww, 2), np.float32)
        gx, gy = np.meshgrid(np.arange(ww, dtype=np.float32), np.arange(wh, dtype=np.float32))
        self._grid = np.dstack([gx, gy])
        self._map = np.empty((wh, ww, 2), np.float32)
        self._wstate, self._wprev = f32(), f32()
        self._wlabel8 = np.empty((wh, ww), np.uint8)
        self._fresh = True
        self.motion_ratio = 0.0
        """Share of working pixels followed as moving in the last frame (for stats)."""
        log.debug(
            "refiner: frame %dx%d, working %dx%d, flow %dx%d, guided radius %d",
            w,
            h,
            ww,
            wh,
            *self._flow_size,
            radius,
        )

    def reset(self) -> None:
        """Forget the temporal history: the next mask is taken as it is."""
        self._fresh = True

    @property
    def alpha(self) -> Mask:
        """The last alpha returned by :meth:`refine` (owned, overwritten by the next call)."""
        return self._alpha

    def refine(self, mask_low: Mask, image: Image) -> Mask:
        """The full-resolution alpha for ``image`` from the model's ``mask_low``."""
        w, h = self.frame_size
        if image.shape != (h, w, 3):
            raise ValueError(f"image: expected shape ({h}, {w}, 3), got {image.shape}")
        if mask_low.ndim != 2:
            raise ValueError(f"mask: expected shape (h, w), got {mask_low.shape}")
        cfg = self.cfg
        ww, wh = self.work_size
        cv2.resize(image, (ww, wh), dst=self._small, interpolation=cv2.INTER_LINEAR)
        cv2.cvtColor(self._small, cv2.COLOR_BGR2GRAY, dst=self._gray8)
        np.multiply(self._gray8, np.float32(1.0 / 255.0), out=self._gray)
        cv2.resize(mask_low, (ww, wh), dst=self._mask, interpolation=cv2.INTER_LINEAR)

        if cfg.edge == "guided":
            self._guided.filter(self._gray, self._mask, self._edge)
        else:
            np.copyto(self._edge, self._mask)
        np.clip(self._edge, 0.0, 1.0, out=self._edge)

        if cfg.temporal:
            cv2.resize(self._gray8, self._flow_size, dst=self._fgray, interpolation=cv2.INTER_AREA)
            if self._fresh or not self._align():
                self._start()
            else:
                self._smooth()
            np.copyto(self._prev, self._gray)
            np.copyto(self._fprev, self._fgray)
        else:
            self._start()

        self._apply_hysteresis()
        g = cfg.sharpen
        if g != 1.0:
            # out = 0.5 + g (out - 0.5): a steeper edge ramp around the same 0.5 crossing.
            cv2.addWeighted(self._out, g, self._out, 0.0, 0.5 - 0.5 * g, dst=self._out)
            np.clip(self._out, 0.0, 1.0, out=self._out)
        cv2.resize(self._out, (w, h), dst=self._alpha, interpolation=cv2.INTER_LINEAR)
        return self._alpha

    # -- temporal --------------------------------------------------------------------------

    def _start(self) -> None:
        """Take the current mask as it is (first frame, scene cut, smoothing off)."""
        np.copyto(self._state, self._edge)
        np.greater_equal(self._state, 0.5, out=self._label)
        self._fresh = False
        self.motion_ratio = 1.0

    def _align(self) -> bool:
        """Warp the history onto the current frame; False when the scene changed (a cut)."""
        if self.cfg.motion_compensation:
            self._dis.calc(self._fgray, self._fprev, self._flow)  # current -> previous
            cv2.resize(
                self._flow, self.work_size, dst=self._flow_up, interpolation=cv2.INTER_LINEAR
            )
            np.multiply(self._flow_up, self._flow_scale, out=self._flow_up)
            cv2.add(self._grid, self._flow_up, dst=self._map)
            _remap(self._state, self._map, self._wstate, cv2.INTER_LINEAR)
            _remap(self._prev, self._map, self._wprev, cv2.INTER_LINEAR)
            _remap(self._label8, self._map, self._wlabel8, cv2.INTER_NEAREST)
        else:
            np.copyto(self._wstate, self._state)
            np.copyto(self._wprev, self._prev)
            np.copyto(self._wlabel8, self._label8)
        cv2.subtract(self._gray, self._wprev, dst=self._diff)
        mean_abs = float(cv2.norm(self._diff, cv2.NORM_L1)) / self._diff.size * 255.0
        if mean_abs > CUT_LEVEL:
            log.debug("refiner: scene cut (mean change %.1f levels), history reset", mean_abs)
            return False
        return True

    def _smooth(self) -> None:
        """state = warped + k * (edge - warped), k per pixel from motion and disagreement."""
        cfg = self.cfg
        diff, motion = self._diff, self._motion
        # Remove the global exposure change, then the local mean absolute change in grey levels.
        shift = float(cv2.mean(diff)[0])
        np.subtract(diff, np.float32(shift), out=diff)
        np.abs(diff, out=diff)
        cv2.blur(diff, (5, 5), dst=motion, borderType=cv2.BORDER_REPLICATE)
        lo = cfg.motion_threshold / 255.0
        # Ramp from the threshold (still) to 3x the threshold (moving).
        cv2.addWeighted(motion, 1.0 / (2.0 * lo), motion, 0.0, -0.5, dst=motion)
        np.clip(motion, 0.0, 1.0, out=motion)
        # A large disagreement between the new mask and the history is evidence of change too.
        delta = self._tmp
        cv2.subtract(self._edge, self._wstate, dst=delta)
        if CHANGE_HI > 0:
            chg = self._diff
            np.abs(delta, out=chg)
            span = 1.0 / (CHANGE_HI - CHANGE_LO)
            cv2.addWeighted(chg, span, chg, 0.0, -CHANGE_LO * span, dst=chg)
            np.clip(chg, 0.0, 1.0, out=chg)
            cv2.max(motion, chg, dst=motion)
        self.motion_ratio = float(cv2.countNonZero(motion)) / motion.size
        k = motion
        gain = cfg.motion_weight - cfg.still_weight
        cv2.addWeighted(k, gain, k, 0.0, cfg.still_weight, dst=k)
        cv2.multiply(delta, k, dst=delta)
        cv2.add(self._wstate, delta, dst=self._state)
        np.copyto(self._label8, self._wlabel8)

    def _apply_hysteresis(self) -> None:
        """out = state nudged towards the kept label near 0.5; labels flip at 0.5 ± h."""
        h = self.cfg.hysteresis
        s, out = self._state, self._out
        if h <= 0:
            np.copyto(out, s)
            return
        np.greater(s, 0.5 + h, out=self._hi)
        np.less(s, 0.5 - h, out=self._lo)
        np.logical_or(self._label, self._hi, out=self._label)
        np.logical_not(self._lo, out=self._lo)
        np.logical_and(self._label, self._lo, out=self._label)
        # bump(s) = min(1, 4 s (1 - s) / (1 - 4 h^2)): 1 on [0.5-h, 0.5+h], 0 at 0 and 1.
        bump = self._tmp
        np.subtract(np.float32(1.0), s, out=bump)
        cv2.multiply(bump, s, dst=bump, scale=4.0 * h / (1.0 - 4.0 * h * h))
        np.minimum(bump, np.float32(h), out=bump)
        np.copyto(out, s)
        np.logical_not(self._label, out=self._hi)
        np.add(out, bump, out=out, where=self._label)
        np.subtract(out, bump, out=out, where=self._hi)
        np.clip(out, 0.0, 1.0, out=out)
