"""The halo-free background blur of the CPU compositor, at a reduced working resolution.

The background is blurred with the person masked out: ``blur(I · w) / blur(w)`` with
``w = (1 − dilate(α))²`` (a normalised, mask-weighted blur), so a background pixel next to the
person only averages other background pixels, and the region behind the person is filled in from
its surroundings. Median, bilateral and lens blurs are not linear, so the person region is first
filled from that normalised blur and then filtered. Sizes and kernels come from one
:class:`~bgcam.compose.plan.BlurPlan`; the blur runs at its working size and is upsampled once,
straight into the output buffer.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from bgcam.compose.plan import LINEAR_TYPES, BlurPlan, gaussian_ksize
from bgcam.effects import disc_kernel
from bgcam.frame import Image, resize_bilinear

log = logging.getLogger(__name__)

_F32 = npt.NDArray[np.float32]
_WHOLE = ((slice(None), slice(None)),)


class BackgroundBlur:
    """A halo-free blur of the background at a reduced working resolution.

    ``run(image, alpha8, dst)`` writes the blurred background at full size into ``dst``;
    ``alpha8`` (the person's alpha, uint8 0–255, at frame size or any smaller size) ``None``
    blurs the whole frame. ``small``, when given, is ``image`` already shrunk (bilinear) to some
    size (:class:`~bgcam.frame.ShrunkFrame`); it is used when that is the size this blur starts
    from (:attr:`pre_size`).
    """

    def __init__(
        self,
        frame_size: tuple[int, int],
        strength: int,
        blur_type: str,
        plan: BlurPlan | None = None,
    ) -> None:
        self.plan = p = plan or BlurPlan.of(frame_size, strength, blur_type)
        self.frame_size = p.frame_size
        self.blur_type = blur_type
        self.sigma_full = p.sigma_full
        self.factor = p.factor
        self.work_size = (ww, wh) = p.work_size
        self.sigma = p.sigma
        self.pre_size = p.pre_size
        """Bilinear to here first, then an exact 2x box average (factor ≥ 3)."""
        self._pre = np.empty((self.pre_size[1], self.pre_size[0], 3), np.uint8)
        self._small = np.empty((wh, ww, 3), np.uint8)
        self._lin = np.empty((wh, ww, 3), np.float32)
        self._a8 = np.empty((wh, ww), np.uint8)
        self._a8d = np.empty((wh, ww), np.uint8)
        self._a = np.empty((wh, ww), np.float32)
        self._bgra = np.empty((wh, ww, 4), np.uint8)
        self._w4 = np.empty((wh, ww, 4), np.float32)
        self._stack = np.empty((wh, ww, 4), np.float32)
        self._blur = np.empty((wh, ww, 4), np.float32)
        self._den = np.empty((wh, ww), np.float32)
        self._den1 = np.empty((wh, ww), np.float32)
        self._bgf = np.empty((wh, ww, 3), np.float32)
        self._bg8 = np.empty((wh, ww, 3), np.uint8)
        self._fill8 = np.empty((wh, ww, 3), np.uint8)
        self._kernel = np.array([[1.0]], np.float32)
        self._k3 = np.ones((3, 3), np.uint8)
        self._fill_sigma = p.fill_sigma
        levels = np.arange(256, dtype=np.float32)
        # w = (1 - a)^2 for a = i / 255: the background weight of an alpha level.
        self._weight_lut = ((np.float32(1.0) - levels / np.float32(255.0)) ** 2).reshape(1, 256)
        if blur_type == "lens":
            self._kernel = disc_kernel(p.lens_radius)
            self._lut = ((levels / 255.0) ** 2.2).astype(np.float32)
        self._kernel_box = p.box
        self._kernel_median = p.median
        log.debug(
            "blur %s strength %d: sigma %.1f px, computed at 1/%d (%dx%d), sharp weight %.2f",
            blur_type,
            strength,
            p.sigma_full,
            p.factor,
            ww,
            wh,
            p.sharp,
        )

    def reads_image(self, small_size: tuple[int, int] | None) -> bool:
        """Whether :meth:`run`, given a shrunk frame of ``small_size`` (width, height; None:
        none), reads ``image`` itself: unless the blur starts from that shrunk frame
        (:meth:`starts_from`) and adds none of the sharp frame's detail."""
        p = self.plan
        if p.identity or p.sharp > 0:
            return True
        return not self.starts_from(small_size)

    def starts_from(self, small_size: tuple[int, int] | None) -> bool:
        """Whether a shrunk frame of ``small_size`` (width, height) is where this blur starts
        instead of the picture: at factor 2 one of the working size; above, one of the pre
        size, or up to twice it (bilinear to the pre size: at most a 2x shrink, which averages),
        or one row or column short of it (rounding: 1080p's 240x135 for 120x68 at 1/16)."""
        if small_size is None or self.factor == 1:
            return False
        if self.factor == 2:
            return small_size == self.work_size
        (sw, sh), (pw, ph) = small_size, self.pre_size
        return pw - 1 <= sw <= 2 * pw and ph - 1 <= sh <= 2 * ph

    def _shrink(self, image: Image, small: Image | None) -> Image:
        f = self.factor
        if f == 1:
            np.copyto(self._small, image)
            return self._small
        start = None if small is None else (small.shape[1], small.shape[0])
        if f == 2:
            return (
                small
                if small is not None and self.starts_from(start)
                else resize_bilinear(image, self._small)
            )
        # Bilinear to twice the working size (a 2x2 sample of each block), then an exact
        # 2x box average: anti-aliased enough for a blur, far cheaper than INTER_AREA.
        pre = self._pre
        if small is not None and self.starts_from(start):
            pre = small if small.shape == pre.shape else resize_bilinear(small, pre)
        else:
            resize_bilinear(image, pre)
        cv2.resize(pre, self.work_size, dst=self._small, interpolation=cv2.INTER_AREA)
        return self._small

    def _weights(self, alpha8: npt.NDArray[np.uint8] | None) -> _F32:
        """w = (1 - dilate(alpha))^2 at the working size: 1 on clear background."""
        a = self._a
        if alpha8 is None:
            a.fill(1.0)
            return a
        if alpha8.shape == self._a8.shape:
            np.copyto(self._a8, alpha8)
        else:
            cv2.resize(alpha8, self.work_size, dst=self._a8, interpolation=cv2.INTER_LINEAR)
        cv2.dilate(self._a8, self._k3, dst=self._a8d, borderType=cv2.BORDER_REPLICATE)
        cv2.LUT(self._a8d, self._weight_lut, dst=a)
        return a

    def _weighted(self, small: Image, weights: _F32, sigma: float, box: bool) -> _F32:
        """The normalised blur's parts: ``stack`` = (B w, G w, R w, 255 w) and its blur in
        ``_blur``; returns 255 / blur(255 w), the colour channels' divisor, in ``_den``."""
        stack, blurred, den = self._stack, self._blur, self._den
        # stack = (B w, G w, R w, w): the image with an opaque fourth channel, times w.
        cv2.cvtColor(small, cv2.COLOR_BGR2BGRA, dst=self._bgra)
        cv2.merge([weights, weights, weights, weights], dst=self._w4)
        cv2.multiply(self._bgra, self._w4, dst=stack, dtype=cv2.CV_32F)
        if box:
            k = self._kernel_box
            cv2.blur(stack, (k, k), dst=blurred, borderType=cv2.BORDER_REFLECT)
        else:
            cv2.GaussianBlur(stack, (0, 0), sigma, dst=blurred, borderType=cv2.BORDER_REFLECT)
        # Divide the colour channels by the blurred weight (255 · w in the fourth channel).
        cv2.extractChannel(blurred, 3, dst=den)
        np.maximum(den, np.float32(1e-6 * 255.0), out=den)
        cv2.divide(255.0, den, dst=den)
        return den

    def _normalised(self, small: Image, weights: _F32, sigma: float, box: bool) -> _F32:
        """blur(I·w) / blur(w) as float32 (h, w, 3)."""
        den = self._weighted(small, weights, sigma, box)
        cv2.merge([den, den, den, den], dst=self._w4)
        cv2.multiply(self._blur, self._w4, dst=self._blur)
        cv2.cvtColor(self._blur, cv2.COLOR_BGRA2BGR, dst=self._bgf)
        return self._bgf

    def _filled(self, small: Image, weights: _F32) -> Image:
        """The small frame with the person replaced by the surrounding background (uint8,
        rounded): ``w · I + (1 − w) · nb`` with ``nb`` the normalised blur, whose first term
        is the stack the blur started from; all in four-channel float, no numpy broadcast."""
        den = self._weighted(small, weights, self._fill_sigma, box=False)
        np.subtract(np.float32(1.0), weights, out=self._den1)
        cv2.multiply(den, self._den1, dst=den)  # (1 − w) / blur(w)
        cv2.merge([den, den, den, den], dst=self._w4)
        cv2.multiply(self._blur, self._w4, dst=self._blur)
        cv2.add(self._blur, self._stack, dst=self._blur)
        cv2.convertScaleAbs(self._blur, dst=self._bgra)  # rounded, saturated (all ≥ 0)
        cv2.cvtColor(self._bgra, cv2.COLOR_BGRA2BGR, dst=self._fill8)
        return self._fill8

    def run(
        self,
        image: Image,
        alpha8: npt.NDArray[np.uint8] | None,
        dst: Image,
        *,
        small: Image | None = None,
        sharpen: bool = True,
        rects: Sequence[tuple[slice, slice]] | None = None,
    ) -> Image:
        """Write the blurred background of ``image`` at full size into ``dst`` (the whole
        frame, in one upsample: per region measured no faster here, docs/BENCHMARKS.md round
        7); a weak blur's share of the sharp frame only in the regions ``rects`` (rows,
        columns) when given.
        ``sharpen=False`` leaves out a weak blur's share of the sharp frame: the caller then
        adds it with :meth:`sharpen` where the background shows."""
        p = self.plan
        if p.identity:
            for ys, xs in _WHOLE if rects is None else rects:
                np.copyto(dst[ys, xs], image[ys, xs])
            return dst
        bg8 = self.small_background(image, alpha8, small)
        if rects is None:
            self.upsample(bg8, dst)
            if sharpen:
                self.sharpen(image, dst)
            return dst
        self.upsample(bg8, dst)
        if sharpen:
            for ys, xs in rects:
                self.sharpen(image[ys, xs], dst[ys, xs])
        return dst

    def small_background(
        self, image: Image, alpha8: npt.NDArray[np.uint8] | None, small: Image | None = None
    ) -> Image:
        """The blurred background at the working size (owned, reused by the next call), before
        :meth:`run` upsamples it and adds a weak blur's share of the sharp frame."""
        p = self.plan
        small = self._shrink(image, small)
        weights = self._weights(alpha8)
        kind = self.blur_type
        if kind in ("gaussian", "box") and p.normalised:
            bgf = self._normalised(small, weights, p.sigma, box=(kind == "box"))
            cv2.convertScaleAbs(bgf, dst=self._bg8)  # rounded, saturated (bgf ≥ 0)
            bg8 = self._bg8
        else:
            filled = self._filled(small, weights)
            if p.sigma <= 0 and kind in LINEAR_TYPES:  # nothing left to blur: the filled frame
                np.copyto(self._bg8, filled)
            elif kind == "gaussian":  # weak: the filled frame, plainly blurred
                k = gaussian_ksize(p.sigma)
                cv2.GaussianBlur(
                    filled, (k, k), p.sigma, dst=self._bg8, borderType=cv2.BORDER_REFLECT
                )
            elif kind == "box":
                cv2.blur(filled, (p.box, p.box), dst=self._bg8, borderType=cv2.BORDER_REFLECT)
            elif kind == "median":
                cv2.medianBlur(filled, self._kernel_median, dst=self._bg8)
            elif kind == "bilateral":
                cv2.bilateralFilter(filled, p.bilateral_d, 60.0, p.bilateral_sigma, dst=self._bg8)
            else:  # lens: a disc in (approximately) linear light, so highlights bloom
                lin = cv2.LUT(filled, self._lut, dst=self._lin)
                cv2.filter2D(lin, -1, self._kernel, dst=self._bgf, borderType=cv2.BORDER_REFLECT)
                np.maximum(self._bgf, 0.0, out=self._bgf)
                cv2.pow(self._bgf, 1.0 / 2.2, dst=self._bgf)
                cv2.convertScaleAbs(self._bgf, dst=self._bg8, alpha=255.0)  # rounded, saturated
            bg8 = self._bg8
        return bg8

    def upsample(self, bg8: Image, dst: Image) -> None:
        """The working-size background ``bg8`` upsampled (:func:`~bgcam.frame.resize_bilinear`)
        into ``dst``, or copied when it is already at the frame size."""
        w, h = self.frame_size
        if bg8.shape[:2] == (h, w):
            np.copyto(dst, bg8)
        else:
            resize_bilinear(bg8, dst)

    def sharpen(self, image: Image, dst: Image) -> None:
        """A weak blur's detail finer than its working size, from the frame: blend ``image``'s
        share (:attr:`BlurPlan.sharp`) into the upscaled background ``dst`` (the same region
        of both; nothing when the share is 0)."""
        s = self.plan.sharp
        if s > 0:
            cv2.addWeighted(image, s, dst, 1.0 - s, 0.0, dst=dst)
