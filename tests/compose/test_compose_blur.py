"""The background blur's upsample into regions (``BackgroundBlur.upsample``)."""

from __future__ import annotations

import numpy as np
import pytest

from bgcam.compose.blur import BackgroundBlur
from bgcam.compose.plan import BlurPlan
from bgcam.compose.tiles import TILE

# (frame size, strength, exact): the working size; whether regions are bit-exact there.
CASES = [
    ((1280, 720), 60, True),  # 160x90, 1/8
    ((1280, 720), 100, True),  # 80x45, 1/16
    ((1920, 1080), 40, True),  # 160x90, 1/12 (exact too)
    ((1920, 1080), 100, False),  # 120x68: 68/1080 a row
    ((648, 364), 60, True),  # margins past the last whole tile
    ((1288, 724), 60, False),  # 161x91 at 1/8, and margins
    ((37, 23), 60, True),
]


@pytest.mark.parametrize(("size", "strength", "exact"), CASES, ids=lambda v: str(v))
def test_an_upsample_into_regions_equals_the_whole_frames_there(
    size: tuple[int, int], strength: int, exact: bool
) -> None:
    """Each region warped alone (its offset in the map, from a bordered copy) gives the
    whole-frame upsample there: bit for bit at 720p's 1/8 and 1/16 and 1080p's 1/12, else
    within 1 level (the warp's single-precision coordinates; up to a few % of a small region's
    pixels). Random noise: the worst case. Regions start at a tile corner (as the cover's do):
    regions starting elsewhere differed by 1 level even at 1/8 (a start whose source position
    is not a whole working pixel)."""
    rng = np.random.default_rng(strength + size[0])
    w, h = size
    blur = BackgroundBlur(size, strength, "gaussian", BlurPlan.of(size, strength, "gaussian"))
    ww, wh = blur.work_size
    bg8 = rng.integers(0, 256, (wh, ww, 3), np.uint8)
    whole = np.empty((h, w, 3), np.uint8)
    blur.upsample(bg8, whole)
    rects = [(slice(0, h), slice(0, w))]
    rows, cols = -(-h // TILE), -(-w // TILE)
    for _ in range(40):  # as the cover makes them: from tile corners, to tile corners or the end
        r0, c0 = int(rng.integers(0, rows)), int(rng.integers(0, cols))
        y1 = min(h, int(rng.integers(r0 + 1, rows + 1)) * TILE)
        x1 = min(w, int(rng.integers(c0 + 1, cols + 1)) * TILE)
        rects.append((slice(r0 * TILE, y1), slice(c0 * TILE, x1)))
    hc, wc = h // TILE * TILE, w // TILE * TILE
    rects += [(slice(hc, h), slice(0, w)), (slice(0, h), slice(wc, w))]  # the margins
    for ys, xs in rects:
        if ys.start == ys.stop or xs.start == xs.stop:
            continue
        dst = np.zeros((h, w, 3), np.uint8)
        blur.upsample(bg8, dst, [(ys, xs)])
        diff = np.abs(dst[ys, xs].astype(np.int16) - whole[ys, xs])
        assert diff.max() <= (0 if exact else 1)
        dst[ys, xs] = 0
        assert not dst.any()  # nothing written outside the region


def test_a_full_resolution_blur_copies_its_regions() -> None:
    """The exact plan (factor 1) copies the background into the regions alone."""
    size = (64, 48)
    blur = BackgroundBlur(size, 60, "gaussian", BlurPlan.exact(size, 60, "gaussian"))
    bg8 = np.random.default_rng(1).integers(0, 256, (48, 64, 3), np.uint8)
    dst = np.zeros_like(bg8)
    blur.upsample(bg8, dst, [(slice(3, 20), slice(5, 64))])
    np.testing.assert_array_equal(dst[3:20, 5:], bg8[3:20, 5:])
    dst[3:20, 5:] = 0
    assert not dst.any()
