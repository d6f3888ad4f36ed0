"""CPU compositor: every mode and blur type, no halo, fail closed, strength scaling, backgrounds."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest

from bgcam.compose import create_compositor
from bgcam.compose.cpu import CpuCompositor
from bgcam.compose.tiles import BackgroundCover, Rect, TileGrid
from bgcam.config import ComposeConfig
from bgcam.effects import blur_sigma, cover_resize
from bgcam.errors import InputError
from bgcam.frame import ShrunkFrame, upsample_alpha8

BLUR_TYPES = ["gaussian", "box", "median", "bilateral", "lens"]
SIZES = [(640, 480), (641, 359), (37, 23)]


def textured(size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A smooth colour gradient with fine noise: no flat regions."""
    w, h = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.dstack([xx / w * 200 + 20, yy / h * 200 + 20, (xx + yy) / (w + h) * 200 + 20])
    return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)


def disc_alpha(size: tuple[int, int], radius_frac: float = 0.3, soft: float = 3.0) -> np.ndarray:
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = np.hypot(xx - w / 2, yy - h / 2)
    r = radius_frac * min(w, h)
    return np.clip((r - d) / soft + 0.5, 0, 1).astype(np.float32)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(
    "cfg",
    [ComposeConfig(mode="blur", blur_type=t) for t in BLUR_TYPES]
    + [ComposeConfig(mode="blur", blur=0), ComposeConfig(mode="blur", blur=100)]
    + [ComposeConfig(mode="remove"), ComposeConfig(mode="off"), ComposeConfig(mode="replace")],
    ids=lambda c: f"{c.mode}-{c.blur_type}-{c.blur}",
)
def test_every_mode_and_blur_type_runs(size: tuple[int, int], cfg: ComposeConfig) -> None:
    image = textured(size)
    alpha = disc_alpha(size)
    comp = create_compositor(cfg, size)
    for a in (alpha, None):
        out = comp.compose(image, a)
        assert out.shape == image.shape and out.dtype == np.uint8
        assert not np.shares_memory(out, image)
    out = comp.compose(image, alpha)
    inside = alpha >= 1.0
    # The person (alpha 1) is untouched in every mode.
    np.testing.assert_array_equal(out[inside], image[inside])
    comp.close()


def test_soft_blend_matches_the_formula_exactly() -> None:
    """The tiled blend equals bg + (I - bg) * round(255 a) / 255 everywhere (odd size)."""
    size = (643, 365)
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (size[1], size[0], 3), np.uint8)
    alpha = disc_alpha(size, soft=9.0)
    alpha[rng.random(alpha.shape) < 0.002] = 0.37  # isolated fractional pixels anywhere
    comp = CpuCompositor(ComposeConfig(mode="remove", color="#204080"), size)
    out = comp.compose(image, alpha).astype(np.int64)
    a8 = np.round(alpha * 255).astype(np.int64)[..., None]
    bg = np.array([0x80, 0x40, 0x20])
    expected = bg + ((image.astype(np.int64) - bg) * a8 + 127) // 255
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize(
    ("size", "small"),
    [
        ((320, 176), (80, 44)),
        ((320, 176), (40, 22)),
        ((330, 190), (165, 95)),
        ((328, 184), (41, 23)),
        ((96, 64), (3, 2)),
        ((64, 48), (64, 48)),
    ],
    ids=["x4", "x8", "x2-odd", "x8-strips", "x32-fallback", "x1"],
)
def test_matte_path_blends_exactly_with_tiles_found_at_low_resolution(
    size: tuple[int, int], small: tuple[int, int]
) -> None:
    """compose_matte blends with exactly upsample_alpha8(small matte) / 255 everywhere: tiles
    wholly inside copied, silhouette tiles upsampled alone, strips past the last whole tile
    (remove mode: the formula must hold at every pixel)."""
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (size[1], size[0], 3), np.uint8)
    a8s = (disc_alpha(small, soft=1.5) * 255).round().astype(np.uint8)
    a8s[rng.random(a8s.shape) < 0.01] = 200  # isolated soft pixels anywhere
    a8s[rng.random(a8s.shape) < 0.01] = 255
    a8 = upsample_alpha8(a8s, size)
    comp = CpuCompositor(ComposeConfig(mode="remove", color="#204080"), size)
    out = comp.compose_matte(ShrunkFrame(image), a8s).astype(np.int64)
    bg = np.array([0x80, 0x40, 0x20])
    expected = bg + ((image.astype(np.int64) - bg) * a8.astype(np.int64)[..., None] + 127) // 255
    np.testing.assert_array_equal(out, expected)
    # The float path with the same matte gives the same frame.
    same = comp.compose(image, a8.astype(np.float32) / 255.0)
    np.testing.assert_array_equal(same, expected)


