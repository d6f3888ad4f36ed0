"""The blur geometry the accelerated backends share must be the CPU compositor's."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from bgcam.compose.blur import BackgroundBlur
from bgcam.compose.plan import BlurPlan, gaussian_kernel, gaussian_ksize, reflect_index


@pytest.mark.parametrize("size", [(640, 480), (960, 540), (1280, 720), (1920, 1080), (320, 240)])
@pytest.mark.parametrize("strength", [0, 10, 35, 60, 80, 100])
def test_plan_is_the_cpu_compositors_geometry(size: tuple[int, int], strength: int) -> None:
    cpu = BackgroundBlur(size, strength, "gaussian")
    plan = BlurPlan.of(size, strength, "gaussian")
    assert cpu.plan == plan  # one definition: the CPU blur works from the same plan
    assert (plan.sigma_full, plan.factor, plan.work_size) == (
        cpu.sigma_full,
        cpu.factor,
        cpu.work_size,
    )
    assert plan.sigma == pytest.approx(cpu.sigma)


@pytest.mark.parametrize("size", [(960, 540), (1280, 720), (1920, 1080), (1366, 768), (641, 359)])
@pytest.mark.parametrize("kind", ["gaussian", "median", "bilateral", "lens"])
@pytest.mark.parametrize("strength", [3, 10, 20, 45, 60, 100])
def test_the_pre_shrink_is_exactly_twice_the_working_size(
    size: tuple[int, int], kind: str, strength: int
) -> None:
    """The area step is an exact 2:1 average at every size (OpenCV's other ratios cost ~25x)."""
    plan = BlurPlan.of(size, strength, kind)
    assert plan.pre_size == (2 * plan.work_size[0], 2 * plan.work_size[1])


@pytest.mark.parametrize("n", [1, 2, 5, 9])
@pytest.mark.parametrize("i", [-12, -5, -1, 0, 3, 8, 9, 10, 17, 25])
def test_reflect_index_is_opencvs_border_reflect(i: int, n: int) -> None:
    assert reflect_index(i, n) == cv2.borderInterpolate(i, n, cv2.BORDER_REFLECT)


@pytest.mark.parametrize("sigma", [0.8, 1.0, 2.5, 3.37, 4.99, 12.0])
def test_gaussian_kernel_is_opencvs(sigma: float) -> None:
    taps = np.asarray(gaussian_kernel(sigma), np.float32)
    # The size GaussianBlur((0, 0), sigma) picks for float32 images.
    impulse = np.zeros((1, 201), np.float32)
    impulse[0, 100] = 1.0
    blurred = cv2.GaussianBlur(impulse, (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)
    support = int(np.count_nonzero(blurred[0] > 0))
    assert gaussian_ksize(sigma) == support == len(taps)
    np.testing.assert_allclose(taps, cv2.getGaussianKernel(len(taps), sigma).ravel(), atol=1e-6)


@pytest.mark.parametrize(
    ("size", "blur_type", "factor"),
    [
        ((1920, 1080), "gaussian", 12),
        ((1920, 1080), "lens", 12),
        ((1920, 1080), "median", 8),
        ((1920, 1080), "bilateral", 8),
        ((1280, 720), "box", 8),
        ((1280, 720), "median", 6),
    ],
)
def test_strength_10_needs_no_full_frame_blend_with_the_sharp_frame(
    size: tuple[int, int], blur_type: str, factor: int
) -> None:
    """A linear blur drops a sharp share under 15 % (as close to the full-resolution blur
    without it); an edge-preserving one works one size finer, where it needs none."""
    plan = BlurPlan.of(size, 10, blur_type)
    assert plan.factor == factor and plan.sharp == 0
    # Weaker still, the share is kept: strength 5 is half the frame's own detail.
    assert BlurPlan.of(size, 5, blur_type).sharp > 0.3
