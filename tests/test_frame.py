"""bgcam.frame: the bilinear resize the compositor enlarges its blurred background with and the
engine and the segmenters shrink frames with (by at most 2x)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from bgcam.frame import resize_bilinear


@pytest.mark.parametrize(
    ("small", "big"),
    [((160, 90), (1280, 720)), ((120, 68), (1920, 1080)), ((80, 45), (1280, 720)),
     ((321, 181), (641, 481)), ((1, 1), (8, 8)), ((7, 3), (7, 9)),
     ((1280, 720), (320, 180)), ((640, 640), (512, 512)), ((1920, 1080), (512, 288)),
     ((320, 180), (256, 144)), ((333, 517), (256, 256))],
)  # fmt: skip
def test_within_one_level_of_cv2_resize(small: tuple[int, int], big: tuple[int, int]) -> None:
    rng = np.random.default_rng(7)
    src = rng.integers(0, 256, (small[1], small[0], 3), dtype=np.uint8)
    want = cv2.resize(src, big, interpolation=cv2.INTER_LINEAR)
    dst = np.empty((big[1], big[0], 3), np.uint8)
    got = resize_bilinear(src, dst)
    assert got is dst
    diff = np.abs(got.astype(np.int16) - want.astype(np.int16))
    assert int(diff.max()) <= 1
    assert float(diff.mean()) < 0.5  # rounding, not a shifted grid


def test_a_single_channel_plane() -> None:
    src = np.arange(16 * 9, dtype=np.uint8).reshape(9, 16)
    dst = np.empty((72, 128), np.uint8)
    want = cv2.resize(src, (128, 72), interpolation=cv2.INTER_LINEAR)
    assert int(np.abs(resize_bilinear(src, dst).astype(int) - want).max()) <= 1
