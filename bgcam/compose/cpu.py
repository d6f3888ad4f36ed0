"""The CPU compositor: the sharp person over a blurred, replaced or removed background.

**No halo.** Blurring the whole frame and pasting the person back smears the person's colours
into the background around the silhouette. Here the background is blurred with the person masked
out: ``blur(I · w) / blur(w)`` with ``w = (1 − dilate(α))²`` (a normalised, mask-weighted blur),
so a background pixel next to the person only averages other background pixels, and the region
behind the person is filled in from its surroundings. Median, bilateral and lens blurs are not
linear, so the person region is first filled from that normalised blur and then filtered.

**Speed.** The blur runs at the frame size divided by a power of two chosen from the strength
(``effects.blur_factor``): a strong blur has no detail to lose, so it is computed on a small image
and upsampled once, straight into the output buffer. The person is then copied over it where
alpha is 1, and the soft blend ``bg + (I − bg)·a/255`` is computed only in the 16x16 tiles that
hold a fractional alpha (the silhouette's edge band, a few percent of the frame). Buffers are
allocated once per frame size.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np
import numpy.typing as npt

from bgcam.compose import register
from bgcam.config import ComposeConfig
from bgcam.effects import (
    Background,
    blur_factor,
    blur_sigma,
    box_size,
    disc_kernel,
    disc_radius,
    median_size,
    open_background,
    parse_color,
)
from bgcam.frame import Image, Mask

log = logging.getLogger(__name__)

_F32 = npt.NDArray[np.float32]


class BackgroundBlur:
    """A halo-free blur of the background at a reduced working resolution.

    ``run(image, alpha, dst)`` writes the blurred background at full size into ``dst``; ``alpha``
    ``None`` blurs the whole frame.
    """

    def __init__(self, frame_size: tuple[int, int], strength: int, blur_type: str) -> None:
        self.frame_size = frame_size
        w, h = frame_size
        self.blur_type = blur_type
        self.sigma_full = sigma = blur_sigma(strength, frame_size)
        self.factor = f = blur_factor(sigma, frame_size) if sigma > 0 else 1
        self.work_size = (ww, wh) = (max(1, round(w / f)), max(1, round(h / f)))
        self.sigma = sigma / f
        self._pre_size = (max(1, round(w * 2 / f)), max(1, round(h * 2 / f)))
        self._pre = np.empty((self._pre_size[1], self._pre_size[0], 3), np.uint8)
        self._small = np.empty((wh, ww, 3), np.uint8)
        self._smallf = np.empty((wh, ww, 3), np.float32)
        self._a = np.empty((wh, ww), np.float32)
        self._a2 = np.empty((wh, ww), np.float32)
        self._stack = np.empty((wh, ww, 4), np.float32)
        self._blur = np.empty((wh, ww, 4), np.float32)
        self._den = np.empty((wh, ww, 1), np.float32)
        self._bgf = np.empty((wh, ww, 3), np.float32)
        self._bg8 = np.empty((wh, ww, 3), np.uint8)
        self._fill8 = np.empty((wh, ww, 3), np.uint8)
        self._kernel = np.array([[1.0]], np.float32)
        self._k3 = np.ones((3, 3), np.uint8)
        self._fill_sigma = max(self.sigma, 1.0)
        if blur_type == "lens":
            self._kernel = disc_kernel(disc_radius(self.sigma))
            self._lut = ((np.arange(256, dtype=np.float32) / 255.0) ** 2.2).astype(np.float32)
        self._kernel_box = box_size(self.sigma)
        self._kernel_median = median_size(self.sigma)
        log.debug(
            "blur %s strength %d: sigma %.1f px, computed at 1/%d (%dx%d)",
            blur_type,
            strength,
            sigma,
            f,
            ww,
            wh,
        )

    def _shrink(self, image: Image) -> Image:
        f = self.factor
        if f == 1:
            np.copyto(self._small, image)
        elif f == 2:
            cv2.resize(image, self.work_size, dst=self._small, interpolation=cv2.INTER_LINEAR)
        else:
            # Bilinear to twice the working size (a 2x2 sample of each block), then an exact
            # 2x box average: anti-aliased enough for a blur, far cheaper than INTER_AREA.
            cv2.resize(image, self._pre_size, dst=self._pre, interpolation=cv2.INTER_LINEAR)
            cv2.resize(self._pre, self.work_size, dst=self._small, interpolation=cv2.INTER_AREA)
        return self._small

    def _weights(self, alpha: Mask | None) -> _F32:
        """w = (1 - dilate(alpha))^2 at the working size: 1 on clear background."""
        a = self._a
        if alpha is None:
            a.fill(1.0)
            return a
        cv2.resize(alpha, self.work_size, dst=self._a2, interpolation=cv2.INTER_LINEAR)
        cv2.dilate(self._a2, self._k3, dst=a, borderType=cv2.BORDER_REPLICATE)
        np.subtract(np.float32(1.0), a, out=a)
        np.clip(a, 0.0, 1.0, out=a)
        cv2.multiply(a, a, dst=a)
        return a

    def _normalised(self, small: Image, weights: _F32, sigma: float, box: bool) -> _F32:
        """blur(I·w) / blur(w) as float32 (h, w, 3)."""
        stack = self._stack
        np.multiply(small, weights[..., None], out=stack[..., :3])
        stack[..., 3] = weights
        if box:
            k = self._kernel_box
            cv2.blur(stack, (k, k), dst=self._blur, borderType=cv2.BORDER_REFLECT)
        else:
            cv2.GaussianBlur(stack, (0, 0), sigma, dst=self._blur, borderType=cv2.BORDER_REFLECT)
        den = self._den
        np.maximum(self._blur[..., 3:4], 1e-6, out=den)
        np.divide(self._blur[..., :3], den, out=self._bgf)
        return self._bgf

    def _filled(self, small: Image, weights: _F32) -> Image:
        """The small frame with the person replaced by the surrounding background (uint8)."""
        nb = self._normalised(small, weights, self._fill_sigma, box=False)
        # filled = nb + w * (small - nb)
        np.subtract(small, nb, out=self._smallf)
        np.multiply(self._smallf, weights[..., None], out=self._smallf)
        np.add(self._smallf, nb, out=self._smallf)
        np.clip(self._smallf, 0.0, 255.0, out=self._smallf)
        self._fill8[...] = self._smallf
        return self._fill8

    def run(self, image: Image, alpha: Mask | None, dst: Image) -> Image:
        """Write the blurred background of ``image`` at full size into ``dst``."""
        small = self._shrink(image)
        weights = self._weights(alpha)
        kind = self.blur_type
        if self.sigma_full <= 0:
            filled = self._filled(small, weights) if alpha is not None else small
            bg8 = filled
        elif kind in ("gaussian", "box"):
            bgf = self._normalised(small, weights, self.sigma, box=(kind == "box"))
            np.clip(bgf, 0.0, 255.0, out=bgf)
            self._bg8[...] = bgf
            bg8 = self._bg8
        else:
            filled = self._filled(small, weights)
            if kind == "median":
                cv2.medianBlur(filled, self._kernel_median, dst=self._bg8)
            elif kind == "bilateral":
                d = max(3, 2 * round(self.sigma) + 1)
                cv2.bilateralFilter(filled, d, 60.0, self.sigma, dst=self._bg8)
            else:  # lens: a disc in (approximately) linear light, so highlights bloom
                lin = cv2.LUT(filled, self._lut, dst=self._smallf)
                cv2.filter2D(lin, -1, self._kernel, dst=self._bgf, borderType=cv2.BORDER_REFLECT)
                np.maximum(self._bgf, 0.0, out=self._bgf)
                cv2.pow(self._bgf, 1.0 / 2.2, dst=self._bgf)
                np.multiply(self._bgf, np.float32(255.0), out=self._bgf)
                np.clip(self._bgf, 0.0, 255.0, out=self._bgf)
                self._bg8[...] = self._bgf
            bg8 = self._bg8
        w, h = self.frame_size
        if bg8.shape[:2] == (h, w):
            np.copyto(dst, bg8)
        else:
            cv2.resize(bg8, (w, h), dst=dst, interpolation=cv2.INTER_LINEAR)
        return dst


TILE = 16
"""Side of the square tiles in which the soft blend is computed."""


def _tile_view(a: npt.NDArray[np.uint8], rows: int, cols: int) -> npt.NDArray[np.uint8]:
    """A (rows, cols, TILE, TILE[, C]) view of the top-left tiles of ``a`` (no copy)."""
    s = a.strides
    shape = (rows, cols, TILE, TILE, *a.shape[2:])
    strides = (s[0] * TILE, s[1] * TILE, s[0], s[1], *s[2:])
    view: npt.NDArray[np.uint8] = np.lib.stride_tricks.as_strided(
        a, shape=shape, strides=strides, writeable=True
    )
    return view


def _blend_exact(out: Image, image: Image, a8: npt.NDArray[np.uint8]) -> None:
    """out = out + (image − out) · a8 / 255 (rounded), in place, for small regions."""
    o = out.astype(np.int32)
    o += ((image.astype(np.int32) - o) * a8[..., None].astype(np.int32) + 127) // 255
    out[...] = o


class CpuCompositor:
    """Modes blur / replace / remove / off on the CPU, for frames of one size."""

    name = "cpu"

    def __init__(self, cfg: ComposeConfig, frame_size: tuple[int, int]) -> None:
        self.frame_size = (int(frame_size[0]), int(frame_size[1]))
        w, h = self.frame_size
        self._out = np.empty((h, w, 3), np.uint8)
        self._fill = np.empty((h, w, 3), np.uint8)
        self._a8 = np.empty((h, w), np.uint8)
        self._mask = np.empty((h, w), np.uint8)
        self._rows, self._cols = h // TILE, w // TILE
        self._tiles = np.empty((self._rows, self._cols), np.uint8)
        self._blur: BackgroundBlur | None = None
        self._background: Background | None = None
        self._background_path = ""
        self.cfg = cfg
        self.update(cfg)

    def update(self, cfg: ComposeConfig) -> None:
        """Apply new settings; a new background file is opened before the old one is dropped."""
        if (
            cfg.mode == "replace"
            and cfg.background
            and (self._background is None or cfg.background != self._background_path)
        ):
            new = open_background(cfg.background, self.frame_size)
            if self._background is not None:
                self._background.close()
            self._background, self._background_path = new, cfg.background
        blur = self._blur
        if blur is None or (blur.blur_type, blur.sigma_full) != (
            cfg.blur_type,
            blur_sigma(cfg.blur, self.frame_size),
        ):
            self._blur = BackgroundBlur(self.frame_size, cfg.blur, cfg.blur_type)
        self._fill[...] = parse_color(cfg.color)
        self.cfg = cfg

    def close(self) -> None:
        if self._background is not None:
            self._background.close()
            self._background = None

    def compose(self, image: Image, alpha: Mask | None) -> Image:
        """The output frame (owned, reused by the next call); ``alpha=None`` hides everything."""
        w, h = self.frame_size
        if image.shape != (h, w, 3):
            raise ValueError(f"image: expected shape ({h}, {w}, 3), got {image.shape}")
        if alpha is not None and alpha.shape != (h, w):
            raise ValueError(f"alpha: expected shape ({h}, {w}), got {alpha.shape}")
        out = self._out
        if self.cfg.mode == "off":
            np.copyto(out, image)
            return out
        self._draw_background(image, alpha, out)
        if alpha is not None:
            self._blend_person(image, alpha, out)
        return out

    def _draw_background(self, image: Image, alpha: Mask | None, out: Image) -> None:
        mode = self.cfg.mode
        if mode == "remove":
            np.copyto(out, self._fill)
        elif mode == "replace" and self._background is not None:
            np.copyto(out, self._background.frame())
        else:  # blur, and replace without a background (blur is the safe fallback)
            assert self._blur is not None
            self._blur.run(image, alpha, out)

    def _blend_person(self, image: Image, alpha: Mask, out: Image) -> None:
        """Put the person over the background already in ``out``: soft alpha blend."""
        a8, mask = self._a8, self._mask
        cv2.convertScaleAbs(alpha, dst=a8, alpha=255.0)  # round(255 · alpha), saturated
        # Where alpha is 1: the person as is.
        cv2.threshold(a8, 254, 255, cv2.THRESH_BINARY, dst=mask)
        cv2.copyTo(image, mask, out)
        # Where alpha is fractional: blend, tile by tile (only tiles holding such pixels).
        cv2.inRange(a8, 1, 254, dst=mask)
        rows, cols = self._rows, self._cols
        hc, wc = rows * TILE, cols * TILE
        if rows and cols:
            # The mean of a tile of the 0/255 mask is > 0 iff it holds a fractional pixel
            # (one such pixel among 256 contributes 255/256, which rounds to 1).
            cv2.resize(mask[:hc, :wc], (cols, rows), dst=self._tiles, interpolation=cv2.INTER_AREA)
            ty, tx = np.nonzero(self._tiles)
            if len(ty):
                ob = _tile_view(out, rows, cols)
                ib = _tile_view(image, rows, cols)
                ab = _tile_view(a8, rows, cols)
                o = ob[ty, tx].astype(np.int32)
                o += ((ib[ty, tx].astype(np.int32) - o) * ab[ty, tx][..., None] + 127) // 255
                ob[ty, tx] = o
        h, w = a8.shape
        if wc < w:
            _blend_exact(out[:, wc:], image[:, wc:], a8[:, wc:])
        if hc < h:
            _blend_exact(out[hc:, :wc], image[hc:, :wc], a8[hc:, :wc])


@register("cpu")
def _create(cfg: ComposeConfig, frame_size: tuple[int, int]) -> CpuCompositor:
    return CpuCompositor(cfg, frame_size)
