"""Mask refinement: the low-resolution model output becomes a steady, edge-aligned alpha matte.

Everything numeric happens at one *working resolution*: the frame divided by a power of two so
that its height stays at or above ``refine.work_height`` (with the default 128: 1280x720 →
320x180, 1920x1080 → 240x135, 854x480 → 427x240). Per frame:

1. **Guide.** The frame shrunk to the working size (bilinear, one pass: the engine makes it once
   per frame, :class:`~bgcam.frame.ShrunkFrame`, and the segmenter and the compositor's blur start
   from the same copy) is the guide.
2. **Edge alignment.** The model mask, upsampled to the working size, goes through a guided
   filter (He et al.) with the colour frame as guide: where the image has an edge near the
   mask's edge, the alpha snaps to it; in flat regions the mask is only smoothed. The colour
   guide keeps edges between colours of equal brightness (skin on clay, a red shirt on leaves)
   that a grey guide loses.
3. **Temporal smoothing.** An exponential moving average whose weight is chosen per pixel from
   the image motion (frame difference, minus the global exposure change, box-averaged): strong
   (``still_weight``) where the scene is still, almost none (``motion_weight``) where it moves, so
   flicker is suppressed without the "cut-off head" lag. The history is first warped along the
   optical flow (DIS, computed on a grey frame of at most :data:`FLOW_HEIGHT` rows), so a moving
   person is followed rather than smeared; a flow that stays within the camera's noise
   everywhere near the person (:data:`STILL_FLOW`) is taken as zero and the history *held* as it
   is, since re-sampling it along noise makes its soft edge drift. A whole-frame change (a scene
   cut) resets the state.
4. **Hysteresis.** Each working pixel keeps a person/background label that flips only when the
   smoothed value crosses ``0.5 ± hysteresis``; the output is nudged towards the kept label near
   0.5 so that noise cannot make the edge flicker by a pixel back and forth.
5. **Keyframes.** With ``segment.max_skip`` > 0 the engine asks first (:meth:`MaskRefiner.track`:
   the flow and the warp of step 3, reused by the update) whether the frame is predictable:
   nothing near the person moved beyond the flow by more than ``motion_threshold`` (where the
   smoother would take only ``still_weight`` of a new mask anyway). Then
   :meth:`MaskRefiner.propagate` stands in for the model, the guided filter and the smoother:
   the warped (on a still scene: held) state and labels are this frame's, so a run of
   propagated frames on a still scene repeats the keyframe's matte exactly (see
   :meth:`bgcam.engine.Engine.mask`).
6. **Output.** The sharpened matte is rounded to 8 bits at the working size
   (:attr:`MaskRefiner.alpha8_small`); that is what the compositors take. Its frame-size form
   (:attr:`MaskRefiner.alpha8`, :func:`bgcam.frame.upsample_alpha8`: bilinear, 8-bit fixed
   point) and the float32 alpha in [0, 1] (:attr:`MaskRefiner.alpha`, exactly ``alpha8 / 255``)
   are computed only when asked for. The CPU compositor computes the same upsample, bit for bit,
   only in the tiles along the silhouette, so what is composited and what is reported are the
   same matte.

Every array kept from one frame to the next (``_state``, ``_label``, ``_fprev``) is owned by the
refiner and written by copy (the smoother swaps the state and labels with the refiner's own warped
copies): the segmenter's output buffer is reused by it and never kept here.

Floats below :data:`TINY` are flushed to zero where they enter (model output, state): a sigmoid
output holds values around 1e-40, and arithmetic on such subnormal floats is far slower.
"""

from __future__ import annotations

import logging
import math

import cv2
import numpy as np
import numpy.typing as npt

from bgcam import cvcompat
from bgcam.config import RefineConfig
from bgcam.frame import Image, Mask, ShrunkFrame, resize_bilinear, upsample_alpha8
from bgcam.guided import GuidedFilter

log = logging.getLogger(__name__)

_F32 = npt.NDArray[np.float32]
_U8 = npt.NDArray[np.uint8]

CUT_LEVEL = 40.0
"""Mean absolute grey change (0–255) between consecutive frames above which the scene is new."""

FLOW_PRESET = cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST

