"""The CPU compositor: the sharp person over a blurred, replaced or removed background.

**No halo.** The background is blurred with the person masked out (a normalised, mask-weighted
blur, :mod:`bgcam.compose.blur`), so the person's colours are never smeared around the silhouette.

**Speed.** The blur runs at the frame size divided by a factor chosen from the strength
(:class:`~bgcam.compose.plan.BlurPlan`; a power of two, or 1.5 times one): a strong blur has no
detail to lose, so it is computed on a small image and upsampled once, straight into the output
buffer (one warp or copy of the whole frame: made per rectangle, only where the background
shows, it measured no faster, see :meth:`CpuCompositor._background`). The person is then
copied over it where alpha is 1, and the soft blend ``round((I·a + bg·(255 − a)) / 255)`` is
computed only in the 16x16 tiles that hold a fractional alpha (the silhouette's edge band, a
few percent of the frame), gathered into long rows (:mod:`bgcam.compose.tiles`). Buffers are
allocated once per frame size.

:meth:`CpuCompositor.compose_matte` is the engine's fast path. It takes the refiner's 8-bit
alpha at the working size (the frame divided by 2, 4 or 8) and never builds the frame-size alpha:
per tile, the minimum and maximum of the upsampled alpha follow from a small window of the small
one, so the tiles wholly inside the person are copied (one slice per run of them), and only the
silhouette's tiles get their alpha upsampled, all in one call, bit-exactly what the full upsample
(:func:`bgcam.frame.upsample_alpha8`) gives there. The blur takes its weights from the small
alpha too, and starts from the frame already shrunk for refining when it is given. A weak blur's
share of the sharp frame (a full-frame blend) is added only in a few rectangles around the
tiles wholly inside the person (:class:`~bgcam.compose.tiles.BackgroundCover`).

With auto-framing, :meth:`CpuCompositor.compose_framed` takes the crop itself: the camera frame
is warped straight into the output over the background, in the bands the matte reaches, and the
silhouette's tiles are blended with the background set aside before (see there).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt

from bgcam.compose import Prepared, check_inputs, check_matte, register
from bgcam.compose.blur import BackgroundBlur
from bgcam.compose.plan import BlurPlan, describe_blur
from bgcam.compose.tiles import (
    TILE,
    BackgroundCover,
    ExactBlend,
    Rect,
    TileGrid,
    alpha_rect,
    tile_view,
)
from bgcam.config import ComposeConfig
from bgcam.effects import Background, BackgroundSlot, blur_sigma, fill_color, parse_color
from bgcam.frame import Image, Mask, ShrunkFrame, upsample_alpha8

log = logging.getLogger(__name__)


class LazyPicture(Protocol):
    """A picture made only where it is needed (:class:`bgcam.studio.FramedPicture`: the
    camera frame through the auto-framing crop)."""

    @property
    def source(self) -> Image:
        """A frame-size picture (any one will do for what the compositor never reads)."""
        ...

    @property
    def bands(self) -> tuple[tuple[int, int, int, int], ...]:
        """Rectangles (x0, y0, x1, y1) holding every pixel where the matte can be above 0."""
        ...

    def draw(self, dst: Image, rects: Sequence[tuple[int, int, int, int]]) -> Image:
        """Write the picture into ``rects`` of ``dst`` (the rest is left as it is)."""
        ...


@dataclass(slots=True)
class CpuPrepared:
    """What :meth:`CpuCompositor.prepare` built for ``cfg`` (None: keep the current one)."""

    cfg: ComposeConfig
    blur: BackgroundBlur | None
    economy: int
    background: Background | None = None
    fill: tuple[tuple[int, int, int], Image] | None = None

    def discard(self) -> None:
        if self.background is not None:
            self.background.close()
            self.background = None


@dataclass(frozen=True, slots=True)
class TileLayout:
    """Where one frame's working-size matte puts the person on the frame's tiles
    (:meth:`CpuCompositor.tile_layout`): what another output format of the same composition
    (:class:`~bgcam.compose.i420.I420Composer`) needs to copy and blend the same pixels."""

    grid: TileGrid
    """The matte's tile grid (``grid.s``: the frame pixels per matte pixel)."""
    rows: int
    cols: int
    tmin: npt.NDArray[np.uint8]
    """Each tile's least upsampled alpha, (rows, cols)."""
    tmax: npt.NDArray[np.uint8]
    """Each tile's greatest upsampled alpha."""
    inside: list[tuple[slice, slice]]
    """The frame regions (rows, columns) of the tiles wholly inside the person, in runs."""
    margins: list[tuple[slice, slice]]
    """The right and bottom strips that whole tiles do not cover."""


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
        # Scratch of _tile_blocks: the flags with a zero column each side, their steps.
        self._runs_pad = np.zeros((self._rows, self._cols + 2), np.bool_)
        self._runs_edges = np.empty((self._rows, self._cols + 1), np.bool_)
        self._exact = ExactBlend()
        self._grid: TileGrid | None = None
        self._grid_small: tuple[int, int] | None = None
        self._in_bands = np.empty((self._rows, self._cols), np.bool_)
        self._inside = np.empty((self._rows, self._cols), np.bool_)
        self._cover = BackgroundCover(self.frame_size)
        self._picture: Image | None = None
        wc, hc = self._cols * TILE, self._rows * TILE
        self._margins: list[tuple[slice, slice]] = []
        """The right and bottom strips that whole tiles do not cover (frame sizes that are not
        multiples of TILE): (rows, columns) each."""
        if wc < w:
            self._margins.append((slice(0, h), slice(wc, w)))
        if hc < h:
            self._margins.append((slice(hc, h), slice(0, wc)))
        self._margin_bg = [np.empty_like(self._out[ys, xs]) for ys, xs in self._margins]
        """:meth:`compose_framed`'s copy of each margin's background."""
        self._blur: BackgroundBlur | None = None
        self._slot = BackgroundSlot(self.frame_size)
        self.economy = 0
        """The governor's cheaper path: the blur at ``2 ** economy`` less resolution."""
        self.cfg = cfg
        self.update(cfg)

    def prepare(self, cfg: ComposeConfig) -> CpuPrepared:
        """The new blur, background and fill colour that ``cfg`` needs (any thread: reads only
        the current setting's identity, builds into new buffers)."""
        economy = self.economy
        prepared = CpuPrepared(cfg, self._new_blur(cfg, economy), economy)
        prepared.background = self._slot.opened(cfg)
        color = parse_color(cfg.color)
        if color != self._fill_color:  # once per colour: not a stall on every change
            w, h = self.frame_size
            prepared.fill = (color, fill_color(np.empty((h, w, 3), np.uint8), color))
        return prepared

    def update(self, cfg: ComposeConfig, prepared: Prepared | None = None) -> None:
        """Apply new settings with what :meth:`prepare` built for them (else built now); a new
        background file is opened before the old one is dropped."""
        if not isinstance(prepared, CpuPrepared) or prepared.cfg != cfg:
            prepared = self.prepare(cfg)
        self._slot.adopt(cfg, prepared.background)
        prepared.background = None
        if prepared.blur is not None and prepared.economy == self.economy:
            self._blur = prepared.blur
        else:  # the governor moved meanwhile (rare): the blur of its level, built now
            self._blur = self._new_blur(cfg, self.economy) or self._blur
        if prepared.fill is not None:
            self._fill_color, self._fill = prepared.fill
        self.cfg = cfg

    def economise(self, level: int) -> str | None:
        """Blur at ``2 ** level`` times less resolution than planned (the governor's cheaper
        path of the same look; 0: as planned). Returns what the blur now does, in plain words,
        or None when level > 0 gives no coarser working size than the current one."""
        cfg, current = self.cfg, self._blur
        plan = BlurPlan.of(self.frame_size, cfg.blur, cfg.blur_type, coarser=level)
        if level > 0 and current is not None and plan.factor <= current.plan.factor:
            return None
        self.economy = level
        self._blur = BackgroundBlur(self.frame_size, cfg.blur, cfg.blur_type, plan)
        return describe_blur(plan)

    def _new_blur(self, cfg: ComposeConfig, economy: int) -> BackgroundBlur | None:
        """The blur of ``cfg`` at ``economy``, or None when the current one is that blur."""
        blur = self._blur
        key = (cfg.blur_type, blur_sigma(cfg.blur, self.frame_size), economy)
        if blur is not None and (blur.blur_type, blur.sigma_full, blur.plan.coarser) == key:
            return None
        plan = (
            BlurPlan.exact(self.frame_size, cfg.blur, cfg.blur_type)
            if self.exact
            else BlurPlan.of(self.frame_size, cfg.blur, cfg.blur_type, coarser=economy)
        )
        return BackgroundBlur(self.frame_size, cfg.blur, cfg.blur_type, plan)

    def close(self) -> None:
        self._slot.close()

    def compose(self, image: Image, alpha: Mask | None) -> Image:
        """The output frame (owned, reused by the next call); ``alpha=None`` hides everything."""
        check_inputs(self.frame_size, image, alpha)
        if self.passes_through():
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
        if self.passes_through():
            np.copyto(self._out, image)
            return self._out
        grid = self._grid_for(alpha8_small)
        if grid is None:
            out = self._background(image, alpha8_small, frame.small)
            a8 = upsample_alpha8(alpha8_small, self.frame_size, self._a8)
            self._blend_full(image, a8, out)
            return out
        # The background (and a weak blur's share of the sharp frame, a full-frame blend) only
        # where it shows: not under the tiles wholly inside the person.
        classes = self._classify(grid, alpha8_small)
        out = self._background(image, alpha8_small, frame.small, rects=self._cover_rects(classes))
        self._blend_grid(image, alpha8_small, grid, out, classes)
        return out

    def compose_framed(
        self, picture: LazyPicture, small: Image, alpha8_small: npt.NDArray[np.uint8]
    ) -> Image:
        """:meth:`compose_matte` of the picture that ``picture`` draws, ``small`` its shrunk
        copy. Bit for bit the same as drawing the whole picture and composing it.

        When the compositor does not read the picture where the matte is 0
        (:meth:`reads_background` of ``small``'s size is False) and the tiles apply, the
        picture is drawn once, straight into the output: the background first; then the
        background of the silhouette's tiles (and of the tiles in the bands that the matte does
        not reach, and of the margins) set aside; the picture drawn over the bands, rounded out
        to whole tiles; those tiles put back, or blended with the picture now under them. The
        tiles wholly inside the person are then done: the framed picture is never made whole
        and copied. Otherwise the picture is drawn into a buffer and composed as usual.
        """
        check_inputs(self.frame_size, picture.source, None)
        check_matte(self.frame_size, alpha8_small)
        w, h = self.frame_size
        rows, cols = self._rows, self._cols
        grid = self._grid_for(alpha8_small)
        whole = self.reads_background(small.shape[1::-1])
        if grid is None or not (rows and cols) or whole:
            if self._picture is None:
                self._picture = np.empty((h, w, 3), np.uint8)
            picture.draw(self._picture, ((0, 0, w, h),) if whole else picture.bands)
            return self.compose_matte(ShrunkFrame(self._picture, small), alpha8_small)
        classes = self._classify(grid, alpha8_small)
        assert classes is not None  # there are whole tiles (above)
        tmin, tmax = classes
        out = self._background(
            picture.source, alpha8_small, small, rects=self._cover_rects(classes)
        )
        in_bands = self._in_bands
        in_bands[...] = False
        rects = []
        for x0, y0, x1, y1 in picture.bands:  # rounded out to whole tiles
            c0, r0, c1, r1 = x0 // TILE, y0 // TILE, -(-x1 // TILE), -(-y1 // TILE)
            in_bands[r0:r1, c0:c1] = True
            rects.append((c0 * TILE, r0 * TILE, min(w, c1 * TILE), min(h, r1 * TILE)))
        tiles = tile_view(out, rows, cols)
        ty, tx = np.nonzero((tmin < 255) & (tmax > 0))
        hy, hx = np.nonzero(in_bands & (tmax == 0))
        edge_bg = tiles[ty, tx]  # copies, taken before the picture covers them
        hole_bg = tiles[hy, hx]
        margins = list(zip(self._margins, self._margin_bg, strict=True))
        for (ys, xs), saved in margins:
            np.copyto(saved, out[ys, xs])
        picture.draw(out, rects)
        tiles[hy, hx] = hole_bg
        if len(ty):
            self._blend_tiles(
                out, out, ty, tx, lambda al: grid.tiles(ty, tx, rows, cols, al), bg=edge_bg
            )
        for (ys, xs), saved in margins:  # the margins' background, blended with the picture
            a8 = alpha_rect(alpha8_small, grid.s, xs.start, ys.start, xs.stop, ys.stop)
            self._exact.blend(out[ys, xs], saved, a8, out[ys, xs])
        return out

    def reads_background(self, small_size: tuple[int, int] | None) -> bool:
        """See :meth:`bgcam.compose.Compositor.reads_background`: the person's tiles are
        copied or blended (a zero alpha gives the background exactly, whatever the picture
        holds there); only a pass-through or a blur that needs the picture itself reads the
        rest."""
        if self.passes_through():
            return True
        mode = self.cfg.mode
        if mode == "remove" or (mode == "replace" and self._slot.current is not None):
            return False
        assert self._blur is not None
        return self._blur.reads_image(small_size)

    def _blurs(self) -> bool:
        """Whether the background is the blur: mode blur, or replace without a background."""
        mode = self.cfg.mode
        return mode == "blur" or (mode == "replace" and self._slot.current is None)

    def passes_through(self) -> bool:
        """Mode off, or a blur of strength 0: the output is the frame itself."""
        if self.cfg.mode == "off":
            return True
        return self._blurs() and self._blur is not None and self._blur.plan.identity

    @property
    def remove_color(self) -> tuple[int, int, int]:
        """Mode remove's colour (BGR)."""
        assert self._fill_color is not None  # set by the first update
        return self._fill_color

    @property
    def replacement(self) -> Background | None:
        """The picture behind the person in mode replace; None in the other modes, and in
        replace without a background (the blur stands in)."""
        return self._slot.current if self.cfg.mode == "replace" else None

    @property
    def blur(self) -> BackgroundBlur | None:
        """The blur, when the background is the blur (mode blur, or replace without a
        background); else None."""
        return self._blur if self._blurs() else None

    def tile_layout(self, alpha8_small: npt.NDArray[np.uint8]) -> TileLayout | None:
        """Where ``alpha8_small`` (the refiner's working-size matte) puts the person on the
        tiles; None when the frame is not a whole number of tiles of that matte, or too small
        for one tile. Valid until the next composition."""
        grid = self._grid_for(alpha8_small)
        if grid is None:
            return None
        classes = self._classify(grid, alpha8_small)
        if classes is None:
            return None
        tmin, tmax = classes
        inside = self._tile_blocks(self._inside)
        return TileLayout(grid, self._rows, self._cols, tmin, tmax, inside, self._margins)

    def _background(
        self,
        image: Image,
        alpha8: npt.NDArray[np.uint8] | None,
        small: Image | None,
        *,
        rects: list[Rect] | None = None,
    ) -> Image:
        """The background (blurred, replaced or a colour) in the output buffer; a weak blur's
        sharp share only in the regions ``rects`` when given (:meth:`_cover_rects`)."""
        out = self._out
        mode = self.cfg.mode
        # One copy or warp of the whole frame: per rectangle measured no faster, even with the
        # person holding 67 % of the frame (a call costs ~6 µs, a pixel ~0.35 ns).
        if mode == "remove":
            np.copyto(out, self._fill)
        elif not self._blurs():
            assert self._slot.current is not None
            np.copyto(out, self._slot.current.frame())
        else:  # blur, and replace without a background (blur is the safe fallback)
            assert self._blur is not None
            self._blur.run(image, alpha8, out, small=small, rects=rects)
        return out

    def _cover_rects(
        self, classes: tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]] | None
    ) -> list[Rect] | None:
        """The rectangles where the background can show (:class:`BackgroundCover`), for a weak
        blur's sharp share (a blend, ~1.5 ns a pixel: worth limiting), else None (finding them
        costs ~30 µs here, and nothing else is made per rectangle: see :meth:`_background`)."""
        blur = self._blur
        if classes is None or not (self._blurs() and blur is not None and blur.plan.sharp > 0):
            return None
        return self._cover.rects(self._inside)

    def _classify(
        self, grid: TileGrid, a8s: npt.NDArray[np.uint8]
    ) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]] | None:
        """Each tile's least and greatest alpha (:meth:`TileGrid.classify`), and
        :attr:`_inside` set to the tiles wholly inside the person; None without whole tiles."""
        if not (self._rows and self._cols):
            return None
        tmin, tmax = grid.classify(a8s, self._rows, self._cols)
        np.equal(tmin, 255, out=self._inside)
        return tmin, tmax

    def _grid_for(self, a8s: npt.NDArray[np.uint8]) -> TileGrid | None:
        size = (a8s.shape[1], a8s.shape[0])
        if size != self._grid_small:
            self._grid = TileGrid.of(self.frame_size, size)
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
                view = tile_view(a8, rows, cols)
                self._blend_tiles(image, out, ty, tx, lambda al: np.copyto(al, view[ty, tx]))
        self._blend_margins(image, out, lambda x0, y0, x1, y1: a8[y0:y1, x0:x1])

    def _blend_grid(
        self,
        image: Image,
        a8s: npt.NDArray[np.uint8],
        grid: TileGrid,
        out: Image,
        classes: tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]] | None,
    ) -> None:
        """Put the person over the background in ``out``, from the working-size alpha and the
        tiles' ``classes`` (:meth:`_classify`, which set :attr:`_inside`)."""
        rows, cols = self._rows, self._cols
        if classes is not None:
            tmin, tmax = classes
            for ys, xs in self._tile_blocks(self._inside):
                np.copyto(out[ys, xs], image[ys, xs])
            ty, tx = np.nonzero((tmin < 255) & (tmax > 0))
            if len(ty):
                self._blend_tiles(image, out, ty, tx, lambda al: grid.tiles(ty, tx, rows, cols, al))
        s = grid.s
        self._blend_margins(image, out, lambda x0, y0, x1, y1: alpha_rect(a8s, s, x0, y0, x1, y1))

    def _tile_blocks(self, flags: npt.NDArray[np.bool_]) -> list[tuple[slice, slice]]:
        """The frame regions (rows, columns) covering the tiles marked in ``flags``: one per
        run of such tiles in a tile row, a run merged with the one before it (in row-major
        order) when that run is the same columns in the row above. The runs' ends are where
        the flags (a False column added each side) change, in row-major order start, end,
        start, end…: one ``flatnonzero`` of a boolean array (numpy's fast path), then a loop
        over the runs (~40 at 720p; 77 → ~25 µs here against ~20 array calls).
        """
        padded, edges = self._runs_pad, self._runs_edges  # (rows, cols + 2), (rows, cols + 1)
        padded[:, 1:-1] = flags
        np.not_equal(padded[:, 1:], padded[:, :-1], out=edges)
        ends = np.flatnonzero(edges).tolist()
        width, t = edges.shape[1], TILE
        blocks: list[tuple[slice, slice]] = []
        last = (-2, -1, -1)  # the previous run: (row, first, end) in tiles
        for i in range(0, len(ends), 2):
            row, first = divmod(ends[i], width)
            run = (row, first, ends[i + 1] - row * width)
            if run == (last[0] + 1, last[1], last[2]):
                ys, xs = blocks[-1]
                blocks[-1] = (slice(ys.start, (row + 1) * t), xs)
            else:
                blocks.append((slice(row * t, (row + 1) * t), slice(first * t, run[2] * t)))
            last = run
        return blocks

    def _blend_tiles(
        self,
        image: Image,
        out: Image,
        ty: npt.NDArray[np.intp],
        tx: npt.NDArray[np.intp],
        alpha_into: Callable[[npt.NDArray[np.uint8]], object],
        bg: npt.NDArray[np.uint8] | None = None,
    ) -> None:
        """Soft blend in the tiles (ty, tx), whose alpha ``alpha_into(al)`` writes into ``al``
        (n, TILE, TILE): out = round((I · a + bg · (255 − a)) / 255), gathered into one long
        row for speed. ``bg``: the tiles' background (n, TILE, TILE, 3), when ``out`` no longer
        holds it (then overwritten)."""
        rows, cols = self._rows, self._cols
        n = len(ty)
        px = n * TILE * TILE
        al = self._exact.alpha(px)
        alpha_into(al.reshape(n, TILE, TILE))
        ob = tile_view(out, rows, cols)
        bg = ob[ty, tx] if bg is None else bg
        im = tile_view(image, rows, cols)[ty, tx]
        self._exact.blend(im.reshape(1, px, 3), bg.reshape(1, px, 3), al.reshape(1, px))
        ob[ty, tx] = bg

    def _blend_margins(
        self,
        image: Image,
        out: Image,
        alpha_of: Callable[[int, int, int, int], npt.NDArray[np.uint8]],
    ) -> None:
        """Blend the margins (:attr:`_margins`); ``alpha_of(x0, y0, x1, y1)`` gives their
        alpha."""
        for ys, xs in self._margins:
            a8 = alpha_of(xs.start, ys.start, xs.stop, ys.stop)
            self._exact.blend(image[ys, xs], out[ys, xs], a8)


@register("cpu")
def _create(cfg: ComposeConfig, frame_size: tuple[int, int]) -> CpuCompositor:
    return CpuCompositor(cfg, frame_size)
