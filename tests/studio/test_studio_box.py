"""``bgcam.studio.box``: the person box of a matte, and the pixels its upsample covers."""

from __future__ import annotations

import numpy as np
import pytest

from bgcam.frame import upsample_alpha8
from bgcam.studio.box import BANDS, BoxFinder, reach, reach_bands
from tests.studio.studio_scenes import person_matte


def test_box_of_a_seated_person() -> None:
    box = BoxFinder().find(person_matte(0.4, top=0.3))
    assert box is not None
    assert abs(box.cx - 0.4) < 0.01
    assert abs(box.y0 - 0.3) < 0.02
    assert box.cut_at_bottom
    assert 0.25 < box.width < 0.4


def test_core_is_the_column_halving_the_person_and_hardly_moves_for_an_arm() -> None:
    a = np.zeros((180, 320), np.uint8)
    a[40:120, 100:140] = 255  # a block: the core is its middle column, to a fraction
    box = BoxFinder().find(a)
    assert box is not None and box.core_x == pytest.approx(120 / 320)
    matte = person_matte(0.5, scale=0.6)
    plain = BoxFinder().find(matte)
    matte[110:120, 64:144] = 255  # an arm held out to the left
    patched = BoxFinder().find(matte)
    assert plain is not None and patched is not None
    assert plain.core_x == pytest.approx(0.5, abs=0.01)
    assert plain.cx - patched.cx > 0.09  # the box's centre jumps
    assert plain.core_x - patched.core_x < 0.3 * (plain.cx - patched.cx)  # the core hardly


def test_union_of_two_people_and_specks_ignored() -> None:
    a = person_matte(0.25, scale=0.6)
    a |= person_matte(0.75, scale=0.6)
    a[5, 2] = 255  # a stray pixel in the corner
    box = BoxFinder().find(a)
    assert box is not None
    assert box.x0 < 0.2 and box.x1 > 0.8  # both people
    assert box.y0 > 0.2  # the speck did not stretch it


def test_nobody_in_view() -> None:
    finder = BoxFinder()
    assert finder.find(np.zeros((180, 320), np.uint8)) is None
    specks = np.zeros((180, 320), np.uint8)
    specks[::40, ::40] = 255
    assert finder.find(specks) is None


def test_size_change_and_bad_input() -> None:
    finder = BoxFinder()
    assert finder.find(person_matte(0.5, (320, 180))) is not None
    box = finder.find(person_matte(0.5, (427, 240)))
    assert box is not None and abs(box.cx - 0.5) < 0.01
    with pytest.raises(ValueError, match="expected a uint8"):
        finder.find(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="expected a uint8"):
        finder.find(np.zeros((4, 4), np.float32))


@pytest.mark.parametrize("seed", range(40))
def test_reach_holds_every_pixel_the_upsampled_matte_covers(seed: int) -> None:
    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(5, 60, 2))
    alpha = np.zeros((h, w), np.uint8)
    if seed % 5:  # else: an empty matte, an empty reach
        y0, x0 = int(rng.integers(0, h)), int(rng.integers(0, w))
        y1, x1 = int(rng.integers(y0, h)) + 1, int(rng.integers(x0, w)) + 1
        alpha[y0:y1, x0:x1] = rng.integers(0, 256, (y1 - y0, x1 - x0))
    size = (int(w * rng.uniform(1, 6)), int(h * rng.uniform(1, 6)))
    up = upsample_alpha8(alpha, size)
    x0, y0, x1, y1 = reach(alpha, size)
    assert 0 <= x0 <= x1 <= size[0] and 0 <= y0 <= y1 <= size[1]
    up[y0:y1, x0:x1] = 0
    assert not up.any()
    if not alpha.any():
        assert x0 == x1


def test_reach_is_tight_around_the_person() -> None:
    alpha = person_matte(0.5, scale=0.6)
    x0, y0, x1, y1 = reach(alpha, (1280, 720))
    ys, xs = np.nonzero(upsample_alpha8(alpha, (1280, 720)))
    assert x0 >= xs.min() - 8 and x1 <= xs.max() + 9 and y0 >= ys.min() - 8 and y1 <= 720


@pytest.mark.parametrize("seed", range(40))
def test_reach_bands_hold_every_pixel_the_upsampled_matte_covers(seed: int) -> None:
    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(3, 60, 2))
    alpha = np.zeros((h, w), np.uint8)
    for _ in range(seed % 4):  # 0 to 3 blobs; none: no bands
        y0, x0 = int(rng.integers(0, h)), int(rng.integers(0, w))
        y1, x1 = int(rng.integers(y0, h)) + 1, int(rng.integers(x0, w)) + 1
        alpha[y0:y1, x0:x1] = rng.integers(0, 256, (y1 - y0, x1 - x0))
    size = (int(w * rng.uniform(1, 6)), int(h * rng.uniform(1, 6)))
    up = upsample_alpha8(alpha, size)
    bands = reach_bands(alpha, size)
    x0, y0, x1, y1 = reach(alpha, size)
    assert sum((b[2] - b[0]) * (b[3] - b[1]) for b in bands) <= (x1 - x0) * (y1 - y0)
    last = 0
    for bx0, by0, bx1, by1 in bands:  # inside the frame, top to bottom, not overlapping
        assert 0 <= bx0 < bx1 <= size[0] and last <= by0 < by1 <= size[1]
        last = by1
        up[by0:by1, bx0:bx1] = 0
    assert not up.any()
    assert bool(bands) == bool(alpha.any())


def test_reach_bands_leave_out_the_room_beside_the_head() -> None:
    alpha = person_matte(0.5, scale=0.6)
    bands = reach_bands(alpha, (1280, 720))
    x0, y0, x1, y1 = reach(alpha, (1280, 720))
    assert 1 < len(bands) <= BANDS
    assert sum((b[2] - b[0]) * (b[3] - b[1]) for b in bands) < 0.95 * (x1 - x0) * (y1 - y0)
