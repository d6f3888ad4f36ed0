"""The CPU compositor's output straight in I420, for sinks that send I420 (PipeWire, v4l2loopback).

Converting the composed BGR frame costs a full-frame pass over 3 bytes a pixel (0.4 ms at 720p
in cache, 0.8–0.95 ms at 30 fps with cold caches). :class:`I420Composer` never makes the
BGR frame in the engine's usual case (:meth:`~bgcam.compose.cpu.CpuCompositor.compose_matte`
with the refiner's working-size matte and the tiles):

- **background**: the blur's working-size result (:meth:`BackgroundBlur.small_background`) is
  converted to Y, U and V at its own (small) size, then Y is upsampled to the frame and U, V to
  half the frame with the same bilinear geometry (:func:`~bgcam.frame.resize_bilinear`): 1.5
  bytes a pixel written instead of 3. A replace picture is converted once (a still) or per
  frame (a video); the colour of mode remove is three constants.
- **the person's tiles** (wholly inside it): the camera's tiles that the matte reaches are
  converted in one box (``cvtColor`` is fast on wide rows, slow on a tile's 16 pixels; 16-pixel
  tiles keep the 2x2 chroma blocks lined up) and copied out of it;
- **the silhouette's tiles** (from the same box) **and the margins** (converted per margin) are
  blended with the background in YUV: ``round((I · a + bg · (255 − a)) / 255)`` per plane, Y
  with the alpha of each pixel, U and V with the alpha of each 2x2 block's top-left pixel
  (OpenCV's I420 takes the chroma of that pixel, so this is the blend that conversion would see).

Against ``cvtColor(compose, COLOR_BGR2YUV_I420)`` the result differs by rounding only: at most
2 levels, mean below 0.5 (tests/compose/test_compose_i420.py). Every other case (a weak blur's
share of the sharp frame, no matte, auto-framing, a frame size the tiles do not fit, a blur at
full size) composes BGR and converts it: the same result, at the old cost.
"""

from __future__ import annotations

from typing import cast

import cv2
import numpy as np
import numpy.typing as npt

from bgcam.compose.cpu import CpuCompositor, LazyPicture, TileLayout
from bgcam.compose.tiles import TILE, alpha_rect
from bgcam.effects import ImageBackground
from bgcam.frame import Image, ShrunkFrame, resize_map, warp_linear

__all__ = ["I420", "I420Composer", "i420_planes", "to_bgr", "to_i420"]

I420 = npt.NDArray[np.uint8]
"""An I420 (YU12) frame: (H * 3 / 2, W) uint8, the Y plane then U then V (each (H/2, W/2))."""

_U8 = npt.NDArray[np.uint8]
_S = float(1 << 20)
_BGR2YUV = (
    np.array(
        [
            [102760, 528482, 269484, 16 * _S],
            [460324, -305135, -155188, 128 * _S],
            [-74448, -385875, 460324, 128 * _S],
        ],
        np.float64,
    )
    / _S
)
"""BGR → (Y, U, V) per pixel, with the coefficients of OpenCV's ``COLOR_BGR2YUV_I420`` (BT.601,
video range; within 1 level of it through ``cv2.transform``'s float arithmetic)."""


