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
alpha is 1, and the soft blend ``round((I·a + bg·(255 − a)) / 255)`` is computed only in the 16x16
tiles that hold a fractional alpha (the silhouette's edge band, a few percent of the frame),
gathered into long rows. Buffers are allocated once per frame size.

:meth:`CpuCompositor.compose_matte` is the engine's fast path: it takes the refiner's 8-bit alpha
(and the small alpha it was upsampled from, and the frame already shrunk for refining), so the
edge tiles and the blur weights are found at the small size and the full frame is shrunk once
per frame for both stages.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np
import numpy.typing as npt

from bgcam.compose import check_inputs, register
from bgcam.config import ComposeConfig
from bgcam.effects import (
    BackgroundSlot,
    blur_factor,
    blur_sigma,
    box_size,
    disc_kernel,
    disc_radius,
    median_size,
    parse_color,
)
from bgcam.frame import Image, Mask

log = logging.getLogger(__name__)

_F32 = npt.NDArray[np.float32]


class BackgroundBlur:
    """A halo-free blur of the background at a reduced working resolution.

    ``run(image, alpha8, dst)`` writes the blurred background at full size into ``dst``;
    ``alpha8`` (the person's alpha, uint8 0–255, at frame size or any smaller size) ``None``
    blurs the whole frame. ``small``, when given, is ``image`` already shrunk (bilinear) to some
    size; it is used when that is the size this blur starts from (:attr:`pre_size`).
    """

    def __init__(self, frame_size: tuple[int, int], strength: int, blur_type: str) -> None:
        self.frame_size = frame_size
        w, h = frame_size
        self.blur_type = blur_type
        self.sigma_full = sigma = blur_sigma(strength, frame_size)
        self.factor = f = blur_factor(sigma, frame_size) if sigma > 0 else 1
        self.work_size = (ww, wh) = (max(1, round(w / f)), max(1, round(h / f)))
        self.sigma = sigma / f
        self.pre_size = (max(1, round(w * 2 / f)), max(1, round(h * 2 / f)))
        """Bilinear to here first, then an exact 2x box average (factor ≥ 4)."""
        self._pre = np.empty((self.pre_size[1], self.pre_size[0], 3), np.uint8)
        self._small = np.empty((wh, ww, 3), np.uint8)
        self._smallf = np.empty((wh, ww, 3), np.float32)
        self._a8 = np.empty((wh, ww), np.uint8)
        self._a8d = np.empty((wh, ww), np.uint8)
        self._a = np.empty((wh, ww), np.float32)
        self._bgra = np.empty((wh, ww, 4), np.uint8)
        self._w4 = np.empty((wh, ww, 4), np.float32)
        self._stack = np.empty((wh, ww, 4), np.float32)
        self._blur = np.empty((wh, ww, 4), np.float32)
        self._den = np.empty((wh, ww), np.float32)
        self._bgf = np.empty((wh, ww, 3), np.float32)
        self._bg8 = np.empty((wh, ww, 3), np.uint8)
        self._fill8 = np.empty((wh, ww, 3), np.uint8)
        self._kernel = np.array([[1.0]], np.float32)
        self._k3 = np.ones((3, 3), np.uint8)
        self._fill_sigma = max(self.sigma, 1.0)
        levels = np.arange(256, dtype=np.float32)
        self._identity = levels.reshape(1, 256)
        # w = (1 - a)^2 for a = i / 255: the background weight of an alpha level.
        self._weight_lut = ((np.float32(1.0) - levels / np.float32(255.0)) ** 2).reshape(1, 256)
        if blur_type == "lens":
            self._kernel = disc_kernel(disc_radius(self.sigma))
            self._lut = ((levels / 255.0) ** 2.2).astype(np.float32)
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

    def _shrink(self, image: Image, small: Image | None) -> Image:
        f = self.factor
        if f == 1:
            np.copyto(self._small, image)
            return self._small
        if f == 2:
            if small is not None and small.shape[:2] == self._small.shape[:2]:
                return small
            cv2.resize(image, self.work_size, dst=self._small, interpolation=cv2.INTER_LINEAR)
            return self._small
        # Bilinear to twice the working size (a 2x2 sample of each block), then an exact
        # 2x box average: anti-aliased enough for a blur, far cheaper than INTER_AREA.
        pre = self._pre
        if small is not None and small.shape[:2] == pre.shape[:2]:
            pre = small
        else:
            cv2.resize(image, self.pre_size, dst=pre, interpolation=cv2.INTER_LINEAR)
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

    def _normalised(self, small: Image, weights: _F32, sigma: float, box: bool) -> _F32:
        """blur(I·w) / blur(w) as float32 (h, w, 3)."""
        stack, blurred, den = self._stack, self._blur, self._den
        # stack = (B w, G w, R w, w): the image with an opaque fourth channel, times w.
        cv2.cvtColor(small, cv2.COLOR_BGR2BGRA, dst=self._bgra)
        cv2.LUT(self._bgra, self._identity, dst=stack)
        cv2.merge([weights, weights, weights, weights], dst=self._w4)
        cv2.multiply(stack, self._w4, dst=stack)
        if box:
            k = self._kernel_box
            cv2.blur(stack, (k, k), dst=blurred, borderType=cv2.BORDER_REFLECT)
        else:
            cv2.GaussianBlur(stack, (0, 0), sigma, dst=blurred, borderType=cv2.BORDER_REFLECT)
        # Divide the colour channels by the blurred weight (255 · w in the fourth channel).
        cv2.extractChannel(blurred, 3, dst=den)
        np.maximum(den, np.float32(1e-6 * 255.0), out=den)
        cv2.divide(255.0, den, dst=den)
        cv2.merge([den, den, den, den], dst=self._w4)
        cv2.multiply(blurred, self._w4, dst=blurred)
        cv2.cvtColor(blurred, cv2.COLOR_BGRA2BGR, dst=self._bgf)
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

    def run(
        self,
        image: Image,
        alpha8: npt.NDArray[np.uint8] | None,
        dst: Image,
        *,
        small: Image | None = None,
    ) -> Image:
        """Write the blurred background of ``image`` at full size into ``dst``."""
        small = self._shrink(image, small)
        weights = self._weights(alpha8)
        kind = self.blur_type
        if self.sigma_full <= 0:
            filled = self._filled(small, weights) if alpha8 is not None else small
            bg8 = filled
        elif kind in ("gaussian", "box"):
            bgf = self._normalised(small, weights, self.sigma, box=(kind == "box"))
            cv2.convertScaleAbs(bgf, dst=self._bg8)  # rounded, saturated (bgf ≥ 0)
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
        self._blend_n = 0
        self._blend_bufs: tuple[npt.NDArray[np.uint8], ...] = ()
        self._blend_wide: tuple[npt.NDArray[np.uint16], ...] = ()
        self._small_grid: tuple[tuple[int, int], int, tuple[npt.NDArray[np.uint8], ...]] | None
        self._small_grid = None
        self._blur: BackgroundBlur | None = None
        self._slot = BackgroundSlot(self.frame_size)
        self.cfg = cfg
        self.update(cfg)

    def update(self, cfg: ComposeConfig) -> None:
        """Apply new settings; a new background file is opened before the old one is dropped."""
        self._slot.update(cfg)
        blur = self._blur
        if blur is None or (blur.blur_type, blur.sigma_full) != (
            cfg.blur_type,
            blur_sigma(cfg.blur, self.frame_size),
        ):
            self._blur = BackgroundBlur(self.frame_size, cfg.blur, cfg.blur_type)
        self._fill[...] = parse_color(cfg.color)
        self.cfg = cfg

    def close(self) -> None:
        self._slot.close()

    def compose(self, image: Image, alpha: Mask | None) -> Image:
        """The output frame (owned, reused by the next call); ``alpha=None`` hides everything."""
        check_inputs(self.frame_size, image, alpha)
        a8 = None
        if alpha is not None and self.cfg.mode != "off":
            a8 = self._a8
            cv2.convertScaleAbs(alpha, dst=a8, alpha=255.0)  # round(255 · alpha), saturated
        return self._compose8(image, a8, None, None)

    def compose_matte(
        self,
        image: Image,
        alpha8: npt.NDArray[np.uint8],
        alpha8_small: npt.NDArray[np.uint8] | None = None,
        small: Image | None = None,
    ) -> Image:
        """:meth:`compose` with an 8-bit alpha (0–255 at frame size, blended as ``alpha8/255``).

        ``alpha8_small``, when given, must be the alpha that ``alpha8`` was upsampled from
        (bilinear, as :class:`bgcam.refine.MaskRefiner` does): the blend then finds the
        silhouette's tiles and the blur its weights from it instead of from the full-size map.
        ``small`` is ``image`` shrunk (bilinear) to any size; the blur starts from it when that
        is the size it would shrink to itself.
        """
        check_inputs(self.frame_size, image, None)
        w, h = self.frame_size
        if alpha8.shape != (h, w) or alpha8.dtype != np.uint8:
            raise ValueError(
                f"alpha8: expected uint8 ({h}, {w}), got {alpha8.dtype} {alpha8.shape}"
            )
        return self._compose8(image, alpha8, alpha8_small, small)

    def _compose8(
        self,
        image: Image,
        a8: npt.NDArray[np.uint8] | None,
        a8_small: npt.NDArray[np.uint8] | None,
        small: Image | None,
    ) -> Image:
        out = self._out
        mode = self.cfg.mode
        if mode == "off":
            np.copyto(out, image)
            return out
        if mode == "remove":
            np.copyto(out, self._fill)
        elif mode == "replace" and self._slot.current is not None:
            np.copyto(out, self._slot.current.frame())
        else:  # blur, and replace without a background (blur is the safe fallback)
            assert self._blur is not None
            self._blur.run(image, a8_small if a8_small is not None else a8, out, small=small)
        if a8 is not None:
            self._blend_person(image, a8, a8_small, out)
        return out

    def _edge_tiles(
        self, a8: npt.NDArray[np.uint8], a8_small: npt.NDArray[np.uint8] | None
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """(rows, cols) of the tiles that may hold a fractional alpha (0 < a8 < 255)."""
        rows, cols = self._rows, self._cols
        grid = self._grid_of(a8_small) if a8_small is not None else None
        if grid is None:
            # The mean of a tile of the 0/255 mask is > 0 iff it holds a fractional pixel
            # (one such pixel among 256 contributes 255/256, which rounds to 1).
            mask = self._mask
            cv2.inRange(a8, 1, 254, dst=mask)
            hc, wc = rows * TILE, cols * TILE
            cv2.resize(mask[:hc, :wc], (cols, rows), dst=self._tiles, interpolation=cv2.INTER_AREA)
            ty, tx = np.nonzero(self._tiles)
            return ty, tx
        assert a8_small is not None
        m, (pad, lo, hi, k) = grid
        # A bilinear upsample by an integer factor s = TILE / m fills a tile from the m + 2
        # low-resolution pixels around its m x m block: the tile is wholly 0 or wholly 255 when
        # they all are. Min and max over those windows: erode / dilate of the padded map.
        cv2.copyMakeBorder(a8_small, 1, 1, 1, 1, cv2.BORDER_REPLICATE, dst=pad)
        cv2.erode(pad, k, dst=lo, anchor=(0, 0), borderType=cv2.BORDER_REPLICATE)
        cv2.dilate(pad, k, dst=hi, anchor=(0, 0), borderType=cv2.BORDER_REPLICATE)
        tmin = lo[: rows * m : m, : cols * m : m]
        tmax = hi[: rows * m : m, : cols * m : m]
        ty, tx = np.nonzero((tmin < 255) & (tmax > 0))
        return ty, tx

    def _grid_of(
        self, a8_small: npt.NDArray[np.uint8]
    ) -> tuple[int, tuple[npt.NDArray[np.uint8], ...]] | None:
        """(m, buffers) when ``a8_small`` is the frame divided by s = TILE / m; else None."""
        sh, sw = a8_small.shape
        cached = self._small_grid
        if cached is not None and cached[0] == (sw, sh):
            m = cached[1]
            return (m, cached[2]) if m else None
        w, h = self.frame_size
        s = w // sw if sw else 0
        m = TILE // s if s and w == sw * s and h == sh * s and TILE % s == 0 else 0
        bufs: tuple[npt.NDArray[np.uint8], ...] = ()
        if m:  # the padded map, its windowed min and max, the window
            bufs = (
                *(np.empty((sh + 2, sw + 2), np.uint8) for _ in range(3)),
                np.ones((m + 2, m + 2), np.uint8),
            )
        self._small_grid = ((sw, sh), m, bufs)
        return (m, bufs) if m else None

    def _blend_buffers(
        self, n: int
    ) -> tuple[tuple[npt.NDArray[np.uint8], ...], tuple[npt.NDArray[np.uint16], ...]]:
        """Scratch for ``n`` tiles (grown by half again when too small, then reused)."""
        if n > self._blend_n:
            self._blend_n = cap = max(n, self._blend_n * 3 // 2, 64)
            px = cap * TILE * TILE
            self._blend_bufs = tuple(np.empty((1, px, 3), np.uint8) for _ in range(2))
            self._blend_wide = tuple(np.empty((1, px, 3), np.uint16) for _ in range(2))
        return self._blend_bufs, self._blend_wide

    def _blend_person(
        self,
        image: Image,
        a8: npt.NDArray[np.uint8],
        a8_small: npt.NDArray[np.uint8] | None,
        out: Image,
    ) -> None:
        """Put the person over the background already in ``out``: soft alpha blend."""
        mask = self._mask
        # Where alpha is 1: the person as is.
        cv2.threshold(a8, 254, 255, cv2.THRESH_BINARY, dst=mask)
        cv2.copyTo(image, mask, out)
        # Where alpha is fractional: blend, tile by tile (only tiles holding such pixels):
        # out = round((I · a + bg · (255 − a)) / 255), gathered into long rows for speed.
        rows, cols = self._rows, self._cols
        hc, wc = rows * TILE, cols * TILE
        if rows and cols:
            ty, tx = self._edge_tiles(a8, a8_small)
            n = len(ty)
            if n:
                (a3, b3), (x, y) = self._blend_buffers(n)
                px = n * TILE * TILE
                a3, b3, x, y = a3[:, :px], b3[:, :px], x[:, :px], y[:, :px]
                ob = _tile_view(out, rows, cols)
                bg = ob[ty, tx].reshape(1, px, 3)
                im = _tile_view(image, rows, cols)[ty, tx].reshape(1, px, 3)
                al = _tile_view(a8, rows, cols)[ty, tx].reshape(1, px)
                cv2.merge([al, al, al], dst=a3)
                cv2.bitwise_not(a3, dst=b3)  # 255 - a
                np.multiply(im, a3, out=x, dtype=np.uint16)
                np.multiply(bg, b3, out=y, dtype=np.uint16)
                cv2.add(x, y, dst=x)
                cv2.convertScaleAbs(x, dst=bg, alpha=1.0 / 255.0)  # rounded: sums ≤ 65025
                ob[ty, tx] = bg.reshape(n, TILE, TILE, 3)
        h, w = a8.shape
        if wc < w:
            _blend_exact(out[:, wc:], image[:, wc:], a8[:, wc:])
        if hc < h:
            _blend_exact(out[hc:, :wc], image[hc:, :wc], a8[hc:, :wc])


@register("cpu")
def _create(cfg: ComposeConfig, frame_size: tuple[int, int]) -> CpuCompositor:
    return CpuCompositor(cfg, frame_size)
