"""Blur geometry, colours, cover-crop fitting and background sources."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from bgcam.effects import (
    BLUR_SCALE,
    ImageBackground,
    VideoBackground,
    blur_factor,
    blur_sigma,
    box_size,
    cover_resize,
    disc_kernel,
    open_background,
    parse_color,
)
from bgcam.errors import InputError


@pytest.mark.parametrize(
    ("strength", "size", "sigma"),
    [
        (0, (1280, 720), 0.0),
        (100, (1280, 720), BLUR_SCALE * 720),
        (50, (1280, 720), BLUR_SCALE * 360),
        (50, (1920, 1080), BLUR_SCALE * 540),
        (50, (480, 640), BLUR_SCALE * 240),  # portrait: the shorter side counts
    ],
)
def test_blur_sigma_scales_with_the_frame(
    strength: int, size: tuple[int, int], sigma: float
) -> None:
    assert blur_sigma(strength, size) == pytest.approx(sigma)


@pytest.mark.parametrize("size", [(640, 480), (1280, 720), (1920, 1080), (37, 23)])
@pytest.mark.parametrize("strength", [1, 10, 30, 60, 100])
def test_blur_factor_is_a_power_of_two_keeping_enough_sigma(
    size: tuple[int, int], strength: int
) -> None:
    sigma = blur_sigma(strength, size)
    f = blur_factor(sigma, size)
    assert f >= 1 and f & (f - 1) == 0
    assert f == 1 or sigma / f >= 2.0
    # The same strength lands on the same relative working size at 720p and 1440p.
    if size == (1280, 720):
        assert blur_factor(blur_sigma(strength, (2560, 1440)), (2560, 1440)) in (f, 2 * f)


def test_box_size_matches_gaussian_variance() -> None:
    for sigma in (1.0, 3.0, 7.5):
        k = box_size(sigma)
        assert k % 2 == 1
        assert abs(np.sqrt((k * k - 1) / 12.0) - sigma) < 1.0


@pytest.mark.parametrize("radius", [0.5, 1.0, 2.5, 6.0])
def test_disc_kernel(radius: float) -> None:
    k = disc_kernel(radius)
    assert k.dtype == np.float32 and k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1
    assert k.sum() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(k, k.T)
    np.testing.assert_allclose(k, k[::-1, ::-1])
    c = k.shape[0] // 2
    assert k[c, c] == k.max()
    if radius >= 2.5:
        assert k[0, 0] == 0.0  # a disc, not a box


@pytest.mark.parametrize(
    ("text", "bgr"),
    [("#00b140", (0x40, 0xB1, 0x00)), ("#FFFFFF", (255, 255, 255)), ("102030", (0x30, 0x20, 0x10))],
)
def test_parse_color(text: str, bgr: tuple[int, int, int]) -> None:
    assert parse_color(text) == bgr


def test_parse_color_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="#rrggbb"):
        parse_color("#abc")


@pytest.mark.parametrize(
    ("src_size", "dst_size"),
    [((400, 100), (200, 200)), ((100, 400), (320, 180)), ((50, 30), (641, 359))],
)
def test_cover_resize_fills_and_crops_evenly(
    src_size: tuple[int, int], dst_size: tuple[int, int]
) -> None:
    w, h = src_size
    src = np.zeros((h, w, 3), np.uint8)
    src[:, : w // 2] = 255  # left half white: the centre of the output is the boundary
    out = cover_resize(src, dst_size)
    assert out.shape == (dst_size[1], dst_size[0], 3)
    mid = dst_size[0] // 2
    if w / h > dst_size[0] / dst_size[1]:
        # Wider source: sides are cut, the white/black boundary stays in the middle.
        assert out[:, : mid - 3].min() > 200 and out[:, mid + 3 :].max() < 50


def test_image_background_is_fitted_once(tmp_path: Path) -> None:
    path = tmp_path / "bg.jpg"
    cv2.imwrite(str(path), np.full((90, 160, 3), 77, np.uint8))
    bg = open_background(path, (320, 180))
    assert isinstance(bg, ImageBackground)
    f1, f2 = bg.frame(), bg.frame()
    assert f1.shape == (180, 320, 3) and f1 is f2
    assert abs(int(f1.mean()) - 77) <= 1


def test_video_background_loops(tmp_path: Path) -> None:
    path = tmp_path / "loop.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 5, (64, 48))
    for v in (40, 120, 200):
        writer.write(np.full((48, 64, 3), v, np.uint8))
    writer.release()
    bg = open_background(path, (32, 32))
    assert isinstance(bg, VideoBackground)
    means = [float(bg.frame().mean()) for _ in range(7)]
    np.testing.assert_allclose(means, [40, 120, 200, 40, 120, 200, 40], atol=4)
    bg.close()


def test_unreadable_backgrounds_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        open_background(tmp_path / "missing.png", (32, 32))
    fake_video = tmp_path / "broken.mp4"
    fake_video.write_bytes(b"\x00" * 100)
    with pytest.raises(InputError, match="cannot be read as a video"):
        open_background(fake_video, (32, 32))


def test_fill_color_fills_every_pixel_with_the_bgr_colour() -> None:
    from bgcam.effects import fill_color

    img = np.zeros((7, 5, 3), np.uint8)
    assert fill_color(img, (1, 2, 3)) is img
    assert (img.reshape(-1, 3) == [1, 2, 3]).all()


def test_a_sharp_share_too_small_to_see_is_dropped_not_paid_for() -> None:
    from bgcam.effects import SHARP_MIN, blur_sigma, sharp_weight

    at_720 = sharp_weight(blur_sigma(10, (1280, 720)), 8)
    at_1080 = sharp_weight(blur_sigma(10, (1920, 1080)), 8)  # would be 0.024: under 0.4 dB
    assert at_720 > 0.1 and at_1080 == 0.0
    assert sharp_weight(0.0, 8) == 1.0 and SHARP_MIN == 0.05


@pytest.mark.parametrize(
    ("size", "factor"),
    [
        ((320, 240), 2),
        ((640, 480), 4),
        ((960, 540), 6),
        ((1280, 720), 8),
        ((1920, 1080), 12),
        ((2560, 1440), 16),
        ((3840, 2160), 16),
        ((37, 23), 1),
    ],
)
def test_every_blur_works_at_90_to_135_rows_at_least(size: tuple[int, int], factor: int) -> None:
    from bgcam.effects import MIN_WORK_ROWS, WORK_FACTORS, min_factor

    assert min_factor(size) == factor and factor in WORK_FACTORS
    rows = min(size) // factor
    assert factor == 1 or rows >= MIN_WORK_ROWS
    assert (
        factor == max(WORK_FACTORS)
        or min(size) // min(f for f in WORK_FACTORS if f > factor) < MIN_WORK_ROWS
    )


def test_finer_factor_steps_down_the_work_factors() -> None:
    from bgcam.effects import finer_factor

    assert [finer_factor(f) for f in (16, 12, 8, 6, 4, 3, 2, 1)] == [12, 8, 6, 4, 3, 2, 1, 1]
