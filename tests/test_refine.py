"""MaskRefiner: temporal smoothing, edge alignment, buffer ownership (unit tables, real images)."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from bgcam.config import Config, RefineConfig
from bgcam.frame import ShrunkFrame
from bgcam.refine import MaskRefiner, finish_tables, work_size

ROOT = Path(__file__).resolve().parents[1]


def astronaut(size: tuple[int, int] = (640, 480)) -> np.ndarray:
    skimage_data = pytest.importorskip("skimage.data")
    img = cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR)
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


def square_scene(x0: int, size: tuple[int, int] = (320, 240)) -> tuple[np.ndarray, np.ndarray]:
    """A textured bright square on a textured dark background, and its low-res mask."""
    w, h = size
    rng = np.random.default_rng(3)
    img = np.clip(40 + rng.normal(0, 6, (h, w, 3)), 0, 255).astype(np.uint8)
    img[60:180, x0 : x0 + 100] = np.clip(200 + rng.normal(0, 6, (120, 100, 3)), 0, 255)
    full = np.zeros((h, w), np.float32)
    full[60:180, x0 : x0 + 100] = 1.0
    low = cv2.resize(full, (128, 96), interpolation=cv2.INTER_AREA)
    return img, low


@pytest.mark.parametrize(
    ("frame", "min_height", "expected"),
    [
        ((1280, 720), 160, (320, 180)),
        ((1920, 1080), 160, (480, 270)),
        ((854, 480), 160, (427, 240)),
        ((640, 480), 160, (320, 240)),
        ((641, 359), 160, (320, 180)),
        ((64, 48), 160, (64, 48)),
        ((1280, 720), 720, (1280, 720)),
    ],
)
def test_work_size(frame: tuple[int, int], min_height: int, expected: tuple[int, int]) -> None:
    assert work_size(frame, min_height) == expected


def test_finish_tables_nudge_towards_the_label_and_sharpen_around_one_half() -> None:
    bg, person = finish_tables(hysteresis=0.1, sharpen=3.0)
    assert bg.shape == person.shape == (1, 256) and bg.dtype == np.uint8
    b, p = bg[0].astype(int), person[0].astype(int)
    assert (np.diff(b) >= 0).all() and (np.diff(p) >= 0).all()  # monotonic in the state
    assert (p >= b).all() and b[0] == p[0] == 0 and b[255] == p[255] == 255
    # Within the hysteresis band the kept label decides the side of 0.5 …
    assert (b[103:153] < 128).all() and (p[103:153] >= 128).all()
    # … and far from it both agree: sharpened, saturated.
    assert (b[:60] == 0).all() and (p[200:] == 255).all()
    plain_bg, plain_person = finish_tables(hysteresis=0.0, sharpen=1.0)
    np.testing.assert_array_equal(plain_bg, plain_person)
    np.testing.assert_array_equal(plain_bg[0], np.arange(256))


def test_outputs_are_one_matte_at_three_sizes() -> None:
    """alpha8 is alpha8_small upsampled; alpha is exactly alpha8 / 255 (what is composited)."""
    img = astronaut()
    low = np.random.default_rng(4).random((144, 256), dtype=np.float32)
    r = MaskRefiner(RefineConfig(), (640, 480))
    for _ in range(2):
        r.update(low, ShrunkFrame(img))
        assert r.alpha8_small.shape == (240, 320)
        up = cv2.resize(r.alpha8_small, (640, 480), interpolation=cv2.INTER_LINEAR)
        np.testing.assert_array_equal(r.alpha8, up)
        np.testing.assert_array_equal(r.alpha, r.alpha8.astype(np.float32) / np.float32(255.0))
        np.testing.assert_array_equal(cv2.convertScaleAbs(r.alpha, alpha=255.0), r.alpha8)


def test_the_frame_shrunk_once_is_the_guide() -> None:
    """A ShrunkFrame's copy at the working size is the guide as it is (not shrunk again); a
    frame without one, or with one of another size, is shrunk by the refiner the same way."""
    img = astronaut()
    low = np.random.default_rng(6).random((144, 256), dtype=np.float32)
    small = cv2.resize(img, (320, 240), interpolation=cv2.INTER_LINEAR)
    given, own = MaskRefiner(RefineConfig(), (640, 480)), MaskRefiner(RefineConfig(), (640, 480))
    assert given.guide(ShrunkFrame(img, small)) is small
    np.testing.assert_array_equal(own.guide(ShrunkFrame(img)), small)
    np.testing.assert_array_equal(own.guide(ShrunkFrame(img, small[:100])), small)
    given.update(low, ShrunkFrame(img, small))
    own.update(low, ShrunkFrame(img))
    np.testing.assert_array_equal(given.alpha8_small, own.alpha8_small)


def test_subnormal_model_output_counts_as_zero() -> None:
    """A sigmoid's ~1e-40 outputs are flushed (they make float arithmetic ~30x slower)."""
    img, low = square_scene(60)
    tiny = low.copy()
    tiny[low == 0] = np.float32(1e-40)
    assert (tiny > 0).all()
    a, b = MaskRefiner(RefineConfig(), (320, 240)), MaskRefiner(RefineConfig(), (320, 240))
    for x0 in (60, 62, 64):
        img, low = square_scene(x0)
        tiny = np.where(low == 0, np.float32(1e-40), low).astype(np.float32)
        np.testing.assert_array_equal(
            a.refine(low, ShrunkFrame(img)), b.refine(tiny, ShrunkFrame(img))
        )
    assert not (b._state[(b._state > 0)] < 1e-30).any()


