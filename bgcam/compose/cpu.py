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

:meth:`CpuCompositor.compose_matte` is the engine's fast path. It takes the refiner's 8-bit
alpha at the working size (the frame divided by 2, 4 or 8) and never builds the frame-size alpha:
per tile, the minimum and maximum of the upsampled alpha follow from a small window of the small
one, so the tiles wholly inside the person are copied (one slice per run of them), and only the
silhouette's tiles get their alpha upsampled, all in one call, bit-exactly what the full upsample
(:func:`bgcam.frame.upsample_alpha8`) gives there. The blur takes its weights from the small
alpha too, and starts from the frame already shrunk for refining when it is given.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import cv2
import numpy as np
import numpy.typing as npt

from bgcam.compose import check_inputs, check_matte, register
from bgcam.compose.plan import BlurPlan, gaussian_ksize
from bgcam.config import ComposeConfig
from bgcam.effects import BackgroundSlot, blur_sigma, disc_kernel, fill_color, parse_color
from bgcam.frame import Image, Mask, ShrunkFrame, upsample_alpha8

log = logging.getLogger(__name__)

_F32 = npt.NDArray[np.float32]


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
        self._fill_sigma = p.fill_sigma
        levels = np.arange(256, dtype=np.float32)
        self._identity = levels.reshape(1, 256)
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
        p = self.plan
        if p.identity:
            np.copyto(dst, image)
            return dst
        small = self._shrink(image, small)
        weights = self._weights(alpha8)
        kind = self.blur_type
        if kind in ("gaussian", "box") and p.normalised:
            bgf = self._normalised(small, weights, p.sigma, box=(kind == "box"))
            cv2.convertScaleAbs(bgf, dst=self._bg8)  # rounded, saturated (bgf ≥ 0)
            bg8 = self._bg8
        else:
            filled = self._filled(small, weights)
            if kind == "gaussian":  # weak: the filled frame, plainly blurred
                if p.sigma > 0:
                    k = gaussian_ksize(p.sigma)
                    cv2.GaussianBlur(
                        filled, (k, k), p.sigma, dst=self._bg8, borderType=cv2.BORDER_REFLECT
                    )
                else:
                    np.copyto(self._bg8, filled)
            elif kind == "box":
                cv2.blur(filled, (p.box, p.box), dst=self._bg8, borderType=cv2.BORDER_REFLECT)
            elif kind == "median":
                cv2.medianBlur(filled, self._kernel_median, dst=self._bg8)
            elif kind == "bilateral":
                cv2.bilateralFilter(filled, p.bilateral_d, 60.0, p.bilateral_sigma, dst=self._bg8)
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
        if p.sharp > 0:  # a weak blur: the detail finer than the working size, from the frame
            cv2.addWeighted(image, p.sharp, dst, 1.0 - p.sharp, 0.0, dst=dst)
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