FLOW_HEIGHT = 90
"""Optical flow runs on the grey frame scaled down to at most this height (its cost)."""

FLOW_FINEST_SCALE = {"normal": 1, "fine": 0}
FLOW_PATCH_STRIDE = 6
"""DIS settings: flow found down to half the flow frame's size (``refine.flow_detail = normal``;
the ultrafast preset stops at a quarter, which measurably blurs the edges of fast limbs) or to
its full size (``fine``: slightly better edges for about three times the flow's cost), with
8x8 patches every 6 pixels."""

GUIDED_RADIUS = 1
"""The guided filter's box radius on its coarse grid. ``refine.edge_radius`` x the working
height, rounded to a power of two, sets the grid's spacing (the fast guided filter's subsample),
so a window spans 3 grid cells, about ± edge_radius x frame height."""

CHANGE_LO = 0.15
CHANGE_HI = 0.5
"""Where the new mask and the (warped) history differ by more than CHANGE_LO, the smoother follows
faster, fully from CHANGE_HI: a confident change of the model is taken even without image motion."""

RELATIVE = cv2.WARP_RELATIVE_MAP
"""remap's flag for a map of offsets (the flow itself) instead of positions (OpenCV ≥ 4.10)."""

NEAR = 0.05
"""The person's neighbourhood for :meth:`MaskRefiner.track`: the labels widened by this share of
the frame's height on every side (where an arm or a head moves next)."""

NEAR_MOVING = 0.01
"""A frame is predictable (:meth:`MaskRefiner.track`) while under this share of the pixels near
the person move beyond the optical flow: camera noise never does, a moving hand does."""

STILL_FLOW = 0.1
"""While the flow near the person stays under this many pixels at the flow's size (at most
:data:`FLOW_HEIGHT` rows: about a thousandth of the frame's height), it is taken as zero and the
history is *held*, not re-sampled (:meth:`MaskRefiner._align`). Camera noise on a still scene
reads as flow of at most 0.05 such pixels, the slowest davis-dev clip as 0.43 and more
(docs/BENCHMARKS.md); re-sampling the history along the noise moved its soft edge a little on
every frame, and the output flickered by it."""

TINY = 1e-4
"""Mask values below this are zero (keeps subnormal floats out of the arithmetic)."""


def work_size(frame_size: tuple[int, int], min_height: int) -> tuple[int, int]:
    """The (width, height) the frame is refined at: halved while the height stays ≥ min_height."""
    w, h = frame_size
    f = 1
    while h // (f * 2) >= min_height and w // (f * 2) >= 8:
        f *= 2
    return max(1, round(w / f)), max(1, round(h / f))


def _flush(a: _F32) -> None:
    """In place: values below TINY (and negative ones) become 0, values above 1 become 1."""
    cv2.threshold(a, TINY, 0.0, cv2.THRESH_TOZERO, dst=a)
    cv2.threshold(a, 1.0, 0.0, cv2.THRESH_TRUNC, dst=a)


def finish_tables(hysteresis: float, sharpen: float) -> tuple[_U8, _U8]:
    """The output alpha (0–255) for each state level (0–255): (background label, person label).

    Near 0.5 the state is nudged by ``bump(s) = min(h, 4 h s (1 − s) / (1 − 4 h²))`` towards the
    pixel's label (h on [0.5 − h, 0.5 + h], 0 at 0 and 1), so noise cannot move the edge back
    and forth; then ``round(255 (0.5 + g (s' − 0.5)))``, saturated, steepens the edge ramp
    around the same 0.5 crossing (g = ``sharpen``). The two tables are mirror images,
    ``person[s] = 255 - background[255 - s]`` (the person table is made so: the rounding of
    ties at exactly half a level keeps the symmetry), so one lookup serves both labels.
    """
    s = np.arange(256, dtype=np.float64) / 255.0
    h = float(hysteresis)
    bump = np.minimum(h, 4.0 * h * s * (1.0 - s) / (1.0 - 4.0 * h * h)) if h > 0 else 0.0 * s

    def table(nudged: npt.NDArray[np.float64]) -> _U8:
        a = np.rint(255.0 * (0.5 + sharpen * (nudged - 0.5)))
        return np.clip(a, 0, 255).astype(np.uint8).reshape(1, 256)

    background = table(s - bump)
    return background, np.ascontiguousarray(255 - background[:, ::-1])