def test_engine_alpha_is_what_was_composited(model_dir: Path) -> None:
    """In remove mode the output is exactly fill + (I - fill) * round(255 alpha) / 255."""
    from bgcam.engine import Engine

    size = (640, 360)
    img = astronaut(size)
    cfg = Config.model_validate(
        {"compose": {"mode": "remove", "color": "#204080", "backend": "cpu"}}
    )
    with Engine(cfg, size) as engine:
        for i in range(3):
            frame = np.roll(img, 4 * i, axis=1)
            out = engine.process(frame).astype(np.int64)
            assert engine.alpha is not None
            a8 = np.round(engine.alpha.astype(np.float64) * 255).astype(np.int64)[..., None]
            bg = np.array([0x80, 0x40, 0x20])
            expected = bg + ((frame.astype(np.int64) - bg) * a8 + 127) // 255
            np.testing.assert_array_equal(out, expected)
            assert 0 < (a8 == 255).mean() < 1


def test_refine_output_is_full_resolution_owned_and_in_range() -> None:
    img = astronaut()
    low = np.random.default_rng(0).random((144, 256), dtype=np.float32)
    r = MaskRefiner(RefineConfig(), (640, 480))
    a = r.refine(low, ShrunkFrame(img))
    assert a.shape == (480, 640) and a.dtype == np.float32
    assert a.min() >= 0.0 and a.max() <= 1.0
    assert a is r.alpha
    b = r.refine(low, ShrunkFrame(img))
    assert b is a  # the same owned buffer, overwritten


@pytest.mark.parametrize(
    ("image_shape", "mask_shape", "match"),
    [
        ((480, 640), (144, 256), r"image: expected shape \(480, 640, 3\)"),
        ((240, 320, 3), (144, 256), r"image: expected shape \(480, 640, 3\)"),
        ((480, 640, 3), (144, 256, 1), r"mask: expected shape \(h, w\)"),
    ],
)
def test_refine_rejects_wrong_shapes(
    image_shape: tuple[int, ...], mask_shape: tuple[int, ...], match: str
) -> None:
    r = MaskRefiner(RefineConfig(), (640, 480))
    with pytest.raises(ValueError, match=match):
        r.refine(np.zeros(mask_shape, np.float32), ShrunkFrame(np.zeros(image_shape, np.uint8)))


