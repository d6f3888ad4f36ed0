"""The tiles' exact soft blend (:class:`bgcam.compose.tiles.ExactBlend`)."""

from __future__ import annotations

import numpy as np

from bgcam.compose.tiles import ExactBlend


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