@pytest.mark.parametrize(
    ("size", "small", "strength", "blur_type"),
    [
        ((1280, 720), (160, 90), 8, "gaussian"),
        ((1920, 1080), (240, 135), 5, "lens"),
        ((328, 184), (41, 23), 5, "box"),
    ],
    ids=["720p", "1080p-strips", "x8-strips"],
)
def test_a_weak_blurs_sharp_share_is_blended_only_where_the_background_shows(
    size: tuple[int, int], small: tuple[int, int], strength: int, blur_type: str
) -> None:
    """The matte path adds a weak blur's share of the sharp frame outside the tiles wholly
    inside the person only (and in the strips past the last whole tile): the frame is exactly
    the full-frame sharpened background under the person."""
    image = textured(size, seed=6)
    a8s = (disc_alpha(small, soft=2.0) * 255).round().astype(np.uint8)
    comp = CpuCompositor(ComposeConfig(mode="blur", blur=strength, blur_type=blur_type), size)
    blur = comp._blur
    assert blur is not None and 0 < blur.plan.sharp < 1
    got = comp.compose_matte(ShrunkFrame(image), a8s).astype(np.int64)
    bg = blur.run(image, a8s, np.empty_like(image)).astype(np.int64)
    a8 = upsample_alpha8(a8s, size).astype(np.int64)[..., None]
    np.testing.assert_array_equal(got, bg + ((image.astype(np.int64) - bg) * a8 + 127) // 255)


@pytest.mark.parametrize("factor", [2, 4, 8, 16])
def test_silhouette_tiles_are_upsampled_bit_exactly(factor: int) -> None:
    """The silhouette tiles' alpha, upsampled window by window in one call, equals the
    full-frame upsample there for any 8-bit content (OpenCV's fixed-point bilinear); the
    per-tile range found on the small matte bounds the true one."""
    rng = np.random.default_rng(factor)
    size = (1280, 720)
    small = (size[0] // factor, size[1] // factor)
    grid = TileGrid.of(size, small)
    assert grid is not None and grid.s == factor
    rows, cols = size[1] // 16, size[0] // 16
    for a8s in (
        rng.integers(0, 256, (small[1], small[0]), np.uint8),
        (disc_alpha(small, soft=2.0) * 255).round().astype(np.uint8),
    ):
        full = upsample_alpha8(a8s, size)
        tmin, tmax = grid.classify(a8s, rows, cols)
        by_tile = full.reshape(rows, 16, cols, 16).transpose(0, 2, 1, 3)
        # Bounds of each tile's range (a tile is classified as inside or outside only when
        # it wholly is; one merely near 0 or 255 is blended, which is exact too).
        assert (tmin <= by_tile.min(axis=(2, 3))).all()
        assert (tmax >= by_tile.max(axis=(2, 3))).all()
        ty, tx = np.nonzero(rng.random((rows, cols)) < 0.3)
        got = np.empty((len(ty), 16, 16), np.uint8)
        np.testing.assert_array_equal(grid.tiles(ty, tx, rows, cols, got), by_tile[ty, tx])
        # Fewer tiles than a row of windows, and a grown scratch, give the same.
        one = np.empty((1, 16, 16), np.uint8)
        np.testing.assert_array_equal(grid.tiles(ty[:1], tx[:1], rows, cols, one), got[:1])


def test_matte_path_blur_matches_the_float_path() -> None:
    """Blur weights from the small alpha and a shared pre-shrunk frame change the blur only
    within the accelerators' tolerance; a frame shrunk to the blur's own start size is used
    as is (bit-exact with shrinking it here)."""
    size = (1280, 720)
    image = textured(size, seed=4)
    a8s = (disc_alpha((320, 180), soft=2.0) * 255).round().astype(np.uint8)
    a8 = upsample_alpha8(a8s, size)
    comp = CpuCompositor(ComposeConfig(mode="blur", blur=60), size)
    blur = comp._blur
    assert blur is not None and blur.pre_size == (320, 180)
    small = cv2.resize(image, blur.pre_size, interpolation=cv2.INTER_LINEAR)
    ref = comp.compose(image, a8.astype(np.float32) / 255.0).copy()
    shared = comp.compose_matte(ShrunkFrame(image, small), a8s).copy()
    unshared = comp.compose_matte(ShrunkFrame(image), a8s)
    np.testing.assert_array_equal(shared, unshared)
    assert psnr(shared, ref) > 40.0


@pytest.mark.parametrize(
    ("size", "cfg", "small", "starts"),
    [
        ((1920, 1080), ComposeConfig(), (240, 135), True),  # pre 240x136: one row short
        ((1280, 720), ComposeConfig(blur=60, blur_type="lens"), (320, 180), True),  # 2x pre
        ((1280, 720), ComposeConfig(blur=100), (320, 180), True),  # 4x the work size, 2x pre
        ((1280, 720), ComposeConfig(blur=10, blur_type="median"), (320, 180), False),  # < pre
        ((1920, 1080), ComposeConfig(blur=30), (240, 135), False),  # pre 320x180
    ],
    ids=["1080p-default", "720p-lens-60", "720p-gaussian-100", "720p-median-10", "1080p-30"],
)
def test_the_blur_starts_from_a_shrunk_frame_near_its_pre_size(
    size: tuple[int, int], cfg: ComposeConfig, small: tuple[int, int], starts: bool
) -> None:
    """A shrunk frame from one row short of the blur's pre size up to twice it is where the
    blur starts (then the picture outside the matte is not read); the result stays within the
    accelerators' tolerance of shrinking the picture itself."""
    image = textured(size, seed=5)
    a8s = (disc_alpha(small, soft=2.0) * 255).round().astype(np.uint8)
    comp = CpuCompositor(cfg, size)
    assert comp.reads_background(small) is not starts
    shrunk = cv2.resize(image, small, interpolation=cv2.INTER_LINEAR)
    shared = comp.compose_matte(ShrunkFrame(image, shrunk), a8s).copy()
    unshared = comp.compose_matte(ShrunkFrame(image), a8s)
    assert psnr(shared, unshared) > 40.0
    comp.close()


@pytest.mark.parametrize(
    "matte",
    [np.zeros((24, 32), np.float32), np.zeros((96, 32), np.uint8), np.zeros((2, 3, 4), np.uint8)],
    ids=["float", "too-tall", "3-d"],
)
def test_matte_path_rejects_a_matte_that_is_not_8_bit_and_at_most_frame_size(
    matte: np.ndarray,
) -> None:
    comp = CpuCompositor(ComposeConfig(), (64, 48))
    with pytest.raises(ValueError, match=r"alpha8_small: expected a uint8 \(h, w\) map"):
        comp.compose_matte(ShrunkFrame(np.zeros((48, 64, 3), np.uint8)), matte)


def halo_excess(out: np.ndarray, alpha: np.ndarray, r_px: float) -> float:
    """Mean brightness of the background ring next to the silhouette minus the far background."""
    h, w = alpha.shape
    yy, xx = np.mgrid[0:h, 0:w]
    d = np.hypot(xx - w / 2, yy - h / 2)
    gray = cv2.cvtColor(out, cv2.COLOR_BGR2GRAY).astype(np.float64)
    ring = (d > r_px + 3) & (d < r_px + 0.06 * min(w, h))
    far = d > r_px + 0.3 * min(w, h)
    return float(gray[ring].mean() - gray[far].mean())


def naive_blur_then_paste(image: np.ndarray, alpha: np.ndarray, sigma: float) -> np.ndarray:
    """What typical tools do: blur the whole frame, paste the person back (leaves a halo)."""
    bg = cv2.GaussianBlur(image, (0, 0), sigma).astype(np.float32)
    a = alpha[..., None]
    return np.clip(image * a + bg * (1 - a), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("blur_type", BLUR_TYPES)
def test_no_halo_around_a_bright_subject(blur_type: str) -> None:
    size = (640, 480)
    image = np.full((480, 640, 3), 20, np.uint8)
    alpha = disc_alpha(size, radius_frac=0.3, soft=2.0)
    image[alpha > 0.5] = 250
    r_px = 0.3 * 480
    cfg = ComposeConfig(mode="blur", blur=80, blur_type=blur_type)
    out = CpuCompositor(cfg, size).compose(image, alpha)
    assert halo_excess(out, alpha, r_px) < 3.0
    # The check can fail: the naive blur-then-paste brightens that ring by far more.
    naive = naive_blur_then_paste(image, alpha, blur_sigma(80, size))
    assert halo_excess(naive, alpha, r_px) > 20.0


@pytest.mark.parametrize("mode", ["blur", "replace", "remove"])
def test_no_mask_fails_closed(mode: str, tmp_path: Path) -> None:
    """alpha None: the whole frame is background; no pixel of the input shows through."""
    size = (640, 480)
    image = np.random.default_rng(5).integers(0, 256, (480, 640, 3), np.uint8)
    bg_file = tmp_path / "bg.png"
    cv2.imwrite(str(bg_file), textured((320, 200), seed=9))
    cfg = ComposeConfig(mode=mode, background=str(bg_file) if mode == "replace" else "")
    out = CpuCompositor(cfg, size).compose(image, None)
    same_pixel = (out == image).all(axis=2)
    assert not same_pixel.any()


def test_blur_strength_looks_the_same_at_two_resolutions() -> None:
    small_size, big_size = (640, 360), (1280, 720)
    skimage_data = pytest.importorskip("skimage.data")
    photo = cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR)
    big = cover_resize(photo, big_size)
    small = cv2.resize(big, small_size, interpolation=cv2.INTER_AREA)

    def blurred(img: np.ndarray, size: tuple[int, int], strength: int) -> np.ndarray:
        comp = CpuCompositor(ComposeConfig(mode="blur", blur=strength), size)
        return comp.compose(img, None).copy()

    out_small = blurred(small, small_size, 60)
    out_big = cv2.resize(blurred(big, big_size, 60), small_size, interpolation=cv2.INTER_AREA)
    same = psnr(out_small, out_big)
    other = psnr(out_small, blurred(small, small_size, 20))
    assert same > 33.0
    assert same > other + 6.0, (same, other)


def test_remove_fills_with_the_colour_and_off_passes_through() -> None:
    size = (64, 48)
    image = textured(size)
    alpha = np.zeros((48, 64), np.float32)
    alpha[10:30, 20:40] = 1.0
    comp = CpuCompositor(ComposeConfig(mode="remove", color="#00b140"), size)
    out = comp.compose(image, alpha)
    assert tuple(out[0, 0]) == (0x40, 0xB1, 0x00)
    np.testing.assert_array_equal(out[10:30, 20:40], image[10:30, 20:40])
    comp.update(ComposeConfig(mode="off"))
    np.testing.assert_array_equal(comp.compose(image, alpha), image)


def test_replace_with_an_image(tmp_path: Path) -> None:
    size = (320, 240)
    picture = textured((400, 150), seed=3)  # wider than the frame: cover-crop cuts the sides
    path = tmp_path / "office.png"
    cv2.imwrite(str(path), picture)
    comp = CpuCompositor(ComposeConfig(mode="replace", background=str(path)), size)
    image = textured(size, seed=1)
    alpha = np.zeros((240, 320), np.float32)
    alpha[:, 100:200] = 1.0
    out = comp.compose(image, alpha)
    fitted = cover_resize(picture, size)
    np.testing.assert_array_equal(out[:, :100], fitted[:, :100])
    np.testing.assert_array_equal(out[:, 100:200], image[:, 100:200])


def write_video(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> None:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (w, h))
    assert writer.isOpened()
    for f in frames:
        writer.write(f)
    writer.release()


def test_replace_with_a_looping_video(tmp_path: Path) -> None:
    levels = [30, 90, 150, 210]
    frames = [np.full((120, 160, 3), v, np.uint8) for v in levels]
    path = tmp_path / "clip.avi"
    write_video(path, frames)
    size = (200, 100)
    comp = CpuCompositor(ComposeConfig(mode="replace", background=str(path)), size)
    image = np.zeros((100, 200, 3), np.uint8)
    alpha = np.zeros((100, 200), np.float32)
    seen = [float(comp.compose(image, alpha).mean()) for _ in range(10)]
    expected = [levels[i % 4] for i in range(10)]
    np.testing.assert_allclose(seen, expected, atol=4.0)  # MJPG is lossy
    comp.close()


@pytest.mark.parametrize(
    ("background", "match"),
    [("/nonexistent/bg.png", "no such file"), ("NOTANIMAGE", "cannot be read as an image")],
)
def test_bad_background_is_a_user_error(background: str, match: str, tmp_path: Path) -> None:
    if background == "NOTANIMAGE":
        bad = tmp_path / "notes.png"
        bad.write_text("not a picture", encoding="utf-8")
        background = str(bad)
    with pytest.raises(InputError, match=match):
        CpuCompositor(ComposeConfig(mode="replace", background=background), (64, 48))


def test_update_switches_mode_and_strength_between_frames() -> None:
    size = (160, 120)
    image = textured(size)
    alpha = disc_alpha(size)
    comp = CpuCompositor(ComposeConfig(mode="blur", blur=20), size)
    weak = comp.compose(image, alpha).copy()
    comp.update(ComposeConfig(mode="blur", blur=90))
    strong = comp.compose(image, alpha).copy()
    bg = alpha == 0
    # A stronger blur moves the background further from the original.
    assert (
        np.abs(strong[bg].astype(int) - image[bg]).mean()
        > np.abs(weak[bg].astype(int) - image[bg]).mean()
    )
    comp.update(ComposeConfig(mode="off"))
    np.testing.assert_array_equal(comp.compose(image, alpha), image)


def test_rejects_wrong_shapes() -> None:
    comp = CpuCompositor(ComposeConfig(), (64, 48))
    with pytest.raises(ValueError, match=r"image: expected shape \(48, 64, 3\)"):
        comp.compose(np.zeros((48, 63, 3), np.uint8), None)
    with pytest.raises(ValueError, match=r"alpha: expected shape \(48, 64\)"):
        comp.compose(np.zeros((48, 64, 3), np.uint8), np.zeros((48, 63), np.float32))


def test_a_change_prepared_on_another_thread_touches_nothing_until_put_in_place(
    tmp_path: Path,
) -> None:
    """:meth:`prepare` builds the new blur, background and colour on a builder thread while the
    old setting keeps composing unchanged; :meth:`update` then only puts them in place."""
    size = (320, 240)
    image, alpha = textured(size), disc_alpha(size)
    path = tmp_path / "office.png"
    cv2.imwrite(str(path), textured((400, 300), seed=3))
    comp = CpuCompositor(ComposeConfig(mode="blur", blur=60), size)
    before = comp.compose(image, alpha).copy()
    for new in (
        ComposeConfig(mode="blur", blur=10, blur_type="median"),
        ComposeConfig(mode="replace", background=str(path)),
        ComposeConfig(mode="remove", color="#20a040"),
    ):
        with ThreadPoolExecutor(1) as builder:
            prepared = builder.submit(comp.prepare, new).result(30)
        np.testing.assert_array_equal(comp.compose(image, alpha), before)  # nothing in use moved
        comp.update(new, prepared)
        if prepared.blur is not None:
            assert comp._blur is prepared.blur  # not built again on this thread
        want = CpuCompositor(new, size).compose(image, alpha)
        np.testing.assert_array_equal(comp.compose(image, alpha), want)
        comp.update(ComposeConfig(mode="blur", blur=60))
        before = comp.compose(image, alpha).copy()


def test_a_change_prepared_for_other_settings_is_not_used() -> None:
    size = (160, 120)
    image, alpha = textured(size), disc_alpha(size)
    comp = CpuCompositor(ComposeConfig(mode="blur", blur=60), size)
    stale = comp.prepare(ComposeConfig(mode="blur", blur=30))
    comp.update(ComposeConfig(mode="blur", blur=90), stale)
    want = CpuCompositor(ComposeConfig(mode="blur", blur=90), size).compose(image, alpha)
    np.testing.assert_array_equal(comp.compose(image, alpha), want)


def test_the_cheaper_path_blurs_smaller_and_keeps_through_settings_changes() -> None:
    size = (1280, 720)
    comp = CpuCompositor(ComposeConfig(mode="blur", blur=60), size)
    assert comp._blur is not None and comp._blur.plan.factor == 8
    what = comp.economise(1)
    assert what == "gaussian blur computed at 1/16 size (80x45)"
    assert comp._blur.plan.factor == 16 and comp.economy == 1
    comp.update(ComposeConfig(mode="blur", blur=10, blur_type="box"))  # a user's change
    assert comp._blur.plan.factor == 16 and comp._blur.plan.sharp > 0
    comp.update(ComposeConfig(mode="blur", blur=100))  # already at 1/16: 1/32 is too small
    assert comp._blur.plan.factor == 16
    assert comp.economise(2) is None and comp.economy == 1  # no smaller path: nothing changes
    assert comp.economise(0) == "gaussian blur computed at 1/16 size (80x45)"
    comp.update(ComposeConfig(mode="blur", blur=60))
    assert comp._blur.plan.factor == 8 and comp.economy == 0


@pytest.mark.parametrize(
    ("cfg", "with_small", "reads"),
    [
        (ComposeConfig(), True, False),  # the blur starts from the shrunk frame
        (ComposeConfig(), False, True),  # no shrunk frame: the blur shrinks the picture
        (ComposeConfig(blur=5), True, True),  # a weak blur keeps some of the sharp frame
        (ComposeConfig(blur=0), True, True),  # passes through
        (ComposeConfig(mode="off"), True, True),
        (ComposeConfig(mode="remove"), False, False),
        (ComposeConfig(mode="replace", background="BACKGROUND"), False, False),
        (ComposeConfig(mode="replace"), True, False),  # no background: blurs
        (ComposeConfig(mode="replace"), False, True),
    ],
    ids=lambda v: f"{v.mode}-{v.blur}" if isinstance(v, ComposeConfig) else str(v),
)
def test_outside_the_matte_the_picture_matters_only_when_the_compositor_says_so(
    cfg: ComposeConfig, with_small: bool, reads: bool, tmp_path: Path
) -> None:
    """``reads_background`` False: garbage where the upsampled matte is 0 changes nothing."""
    size = (640, 360)
    if cfg.background == "BACKGROUND":
        path = tmp_path / "office.png"
        cv2.imwrite(str(path), textured((500, 300), seed=4))
        cfg = ComposeConfig(mode="replace", background=str(path))
    comp = CpuCompositor(cfg, size)
    image = textured(size, seed=1)
    a8s = np.zeros((90, 160), np.uint8)
    cv2.circle(a8s, (70, 50), 25, 255, -1, cv2.LINE_AA)
    pre = (320, 180)  # where the default blur starts at this size
    small = cv2.resize(image, pre, interpolation=cv2.INTER_LINEAR) if with_small else None
    assert comp.reads_background(pre if with_small else None) is reads
    assert comp.reads_background((160, 90)) or not with_small  # not the size it starts from
    ref = comp.compose_matte(ShrunkFrame(image, small), a8s).copy()
    spoilt = textured(size, seed=9)
    inside = upsample_alpha8(a8s, size) > 0
    spoilt[inside] = image[inside]
    out = comp.compose_matte(ShrunkFrame(spoilt, small), a8s)
    assert np.array_equal(out, ref) is not reads
    comp.close()


FRAMED_SETTINGS = {
    "blur": {},
    "remove": {"mode": "remove"},
    "replace": {"mode": "replace", "background": "file"},
    "lens": {"blur_type": "lens"},
    "weak": {"blur": 5},  # adds a share of the sharp picture: drawn whole, composed as usual
    "off": {"mode": "off"},
}


@pytest.mark.parametrize("setting", FRAMED_SETTINGS.values(), ids=FRAMED_SETTINGS.keys())
@pytest.mark.parametrize(
    ("size", "small"),
    [
        ((1280, 720), (320, 180)),
        ((640, 360), (160, 90)),
        ((648, 372), (162, 93)),
        ((640, 360), (170, 90)),
    ],
    ids=["whole-tiles", "bottom-margin", "both-margins", "no-tile-grid"],
)
def test_a_framed_picture_drawn_into_the_output_composes_the_same(
    size: tuple[int, int], small: tuple[int, int], setting: dict[str, object], tmp_path: Path
) -> None:
    """``compose_framed`` (auto-framing's crop warped straight into the output, only in the
    bands the matte reaches) gives bit for bit what composing the whole framed picture gives,
    in every mode, with margins that whole tiles leave, and with nobody in view."""
    from bgcam.studio import Crop, CropWarp, FramedPicture
    from bgcam.studio.box import reach_bands
    from tests.compose.compose_cases import background_file

    if setting.get("background") == "file":
        setting = {**setting, "background": background_file(tmp_path)}
    image = textured(size, seed=3)
    alpha = (disc_alpha(small, radius_frac=0.35, soft=2.0) * 255).round().astype(np.uint8)
    alpha[: small[1] // 5] = 0  # not symmetric: bands of different widths
    comp = CpuCompositor(ComposeConfig(**setting), size)
    if setting == {} and small == (320, 180):
        assert not comp.reads_background(small)  # the picture drawn only in the bands
    for crop, a8s in (
        (Crop(0.45, 0.55, 0.64), alpha),
        (Crop(0.7, 0.3, 0.5), alpha),
        (Crop(0.45, 0.55, 0.64), np.zeros_like(alpha)),  # nobody in view
    ):
        warp = CropWarp(size)
        matte = warp.alpha(a8s, crop).copy()
        hint = warp.small(cv2.resize(image, small, interpolation=cv2.INTER_LINEAR), crop).copy()
        want = comp.compose_matte(ShrunkFrame(warp.image(image, crop), hint), matte).copy()
        picture = FramedPicture(image, crop, tuple(reach_bands(matte, size)), CropWarp(size))
        got = comp.compose_framed(picture, hint, matte)
        np.testing.assert_array_equal(got, want)
    comp.close()


class _WholeCover(BackgroundCover):
    """The background everywhere: the reference for the partial one."""

    def rects(self, inside: np.ndarray) -> list[Rect]:
        self.skipped = 0
        return self.whole


@pytest.mark.parametrize(
    ("size", "small"),
    [((1280, 720), (320, 180)), ((648, 364), (162, 91)), ((1288, 724), (322, 181))],
    ids=["720p", "margins", "margins-161x91-blur"],
)
@pytest.mark.parametrize(
    "setting",
    [
        {"blur": 60},
        {"blur": 5},  # weak: the sharp frame's share, only where the background shows
        {"blur": 30, "blur_type": "box"},
        {"blur": 10, "blur_type": "median"},
        {"blur": 60, "blur_type": "bilateral"},
        {"blur": 100, "blur_type": "lens"},
        {"blur": 0},
        {"mode": "remove"},
        {"mode": "replace", "background": "file"},
        {"mode": "replace"},  # no background file: the blur
        {"mode": "off"},
    ],
    ids=lambda s: "-".join(f"{k}={v}" for k, v in s.items()),
)
def test_the_background_made_only_where_it_shows_composes_the_same(
    size: tuple[int, int],
    small: tuple[int, int],
    setting: dict[str, object],
    tmp_path: Path,
) -> None:
    """The background built only outside the tiles wholly inside the person (and in the
    margins) gives the frame that the whole-frame background gives, in every mode, for a
    person moving across tile borders and the margins: bit for bit."""
    from tests.compose.compose_cases import background_file

    if setting.get("background") == "file":
        setting = {**setting, "background": background_file(tmp_path)}
    image = np.random.default_rng(9).integers(0, 256, (size[1], size[0], 3), np.uint8)
    hint = cv2.resize(image, small, interpolation=cv2.INTER_LINEAR)
    cfg = ComposeConfig(**setting)
    part, whole = CpuCompositor(cfg, size), CpuCompositor(cfg, size)
    whole._cover = _WholeCover(size)
    sw, sh = small
    yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
    skipped = 0
    for t in np.linspace(-0.2, 1.2, 8):  # across the frame and out at both sides
        d = np.hypot(xx - t * sw, yy - 0.9 * sh)
        a8s = np.clip((0.55 * sh - d) * 60 + 128, 0, 255).astype(np.uint8)
        got = part.compose_matte(ShrunkFrame(image, hint), a8s).copy()
        skipped += part._cover.skipped
        np.testing.assert_array_equal(got, whole.compose_matte(ShrunkFrame(image, hint), a8s))
    if size == (1280, 720) and setting == {"blur": 5}:
        assert part._blur is not None and part._blur.plan.sharp > 0
        assert skipped > 0  # the weak blur's share left out where the person is
    part.close()
    whole.close()


@pytest.mark.parametrize("size", [(1280, 720), (648, 364), (37, 23), (16, 16)])
def test_the_inside_tiles_are_copied_in_blocks_that_hold_them_exactly(
    size: tuple[int, int],
) -> None:
    """The blocks the person is copied in hold exactly the marked tiles, each once, for random
    flags, a person rising from the bottom edge, all and none; a run below the same run is
    merged into one block."""
    comp = CpuCompositor(ComposeConfig(), size)
    rows, cols = size[1] // 16, size[0] // 16
    rng = np.random.default_rng(size[0])
    person = np.zeros((rows, cols), bool)
    person[rows // 3 :, cols // 4 : max(cols // 4 + 1, 3 * cols // 4)] = True
    cases = [rng.random((rows, cols)) < p for p in (0.1, 0.5, 0.9)]
    cases += [person, np.ones((rows, cols), bool), np.zeros((rows, cols), bool)]
    for flags in cases:
        hits = np.zeros((rows * 16, cols * 16), np.int32)
        blocks = comp._tile_blocks(flags)
        for ys, xs in blocks:
            hits[ys, xs] += 1
        np.testing.assert_array_equal(hits, np.repeat(np.repeat(flags, 16, 0), 16, 1))
    assert len(comp._tile_blocks(person)) == 1