def test_smoother_converges_on_a_still_noisy_input() -> None:
    base = astronaut().astype(np.float32)
    rng = np.random.default_rng(1)
    low_clean = np.zeros((144, 256), np.float32)
    low_clean[20:144, 60:200] = 1.0
    low_clean = cv2.GaussianBlur(low_clean, (0, 0), 3)
    r = MaskRefiner(RefineConfig(), (640, 480))
    changes, raw_changes, prev, prev_raw = [], [], None, None
    for _ in range(30):
        img = np.clip(base + rng.normal(0, 3, base.shape), 0, 255).astype(np.uint8)
        low = np.clip(low_clean + rng.normal(0, 0.05, low_clean.shape), 0, 1).astype(np.float32)
        a = r.refine(low, ShrunkFrame(img)).copy()
        raw = cv2.resize(low, (640, 480))
        if prev is not None:
            changes.append(float(np.abs(a - prev).mean()))
            raw_changes.append(float(np.abs(raw - prev_raw).mean()))
        prev, prev_raw = a, raw
    # The later frames change far less than the raw input does, and less than at the start.
    assert np.mean(changes[-10:]) < np.mean(raw_changes[-10:]) / 8
    # (The matte has 8 bits: one level changing on 1 pixel in 50 is the floor it can reach.)
    assert np.mean(changes[-10:]) <= max(np.mean(changes[:3]), 1.0 / 255.0 / 50.0)


@pytest.mark.parametrize(
    "cfg",
    [
        RefineConfig(),
        RefineConfig(flow_detail="fine"),
        RefineConfig(motion_compensation=False),
    ],
    ids=["flow", "fine-flow", "no-flow"],
)
def test_smoother_follows_a_moved_step_within_two_frames(cfg: RefineConfig) -> None:
    r = MaskRefiner(cfg, (320, 240))
    img, low = square_scene(60)
    for _ in range(10):
        r.refine(low, ShrunkFrame(img))
    img2, low2 = square_scene(140)
    target = cv2.resize(low2, (320, 240)) >= 0.5
    old = cv2.resize(low, (320, 240)) >= 0.5
    ious = []
    for _ in range(2):
        a = r.refine(low2, ShrunkFrame(img2)) >= 0.5
        ious.append((a & target).sum() / (a | target).sum())
    assert ious[-1] > 0.9, ious
    assert ((a & old).sum() / (a | old).sum()) < 0.5


def test_history_does_not_alias_the_input_buffer() -> None:
    """The segmenter reuses its output buffer: mutating it must not touch the refiner's state."""
    img, low = square_scene(60)
    shared = low.copy()
    r = MaskRefiner(RefineConfig(), (320, 240))
    r.refine(shared, ShrunkFrame(img))
    state = r._state.copy()
    label = r._label.copy()
    shared[...] = 0.0  # the segmenter writes its next result into the same buffer
    np.testing.assert_array_equal(r._state, state)
    np.testing.assert_array_equal(r._label, label)
    # And feeding through one reused buffer gives exactly what fresh copies give.
    a, b = MaskRefiner(RefineConfig(), (320, 240)), MaskRefiner(RefineConfig(), (320, 240))
    buf = np.empty_like(low)
    for x0 in (60, 60, 70, 90, 90):
        im, lo = square_scene(x0)
        np.copyto(buf, lo)
        out_a = a.refine(buf, ShrunkFrame(im)).copy()
        out_b = b.refine(lo.copy(), ShrunkFrame(im))
        np.testing.assert_array_equal(out_a, out_b)


def test_reset_and_scene_cut_start_from_the_new_mask() -> None:
    img, low = square_scene(60)
    fresh = MaskRefiner(RefineConfig(), (320, 240)).refine(low, ShrunkFrame(img)).copy()
    other_img, other_low = square_scene(180)
    r = MaskRefiner(RefineConfig(), (320, 240))
    for _ in range(5):
        r.refine(other_low, ShrunkFrame(other_img))
    r.reset()
    np.testing.assert_array_equal(r.refine(low, ShrunkFrame(img)), fresh)
    # A cut (a wholly different picture) also restarts from the new mask.
    cut_img = 255 - other_img
    r2 = MaskRefiner(RefineConfig(), (320, 240))
    for _ in range(5):
        r2.refine(other_low, ShrunkFrame(other_img))
    direct = MaskRefiner(RefineConfig(), (320, 240)).refine(low, ShrunkFrame(cut_img)).copy()
    np.testing.assert_array_equal(r2.refine(low, ShrunkFrame(cut_img)), direct)


def noisy(base: np.ndarray, rng: np.random.Generator, sigma: float = 3.0) -> np.ndarray:
    return np.clip(base + rng.normal(0, sigma, base.shape), 0, 255).astype(np.uint8)


