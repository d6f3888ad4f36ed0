"""The two-step frame shrinker: close to a true box average, at any input size."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from bgcam.frame import ShrunkFrame, resize_bilinear
from bgcam.shrink import Shrinker


@pytest.mark.parametrize(
    ("src", "dst"),
    [
        ((1920, 1080), (256, 144)),
        ((1280, 720), (256, 144)),
        ((640, 480), (256, 256)),
        ((256, 144), (256, 144)),
        ((333, 201), (256, 144)),
    ],
)
def test_shrink_matches_area_average(
    astronaut: npt.NDArray[np.uint8], src: tuple[int, int], dst: tuple[int, int]
) -> None:
    frame = cv2.resize(astronaut, src, interpolation=cv2.INTER_CUBIC)
    shrinker = Shrinker(dst)
    out = shrinker.shrink(ShrunkFrame(frame))
    assert out.shape == (dst[1], dst[0], 3) and out.dtype == np.uint8
    reference = cv2.resize(frame, dst, interpolation=cv2.INTER_AREA)
    diff = np.abs(out.astype(np.int16) - reference.astype(np.int16))
    assert float(diff.mean()) < 2.0  # grey levels: visually the same box average
    assert shrinker.shrink(ShrunkFrame(frame)) is out  # the buffer is reused


def test_a_shrunk_copy_of_the_frame_is_used_when_it_is_large_enough(
    astronaut: npt.NDArray[np.uint8],
) -> None:
    """Up to twice the target: one bilinear pass from the copy; smaller than the target: the
    frame itself is shrunk; either way close to the box average of the frame."""
    frame = cv2.resize(astronaut, (1280, 720), interpolation=cv2.INTER_CUBIC)
    reference = cv2.resize(frame, (256, 144), interpolation=cv2.INTER_AREA)
    shrinker = Shrinker((256, 144))
    hint = cv2.resize(frame, (320, 180), interpolation=cv2.INTER_LINEAR)
    out = shrinker.shrink(ShrunkFrame(frame, hint)).copy()
    np.testing.assert_array_equal(out, resize_bilinear(hint, np.empty_like(out)))
    assert float(np.abs(out.astype(np.int16) - reference).mean()) < 3.0
    too_small = cv2.resize(frame, (160, 90), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(
        shrinker.shrink(ShrunkFrame(frame, too_small)).copy(), shrinker.shrink(ShrunkFrame(frame))
    )
