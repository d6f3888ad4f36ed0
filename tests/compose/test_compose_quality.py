"""The look of every strength against the exact, full-resolution blur (issue 12).

The compositor computes each blur at a reduced working size and finishes weak blurs with the
sharp frame (:mod:`bgcam.compose.plan`); :meth:`BlurPlan.exact` computes the same blur wholly at
full resolution. Here both compose real frames under a real person's matte and are compared where
the background shows (alpha < 1): PSNR and SSIM must stay above a floor per strength, so a weak
blur cannot turn blocky or grow a halo unnoticed. Frames: DAVIS clips with their annotated masks
(``../shared``; skipped without it) and the bundled astronaut photo with a soft person-shaped
matte (always).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from bgcam.bench import bench_frames
from bgcam.compose.cpu import CpuCompositor
from bgcam.config import ComposeConfig

SIZE = (1280, 720)
DAVIS = Path(__file__).resolve().parents[2] / ".." / "shared" / "evaldata" / "davis-dev"
CLIPS = ("lucia", "hike", "tennis")

# (blur type, strength, PSNR floor dB, SSIM floor), measured on this change minus a margin.
FLOORS: list[tuple[str, int, float, float]] = [
    ("gaussian", 0, 46.0, 0.999),
    ("gaussian", 1, 44.0, 0.997),
    ("gaussian", 3, 32.0, 0.93),
    ("gaussian", 5, 31.0, 0.87),
    ("gaussian", 10, 33.0, 0.91),
    ("gaussian", 20, 40.0, 0.985),
    ("gaussian", 30, 42.0, 0.99),
    ("gaussian", 60, 43.0, 0.995),
    ("gaussian", 100, 38.0, 0.995),
    ("box", 10, 32.0, 0.86),
    ("lens", 10, 30.5, 0.87),
]

# The governor's cheaper path (economise(1): one power of two smaller) against the same exact
# blur: (blur type, strength, PSNR floor dB), measured minus a margin. A softer match than the
# plan's own, still the same look (no blocks: the upscale is the same bilinear one).
ECONOMY_FLOORS: list[tuple[str, int, float]] = [
    ("gaussian", 10, 28.0),
    ("gaussian", 30, 32.5),
    ("gaussian", 60, 37.5),
    ("median", 60, 27.5),
    ("box", 10, 27.0),
]

Img = npt.NDArray[np.uint8]


def _frames() -> Iterator[tuple[str, Img, Img]]:
    w, h = SIZE
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = np.hypot((xx - 0.45 * w) / (0.2 * w), (yy - 0.7 * h) / (0.5 * h))
    yield (
        "astronaut",
        bench_frames(SIZE)[0],
        (np.clip((1.05 - d) * 20, 0, 1) * 255).astype(np.uint8),
    )
    if not DAVIS.is_dir():
        return
    for clip in CLIPS:
        jpg = sorted((DAVIS / "JPEGImages" / clip).glob("*.jpg"))[5]
        png = DAVIS / "Annotations" / clip / (jpg.stem + ".png")
        image = cv2.resize(cv2.imread(str(jpg)), SIZE, interpolation=cv2.INTER_CUBIC)
        mask = (cv2.imread(str(png), cv2.IMREAD_GRAYSCALE) > 0).astype(np.float32)
        soft = cv2.GaussianBlur(cv2.resize(mask, SIZE), (0, 0), 2.0)
        yield clip, np.asarray(image, np.uint8), (soft * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def frames() -> list[tuple[str, Img, Img]]:
    return list(_frames())


def psnr(a: Img, b: Img, where: npt.NDArray[np.bool_]) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64))[where] ** 2))
    return 100.0 if mse == 0 else 10.0 * float(np.log10(255.0**2 / mse))


def ssim(a: Img, b: Img, where: npt.NDArray[np.bool_]) -> float:
    metrics = pytest.importorskip("skimage.metrics")
    _, full = metrics.structural_similarity(a, b, channel_axis=2, full=True, data_range=255)
    return float(np.asarray(full).mean(axis=2)[where].mean())


def compare(
    blur_type: str, strength: int, frames: list[tuple[str, Img, Img]], economy: int = 0
) -> dict[str, tuple[float, float]]:
    cfg = ComposeConfig(mode="blur", blur=strength, blur_type=blur_type, backend="cpu")
    fast, exact = CpuCompositor(cfg, SIZE), CpuCompositor(cfg, SIZE, exact=True)
    if economy:
        assert fast.economise(economy) is not None
    out = {}
    for name, image, a8 in frames:
        alpha = a8.astype(np.float32) / 255.0
        got = fast.compose(image, alpha).copy()
        want = exact.compose(image, alpha).copy()
        background = a8 < 255
        out[name] = (psnr(got, want, background), ssim(got, want, background))
    return out


@pytest.mark.parametrize(("blur_type", "strength", "min_psnr", "min_ssim"), FLOORS)
def test_each_strength_looks_like_the_full_resolution_blur(
    frames: list[tuple[str, Img, Img]],
    blur_type: str,
    strength: int,
    min_psnr: float,
    min_ssim: float,
) -> None:
    scores = compare(blur_type, strength, frames)
    for name, (p, s) in scores.items():
        assert p >= min_psnr, f"{name}: PSNR {p:.1f} dB < {min_psnr}"
        assert s >= min_ssim, f"{name}: SSIM {s:.4f} < {min_ssim}"


@pytest.mark.parametrize(("blur_type", "strength", "min_psnr"), ECONOMY_FLOORS)
def test_the_governors_cheaper_path_keeps_the_look(
    frames: list[tuple[str, Img, Img]], blur_type: str, strength: int, min_psnr: float
) -> None:
    for name, (p, _) in compare(blur_type, strength, frames, economy=1).items():
        assert p >= min_psnr, f"{name}: PSNR {p:.1f} dB < {min_psnr}"


if __name__ == "__main__":  # the table in docs/BENCHMARKS.md
    fr = list(_frames())
    for kind, strength, _, _ in FLOORS:
        res = compare(kind, strength, fr)
        cells = "  ".join(f"{n} {p:5.1f}/{s:.4f}" for n, (p, s) in res.items())
        print(f"{kind:9s} {strength:3d}  {cells}", flush=True)
