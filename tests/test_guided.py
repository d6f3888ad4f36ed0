"""The colour-guided filter: edges a grey guide cannot see, and its parameter check."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from bgcam.guided import GuidedFilter


@pytest.mark.parametrize("subsample", [1, 2, 4])
def test_guided_filter_aligns_with_a_colour_edge_grey_cannot_see(subsample: int) -> None:
    # Guide: green on the left, red from x = 40, of the same brightness (grey 110 on both
    # sides, so a grey guide has no edge there). Source: a soft ramp centred at x = 44.
    h, w = 32, 96
    guide = np.empty((h, w, 3), np.uint8)
    guide[:, :40] = (40, 160, 40)
    guide[:, 40:] = (40, 68, 220)
    grey = cv2.cvtColor(guide, cv2.COLOR_BGR2GRAY)
    assert abs(int(grey[0, 39]) - int(grey[0, 40])) <= 1
    x = np.arange(w, dtype=np.float32)
    src = np.tile(np.clip((x - 44) / 8 + 0.5, 0, 1), (h, 1)).astype(np.float32)
    dst = np.empty_like(src)
    gf = GuidedFilter((w, h), radius=8 // subsample, eps=1e-3, subsample=subsample)
    assert gf.filter(guide, src, dst) is dst
    assert dst.shape == src.shape and dst.dtype == np.float32
    assert np.isfinite(dst).all()
    assert dst.min() > -0.1 and dst.max() < 1.1

    def crossing(row: np.ndarray) -> float:
        i = int(np.argmax(row >= 0.5))
        return i - 1 + (0.5 - row[i - 1]) / (row[i] - row[i - 1])

    before, after = crossing(src[h // 2]), crossing(dst[h // 2])
    assert abs(after - 40) < abs(before - 40) - 2, (before, after)
    # The output jumps where the guide's colour does, far more than the source ramp does there.
    row, ramp = dst[h // 2], src[h // 2]
    assert row[39] < 0.1
    assert row[40] - row[39] > 0.3 > ramp[40] - ramp[39]


def test_guided_filter_subsample_is_a_power_of_two() -> None:
    with pytest.raises(ValueError, match="power of two"):
        GuidedFilter((64, 32), radius=1, eps=1e-3, subsample=3)
