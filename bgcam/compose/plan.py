"""The geometry of a background blur, shared by the accelerated compositors.

The CPU compositor (:mod:`bgcam.compose.cpu`) defines what the output looks like; the OpenCL and
ONNX backends must reproduce it within PSNR 40 dB. They therefore derive every size and kernel
from the same functions in :mod:`bgcam.effects` (``blur_sigma``, ``blur_factor``, ``box_size``,
``median_size``, ``disc_radius``), gathered here in one frozen :class:`BlurPlan`, instead of
re-deriving them. ``tests/compose`` checks the plan against the CPU compositor's own figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bgcam.effects import blur_factor, blur_sigma, box_size, disc_radius, median_size

LINEAR_TYPES = frozenset({"gaussian", "box", "lens"})
"""Blur types that are linear filters after the fill: one ONNX graph computes them wholly."""


@dataclass(frozen=True, slots=True)
class BlurPlan:
    """Sizes and kernel parameters of one blur (strength, type) at one frame size."""

    frame_size: tuple[int, int]
    blur_type: str
    sigma_full: float
    """Gaussian sigma in full-resolution pixels (0 = no blur: only the person is filled in)."""
    factor: int
    """Power-of-two downscale of the working resolution."""
    work_size: tuple[int, int]
    pre_size: tuple[int, int]
    """Twice the working size: bilinear to here, then an exact 2x box average (factor ≥ 4)."""
    sigma: float
    """Gaussian sigma at the working size."""
    fill_sigma: float
    """Sigma of the normalised blur that fills the person region before non-linear filters."""
    box: int
    median: int
    lens_radius: float
    bilateral_d: int

    @classmethod
    def of(cls, frame_size: tuple[int, int], strength: int, blur_type: str) -> BlurPlan:
        w, h = int(frame_size[0]), int(frame_size[1])
        sigma_full = blur_sigma(strength, (w, h))
        f = blur_factor(sigma_full, (w, h)) if sigma_full > 0 else 1
        sigma = sigma_full / f
        return cls(
            frame_size=(w, h),
            blur_type=blur_type,
            sigma_full=sigma_full,
            factor=f,
            work_size=(max(1, round(w / f)), max(1, round(h / f))),
            pre_size=(max(1, round(w * 2 / f)), max(1, round(h * 2 / f))),
            sigma=sigma,
            fill_sigma=max(sigma, 1.0),
            box=box_size(sigma),
            median=median_size(sigma),
            lens_radius=disc_radius(sigma),
            bilateral_d=max(3, 2 * round(sigma) + 1),
        )


def gaussian_ksize(sigma: float) -> int:
    """The kernel width ``cv2.GaussianBlur(src, (0, 0), sigma)`` uses on float32 images."""
    return max(1, (round(sigma * 4 * 2 + 1) | 1)) if sigma > 0 else 1


def reflect_index(i: int, n: int) -> int:
    """OpenCV's BORDER_REFLECT (``fedcba|abcdef|fedcba``) index of ``i`` in a row of ``n``."""
    if n == 1:
        return 0
    while i < 0 or i >= n:
        i = -i - 1 if i < 0 else 2 * n - i - 1
    return i


def gaussian_kernel(sigma: float) -> list[float]:
    """The normalised 1-D Gaussian of :func:`gaussian_ksize` taps (as ``cv2.getGaussianKernel``)."""
    k = gaussian_ksize(sigma)
    c = (k - 1) / 2
    taps = [math.exp(-((i - c) ** 2) / (2 * sigma * sigma)) for i in range(k)]
    s = sum(taps)
    return [t / s for t in taps]
