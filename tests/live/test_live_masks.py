"""The mask exchange: a triple buffer that never tears, and the age policy (fail closed)."""

from __future__ import annotations

import numpy as np
import pytest

from bgcam.frame import Frame
from bgcam.live.masks import MaskBuffer, MaskExchange, max_mask_age


def test_mask_buffer_hands_over_without_tearing() -> None:
    buf = MaskBuffer()
    assert buf.acquire() is None
    alpha8, small = np.full((2, 4), 255, np.uint8), np.full((2, 4, 3), 7, np.uint8)
    buf.publish(alpha8, small, 7, 1.5)
    alpha8[:] = 0  # the published matte is a copy, not the refiner's buffer
    got = buf.acquire()
    assert got is not None
    matte, index, t = got
    assert index == 7 and t == 1.5 and matte.alpha8.min() == 255 and matte.small.min() == 7
    buf.publish(np.full((2, 4), 128, np.uint8), small, 8, 1.6)  # the one being read is untouched
    assert matte.alpha8.min() == 255
    got = buf.acquire()
    assert got is not None and got[1] == 8 and got[0].alpha8.min() == 128
    # A new refiner with another working size: the next matte has that size.
    buf.publish(np.full((3, 5), 9, np.uint8), np.zeros((3, 5, 3), np.uint8), 9, 1.7)
    got = buf.acquire()
    assert got is not None and got[0].alpha8.shape == (3, 5) and got[0].small.shape == (3, 5, 3)
    buf.invalidate()
    assert buf.acquire() is None


def test_mask_age_bound() -> None:
    assert max_mask_age(1, 30.0) == pytest.approx(0.2)
    assert max_mask_age(10, 30.0) == pytest.approx(11 / 30)


@pytest.mark.parametrize(
    ("t_frame", "index", "every", "expected"),
    [
        (1.0, 7, 1, "same"),  # the matte of this very frame
        (1.1, 8, 1, "other"),  # one frame later: usable, but not this frame's shrunk copy
        (1.19, 9, 1, "other"),  # just inside 0.2 s
        (1.21, 9, 1, None),  # just outside: refused, the whole frame is blurred
        (0.79, 5, 1, None),  # older frames than the mask: the bound works both ways
        (1.3, 10, 10, "other"),  # segmenting every 10th frame at 30 fps: 11/30 s allowed
    ],
)
def test_the_exchange_hands_out_only_usable_mattes(
    t_frame: float, index: int, every: int, expected: str | None
) -> None:
    ex = MaskExchange()
    image = np.zeros((4, 4, 3), np.uint8)
    assert ex.usable(Frame(image, 7, 1.0), 1, 30.0) is None  # nothing published yet
    ex.publish(np.full((2, 2), 200, np.uint8), np.zeros((2, 2, 3), np.uint8), 7, 1.0)
    got = ex.usable(Frame(image, index, t_frame), every, 30.0)
    if expected is None:
        assert got is None
    else:
        assert got is not None
        matte, same = got
        assert matte.alpha8.min() == 200 and same is (expected == "same")


def test_a_failure_invalidates_the_matte() -> None:
    ex = MaskExchange()
    ex.publish(np.zeros((2, 2), np.uint8), np.zeros((2, 2, 3), np.uint8), 1, 1.0)
    ex.invalidate()
    assert ex.usable(Frame(np.zeros((4, 4, 3), np.uint8), 1, 1.0), 1, 30.0) is None