def test_a_still_scene_holds_the_history_and_propagation_repeats_the_keyframe() -> None:
    """Camera noise is not motion: the flow it makes (under STILL_FLOW near the person) is taken
    as zero, so the history is held, not re-sampled, and every propagated frame repeats the
    keyframe's matte exactly: no drift however long the run."""
    base = astronaut((640, 480)).astype(np.float32)
    rng = np.random.default_rng(2)
    low = np.zeros((144, 256), np.float32)
    low[20:144, 60:200] = 1.0
    low = cv2.GaussianBlur(low, (0, 0), 3)
    r = MaskRefiner(RefineConfig(), (640, 480))
    r.update(low, ShrunkFrame(noisy(base, rng)))
    assert not r.held  # (the first frame: nothing to hold)
    for _ in range(3):
        r.update(low, ShrunkFrame(noisy(base, rng)))  # a keyframe
        assert r.held
        key, state = r.alpha8_small.copy(), r._state.copy()
        for _ in range(4):
            assert r.track(ShrunkFrame(noisy(base, rng)))
            assert r.held
            r.propagate()
            np.testing.assert_array_equal(r.alpha8_small, key)
            np.testing.assert_array_equal(r._state, state)


def test_motion_beyond_the_noise_warps_the_history() -> None:
    r = MaskRefiner(RefineConfig(), (320, 240))
    img, low = square_scene(60)
    for _ in range(3):
        r.update(low, ShrunkFrame(img))
    assert r.held
    img, low = square_scene(63)  # 3 pixels: a slow hand
    assert not r.track(ShrunkFrame(img))  # (not predictable either: its edge moved)
    assert not r.held
    r.update(low, ShrunkFrame(img))
    assert not r._tracked


def test_a_motion_slower_than_the_noise_limit_is_not_lost() -> None:
    """A person creeping under STILL_FLOW a frame (0.15 frame pixels, 0.03 at the flow's size:
    4.5 pixels a second): the history is held, but the drift summed over the held frames joins
    the next warp, so the matte's edge lags the model's mask by no more than when it was warped
    every frame (seen: 2.0 frame pixels at most, as before STILL_FLOW; holding without the
    summed drift: 3.3, growing with the speed)."""
    img = astronaut((640, 480))
    full = np.zeros((480, 640), np.float32)
    full[80:480, 200:440] = 1.0
    rng = np.random.default_rng(4)
    r = MaskRefiner(RefineConfig(), (640, 480))
    held, v, offsets = 0, 0.15, []
    for i in range(61):
        shift = np.array([[1, 0, v * i], [0, 1, 0]], np.float32)
        frame = cv2.warpAffine(img, shift, (640, 480), borderMode=cv2.BORDER_REFLECT)
        mask = cv2.warpAffine(full, shift, (640, 480))
        low = cv2.resize(mask, (256, 144), interpolation=cv2.INTER_AREA)
        r.update(low, ShrunkFrame(noisy(frame.astype(np.float32), rng)))
        held += r.held
        edges = [np.flatnonzero(r.alpha[y] >= 0.5).max() + 0.5 for y in (200, 300, 400)]
        offsets.append(max(edges) - (440 + v * i))  # (frame 0's: the refiner's own bias)
    lag = offsets[0] - np.array(offsets)
    assert held > 30
    assert lag.max() <= 2.5, lag


@pytest.mark.parametrize(
    "cfg",
    [
        RefineConfig(temporal=False),
        RefineConfig(edge="none"),
        RefineConfig(hysteresis=0.0),
        RefineConfig(work_height=32),
        RefineConfig(flow_detail="fine"),
    ],
)
def test_refiner_options_run(cfg: RefineConfig) -> None:
    img, low = square_scene(60)
    r = MaskRefiner(cfg, (320, 240))
    for _ in range(3):
        a = r.refine(low, ShrunkFrame(img))
    target = cv2.resize(low, (320, 240)) >= 0.5
    assert ((a >= 0.5) == target).mean() > 0.97


