"""The geometry of a background blur, shared by every compositor.

The CPU compositor (:mod:`bgcam.compose.cpu`) defines what the output looks like; the OpenCL and
ONNX backends must reproduce it within PSNR 40 dB. All three derive every size and kernel from
one frozen :class:`BlurPlan`, built from the functions in :mod:`bgcam.effects`.

**Two regimes, one cost.** A blur strong enough keeps at least ``MIN_WORK_SIGMA`` working pixels
(``COARSE_WORK_SIGMA`` for bilateral and lens) at a power-of-two reduction; it is computed
there as it always was (``sharp = 0``). A weaker blur would need a larger working image, so it
is computed at :func:`bgcam.effects.min_factor` instead, with its sigma reduced by the blur that
the shrink and the bilinear upscale add (half a working pixel, :data:`RESAMPLE_SIGMA`), and the
detail finer than that resolution comes from the sharp frame: the background is
``sharp · frame + (1 − sharp) · upscaled`` (:func:`bgcam.effects.sharp_weight`). No strength
works at more than the ``min_factor`` resolution (90–135 working rows at any frame size: 1/8 at
720p, 1/12 at 1080p), so no strength costs more than that; strength 0 is the frame itself. A
share of the sharp frame is a full-frame blend (2–3 ms at 1080p), so it is paid for only when it
shows: the linear blurs drop a share under :data:`~bgcam.effects.LINEAR_SHARP_MIN`, and median
and bilateral, whose full-resolution result keeps more of the frame's edges, work one size finer
(:func:`~bgcam.effects.finer_factor`) when that needs no share at all; the CPU compositor blends
it only outside the person. The person's colours stay out of the blurred part as before (normalised
blur, or the person region filled from its surroundings first), so there is no halo.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bgcam.effects import (
    COARSE_WORK_SIGMA,
    LINEAR_SHARP_MIN,
    MIN_WORK_SIGMA,
    SHARP_MIN,
    blur_factor,
    blur_sigma,
    box_size,
    disc_radius,
    finer_factor,
    median_size,
    min_factor,
    sharp_weight,
)

LINEAR_TYPES = frozenset({"gaussian", "box", "lens"})
"""Blur types that are linear filters after the fill: one ONNX graph computes them wholly."""
RESAMPLE_SIGMA = 0.5
"""The blur (working pixels) that shrinking and the bilinear upscale add, taken off weak blurs."""
COARSE_TYPES = frozenset({"bilateral", "lens"})
"""Blur types whose cost grows with the square of their aperture: a coarser working size."""
MIN_COARSE_ROWS = 24
"""The governor's cheaper path (``coarser``) keeps at least this many working rows."""
MAX_MEDIAN = 5
"""OpenCV's median filter is a sorting network up to 5x5 and ~10x dearer above."""


