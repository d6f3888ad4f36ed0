"""The tiles' exact soft blend (:class:`bgcam.compose.tiles.ExactBlend`) and the cover of the
background (:class:`bgcam.compose.tiles.BackgroundCover`)."""

from __future__ import annotations

import numpy as np
import pytest

from bgcam.compose.tiles import TILE, BackgroundCover, ExactBlend


def _reference(image: np.ndarray, bg: np.ndarray, a8: np.ndarray) -> np.ndarray:
    a = a8[..., None].astype(np.int64)
    num = image.astype(np.int64) * a + bg.astype(np.int64) * (255 - a)
    return ((2 * num + 255) // 510).astype(np.uint8)  # round(num / 255), halves up (none occur)


def test_every_pixel_alpha_pair_rounds_exactly() -> None:
    """All 256³ (image, background, alpha) values, in rows of odd lengths (SIMD tails)."""
    levels = np.arange(256, dtype=np.uint8)
    image = np.repeat(levels, 256 * 256)
    bg = np.tile(np.repeat(levels, 256), 256)
    a8 = np.tile(levels, 256 * 256)
    blend = ExactBlend()
    for width in (256 * 256 * 256, 4099, 17):
        n = image.size // width * width
        im3 = np.repeat(image[:n], 3).reshape(-1, width, 3)
        bg3 = np.repeat(bg[:n], 3).reshape(-1, width, 3)
        al = a8[:n].reshape(-1, width)
        want = _reference(im3, bg3, al)
        out = np.empty_like(bg3)
        blend.blend(im3, bg3, al, out)
        assert np.array_equal(out, want), width
        blend.blend(im3, bg3, al)  # in place
        assert np.array_equal(bg3, want), width


def test_views_of_a_frame_blend_in_place_and_leave_the_rest() -> None:
    """A margin strip of a frame (a view whose rows are not adjacent) is written in place."""
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 256, (40, 50, 3), np.uint8)
    image = rng.integers(0, 256, (40, 50, 3), np.uint8)
    a8 = rng.integers(0, 256, (40, 8), np.uint8)
    want = frame.copy()
    want[:, 42:] = _reference(image[:, 42:], frame[:, 42:], a8)
    ExactBlend().blend(image[:, 42:], frame[:, 42:], a8)
    assert np.array_equal(frame, want)


def _blob(rows: int, cols: int, cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[0:rows, 0:cols]
    return np.asarray((yy - cy) ** 2 + (xx - cx) ** 2 < r * r)


@pytest.mark.parametrize("size", [(1280, 720), (648, 364), (37, 23), (15, 300), (300, 15)])
@pytest.mark.parametrize("band", [1, 3, 4])
def test_the_background_cover_holds_every_tile_not_inside_once(
    size: tuple[int, int], band: int
) -> None:
    """Every pixel outside the tiles wholly inside the person (margins included) is in exactly
    one rectangle, for a person moving across the frame, two people, and nobody or everybody."""
    rng = np.random.default_rng(band)
    w, h = size
    cover = BackgroundCover(size, band)
    rows, cols = h // TILE, w // TILE
    cases = [np.zeros((rows, cols), bool), np.ones((rows, cols), bool)]
    for t in np.linspace(-0.3, 1.3, 9):
        cases.append(_blob(rows, cols, rows * 0.8, cols * t, rows * 0.6))
        two = _blob(rows, cols, rows, cols * 0.25, rows * 0.4) | _blob(
            rows, cols, rows * t, cols * 0.75, rows * 0.4
        )
        cases.append(two | (rng.random((rows, cols)) < 0.05))
    for inside in cases:
        need = np.ones((h, w), bool)
        need[: rows * TILE, : cols * TILE] = ~np.repeat(np.repeat(inside, TILE, 0), TILE, 1)
        hits = np.zeros((h, w), np.int32)
        for ys, xs in cover.rects(inside):
            hits[ys, xs] += 1
        assert (hits[need] == 1).all()
        assert hits.max() <= 1
        assert cover.skipped == int((hits == 0).sum())


def test_the_cover_skips_a_wide_person_in_few_rectangles() -> None:
    """A person filling the lower middle of a 720p frame: a handful of rectangles, most of the
    person left out."""
    rows, cols = 45, 80
    inside = np.zeros((rows, cols), bool)
    inside[8:, 20:60] = True
    cover = BackgroundCover((1280, 720))
    rects = cover.rects(inside)
    assert len(rects) <= 4
    assert cover.skipped >= 0.8 * inside.sum() * TILE * TILE