def test_static_noisy_scene_flicker_with_the_real_model(model_dir: Path) -> None:
    """The issue's flicker figures on a still photo with sensor noise and exposure drift."""
    from bgcam.segment import create_segmenter

    base = astronaut((640, 480)).astype(np.float32)
    rng = np.random.default_rng(7)
    cfg = Config()
    seg = create_segmenter(cfg.segment, (640, 480))
    r = MaskRefiner(cfg.refine, (640, 480))
    ours, raw = [], []
    try:
        for i in range(30):
            gain = 1.0 + 0.04 * np.sin(i / 5.0)
            img = np.clip(base * gain + rng.normal(0, 3.0, base.shape), 0, 255).astype(np.uint8)
            low = seg.segment(ShrunkFrame(img))
            raw.append(cv2.resize(low, (640, 480)))
            ours.append(r.refine(low, ShrunkFrame(img)).copy())
    finally:
        seg.close()

    def flicker(ms: list[np.ndarray]) -> tuple[float, float]:
        q = [np.round(m * 255) / 255 for m in ms]
        d = float(np.mean([np.abs(a - b).mean() for a, b in zip(q[1:], q[:-1], strict=False)]))
        lab = np.stack([m >= 0.5 for m in q])
        return d, float((lab != lab[:1]).any(0).mean())

    (d_ours, flips_ours), (d_raw, _) = flicker(ours), flicker(raw)
    assert d_ours <= d_raw / 8, (d_ours, d_raw)
    assert flips_ours < 0.0015


# -- the restructured arithmetic against its plain formulas ------------------------------------


def plain_tables(hysteresis: float, sharpen: float) -> tuple[np.ndarray, np.ndarray]:
    """The hysteresis nudge and the sharpening, each label's table computed on its own."""
    s = np.arange(256) / 255.0
    h = hysteresis
    bump = np.minimum(h, 4 * h * s * (1 - s) / (1 - 4 * h * h)) if h > 0 else 0 * s

    def table(x: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(255 * (0.5 + sharpen * (x - 0.5))), 0, 255).astype(np.int64)

    return table(s - bump), table(s + bump)


@pytest.mark.parametrize("hysteresis", [0.0, 0.05, 0.1, 0.3, 0.49])
@pytest.mark.parametrize("sharpen", [1.0, 3.0, 7.3])
def test_finish_is_the_plain_two_table_rule(hysteresis: float, sharpen: float) -> None:
    """One lookup at state XOR label gives what comparing against 0.5 ± h and reading each
    label's own table gives: the same labels, the same alpha but for ties at half a level,
    where the person table is the background one mirrored (at most 1 level)."""
    bg, person = finish_tables(hysteresis, sharpen)
    np.testing.assert_array_equal(person[0], 255 - bg[0, ::-1])
    plain_bg, plain_person = plain_tables(hysteresis, sharpen)
    np.testing.assert_array_equal(bg[0], plain_bg)
    assert np.abs(person[0].astype(np.int64) - plain_person).max() <= 1

    r = MaskRefiner(RefineConfig(hysteresis=hysteresis, sharpen=sharpen), (320, 240))
    rng = np.random.default_rng(11)
    state = np.clip(rng.normal(0.5, 0.3, r._state.shape), 0, 1).astype(np.float32)
    state[:8] = np.arange(256, dtype=np.float32).reshape(8, 32).repeat(10, axis=1) / 255
    label = np.where(rng.random(state.shape) < 0.5, 255, 0).astype(np.uint8)
    r._state[...] = state
    r._label[...] = label
    r._finish()

    s8 = cv2.convertScaleAbs(state, alpha=255.0).astype(np.int64)  # (its float32 rounding)
    lo = math.ceil(255 * (0.5 - hysteresis))
    hi = math.floor(255 * (0.5 + hysteresis))
    new_label = np.where(s8 > hi, 255, np.where(s8 < lo, 0, label))
    np.testing.assert_array_equal(r._label, new_label)
    expected = np.where(new_label == 255, plain_person[s8], plain_bg[s8])
    diff = np.abs(r.alpha8_small.astype(np.int64) - expected)
    assert diff.max() <= 1
    ties = (new_label == 255) & (person[0][s8] != plain_person[s8])
    assert not diff[~ties].any()