@dataclass(frozen=True, slots=True)
class BlurPlan:
    """Sizes and kernel parameters of one blur (strength, type) at one frame size."""

    frame_size: tuple[int, int]
    blur_type: str
    sigma_full: float
    """Gaussian sigma in full-resolution pixels (0 = no blur: only the person is filled in)."""
    factor: int
    """Downscale of the working resolution (one of :data:`bgcam.effects.WORK_FACTORS`, or a
    power of two above them)."""
    work_size: tuple[int, int]
    pre_size: tuple[int, int]
    """Exactly twice the working size: bilinear to here, then an exact 2x box average (factor
    ≥ 3; OpenCV's area resize of any other ratio costs ~25x more: 0.58 against 0.02 ms for
    427x240 → 213x120)."""
    sigma: float
    """Gaussian sigma at the working size."""
    fill_sigma: float
    """Sigma of the normalised blur that fills the person region before non-linear filters."""
    box: int
    median: int
    lens_radius: float
    bilateral_d: int
    sharp: float = 0.0
    """Weight of the sharp frame in the background (weak blurs; 1 = the frame itself)."""
    coarser: int = 0
    """Powers of two below the planned working size (the governor's cheaper path)."""
    normalised: bool = True
    """Gaussian and box: one normalised blur (sigma ≥ 1 working pixel fills the person region);
    else the person region is filled first (``fill_sigma``) and then blurred plainly."""

    @classmethod
    def of(
        cls, frame_size: tuple[int, int], strength: int, blur_type: str, *, coarser: int = 0
    ) -> BlurPlan:
        """The plan of a blur; ``coarser``: that many powers of two below its working size
        (while at least :data:`MIN_COARSE_ROWS` rows remain), the same look, cheaper."""
        w, h = int(frame_size[0]), int(frame_size[1])
        sigma_full = blur_sigma(strength, (w, h))
        least = COARSE_WORK_SIGMA if blur_type in COARSE_TYPES else MIN_WORK_SIGMA
        own = blur_factor(sigma_full, (w, h), least) if sigma_full > 0 else 1
        f = max(own, min_factor((w, h)))
        linear = blur_type in LINEAR_TYPES
        if (
            not linear
            and 0 < sigma_full < least * f
            and sharp_weight(sigma_full, f) > 0
            and sharp_weight(sigma_full, finer_factor(f)) == 0
        ):  # an edge-preserving weak blur: one size finer rather than a full-frame blend
            f = finer_factor(f)
        for _ in range(coarser):
            if min(w, h) // (f * 2) < MIN_COARSE_ROWS:
                break
            f *= 2
        sigma = sigma_full / f
        sharp = 0.0
        if sigma < least and f > 1:  # a weak blur: finished with the sharp frame, its sigma
            # less the blur of the shrink and the upscale
            sharp = sharp_weight(sigma_full, f, LINEAR_SHARP_MIN if linear else SHARP_MIN)
            sigma = math.sqrt(max(0.0, sigma * sigma - RESAMPLE_SIGMA**2))
        ww, wh = max(1, round(w / f)), max(1, round(h / f))
        return cls(
            frame_size=(w, h),
            blur_type=blur_type,
            sigma_full=sigma_full,
            factor=f,
            work_size=(ww, wh),
            pre_size=(2 * ww, 2 * wh),
            sigma=sigma,
            fill_sigma=max(sigma, 1.0),
            box=box_size(sigma),
            median=min(MAX_MEDIAN, median_size(sigma)),
            lens_radius=disc_radius(sigma),
            bilateral_d=max(3, 2 * round(sigma) + 1),
            sharp=sharp,
            coarser=coarser,
            normalised=sigma >= 1.0,
        )

    @classmethod
    def exact(cls, frame_size: tuple[int, int], strength: int, blur_type: str) -> BlurPlan:
        """The same blur computed wholly at full resolution: the reference the fast plans are
        measured against (``tests/compose``); far too slow for live use."""
        w, h = int(frame_size[0]), int(frame_size[1])
        sigma = blur_sigma(strength, (w, h))
        return cls(
            frame_size=(w, h),
            blur_type=blur_type,
            sigma_full=sigma,
            factor=1,
            work_size=(w, h),
            pre_size=(2 * w, 2 * h),
            sigma=sigma,
            fill_sigma=max(sigma, 1.0),
            box=box_size(sigma),
            median=median_size(sigma),
            lens_radius=disc_radius(sigma),
            bilateral_d=max(3, 2 * round(sigma) + 1),
            sharp=0.0,
            normalised=sigma >= 1.0,
        )

    @property
    def bilateral_sigma(self) -> float:
        """The bilateral filter's spatial sigma (working pixels)."""
        return max(self.sigma, 0.5)

    @property
    def identity(self) -> bool:
        """The background is the frame itself (strength 0): nothing to compute."""
        return self.sharp >= 1.0


def describe_blur(plan: BlurPlan) -> str:
    """The plan in plain words, for the log."""
    w, h = plan.work_size
    text = f"{plan.blur_type} blur computed at 1/{plan.factor} size ({w}x{h})"
    return text + (f", {plan.sharp:.0%} of the sharp frame" if plan.sharp > 0 else "")


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
    if sigma <= 0:
        return [1.0]
    k = gaussian_ksize(sigma)
    c = (k - 1) / 2
    taps = [math.exp(-((i - c) ** 2) / (2 * sigma * sigma)) for i in range(k)]
    s = sum(taps)
    return [t / s for t in taps]
