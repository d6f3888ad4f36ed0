"""``bgcam.studio.box``: the person box of a matte."""

from __future__ import annotations

import numpy as np
import pytest

from bgcam.studio.box import BoxFinder
from tests.studio.studio_scenes import person_matte


def test_box_of_a_seated_person() -> None:
    box = BoxFinder().find(person_matte(0.4, top=0.3))
    assert box is not None
    assert abs(box.cx - 0.4) < 0.01
    assert abs(box.y0 - 0.3) < 0.02
    assert box.cut_at_bottom
    assert 0.25 < box.width < 0.4


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
