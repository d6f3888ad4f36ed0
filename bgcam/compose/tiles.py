"""The frame's 16x16 tiles: where the CPU compositor's soft blend is computed.

The person is copied over the background where alpha is 1, and the soft blend only in the tiles
that hold a fractional alpha (the silhouette's edge band, a few percent of the frame).
:class:`TileGrid` finds those tiles from the refiner's working-size alpha without building the
frame-size one (see :mod:`bgcam.compose.cpu`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import cv2
import numpy as np
import numpy.typing as npt

from bgcam.frame import Image

TILE = 16
"""Side of the square tiles in which the soft blend is computed."""
WINDOWS_PER_ROW = 32
"""Tiles' windows laid side by side per row for :meth:`TileGrid.tiles`' one upsample (16, 32
and 64 cost the same here; a single row of hundreds was 2x slower)."""


def tile_view(a: npt.NDArray[np.uint8], rows: int, cols: int) -> npt.NDArray[np.uint8]:
    """A (rows, cols, TILE, TILE[, C]) view of the top-left tiles of ``a`` (no copy)."""
    s = a.strides
    shape = (rows, cols, TILE, TILE, *a.shape[2:])
    strides = (s[0] * TILE, s[1] * TILE, s[0], s[1], *s[2:])
    view: npt.NDArray[np.uint8] = np.lib.stride_tricks.as_strided(
        a, shape=shape, strides=strides, writeable=True
    )
    return view


class ExactBlend:
    """The soft blend ``round((image · a + bg · (255 − a)) / 255)`` per channel, exact (the
    rounding of the integer sum, never half-way: 255 is odd), in scratch buffers that grow by
    half again when too small and are then reused (no allocation per frame)."""

    def __init__(self) -> None:
        self._cap = 0
        self._u8: tuple[npt.NDArray[np.uint8], ...] = ()
        self._u16: tuple[npt.NDArray[np.uint16], ...] = ()

    def _grow(self, px: int) -> None:
        if px > self._cap:
            self._cap = cap = max(px, self._cap * 3 // 2, 64 * TILE * TILE)
            self._u8 = (*(np.empty(cap * 3, np.uint8) for _ in range(2)), np.empty(cap, np.uint8))
            self._u16 = tuple(np.empty(cap * 3, np.uint16) for _ in range(2))

    def alpha(self, px: int) -> npt.NDArray[np.uint8]:
        """Scratch for ``px`` alpha values (1-D), for the caller to fill and pass to
        :meth:`blend` (which does not write it); reused by the next call."""
        self._grow(px)
        return self._u8[2][:px]

    def blend(
        self, image: Image, bg: Image, a8: npt.NDArray[np.uint8], dst: Image | None = None
    ) -> None:
        """Blend ``image`` over ``bg`` (both (h, w, 3)) by ``a8`` (h, w) into ``dst`` (default:
        ``bg``, in place); any of them may be a view with contiguous rows."""
        px = a8.size
        self._grow(px)
        shape = (*a8.shape, 3)
        a3, b3 = (b[: px * 3].reshape(shape) for b in self._u8[:2])
        x, y = (b[: px * 3].reshape(shape) for b in self._u16)
        cv2.merge([a8, a8, a8], dst=a3)
        cv2.bitwise_not(a3, dst=b3)  # 255 − a
        np.multiply(image, a3, out=x, dtype=np.uint16)
        np.multiply(bg, b3, out=y, dtype=np.uint16)
        cv2.add(x, y, dst=x)
        # x / 255 rounded (cvRound of the float quotient; sums ≤ 65025 are never half-way)
        cv2.convertScaleAbs(x, dst=bg if dst is None else dst, alpha=1.0 / 255.0)


def alpha_rect(
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
class TileGrid:
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
    stack: npt.NDArray[np.uint8] = field(default_factory=lambda: np.zeros(0, np.uint8))
    """Scratch of :meth:`tiles`: the windows side by side (grown when too small)."""
    up: npt.NDArray[np.uint8] = field(default_factory=lambda: np.zeros(0, np.uint8))
    """Scratch of :meth:`tiles`: the windows upsampled."""

    @classmethod
    def of(cls, frame_size: tuple[int, int], small_size: tuple[int, int]) -> TileGrid | None:
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
        self,
        ty: npt.NDArray[np.intp],
        tx: npt.NDArray[np.intp],
        rows: int,
        cols: int,
        out: npt.NDArray[np.uint8],
    ) -> npt.NDArray[np.uint8]:
        """The upsampled alpha of tiles (ty, tx) into ``out`` (n, TILE, TILE), bit-exact.

        Their windows are laid side by side, :data:`WINDOWS_PER_ROW` to a row, and upsampled
        in one call: the interior of each upsampled window depends on that window alone. Rows
        of windows, not one tall column of them: OpenCV's resize costs per output row, and a
        column of 6-pixel-wide windows made 3x as many rows (0.31 against 0.17 ms for the
        341 silhouette tiles of the person framed in ``bgcam bench`` at 720p).
        """
        m, s, k = self.m, self.s, self.m + 2
        st = self.pad.strides
        windows = np.lib.stride_tricks.as_strided(
            self.pad, shape=(rows, cols, k, k), strides=(st[0] * m, st[1] * m, st[0], st[1])
        )
        n = len(ty)
        per = min(n, WINDOWS_PER_ROW)
        g = -(-n // per)
        full, rest = divmod(n, per)
        if self.stack.size < g * k * per * k:
            self.stack = np.zeros(g * k * per * k, np.uint8)
            self.up = np.empty(g * k * per * k * s * s, np.uint8)
        stack = self.stack[: g * k * per * k].reshape(g, k, per, k)
        by_window = stack.transpose(0, 2, 1, 3)  # (g, per, k, k) view
        picked = windows[ty, tx]
        if full:
            by_window[:full] = picked[: full * per].reshape(full, per, k, k)
        if rest:
            by_window[full, :rest] = picked[full * per :]
        up = self.up[: g * k * s * per * k * s].reshape(g * k * s, per * k * s)
        cv2.resize(
            stack.reshape(g * k, per * k), up.shape[::-1], dst=up, interpolation=cv2.INTER_LINEAR
        )
        inner = up.reshape(g, k * s, per, k * s)[:, s : s + TILE, :, s : s + TILE]
        inner = inner.transpose(0, 2, 1, 3)  # (g, per, TILE, TILE) view
        if full:
            out[: full * per].reshape(full, per, TILE, TILE)[...] = inner[:full]
        if rest:
            out[full * per :] = inner[full, :rest]
        return out


BAND_ROWS = 4
"""Tile rows per band of :class:`BackgroundCover` (64 px)."""
CALL_PX = 32 * 1024
"""A hole holding fewer pixels than this is drawn over (the person covers it afterwards): about
what one more rectangle costs (a warp call ~6 µs here, a pixel of it ~0.35 ns; narrow
rectangles cost more a pixel)."""

Rect = tuple[slice, slice]
"""A frame region: (rows, columns)."""


class BackgroundCover:
    """Rectangles that hold every pixel where the background can show: all but the tiles
    wholly inside the person (and always the margins that whole tiles do not cover).

    The frame is cut into bands of :data:`BAND_ROWS` tile rows. In each band, the widest run
    of columns whose tiles are inside the person in every row of the band is the band's hole;
    the band is then the rectangles left and right of it (the whole band when the hole holds
    fewer than :data:`CALL_PX` pixels). Bands of the same shape one below the other are merged.
    A few rectangles, not one per run of tiles: each costs a call; the inside tiles left in
    them are covered by the person anyway.
    """

    def __init__(self, frame_size: tuple[int, int], band: int = BAND_ROWS) -> None:
        w, h = self.frame_size = (int(frame_size[0]), int(frame_size[1]))
        self.rows, self.cols = rows, cols = h // TILE, w // TILE
        self.band = band
        nb = -(-rows // band) if rows else 0
        self._stack = np.ones((nb * band, cols), np.bool_)
        """The flags, padded with rows inside (neutral for the band's AND)."""
        self._common = np.empty((nb, cols), np.bool_)
        self.whole: list[Rect] = [(slice(0, h), slice(0, w))]
        self.skipped = 0
        """Pixels the last :meth:`rects` left out."""

    def rects(self, inside: npt.NDArray[np.bool_]) -> list[Rect]:
        """The rectangles for ``inside`` (rows, cols): True where a tile is wholly inside."""
        rows, cols, band = self.rows, self.cols, self.band
        w, h = self.frame_size
        self.skipped = 0
        if not (rows and cols):
            return self.whole
        stack, common = self._stack, self._common
        stack[:rows] = inside
        np.logical_and.reduce(stack.reshape(-1, band, cols), axis=1, out=common)
        firsts = common.argmax(axis=1).tolist()
        ends = (cols - common[:, ::-1].argmax(axis=1)).tolist()
        counts = np.count_nonzero(common, axis=1).tolist()
        out: list[Rect] = []
        shape: tuple[int, int] | None = None  # the hole of the rects last appended
        hc, bh = rows * TILE, band * TILE
        for b, (a, e, n) in enumerate(zip(firsts, ends, counts, strict=True)):
            y0, y1 = b * bh, min(hc, (b + 1) * bh)
            if n == 0:
                a = e = 0
            elif n != e - a:  # more than one run: the widest
                a, e = _widest_run(common[b])
            if (e - a) * TILE * (y1 - y0) < CALL_PX:
                a = e = 0
            self.skipped += (e - a) * TILE * (y1 - y0)
            if shape == (a, e):  # the same shape as the band above: extend its rects
                k = 1 if a == e else int(a > 0) + int(e * TILE < w)
                for i in range(len(out) - k, len(out)):
                    ys, xs = out[i]
                    out[i] = (slice(ys.start, y1), xs)
                continue
            shape = (a, e)
            if a == e:
                out.append((slice(y0, y1), slice(0, w)))
                continue
            if a > 0:
                out.append((slice(y0, y1), slice(0, a * TILE)))
            if e * TILE < w:
                out.append((slice(y0, y1), slice(e * TILE, w)))
        if hc < h:
            if shape == (0, 0):
                ys, xs = out[-1]
                out[-1] = (slice(ys.start, h), xs)
            else:
                out.append((slice(hc, h), slice(0, w)))
        return out


def _widest_run(flags: npt.NDArray[np.bool_]) -> tuple[int, int]:
    """The widest run of True in ``flags`` (1-D): (first, end) index."""
    best, start = (0, 0), -1
    for i, v in enumerate([*flags.tolist(), False]):
        if v and start < 0:
            start = i
        elif not v and start >= 0:
            if i - start > best[1] - best[0]:
                best = (start, i)
            start = -1
    return best