@pytest.mark.parametrize(
    "cfg",
    [
        RefineConfig(),
        RefineConfig(still_weight=0.3, motion_weight=0.6, motion_threshold=3.0),
        RefineConfig(still_weight=0.6, motion_weight=0.05),  # moving weighs less than still
        RefineConfig(still_weight=0.5, motion_weight=0.5),
    ],
    ids=["default", "other-weights", "decreasing", "flat"],
)
def test_smooth_is_the_plain_motion_weighted_average(cfg: RefineConfig) -> None:
    """k = still + (moving - still) * clip(max(motion ramp, change ramp), 0, 1), applied as
    weights in fewer passes: the same state to float32 rounding."""
    r = MaskRefiner(cfg, (1280, 720))
    rng = np.random.default_rng(5)
    edge = np.clip(cv2.GaussianBlur(rng.random(r._edge.shape, np.float32), (0, 0), 3) * 3 - 1, 0, 1)
    warped = np.clip(edge + rng.normal(0, 0.2, edge.shape), 0, 1).astype(np.float32)
    fmotion = cv2.GaussianBlur(rng.random(r._fmotion.shape, np.float32) * 40, (0, 0), 2)
    r._edge[...] = edge
    r._wstate[...] = warped
    r._fmotion[...] = fmotion
    r._smooth()

    ramp = np.maximum(fmotion / (2 * cfg.motion_threshold) - 0.5, 0)
    motion = cv2.resize(ramp, r.work_size, interpolation=cv2.INTER_LINEAR)
    change = (np.abs(edge - warped) - 0.15) / (0.5 - 0.15)
    m = np.clip(np.maximum(motion, change), 0, 1)
    k = cfg.still_weight + (cfg.motion_weight - cfg.still_weight) * m
    state = warped + k * (edge - warped)
    state = np.where(state < 1e-4, 0, np.minimum(state, 1))
    np.testing.assert_allclose(r._state, state, atol=2e-6)
    assert r.motion_ratio == pytest.approx(float((ramp > 0).mean()))


@pytest.mark.parametrize("frame_size", [(1280, 720), (1920, 1080), (320, 240)])
def test_history_warp_is_the_absolute_map_remap(
    davis_dir: Path, frame_size: tuple[int, int]
) -> None:
    """The flow scaled at its own size, upsampled and used as a relative map warps the state
    and the labels as the absolute map grid + scale * upsampled flow does, to float rounding,
    on real consecutive frames."""
    frames = sorted((davis_dir / "JPEGImages" / "dance-twirl").glob("*.jpg"))[20:23]
    r = MaskRefiner(RefineConfig(), frame_size)
    ww, wh = r.work_size
    yy, xx = np.mgrid[0:wh, 0:ww].astype(np.float32)
    state = np.clip(np.sin(xx / 7.0) * np.cos(yy / 5.0) + 0.5, 0, 1).astype(np.float32)
    label = np.where(state >= 0.5, 255, 0).astype(np.uint8)
    images = [
        cv2.resize(cv2.imread(str(p)), frame_size, interpolation=cv2.INTER_AREA) for p in frames
    ]
    for img in images[:2]:
        r.update(np.zeros((wh, ww), np.float32), ShrunkFrame(img))
    grey = cv2.cvtColor(r.guide(ShrunkFrame(images[2])), cv2.COLOR_BGR2GRAY)
    cv2.resize(grey, r._flow_size, dst=r._fgray, interpolation=cv2.INTER_AREA)
    r._state[...] = state
    r._label[...] = label
    assert r._align()
    flow = r._flow
    assert np.abs(flow).max() > 1.0  # the dancer moves
    if flow.shape[:2] == (wh, ww):
        up = flow
    else:
        up = cv2.resize(flow, (ww, wh), interpolation=cv2.INTER_LINEAR)
    scale = np.float32(r._flow_scale)
    mx, my = xx + scale * up[..., 0], yy + scale * up[..., 1]
    warped = cv2.remap(state, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    warped_label = cv2.remap(label, mx, my, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
    np.testing.assert_allclose(r._wstate, warped, atol=2e-5)  # (seen: 4.4e-6)
    assert (r._wlabel != warped_label).mean() < 1e-3  # (seen: none)
