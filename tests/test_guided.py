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


def reference_fast_guided(
    guide: np.ndarray, src: np.ndarray, radius: int, eps: float, subsample: int
) -> np.ndarray:
    """The fast colour-guided filter written plainly, in float64: each window's 3x3 system
    solved by numpy, each plane box-filtered on its own."""
    g, p = guide, src
    for _ in range(subsample.bit_length() - 1):
        h, w = g.shape[0] // 2, g.shape[1] // 2
        g = cv2.resize(g[: 2 * h, : 2 * w], (w, h), interpolation=cv2.INTER_AREA)
        p = cv2.resize(p[: 2 * h, : 2 * w], (w, h), interpolation=cv2.INTER_AREA)
    i = g.astype(np.float64) / 255.0
    p = p.astype(np.float64)
    k = (2 * radius + 1, 2 * radius + 1)

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.blur(x, k, borderType=cv2.BORDER_REFLECT)

    mean_i = np.dstack([box(i[..., c]) for c in range(3)])
    mean_p = box(p)
    cov = np.dstack([box(i[..., c] * p) for c in range(3)]) - mean_i * mean_p[..., None]
    var = np.empty((*i.shape[:2], 3, 3))
    for c in range(3):
        for d in range(3):
            var[..., c, d] = box(i[..., c] * i[..., d]) - mean_i[..., c] * mean_i[..., d]
    var += eps * np.eye(3)
    a = np.linalg.solve(var, cov[..., None])[..., 0]
    b = mean_p - (a * mean_i).sum(axis=2)
    size = (guide.shape[1], guide.shape[0])
    up = [
        cv2.resize(box(x), size, interpolation=cv2.INTER_LINEAR) for x in (*a.transpose(2, 0, 1), b)
    ]
    full = guide.astype(np.float64) / 255.0
    return up[3] + sum(up[c] * full[..., c] for c in range(3))


@pytest.mark.parametrize(
    ("size", "radius", "subsample"),
    [
        ((320, 180), 1, 4),
        ((240, 135), 1, 4),
        ((427, 240), 1, 4),
        ((160, 90), 2, 2),
        ((96, 61), 1, 1),
    ],
)
def test_guided_filter_matches_a_plain_float64_reference(
    astronaut: np.ndarray, size: tuple[int, int], radius: int, subsample: int
) -> None:
    """The stacked, side-by-side, closed-form arithmetic is the textbook filter (float32
    rounding apart), on a real photo and a real-looking soft mask, odd sizes included."""
    guide = cv2.resize(astronaut, size, interpolation=cv2.INTER_AREA)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    src = (((xx - w / 2) / (0.3 * w)) ** 2 + ((yy - h / 3) / (0.4 * h)) ** 2 < 1).astype(np.float32)
    src = cv2.GaussianBlur(src, (0, 0), 2)
    eps = 5e-4
    dst = np.empty_like(src)
    GuidedFilter(size, radius, eps, subsample).filter(guide, src, dst)
    expected = reference_fast_guided(guide, src, radius, eps, subsample)
    np.testing.assert_allclose(dst, expected, atol=5e-4)  # (float32 variances: ~1.5e-4)
