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


@pytest.mark.parametrize("side", [515, 668, 719, 1001])
def test_a_crop_two_to_four_times_the_target_keeps_its_geometry(side: int) -> None:
    """The halve-then-bilinear path (region-of-interest crops, odd sizes too): a ramp comes out
    where INTER_AREA puts it (no shift of the picture), and a smaller crop after a larger one
    reuses the halving buffer."""
    # A ramp of one level per pixel (exact in uint8) across the middle of the crop.
    start = (side - 255) // 2
    ramp = np.clip(np.arange(side) - start, 0, 255).astype(np.uint8)
    lo, hi = int((start + 8) * 256 / side), int((start + 247) * 256 / side)  # its linear part
    shrinker = Shrinker((256, 256))
    offsets = []
    for row in (ramp, ramp[::-1]):  # rising and falling: rounding biases both alike
        crop = np.ascontiguousarray(np.broadcast_to(row[None, :, None], (side, side, 3)))
        out = shrinker.shrink(ShrunkFrame(crop, crop)).astype(np.float32)
        reference = cv2.resize(crop, (256, 256), interpolation=cv2.INTER_AREA).astype(np.float32)
        assert float(np.abs(out - reference)[:, 2:-2].max()) <= 1.0
        lo_, hi_ = (lo, hi) if row is ramp else (256 - hi, 256 - lo)
        offsets.append(float((out - reference)[:, lo_:hi_].mean()))
    # A shift of the sampling grid shows as opposite offsets on the two ramps (source pixels:
    # half their difference, the slope being one level per pixel).
    shift = (offsets[0] - offsets[1]) / 2
    assert abs(shift) < 0.05
    half = shrinker._half
    shrinker.shrink(ShrunkFrame(crop[:-5, :-5], crop[:-5, :-5]))
    assert shrinker._half is half


def test_a_crop_shrinks_close_to_the_area_average(astronaut: npt.NDArray[np.uint8]) -> None:
    crop = cv2.resize(astronaut, (668, 668), interpolation=cv2.INTER_CUBIC)
    out = Shrinker((256, 256)).shrink(ShrunkFrame(crop, crop))
    reference = cv2.resize(crop, (256, 256), interpolation=cv2.INTER_AREA)
    assert float(np.abs(out.astype(np.int16) - reference).mean()) < 2.0
