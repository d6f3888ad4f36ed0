"""The CPU compositor's I420 output against its BGR output converted by OpenCV.

Real frames and a real matte (scikit-image's astronaut, segmented and refined by BgCam's own
stages), every mode, several blur strengths and types, and frame sizes with and without margins
(sides that are not multiples of the 16-pixel tiles). The I420 path converts the background at
its working size and blends in YUV, so it differs from ``cvtColor(compose(...))`` by rounding:
the tolerance is at most 2 levels anywhere and a mean below 0.5 per plane.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from bgcam.compose.cpu import CpuCompositor
from bgcam.compose.i420 import I420Composer, i420_planes, is_i420, to_bgr, to_i420
from bgcam.config import ComposeConfig
from bgcam.frame import ShrunkFrame
from tests.compose.compose_cases import background_file, frame_and_alpha

MAX_DIFF = 2
MEAN_DIFF = 0.5

SIZES = [(1280, 720), (648, 364), (960, 540), (112, 72)]
"""16:9 at 720p (whole tiles); 648x364 and 960x540 have right and/or bottom margins; 112x72 is
small (a blur at full size: the converted path)."""

CASES = [
    ("blur", "gaussian", 0),
    ("blur", "gaussian", 3),  # weak: the sharp frame's share, converted from BGR
    ("blur", "gaussian", 20),
    ("blur", "gaussian", 60),
    ("blur", "gaussian", 100),
    ("blur", "box", 35),
    ("blur", "median", 60),
    ("blur", "lens", 60),
    ("remove", "gaussian", 60),
    ("replace", "gaussian", 60),
    ("off", "gaussian", 60),
]

_frames: dict[tuple[int, int], tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32]]] = {}


def real(size: tuple[int, int]) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32]]:
    if size not in _frames:
        _frames[size] = frame_and_alpha(size)
    return _frames[size]


def small_matte(alpha: npt.NDArray[np.float32], s: int) -> npt.NDArray[np.uint8]:
    h, w = alpha.shape
    small = cv2.resize(alpha, (w // s, h // s), interpolation=cv2.INTER_AREA)
    return np.clip(np.rint(small * 255), 0, 255).astype(np.uint8)


def assert_close(got: npt.NDArray[np.uint8], want_bgr: npt.NDArray[np.uint8], what: str) -> None:
    h, w = want_bgr.shape[:2]
    want = cv2.cvtColor(want_bgr, cv2.COLOR_BGR2YUV_I420)
    assert got.shape == want.shape and got.dtype == np.uint8, what
    for name, g, t in zip("YUV", i420_planes(got, h, w), i420_planes(want, h, w), strict=True):
        d = np.abs(g.astype(np.int16) - t.astype(np.int16))
        assert d.max() <= MAX_DIFF and d.mean() < MEAN_DIFF, (what, name, d.max(), d.mean())


def config(case: tuple[str, str, int], background: str) -> ComposeConfig:
    mode, kind, strength = case
    return ComposeConfig(mode=mode, blur_type=kind, blur=strength, background=background)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[1]}-{c[2]}")
def test_i420_matches_the_converted_bgr_output(
    size: tuple[int, int], case: tuple[str, str, int], tmp_path: Path
) -> None:
    image, alpha = real(size)
    cfg = config(case, background_file(tmp_path))
    s = 4 if size[0] % 4 == 0 and size[1] % 4 == 0 else 2
    a8s = small_matte(alpha, s)
    small = cv2.resize(image, (a8s.shape[1], a8s.shape[0]), interpolation=cv2.INTER_LINEAR)
    bgr, yuv = CpuCompositor(cfg, size), CpuCompositor(cfg, size)
    composer = I420Composer(yuv)
    try:
        for _ in range(2):  # the second frame reuses every buffer
            want = bgr.compose_matte(ShrunkFrame(image, small), a8s)
            got = composer.compose_matte(ShrunkFrame(image, small), a8s)
            assert_close(got, want, f"{case} {size} matte")
        assert_close(composer.compose(image, None), bgr.compose(image, None), "no matte")
        assert_close(composer.compose(image, alpha), bgr.compose(image, alpha), "float alpha")
    finally:
        bgr.close()
        yuv.close()


@pytest.mark.parametrize("mode", ["blur", "remove", "replace"])
def test_the_common_case_never_composes_bgr(mode: str, tmp_path: Path) -> None:
    """A strong blur, a colour or a replace picture with the refiner's matte: the BGR frame is
    never made (the compositor's BGR methods are not called)."""
    size = (1280, 720)
    image, alpha = real(size)
    cfg = config((mode, "gaussian", 60), background_file(tmp_path))
    cpu = CpuCompositor(cfg, size)
    reference = CpuCompositor(cfg, size)
    composer = I420Composer(cpu)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("composed in BGR")

    cpu.compose_matte = refuse
    a8s = small_matte(alpha, 4)
    got = composer.compose_matte(ShrunkFrame(image), a8s)
    assert_close(got, reference.compose_matte(ShrunkFrame(image), a8s), mode)
    cpu.close()
    reference.close()


def test_odd_sizes_have_no_i420_path() -> None:
    with pytest.raises(ValueError, match="even size"):
        I420Composer(CpuCompositor(ComposeConfig(), (641, 360)))


def test_conversions_keep_the_kind_they_are_given() -> None:
    rng = np.random.default_rng(0)
    bgr = rng.integers(0, 256, (36, 64, 3), np.uint8)
    yuv = to_i420(bgr)
    assert is_i420(yuv) and yuv.shape == (54, 64) and not is_i420(bgr)
    assert to_i420(yuv) is yuv and to_bgr(bgr) is bgr
    back = to_bgr(yuv)
    assert back.shape == bgr.shape
    np.testing.assert_array_equal(to_i420(back), cv2.cvtColor(back, cv2.COLOR_BGR2YUV_I420))
