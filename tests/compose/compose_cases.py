"""Shared by the accelerated-compositor tests: real frames, real alphas, the case table, PSNR.

Imported by the OpenCL tests' child process too (``python -c`` from the repo root), so it must
not depend on pytest.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from bgcam.compose import Compositor
from bgcam.compose.cpu import CpuCompositor
from bgcam.config import ComposeConfig, RefineConfig, SegmentConfig
from bgcam.effects import cover_resize
from bgcam.frame import ShrunkFrame
from bgcam.refine import MaskRefiner
from bgcam.segment import create_segmenter

Image = npt.NDArray[np.uint8]
Alpha = npt.NDArray[np.float32]

MIN_PSNR = 40.0

SIZES: list[tuple[int, int]] = [(640, 480), (960, 540)]
"""A 4:3 and a 16:9 size; at 960x540 strength 100 the working height (68) is rounded."""

CASES: list[tuple[str, str, int]] = [
    ("blur", "gaussian", 0),
    ("blur", "gaussian", 3),  # weak: finished with the sharp frame
    ("blur", "gaussian", 10),
    ("blur", "gaussian", 20),
    ("blur", "box", 5),
    ("blur", "lens", 10),
    ("blur", "median", 10),
    ("blur", "gaussian", 60),
    ("blur", "gaussian", 100),
    ("blur", "box", 35),
    ("blur", "box", 100),
    ("blur", "median", 60),
    ("blur", "median", 100),
    ("blur", "bilateral", 60),
    ("blur", "bilateral", 100),
    ("blur", "lens", 60),
    ("blur", "lens", 100),
    ("remove", "gaussian", 60),
    ("replace", "gaussian", 60),
    ("off", "gaussian", 60),
]
"""(mode, blur type, strength); each is composed with the real alpha and with no mask."""


def case_id(size: tuple[int, int], case: tuple[str, str, int]) -> str:
    mode, kind, strength = case
    return f"{size[0]}x{size[1]}-{mode}-{kind}-{strength}"


def frame_and_alpha(size: tuple[int, int]) -> tuple[Image, Alpha]:
    """scikit-image's astronaut filling ``size``, and the alpha BgCam's own stages find in it."""
    from skimage import data

    image = cover_resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), size)
    seg = create_segmenter(SegmentConfig(segmenter="onnx", providers=("CPU",)), size)
    try:
        alpha = (
            MaskRefiner(RefineConfig(), size)
            .refine(seg.segment(ShrunkFrame(image)), ShrunkFrame(image))
            .copy()
        )
    finally:
        seg.close()
    return image, alpha


def background_file(directory: Path) -> str:
    """A real photo (scikit-image's coffee) written as a PNG for replace mode."""
    from skimage import data

    path = directory / "coffee.png"
    if not path.exists():
        cv2.imwrite(str(path), cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR))
    return str(path)


def psnr(a: Image, b: Image) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 100.0 if mse == 0 else 10.0 * float(np.log10(255.0**2 / mse))


def config(case: tuple[str, str, int], background: str) -> ComposeConfig:
    mode, kind, strength = case
    return ComposeConfig.model_validate(
        {
            "mode": mode,
            "blur_type": kind,
            "blur": strength,
            "background": background,
            "backend": "cpu",
        }
    )


def compare_all(
    make: Callable[[ComposeConfig, tuple[int, int]], Compositor], directory: Path
) -> dict[str, list[float]]:
    """PSNR of ``make``'s output against the CPU compositor's, per case: [with alpha, no mask]."""
    background = background_file(directory)
    out: dict[str, list[float]] = {}
    for size in SIZES:
        image, alpha = frame_and_alpha(size)
        for case in CASES:
            cfg = config(case, background)
            cpu, other = CpuCompositor(cfg, size), make(cfg, size)
            try:
                scores = []
                for a in (alpha, None):
                    want = cpu.compose(image, a).copy()
                    got = other.compose(image, a).copy()
                    if got.shape != want.shape or got.dtype != want.dtype:
                        raise AssertionError(f"got {got.shape} {got.dtype}, want {want.shape}")
                    scores.append(psnr(want, got))
                out[case_id(size, case)] = scores
            finally:
                cpu.close()
                other.close()
    return out


CHANGES: list[tuple[tuple[str, str, int], tuple[str, str, int]]] = [
    (("blur", "gaussian", 60), ("blur", "gaussian", 10)),
    (("blur", "gaussian", 10), ("blur", "median", 30)),
    (("blur", "gaussian", 60), ("replace", "gaussian", 60)),
    (("replace", "gaussian", 60), ("remove", "lens", 60)),
]
"""Settings changes (from, to) prepared on another thread, then put in place."""


def compare_changes(
    make: Callable[[ComposeConfig, tuple[int, int]], Compositor], directory: Path
) -> dict[str, list[float]]:
    """Per change: PSNR against the CPU compositor of ``make``'s output after the change was
    prepared on a builder thread and put in place, then after :meth:`economise` (level 1)."""
    background = background_file(directory)
    size = SIZES[1]
    image, alpha = frame_and_alpha(size)
    out: dict[str, list[float]] = {}
    for old, new in CHANGES:
        cpu, other = (
            CpuCompositor(config(old, background), size),
            make(config(old, background), size),
        )
        try:
            cfg = config(new, background)
            with ThreadPoolExecutor(1, thread_name_prefix="builder") as builder:
                prepared = builder.submit(other.prepare, cfg).result(60)
            other.update(cfg, prepared)
            cpu.update(cfg)
            scores = [psnr(cpu.compose(image, alpha).copy(), other.compose(image, alpha).copy())]
            if cpu.economise(1) is not None and other.economise(1) is not None:
                scores.append(psnr(cpu.compose(image, alpha), other.compose(image, alpha)))
            out[f"{case_id(size, old)}-to-{new[0]}-{new[1]}-{new[2]}"] = scores
        finally:
            cpu.close()
            other.close()
    return out