def i420_planes(buf: I420, h: int, w: int) -> tuple[_U8, _U8, _U8]:
    """Views of the Y (h, w), U and V (h/2, w/2) planes of an I420 buffer (h * 3/2, w)."""
    flat = buf.reshape(-1)
    q = (h // 2) * (w // 2)
    y = flat[: h * w].reshape(h, w)
    u = flat[h * w : h * w + q].reshape(h // 2, w // 2)
    v = flat[h * w + q : h * w + 2 * q].reshape(h // 2, w // 2)
    return y, u, v


def is_i420(image: npt.NDArray[np.uint8]) -> bool:
    """An output frame is I420 when it has one channel (BGR frames have three)."""
    return image.ndim == 2


def to_bgr(image: npt.NDArray[np.uint8]) -> Image:
    """``image`` as BGR: itself when it is, else converted (a new array; the rare readers of the
    output: web preview, cards)."""
    if not is_i420(image):
        return image
    return cast(Image, cv2.cvtColor(image, cv2.COLOR_YUV2BGR_I420))


def to_i420(image: npt.NDArray[np.uint8], dst: I420 | None = None) -> I420:
    """``image`` as I420: itself when it is, else converted into ``dst`` (default: new)."""
    if is_i420(image):
        return image
    return cast(I420, cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420, dst=dst))


def _tile_view(a: _U8, rows: int, cols: int, t: int) -> _U8:
    """A (rows, cols, t, t) view of the top-left t x t tiles of the plane ``a`` (no copy)."""
    s0, s1 = a.strides
    view: _U8 = np.lib.stride_tricks.as_strided(
        a, shape=(rows, cols, t, t), strides=(s0 * t, s1 * t, s0, s1), writeable=True
    )
    return view


def _chroma(buf: I420, h: int, w: int) -> _U8:
    """The U and V planes of an I420 buffer as one (2, h/2, w/2) view."""
    q = (h // 2) * (w // 2)
    return buf.reshape(-1)[h * w : h * w + 2 * q].reshape(2, h // 2, w // 2)


def _uv_tiles(uv: _U8, rows: int, cols: int) -> _U8:
    """A (2, rows, cols, 8, 8) view of the chroma of the frame's tiles (``uv``: :func:`_chroma`)."""
    c = TILE // 2
    s0, s1, s2 = uv.strides
    view: _U8 = np.lib.stride_tricks.as_strided(
        uv, shape=(2, rows, cols, c, c), strides=(s0, s1 * c, s2 * c, s1, s2), writeable=True
    )
    return view


class _Scratch:
    """Flat uint8 / uint16 scratch that grows by half again when too small (no allocation per
    frame once the silhouette's size has been seen)."""

    def __init__(self) -> None:
        self._cap = 0
        self.u8: tuple[_U8, ...] = ()
        self.u16: tuple[npt.NDArray[np.uint16], ...] = ()

    def grow(self, n: int) -> None:
        if n > self._cap:
            self._cap = cap = max(n, self._cap * 3 // 2, 1 << 16)
            self.u8 = tuple(np.empty(cap, np.uint8) for _ in range(4))
            self.u16 = tuple(np.empty(cap, np.uint16) for _ in range(2))

    def blend(self, im: _U8, bg: _U8, a: _U8) -> None:
        """``bg`` = round((im · a + bg · (255 − a)) / 255), all flat and the same length."""
        n = a.size
        x, y = self.u16[0][:n], self.u16[1][:n]
        b = self.u8[3][:n]
        np.multiply(im, a, out=x, dtype=np.uint16)
        cv2.bitwise_not(a, dst=b)
        np.multiply(bg, b, out=y, dtype=np.uint16)
        cv2.add(x, y, dst=x)
        cv2.convertScaleAbs(x, dst=bg, alpha=1.0 / 255.0)


class I420Composer:
    """:class:`CpuCompositor`'s output in I420 (see the module notes), for frames of an even
    size. The returned buffer is owned and reused by the next call."""

    def __init__(self, cpu: CpuCompositor) -> None:
        self.cpu = cpu
        w, h = cpu.frame_size
        if w % 2 or h % 2 or w < 2 or h < 2:
            raise ValueError(f"I420 frames need an even size, got {w}x{h}")
        self._w, self._h = w, h
        self._buf = np.empty((h * 3 // 2, w), np.uint8)
        self._y, self._u, self._v = i420_planes(self._buf, h, w)
        self._uv = _chroma(self._buf, h, w)
        self._yuv_small: Image | None = None
        self._planes_small: list[_U8] = []
        self._block = np.empty(h * 3 // 2 * w, np.uint8)
        """Scratch of one converted block (up to the whole frame)."""
        self._s = _Scratch()
        self._still: tuple[object, I420] | None = None
        """A replace picture that never changes (a still) and its I420."""

    def compose(self, image: Image, alpha: npt.NDArray[np.float32] | None) -> I420:
        """:meth:`CpuCompositor.compose` in I420 (converted: a rare path, fail-closed)."""
        if self.cpu.passes_through():
            return to_i420(image, self._buf)
        return to_i420(self.cpu.compose(image, alpha), self._buf)

    def compose_framed(
        self, picture: LazyPicture, small: Image, alpha8_small: npt.NDArray[np.uint8]
    ) -> I420:
        """:meth:`CpuCompositor.compose_framed` in I420 (converted)."""
        return to_i420(self.cpu.compose_framed(picture, small, alpha8_small), self._buf)

    def compose_matte(self, frame: ShrunkFrame, alpha8_small: npt.NDArray[np.uint8]) -> I420:
        """:meth:`CpuCompositor.compose_matte` in I420, the BGR frame never made when the tiles
        apply and the background needs no sharp frame."""
        cpu = self.cpu
        image = frame.image
        if cpu.passes_through():
            return to_i420(image, self._buf)
        # The background first: a weak blur (which needs the sharp frame) gives up before any
        # work, and the tiles are classified only when they are used.
        written = self._background(image, alpha8_small, frame)
        layout = cpu.tile_layout(alpha8_small) if written else None
        if layout is None:  # that blur, or a frame no whole number of the matte's tiles (rare)
            return to_i420(cpu.compose_matte(frame, alpha8_small), self._buf)
        seen = layout.tmax > 0
        tr, tc = np.flatnonzero(seen.any(1)), np.flatnonzero(seen.any(0))
        if len(tr):
            # The camera's tiles the matte reaches, converted in one box: cvtColor is fast on
            # wide rows, slow on a tile's 16 pixels.
            r0, c0 = int(tr[0]), int(tc[0])
            t = TILE
            by, bx = slice(r0 * t, (int(tr[-1]) + 1) * t), slice(c0 * t, (int(tc[-1]) + 1) * t)
            cam = self._convert(image[by, bx])
            for ys, xs in layout.inside:
                self._copy_block(cam, ys, xs, r0 * t, c0 * t)
            ty, tx = np.nonzero((layout.tmin < 255) & seen)
            if len(ty):
                self._edge_tiles(cam, layout, ty, tx, r0, c0)
        s = layout.grid.s
        for ys, xs in layout.margins:
            a8 = alpha_rect(alpha8_small, s, xs.start, ys.start, xs.stop, ys.stop)
            self._block_put(image, ys, xs, a8)
        return self._buf

    def _background(
        self, image: Image, alpha8_small: npt.NDArray[np.uint8], frame: ShrunkFrame
    ) -> bool:
        """The background straight into the I420 planes; False when that is not cheaper here
        (a weak blur's share of the sharp frame, or a blur at full size): nothing written."""
        cpu = self.cpu
        if cpu.cfg.mode == "remove":
            color = np.full((2, 2, 3), cpu.remove_color, np.uint8)
            yuv = cv2.cvtColor(color, cv2.COLOR_BGR2YUV_I420).reshape(-1)
            self._y.fill(int(yuv[0]))
            self._u.fill(int(yuv[4]))
            self._v.fill(int(yuv[5]))
            return True
        current = cpu.replacement
        if current is not None:
            picture = current.frame()
            if isinstance(current, ImageBackground):  # a still: converted once
                if self._still is None or self._still[0] is not current:
                    self._still = (current, to_i420(picture))
                np.copyto(self._buf, self._still[1])
            else:
                to_i420(picture, self._buf)
            return True
        blur = cpu.blur
        assert blur is not None
        if blur.plan.sharp > 0 or blur.factor == 1:
            return False
        small = blur.small_background(image, alpha8_small, frame.small)
        self._upsample(small)
        return True

    def _upsample(self, small: Image) -> None:
        """Y, U, V of the working-size background, upsampled into the planes: Y to the frame,
        U and V sampled where the frame's even pixels fall (what the I420 of the upsampled BGR
        background holds)."""
        sh, sw = small.shape[:2]
        if self._yuv_small is None or self._yuv_small.shape[:2] != (sh, sw):
            self._yuv_small = np.empty((sh, sw, 3), np.uint8)
            self._planes_small = [np.empty((sh, sw), np.uint8) for _ in range(3)]
        cv2.transform(small, _BGR2YUV, dst=self._yuv_small)
        cv2.split(self._yuv_small, self._planes_small)
        ys, us, vs = self._planes_small
        m = resize_map(sw, sh, self._w, self._h)
        warp_linear(ys, m, self._y)
        half = m.copy()
        half[:, :2] *= 2.0  # chroma pixel (x, y) is the frame's pixel (2x, 2y)
        warp_linear(us, half, self._u)
        warp_linear(vs, half, self._v)

    def _convert(self, bgr: Image) -> tuple[_U8, _U8]:
        """``bgr`` (even sides) in I420 in the block scratch: its Y and its U, V (as one
        (2, h/2, w/2) view: the planes follow each other)."""
        bh, bw = bgr.shape[:2]
        n = bh * bw
        dst = self._block[: n * 3 // 2].reshape(bh * 3 // 2, bw)
        cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420, dst=dst)
        return dst[:bh], _chroma(dst, bh, bw)

    def _block_put(self, image: Image, ys: slice, xs: slice, a8: npt.NDArray[np.uint8]) -> None:
        """The region (ys, xs) of ``image`` (even bounds) converted and blended over the
        background there by ``a8`` (the region's alpha)."""
        y, uv = self._convert(image[ys, xs])
        cy, cx = slice(ys.start // 2, ys.stop // 2), slice(xs.start // 2, xs.stop // 2)
        sc = self._s
        ac = a8[np.newaxis, ::2, ::2]  # broadcast over U and V
        for dst, src, a in ((self._y[ys, xs], y, a8), (self._uv[:, cy, cx], uv, ac)):
            n = src.size
            sc.grow(n)
            bg, im, al = sc.u8[0][:n], sc.u8[1][:n], sc.u8[2][:n]
            np.copyto(bg.reshape(dst.shape), dst)
            np.copyto(im.reshape(src.shape), src)
            np.copyto(al.reshape(src.shape), a)
            sc.blend(im, bg, al)
            np.copyto(dst, bg.reshape(dst.shape))

    def _copy_block(self, cam: tuple[_U8, _U8], ys: slice, xs: slice, oy: int, ox: int) -> None:
        """The region (ys, xs) of the frame from the converted box ``cam`` at (ox, oy)."""
        y0, y1, x0, x1 = ys.start - oy, ys.stop - oy, xs.start - ox, xs.stop - ox
        np.copyto(self._y[ys, xs], cam[0][y0:y1, x0:x1])
        cy, cx = slice(ys.start // 2, ys.stop // 2), slice(xs.start // 2, xs.stop // 2)
        np.copyto(self._uv[:, cy, cx], cam[1][:, y0 // 2 : y1 // 2, x0 // 2 : x1 // 2])

    def _edge_tiles(
        self,
        cam: tuple[_U8, _U8],
        layout: TileLayout,
        ty: npt.NDArray[np.intp],
        tx: npt.NDArray[np.intp],
        r0: int,
        c0: int,
    ) -> None:
        """Blend the silhouette's tiles (ty, tx), the camera's from the converted box ``cam``
        whose first tile is (r0, c0): the planes' tiles gathered into one long row (Y, then U
        and V), blended at once, put back."""
        grid, rows, cols = layout.grid, layout.rows, layout.cols
        n = len(ty)
        t, c = TILE, TILE // 2
        ny = n * t * t
        total = ny + 2 * n * c * c
        sc = self._s
        sc.grow(total)
        bg, im, al = sc.u8[0][:total], sc.u8[1][:total], sc.u8[2][:total]
        tiles_al = al[:ny].reshape(n, t, t)
        grid.tiles(ty, tx, rows, cols, tiles_al)
        np.copyto(al[ny:].reshape(2, n, c, c), tiles_al[:, ::2, ::2])
        br, bc = ty - r0, tx - c0
        (by, buv), (hy, hx) = cam, cam[0].shape
        out_y, out_uv = _tile_view(self._y, rows, cols, t), _uv_tiles(self._uv, rows, cols)
        bg_y, bg_uv = bg[:ny].reshape(n, t, t), bg[ny:].reshape(2, n, c, c)
        np.copyto(bg_y, out_y[ty, tx])
        np.copyto(bg_uv, out_uv[:, ty, tx])
        np.copyto(im[:ny].reshape(n, t, t), _tile_view(by, hy // t, hx // t, t)[br, bc])
        np.copyto(im[ny:].reshape(2, n, c, c), _uv_tiles(buv, hy // t, hx // t)[:, br, bc])
        sc.blend(im, bg, al)
        out_y[ty, tx] = bg_y
        out_uv[:, ty, tx] = bg_uv