class MaskRefiner:
    """Turns the segmenter's low-resolution mask into a steady full-resolution alpha.

    ``update(mask_low, frame)`` does the work at the working size; the results are read through
    :attr:`alpha8_small`, :attr:`alpha8` (full size, uint8) and :attr:`alpha` (full size,
    float32), all owned by the refiner and overwritten by the next update. ``refine(mask_low,
    frame)`` is ``update`` followed by ``alpha``. ``reset()`` forgets the history (call it on a
    scene change).
    """

    def __init__(self, cfg: RefineConfig, frame_size: tuple[int, int]) -> None:
        self.cfg = cfg
        self.frame_size = (int(frame_size[0]), int(frame_size[1]))
        w, h = self.frame_size
        self.work_size = work_size(self.frame_size, cfg.work_height)
        ww, wh = self.work_size
        grid = 1 << max(0, round(math.log2(max(1.0, cfg.edge_radius * wh))))
        self._guided = GuidedFilter(self.work_size, GUIDED_RADIUS, cfg.edge_eps, grid)

        def f32() -> _F32:
            return np.empty((wh, ww), np.float32)

        def u8() -> _U8:
            return np.empty((wh, ww), np.uint8)

        self._small = np.empty((wh, ww, 3), np.uint8)
        self._gray8 = u8()
        self._mask, self._edge = f32(), f32()
        self._motion, self._out, self._tmp = f32(), f32(), f32()
        self._bits, self._s8 = u8(), u8()
        # Label flips: to person above 0.5 + h, to background below 0.5 - h, in 0–255 levels:
        # above hi = floor(255 (0.5 + h)), below lo = ceil(255 (0.5 - h)) = 255 - hi.
        self._flip_level = math.floor(255 * (0.5 + cfg.hysteresis))
        background, person = finish_tables(cfg.hysteresis, cfg.sharpen)
        above = np.arange(256).reshape(1, 256) > self._flip_level
        self._finish_lut = np.where(above, person, background)
        """The output for t = s XOR label (see _finish)."""
        self._a8_small = np.zeros((wh, ww), np.uint8)
        self._a8 = np.zeros((h, w), np.uint8)
        self._alpha = np.zeros((h, w), np.float32)
        self._a8_stale = False
        self._alpha_stale = False
        self._lut = (np.arange(256, dtype=np.float32) / np.float32(255.0)).reshape(1, 256)
        # History: owned, never a view of a caller's buffer (swapped with _wstate/_wlabel).
        self._state = f32()
        self._label = np.zeros((wh, ww), np.uint8)
        """Person (255) / background (0) per working pixel, flipped with hysteresis."""
        # Motion compensation: optical flow on a small grey frame, the history warped along it.
        # The residual image motion (after compensation) is measured at the flow's size too.
        fh = min(wh, FLOW_HEIGHT)
        self._flow_size = (max(8, round(ww * fh / wh)), max(8, fh))
        fw, fh = self._flow_size
        self._flow_scale = wh / fh  # (the width's ratio differs by under half a pixel)
        self._dis = cv2.DISOpticalFlow.create(FLOW_PRESET)
        self._dis.setFinestScale(FLOW_FINEST_SCALE[cfg.flow_detail])
        self._dis.setPatchStride(FLOW_PATCH_STRIDE)
        self._fgray = np.empty((fh, fw), np.uint8)
        self._fprev = np.empty((fh, fw), np.uint8)
        self._fwarp = np.empty((fh, fw), np.uint8)
        self._fdiff = np.empty((fh, fw), np.float32)
        self._fmotion = np.empty((fh, fw), np.float32)
        self._motion_ksize = max(3, round(5 * fh / wh) | 1)
        self._flow = np.zeros((fh, fw, 2), np.float32)
        # The flow as two planes (x, y), then at the working size in working pixels: OpenCV
        # resizes and remaps with one-channel float planes faster than with one two-channel
        # one. The maps are relative (offsets from each pixel: WARP_RELATIVE_MAP).
        self._flow_xy = np.empty((2, fh, fw), np.float32)
        self._flow_planes = list(self._flow_xy)
        self._map = (f32(), f32())
        self._wstate = f32()
        self._wlabel = u8()
        self._speed = np.empty((fh, fw), np.float32)
        self.held = False
        """The last frame's history was held (no motion beyond noise), not warped."""
        self._drift = (0.0, 0.0)
        """The mean flow near the person summed over the frames held since the last warp."""
        self._fnear = np.empty((fh, fw), np.uint8)
        self._fmoving = np.empty((fh, fw), np.uint8)
        r = max(1, round(NEAR * fh))
        self._near_kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * r + 1, 2 * r + 1))
        self._tracked: bool | None = None
        """What :meth:`track` found for the frame about to be updated (None: not tracked)."""
        self.near_moving = 0.0
        """Share of the pixels near the person that moved beyond the flow (last :meth:`track`)."""
        self._moving_share = 0.0
        """Share of all pixels that moved beyond the flow (last :meth:`track`)."""
        self._low: Mask | None = None
        self._fresh = True
        self.motion_ratio = 0.0
        """Share of the frame seen moving (after motion compensation) in the last frame."""
        log.debug(
            "refiner: frame %dx%d, working %dx%d, flow %dx%d, guided-filter grid %d",
            w,
            h,
            ww,
            wh,
            fw,
            fh,
            grid,
        )

    def reset(self) -> None:
        """Forget the temporal history: the next mask is taken as it is."""
        self._fresh = True
        self._tracked = None

    # -- results ---------------------------------------------------------------------------

    @property
    def alpha8_small(self) -> npt.NDArray[np.uint8]:
        """The last alpha at the working size, 0–255 (owned, overwritten by the next update)."""
        return self._a8_small

    @property
    def alpha8(self) -> npt.NDArray[np.uint8]:
        """The last alpha at frame size, 0–255: :attr:`alpha8_small` upsampled (bilinear)."""
        if self._a8_stale:
            upsample_alpha8(self._a8_small, self.frame_size, self._a8)
            self._a8_stale = False
        return self._a8

    @property
    def alpha(self) -> Mask:
        """The last alpha at frame size as float32 in [0, 1]: exactly ``alpha8 / 255``."""
        if self._alpha_stale:
            cv2.LUT(self.alpha8, self._lut, dst=self._alpha)
            self._alpha_stale = False
        return self._alpha

    # -- per frame -------------------------------------------------------------------------

    def refine(self, mask_low: Mask, frame: ShrunkFrame) -> Mask:
        """The full-resolution float alpha for ``frame`` from the model's ``mask_low``."""
        self.update(mask_low, frame)
        return self.alpha

    def guide(self, frame: ShrunkFrame) -> Image:
        """``frame.small`` when it has the working size, else ``frame.image`` shrunk here."""
        ww, wh = self.work_size
        small = frame.small
        if small is not None and small.shape == (wh, ww, 3):
            return small
        w, h = self.frame_size
        if frame.image.shape != (h, w, 3):
            raise ValueError(f"image: expected shape ({h}, {w}, 3), got {frame.image.shape}")
        return resize_bilinear(frame.image, self._small)

    def update(self, mask_low: Mask, frame: ShrunkFrame) -> None:
        """Refine ``mask_low`` for ``frame`` at the working size; results via the properties."""
        if mask_low.ndim != 2:
            raise ValueError(f"mask: expected shape (h, w), got {mask_low.shape}")
        small = self.guide(frame)
        cfg = self.cfg
        ww, wh = self.work_size
        if mask_low.shape == (wh, ww):  # (the ROI segmenter's output is at this size already)
            cv2.threshold(mask_low, TINY, 0.0, cv2.THRESH_TOZERO, dst=self._mask)  # no subnormals
        else:
            low = self._low
            if low is None or low.shape != mask_low.shape:
                low = self._low = np.empty(mask_low.shape, np.float32)
            cv2.threshold(mask_low, TINY, 0.0, cv2.THRESH_TOZERO, dst=low)
            cv2.resize(low, (ww, wh), dst=self._mask, interpolation=cv2.INTER_LINEAR)
        cv2.threshold(self._mask, 1.0, 0.0, cv2.THRESH_TRUNC, dst=self._mask)

        if cfg.edge == "guided":
            self._guided.filter(small, self._mask, self._edge)
            _flush(self._edge)
        else:
            np.copyto(self._edge, self._mask)

        if cfg.temporal:
            aligned = self._tracked if self._tracked is not None else self._follow(small)
            self._tracked = None
            if aligned:
                self._smooth()
            else:
                self._start()
            np.copyto(self._fprev, self._fgray)
        else:
            self._start()

        self._finish()
        self._a8_stale = self._alpha_stale = True

    def track(self, frame: ShrunkFrame) -> bool:
        """Follow the history onto ``frame`` ahead of its mask (the optical flow, the warp and
        the residual motion that :meth:`update` would compute; it then reuses them), and say
        whether this frame's matte is *predictable* from the last one, so that
        :meth:`propagate` may stand in for the model and :meth:`update`.

        Predictable: temporal smoothing with motion compensation on, a history that is neither
        fresh nor cut off by a scene change, and fewer than :data:`NEAR_MOVING` of the pixels
        near the person (the warped labels, widened by :data:`NEAR`) moving beyond the flow by
        more than ``refine.motion_threshold``: where the smoother itself would call them still
        and take only ``still_weight`` of a new mask.
        """
        cfg = self.cfg
        if not (cfg.temporal and cfg.motion_compensation):
            return False
        aligned = self._tracked = self._follow(self.guide(frame))
        return aligned and self._near_still()

    def propagate(self) -> None:
        """This frame's matte without a new mask: the history warped along the flow that
        :meth:`track` found (the state and the labels as they are, then the usual output).
        Only after a :meth:`track` that returned True."""
        if not self._tracked:
            raise RuntimeError("propagate() needs a track() that found the frame predictable")
        self._tracked = None
        self.motion_ratio = self._moving_share  # (as track() found it)
        self._state, self._wstate = self._wstate, self._state
        self._label, self._wlabel = self._wlabel, self._label
        np.copyto(self._fprev, self._fgray)
        self._finish()
        self._a8_stale = self._alpha_stale = True

    def _follow(self, small: Image) -> bool:
        """The grey flow frame of ``small``, then the history aligned to it (:meth:`_align`);
        False when there is no history to follow (fresh, or a scene cut)."""
        ww, wh = self.work_size
        # The grey frame is only for the optical flow (the guided filter takes colour).
        fw, fh = self._flow_size
        if (fw, fh) == (ww, wh):
            cv2.cvtColor(small, cv2.COLOR_BGR2GRAY, dst=self._fgray)
        else:
            cv2.cvtColor(small, cv2.COLOR_BGR2GRAY, dst=self._gray8)
            cv2.resize(self._gray8, (fw, fh), dst=self._fgray, interpolation=cv2.INTER_AREA)
        return not self._fresh and self._align()

    def _near_still(self) -> bool:
        """Does (almost) nothing near the person move beyond the flow? (see :meth:`track`)
        Also finds the share of all pixels that do (:meth:`propagate`'s ``motion_ratio``)."""
        near, moving = self._fnear, self._fmoving
        cvcompat.compare_scalar(self._fmotion, self.cfg.motion_threshold, cv2.CMP_GT, moving)
        self._moving_share = cv2.countNonZero(moving) / moving.size
        if not self.held:  # (held: _hold found it from the same labels)
            self._near(self._wlabel)
        area = cv2.countNonZero(near)
        if area == 0:
            return True  # nobody: the model runs again after max_skip frames anyway
        cv2.bitwise_and(moving, near, dst=moving)
        self.near_moving = cv2.countNonZero(moving) / area
        return self.near_moving < NEAR_MOVING

    def _near(self, label: _U8) -> None:
        """``_fnear``: ``label`` at the flow's size, widened by :data:`NEAR` on every side."""
        near = self._fnear
        if self._flow_size == self.work_size:
            np.copyto(near, label)
        else:
            cv2.resize(label, self._flow_size, dst=near, interpolation=cv2.INTER_AREA)
        cv2.dilate(near, self._near_kernel, dst=near)

    # -- temporal --------------------------------------------------------------------------

    def _start(self) -> None:
        """Take the current mask as it is (first frame, scene cut, smoothing off)."""
        np.copyto(self._state, self._edge)
        cvcompat.compare_scalar(self._state, 0.5, cv2.CMP_GE, self._label)
        self.held = False
        self._drift = (0.0, 0.0)
        self._fresh = False
        self.motion_ratio = 1.0

    def _align(self) -> bool:
        """Warp the history onto the current frame; False when the scene changed (a cut).

        A flow under :data:`STILL_FLOW` everywhere near the person (:meth:`_hold`) is noise:
        it is taken as zero, and the history *held* (copied as it is, and the residual motion
        measured against the previous frame itself), so a still scene's matte does not drift
        with the noise. (The same limit summed over frames would be crossed by the noise too,
        after a hundred frames or so, and the one warp along the summed noise then moved the
        edge at once; a motion slower than the limit is followed by the smoother instead.)

        Also measures the residual image motion (``_fmotion``, grey levels, at the flow size):
        the current grey frame minus the warped previous one, less the global exposure change.
        """
        warped_prev = self._fprev
        self.held = False
        if self.cfg.motion_compensation:
            self._dis.calc(self._fgray, self._fprev, self._flow)  # current -> previous
            cv2.split(self._flow, self._flow_planes)
            self.held = self._hold()
            if not self.held:
                warped_prev = self._warp()
                self._drift = (0.0, 0.0)
        if not self.cfg.motion_compensation or self.held:
            np.copyto(self._wstate, self._state)
            np.copyto(self._wlabel, self._label)
        diff = self._fdiff
        cv2.subtract(self._fgray, warped_prev, dst=diff, dtype=cv2.CV_32F)
        mean_abs = float(cv2.norm(diff, cv2.NORM_L1)) / diff.size
        if mean_abs > CUT_LEVEL:
            log.debug("refiner: scene cut (mean change %.1f levels), history reset", mean_abs)
            return False
        shift = float(cv2.mean(diff)[0])
        cvcompat.absdiff_scalar(diff, shift, diff)
        k = self._motion_ksize
        cv2.blur(diff, (k, k), dst=self._fmotion, borderType=cv2.BORDER_REPLICATE)
        return True

    def _warp(self) -> _U8:
        """The previous grey frame warped along the flow (returned), and the history (state,
        labels: ``_wstate``, ``_wlabel``) along the flow plus the drift of the frames held
        since it was last warped (:meth:`_hold`)."""
        linear, nearest = RELATIVE | cv2.INTER_LINEAR, RELATIVE | cv2.INTER_NEAREST
        fx, fy = self._flow_planes
        cvcompat.remap(self._fprev, fx, self._fwarp, linear, y=fy)
        dx, dy = self._drift  # (the mean flow of the frames held since the last warp)
        if dx or dy:
            np.add(fx, np.float32(dx), out=fx)
            np.add(fy, np.float32(dy), out=fy)
        if self._flow_size == self.work_size:
            cvcompat.remap(self._state, fx, self._wstate, linear, y=fy)
            cvcompat.remap(self._label, fx, self._wlabel, nearest, y=fy)
        else:
            # Scaled to working pixels at the flow's size (a quarter of the pixels), then
            # upsampled: the same as upsampling first (exactly so for a power of two).
            flow_xy = self._flow_xy
            np.multiply(flow_xy, np.float32(self._flow_scale), out=flow_xy)
            for plane, xy in zip(flow_xy, self._map, strict=True):
                cv2.resize(plane, self.work_size, dst=xy, interpolation=cv2.INTER_LINEAR)
            mx, my = self._map
            cvcompat.remap(self._state, mx, self._wstate, linear, y=my)
            cvcompat.remap(self._label, mx, self._wlabel, nearest, y=my)
        return self._fwarp

    def _hold(self) -> bool:
        """Is the flow under :data:`STILL_FLOW` everywhere near the person (the history's labels
        widened by :data:`NEAR`; the whole frame when nobody is there), and its mean there,
        summed over the frames held since the last warp (``_drift``), too? Leaves that
        neighbourhood in ``_fnear`` (:meth:`_near_still` reuses it when held)."""
        fx, fy = self._flow_planes
        cv2.magnitude(fx, fy, magnitude=self._speed)
        self._near(self._label)
        near = self._fnear if cv2.countNonZero(self._fnear) else None
        if cv2.minMaxLoc(self._speed, near)[1] >= STILL_FLOW:
            return False
        mx, my = cv2.mean(self._flow, near)[:2]
        dx, dy = self._drift
        if math.hypot(dx + mx, dy + my) < STILL_FLOW:
            self._drift = (dx + mx, dy + my)
            return True
        return False  # a slow drift: the frames held so far join this one's warp (_warp)

    def _smooth(self) -> None:
        """state = warped + k * (edge - warped), k per pixel from motion and disagreement.

        k = still + (moving - still) * min(1, max(motion ramp, change ramp)). That affine map
        is monotonic, so it is applied to each ramp first (the motion one at the flow's size)
        and the max and the clamp taken on the weights themselves: the same k, in fewer passes.
        """
        cfg = self.cfg
        k, chg, delta = self._motion, self._out, self._tmp
        fmotion = self._fmotion
        still, gain = cfg.still_weight, cfg.motion_weight - cfg.still_weight
        # Ramp from the threshold (still, 0) to 3x the threshold (moving, 1); then its weight.
        lo = cfg.motion_threshold
        cv2.addWeighted(fmotion, 1.0 / (2.0 * lo), fmotion, 0.0, -0.5, dst=fmotion)
        cv2.threshold(fmotion, 0.0, 0.0, cv2.THRESH_TOZERO, dst=fmotion)
        self.motion_ratio = float(cv2.countNonZero(fmotion)) / fmotion.size
        cv2.addWeighted(fmotion, gain, fmotion, 0.0, still, dst=fmotion)
        if fmotion.shape == k.shape:
            np.copyto(k, fmotion)
        else:
            cv2.resize(fmotion, self.work_size, dst=k, interpolation=cv2.INTER_LINEAR)
        # A large disagreement between the new mask and the history is evidence of change too:
        # a ramp from CHANGE_LO (0) to CHANGE_HI (1) on |edge - warped|, as a weight.
        cv2.subtract(self._edge, self._wstate, dst=delta)
        cv2.absdiff(self._edge, self._wstate, dst=chg)
        span = gain / (CHANGE_HI - CHANGE_LO)
        cv2.addWeighted(chg, span, chg, 0.0, still - CHANGE_LO * span, dst=chg)
        if gain >= 0:
            cv2.max(k, chg, dst=k)
            cv2.threshold(k, cfg.motion_weight, 0.0, cv2.THRESH_TRUNC, dst=k)
        else:  # (moving weighs less than still: the map decreases)
            cv2.min(k, chg, dst=k)
            np.maximum(k, np.float32(cfg.motion_weight), out=k)
        # warped += k * delta; the warped buffers then hold the state (the old ones are reused).
        cv2.accumulateProduct(delta, k, self._wstate)
        self._state, self._wstate = self._wstate, self._state
        self._label, self._wlabel = self._wlabel, self._label
        _flush(self._state)

    def _finish(self) -> None:
        """Labels flip at 0.5 ± hysteresis; alpha8_small = the kept label's table at state.

        Both the hysteresis nudge and the sharpening are functions of the state value alone
        (one per label), so they are two 256-entry tables applied to the state rounded to
        8 bits (what the output has anyway). The tables are mirror images and the flip levels
        symmetric (hi = 255 - lo), so with t = s XOR label (s for a background pixel, 255 - s
        for a person) one rule serves both labels: the label flips where t > hi, and the
        output is table[t] XOR label, the table taking the person side above hi.
        """
        s8, label, t = self._s8, self._label, self._bits
        cv2.convertScaleAbs(self._state, dst=s8, alpha=255.0)  # round(255 s), s in [0, 1]
        cv2.bitwise_xor(s8, label, dst=t)
        a8 = self._a8_small
        cv2.LUT(t, self._finish_lut, dst=a8)
        cv2.bitwise_xor(a8, label, dst=a8)
        flip = s8
        cvcompat.compare_scalar(t, self._flip_level, cv2.CMP_GT, flip)
        cv2.bitwise_xor(label, flip, dst=label)
