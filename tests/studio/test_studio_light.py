"""``bgcam.studio.light``: the tone curve, the person-based exposure, no pumping."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from bgcam.studio.light import DEAD_BAND, TARGET_LEVEL, LightCorrector, tone_curve
from tests.studio.studio_scenes import WORK, person_matte, picture

DT = 1 / 30


def hue_of_mean(img: np.ndarray, mask: np.ndarray) -> float:
    b, g, r = img[mask].reshape(-1, 3).astype(np.float64).mean(axis=0)
    return math.degrees(math.atan2(math.sqrt(3) * (g - b), 2 * r - g - b))


def test_tone_curve_is_identity_at_gain_one_and_a_saturating_gain() -> None:
    assert np.array_equal(tone_curve(1.0), np.arange(256, dtype=np.uint8))
    lut = tone_curve(2.5).astype(int)
    x = np.arange(256)
    assert np.array_equal(lut, np.minimum(255, np.rint(x * 2.5)))  # a straight gain
    assert np.all(np.diff(lut) >= 0)  # monotonic


def test_apply_is_the_curve_in_one_pass_and_keeps_the_hue() -> None:
    light = LightCorrector()
    matte = person_matte(0.5)
    frame = picture(matte, (480, 270), level=0.3)
    small = cv2.resize(frame, WORK, interpolation=cv2.INTER_AREA)
    light.measure(small, matte)
    light.step(DT)
    gain = light.gain
    assert gain > 2.0
    out = light.apply(frame, np.empty_like(frame))
    ref = cv2.LUT(frame, tone_curve(gain))
    assert np.abs(out.astype(int) - ref).max() <= 1  # the table's curve, rounding aside
    inplace = frame.copy()
    assert light.apply(inplace, inplace) is inplace and np.array_equal(inplace, out)
    # Below white, R, G and B are scaled alike: the ratios (hue, saturation) stay.
    keep = (out < 255).all(axis=2) & (frame > 20).all(axis=2)
    ratio = out[keep].astype(float) / frame[keep]
    assert np.abs(ratio - gain).max() < 0.5 / 20 + 1e-9


@pytest.mark.parametrize("level", [0.3, 0.45])
def test_dark_sequence_is_brightened_without_pumping_and_keeps_its_hue(level: float) -> None:
    light = LightCorrector(strength=1.0, max_gain=4.0)
    size = (480, 270)
    gains, means = [], []
    out = np.empty((size[1], size[0], 3), np.uint8)
    bright = picture(person_matte(0.5), size, level=1.0)
    for i in range(90):
        x = 0.45 + 0.1 * math.sin(i / 10)  # the person sways
        matte = person_matte(x)
        frame = picture(matte, size, level=level, seed=i)
        small = cv2.resize(frame, WORK, interpolation=cv2.INTER_AREA)
        light.measure(small, matte)
        gains.append(light.step(DT))
        light.apply(frame, out)
        person = cv2.resize(matte, size) > 200
        means.append(float(cv2.cvtColor(out, cv2.COLOR_BGR2GRAY)[person].mean()))
    person = cv2.resize(person_matte(0.5), size) > 200
    lit = light.apply(picture(person_matte(0.5), size, level=level), out)
    grey = cv2.cvtColor(lit, cv2.COLOR_BGR2GRAY)
    ref = cv2.cvtColor(bright, cv2.COLOR_BGR2GRAY)
    ratio = float(np.median(grey[person])) / float(np.median(ref[person]))
    assert 0.85 <= ratio <= 1.15  # brightened to about the well-lit picture
    assert gains[0] > 1.5  # right from the first frame (no slow start)
    assert max(gains) / min(gains) < 1 + DEAD_BAND  # no pumping while they sway
    assert abs(hue_of_mean(lit, person) - hue_of_mean(bright, person)) <= 3.0


def test_a_window_brightening_does_not_dim_the_person() -> None:
    light = LightCorrector()
    matte = person_matte(0.5)
    frame = picture(matte, WORK, level=0.35)
    light.measure(frame, matte)
    g0 = light.step(DT)
    window = frame.copy()
    window[:60, :100] = 255  # a bright window behind them
    for _ in range(90):
        light.measure(window, matte)
        light.step(DT)
    assert light.gain == pytest.approx(g0)


def test_a_lasting_change_is_eased_in_not_jumped_to() -> None:
    light = LightCorrector()
    matte = person_matte(0.5)
    light.measure(picture(matte, WORK, level=0.35), matte)
    g0 = light.step(DT)
    brighter = picture(matte, WORK, level=0.7)  # a lamp switched on
    gains = []
    for _ in range(150):
        light.measure(brighter, matte)
        gains.append(light.step(DT))
    assert gains[-1] < 0.6 * g0  # adapted
    steps = np.abs(np.diff(np.log(gains)))
    assert steps.max() < 0.02  # at most 2 % per frame: eased
    assert np.all(np.diff(gains) <= 1e-12)  # monotonic: no overshoot


def test_nobody_in_view_holds_and_bright_scenes_are_left_alone() -> None:
    light = LightCorrector()
    empty = np.zeros(WORK[::-1], np.uint8)
    light.measure(picture(empty, WORK, level=0.2), empty)
    assert light.step(DT) == 1.0 and light.highlights is None
    matte = person_matte(0.5)
    light.measure(picture(matte, WORK, level=1.15), matte)  # highlights near white already
    assert light.step(DT) == 1.0
    assert TARGET_LEVEL > 200


def test_strength_and_limit() -> None:
    matte = person_matte(0.5)
    dark = picture(matte, WORK, level=0.1)
    full, half = LightCorrector(max_gain=3.0), LightCorrector(strength=0.5, max_gain=3.0)
    for lc in (full, half):
        lc.measure(dark, matte)
        lc.step(DT)
    assert full.gain == pytest.approx(3.0)
    assert half.gain == pytest.approx(math.sqrt(3.0))
    with pytest.raises(ValueError, match="expected shape"):
        full.measure(np.zeros((10, 10, 3), np.uint8), matte)