def _alpha_rect(
    a8s: npt.NDArray[np.uint8], s: int, x0: int, y0: int, x1: int, y1: int
) -> npt.NDArray[np.uint8]:
    """``upsample_alpha8(a8s)[y0:y1, x0:x1]`` for an upsample by the integer ``s`` (x0 and y0
    multiples of s), computed from the part of ``a8s`` it depends on (plus one pixel).

    Bit-exact: an upsample by an integer factor commutes with shifts by whole source pixels.
    """
    sh, sw = a8s.shape
    sx0, sy0 = max(0, x0 // s - 1), max(0, y0 // s - 1)
    sx1, sy1 = min(sw, -(-x1 // s) + 1), min(sh, -(-y1 // s) + 1)
    part = a8s[sy0:sy1, sx0:sx1]
    up = cv2.resize(part, ((sx1 - sx0) * s, (sy1 - sy0) * s), interpolation=cv2.INTER_LINEAR)
    ox, oy = x0 - sx0 * s, y0 - sy0 * s
    return cast(npt.NDArray[np.uint8], up[oy : oy + y1 - y0, ox : ox + x1 - x0])


@dataclass(slots=True)
class _TileGrid:
    """How the frame's 16x16 tiles sit on a working-size alpha that is the frame / ``s``.

    Each tile of the upsampled alpha depends only on a window of ``m + 2`` x ``m + 2`` small
    pixels (m = TILE / s): its own m x m block and a one-pixel ring. ``pad`` is the small alpha
    with that ring added at the borders; ``lo`` / ``hi`` its minimum / maximum over each window.
    """

    small_size: tuple[int, int]
    s: int
    m: int
    pad: npt.NDArray[np.uint8]
    lo: npt.NDArray[np.uint8]
    hi: npt.NDArray[np.uint8]
    kernel: npt.NDArray[np.uint8]

    @classmethod
    def of(cls, frame_size: tuple[int, int], small_size: tuple[int, int]) -> _TileGrid | None:
        """The grid, or None unless the frame is exactly s > 1 times ``small_size``, s | TILE."""
        (w, h), (sw, sh) = frame_size, small_size
        s = w // sw
        if s < 2 or TILE % s or (w, h) != (sw * s, sh * s):
            return None
        m = TILE // s
        pad, lo, hi = (np.empty((sh + 2, sw + 2), np.uint8) for _ in range(3))
        return cls((sw, sh), s, m, pad, lo, hi, np.ones((m + 2, m + 2), np.uint8))

    def classify(
        self, a8s: npt.NDArray[np.uint8], rows: int, cols: int
    ) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
        """Per tile, the minimum and maximum of the upsampled alpha, found on the small one.

        A bilinear upsample never leaves the range of the pixels it interpolates, and it reaches
        0 or 255 across a whole tile exactly when all pixels of its window are 0 or 255.
        """
        cv2.copyMakeBorder(a8s, 1, 1, 1, 1, cv2.BORDER_REPLICATE, dst=self.pad)
        cv2.erode(
            self.pad, self.kernel, dst=self.lo, anchor=(0, 0), borderType=cv2.BORDER_REPLICATE
        )
        cv2.dilate(
            self.pad, self.kernel, dst=self.hi, anchor=(0, 0), borderType=cv2.BORDER_REPLICATE
        )
        m = self.m
        return self.lo[: rows * m : m, : cols * m : m], self.hi[: rows * m : m, : cols * m : m]

    def tiles(
        self, ty: npt.NDArray[np.intp], tx: npt.NDArray[np.intp], rows: int, cols: int
    ) -> npt.NDArray[np.uint8]:
        """The upsampled alpha of tiles (ty, tx), shape (n, TILE, TILE), bit-exact.

        Their windows are stacked into one tall image and upsampled in one call: the interior of
        each upsampled window depends on that window alone.
        """
        m, s, k = self.m, self.s, self.m + 2
        st = self.pad.strides
        windows = np.lib.stride_tricks.as_strided(
            self.pad, shape=(rows, cols, k, k), strides=(st[0] * m, st[1] * m, st[0], st[1])
        )
        n = len(ty)
        stack = windows[ty, tx].reshape(n * k, k)
        up = cv2.resize(stack, (k * s, n * k * s), interpolation=cv2.INTER_LINEAR)
        inner = up.reshape(n, k * s, k * s)[:, s : s + TILE, s : s + TILE]
        return cast(npt.NDArray[np.uint8], inner)


class CpuCompositor:
    """Modes blur / replace / remove / off on the CPU, for frames of one size."""

    name = "cpu"

    def __init__(
        self, cfg: ComposeConfig, frame_size: tuple[int, int], *, exact: bool = False
    ) -> None:
        """``exact``: blur wholly at full resolution (:meth:`BlurPlan.exact`), the reference
        the fast plans are measured against; far too slow for live use."""
        self.frame_size = (int(frame_size[0]), int(frame_size[1]))
        self.exact = exact
        w, h = self.frame_size
        self._out = np.empty((h, w, 3), np.uint8)
        self._fill = np.empty((h, w, 3), np.uint8)
        self._fill_color: tuple[int, int, int] | None = None
        self._a8 = np.empty((h, w), np.uint8)
        self._mask = np.empty((h, w), np.uint8)
        self._rows, self._cols = h // TILE, w // TILE
        self._tiles = np.empty((self._rows, self._cols), np.uint8)
        # Scratch of _copy_tiles: the inside flags with a zero column each side, their steps.
        self._runs_pad = np.zeros((self._rows, self._cols + 2), np.int8)
        self._runs_edges = np.empty((self._rows, self._cols + 1), np.int8)
        self._blend_n = 0
        self._blend_bufs: tuple[npt.NDArray[np.uint8], ...] = ()
        self._blend_wide: tuple[npt.NDArray[np.uint16], ...] = ()
        self._grid: _TileGrid | None = None
        self._grid_small: tuple[int, int] | None = None
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
            plan = BlurPlan.exact(self.frame_size, cfg.blur, cfg.blur_type) if self.exact else None
            self._blur = BackgroundBlur(self.frame_size, cfg.blur, cfg.blur_type, plan)
        color = parse_color(cfg.color)
        if color != self._fill_color:
            fill_color(self._fill, color)  # once per colour: not a stall on every change
            self._fill_color = color
        self.cfg = cfg

    def close(self) -> None:
        self._slot.close()

    def compose(self, image: Image, alpha: Mask | None) -> Image:
        """The output frame (owned, reused by the next call); ``alpha=None`` hides everything."""
        check_inputs(self.frame_size, image, alpha)
        if self._passes_through():
            np.copyto(self._out, image)
            return self._out
        if alpha is None:
            return self._background(image, None, None)
        a8 = self._a8
        cv2.convertScaleAbs(alpha, dst=a8, alpha=255.0)  # round(255 · alpha), saturated
        out = self._background(image, a8, None)
        self._blend_full(image, a8, out)
        return out

    def compose_matte(self, frame: ShrunkFrame, alpha8_small: npt.NDArray[np.uint8]) -> Image:
        """:meth:`compose` with the refiner's 8-bit matte (see the module notes).

        When the frame is the matte's size times a factor that divides the tile size (the
        refiner's working sizes are), the full-size alpha is never built: the tiles wholly
        inside the person are copied, those on the silhouette get their alpha upsampled alone.
        """
        image = frame.image
        check_inputs(self.frame_size, image, None)
        check_matte(self.frame_size, alpha8_small)
        if self._passes_through():
            np.copyto(self._out, image)
            return self._out
        out = self._background(image, alpha8_small, frame.small)
        grid = self._grid_for(alpha8_small)
        if grid is None:
            a8 = upsample_alpha8(alpha8_small, self.frame_size, self._a8)
            self._blend_full(image, a8, out)
        else:
            self._blend_grid(image, alpha8_small, grid, out)
        return out

    def _passes_through(self) -> bool:
        """Mode off, or a blur of strength 0: the output is the frame itself."""
        mode = self.cfg.mode
        if mode == "off":
            return True
        blurs = mode == "blur" or (mode == "replace" and self._slot.current is None)
        return blurs and self._blur is not None and self._blur.plan.identity

    def _background(
        self, image: Image, alpha8: npt.NDArray[np.uint8] | None, small: Image | None
    ) -> Image:
        """The background (blurred, replaced or a colour) in the output buffer."""
        out = self._out
        mode = self.cfg.mode
        if mode == "remove":
            np.copyto(out, self._fill)
        elif mode == "replace" and self._slot.current is not None:
            np.copyto(out, self._slot.current.frame())
        else:  # blur, and replace without a background (blur is the safe fallback)
            assert self._blur is not None
            self._blur.run(image, alpha8, out, small=small)
        return out

    def _grid_for(self, a8s: npt.NDArray[np.uint8]) -> _TileGrid | None:
        size = (a8s.shape[1], a8s.shape[0])
        if size != self._grid_small:
            self._grid = _TileGrid.of(self.frame_size, size)
            self._grid_small = size
        return self._grid

    def _blend_full(self, image: Image, a8: npt.NDArray[np.uint8], out: Image) -> None:
        """Put the person over the background in ``out``, with a frame-size alpha."""
        mask = self._mask
        # Where alpha is 1: the person as is.
        cv2.threshold(a8, 254, 255, cv2.THRESH_BINARY, dst=mask)
        cv2.copyTo(image, mask, out)
        rows, cols = self._rows, self._cols
        if rows and cols:
            # The mean of a tile of the 0/255 mask is > 0 iff it holds a fractional pixel
            # (one such pixel among 256 contributes 255/256, which rounds to 1).
            cv2.inRange(a8, 1, 254, dst=mask)
            hc, wc = rows * TILE, cols * TILE
            cv2.resize(mask[:hc, :wc], (cols, rows), dst=self._tiles, interpolation=cv2.INTER_AREA)
            ty, tx = np.nonzero(self._tiles)
            if len(ty):
                self._blend_tiles(image, out, ty, tx, _tile_view(a8, rows, cols)[ty, tx])
        self._blend_margins(image, out, lambda x0, y0, x1, y1: a8[y0:y1, x0:x1])

    def _blend_grid(
        self, image: Image, a8s: npt.NDArray[np.uint8], grid: _TileGrid, out: Image
    ) -> None:
        """Put the person over the background in ``out``, from the working-size alpha."""
        rows, cols = self._rows, self._cols
        if rows and cols:
            tmin, tmax = grid.classify(a8s, rows, cols)
            self._copy_tiles(image, out, tmin == 255)
            ty, tx = np.nonzero((tmin < 255) & (tmax > 0))
            if len(ty):
                self._blend_tiles(image, out, ty, tx, grid.tiles(ty, tx, rows, cols))
        s = grid.s
        self._blend_margins(image, out, lambda x0, y0, x1, y1: _alpha_rect(a8s, s, x0, y0, x1, y1))

    def _copy_tiles(self, image: Image, out: Image, inside: npt.NDArray[np.bool_]) -> None:
        """Copy ``image`` into ``out`` over the tiles marked ``inside``: one slice per run of
        such tiles in a tile row, runs with the same columns in consecutive rows merged."""
        padded, edges = self._runs_pad, self._runs_edges  # (rows, cols + 2), (rows, cols + 1)
        padded[:, 1:-1] = inside
        np.subtract(padded[:, 1:], padded[:, :-1], out=edges)
        starts_r, starts_c = np.nonzero(edges == 1)
        _, ends_c = np.nonzero(edges == -1)
        block: list[int] | None = None  # [first row, last row, c0, c1]
        for r, c0, c1 in zip(starts_r.tolist(), starts_c.tolist(), ends_c.tolist(), strict=True):
            if block is not None and block[1] == r - 1 and block[2:] == [c0, c1]:
                block[1] = r
                continue
            if block is not None:
                _copy_block(image, out, *block)
            block = [r, r, c0, c1]
        if block is not None:
            _copy_block(image, out, *block)

    def _blend_buffers(
        self, n: int
    ) -> tuple[tuple[npt.NDArray[np.uint8], ...], tuple[npt.NDArray[np.uint16], ...]]:
        """Scratch for ``n`` tiles (grown by half again when too small, then reused)."""
        if n > self._blend_n:
            self._blend_n = cap = max(n, self._blend_n * 3 // 2, 64)
            px = cap * TILE * TILE
            self._blend_bufs = (
                *(np.empty((1, px, 3), np.uint8) for _ in range(2)),
                np.empty((1, px), np.uint8),
            )
            self._blend_wide = tuple(np.empty((1, px, 3), np.uint16) for _ in range(2))
        return self._blend_bufs, self._blend_wide

    def _blend_tiles(
        self,
        image: Image,
        out: Image,
        ty: npt.NDArray[np.intp],
        tx: npt.NDArray[np.intp],
        alpha: npt.NDArray[np.uint8],
    ) -> None:
        """Soft blend in the tiles (ty, tx), whose alpha is ``alpha`` (n, TILE, TILE):
        out = round((I · a + bg · (255 − a)) / 255), gathered into one long row for speed."""
        rows, cols = self._rows, self._cols
        n = len(ty)
        px = n * TILE * TILE
        (a3, b3, al), (x, y) = self._blend_buffers(n)
        a3, b3, al, x, y = a3[:, :px], b3[:, :px], al[:, :px], x[:, :px], y[:, :px]
        np.copyto(al.reshape(n, TILE, TILE), alpha)
        ob = _tile_view(out, rows, cols)
        bg = ob[ty, tx].reshape(1, px, 3)
        im = _tile_view(image, rows, cols)[ty, tx].reshape(1, px, 3)
        cv2.merge([al, al, al], dst=a3)
        cv2.bitwise_not(a3, dst=b3)  # 255 - a
        np.multiply(im, a3, out=x, dtype=np.uint16)
        np.multiply(bg, b3, out=y, dtype=np.uint16)
        cv2.add(x, y, dst=x)
        cv2.convertScaleAbs(x, dst=bg, alpha=1.0 / 255.0)  # rounded: sums ≤ 65025
        ob[ty, tx] = bg.reshape(n, TILE, TILE, 3)

    def _blend_margins(
        self,
        image: Image,
        out: Image,
        alpha_of: Callable[[int, int, int, int], npt.NDArray[np.uint8]],
    ) -> None:
        """Blend the right and bottom strips that whole tiles do not cover (frame sizes that
        are not multiples of TILE); ``alpha_of(x0, y0, x1, y1)`` gives their alpha."""
        w, h = self.frame_size
        hc, wc = self._rows * TILE, self._cols * TILE
        if wc < w:
            _blend_exact(out[:, wc:], image[:, wc:], alpha_of(wc, 0, w, h))
        if hc < h:
            _blend_exact(out[hc:, :wc], image[hc:, :wc], alpha_of(0, hc, wc, h))


def _copy_block(image: Image, out: Image, r0: int, r1: int, c0: int, c1: int) -> None:
    """Copy tile rows r0..r1 (inclusive), tile columns c0..c1 (exclusive) of image into out."""
    ys, xs = slice(r0 * TILE, (r1 + 1) * TILE), slice(c0 * TILE, c1 * TILE)
    np.copyto(out[ys, xs], image[ys, xs])


@register("cpu")
def _create(cfg: ComposeConfig, frame_size: tuple[int, int]) -> CpuCompositor:
    return CpuCompositor(cfg, frame_size)
