"""``bgcam.studio.Studio``: both effects between refining and compositing."""

from __future__ import annotations

import cv2
import numpy as np

from bgcam.config import EffectsConfig
from bgcam.studio import CropWarp, Studio
from tests.studio.studio_scenes import WORK, person_matte, picture

SIZE = (640, 360)
DT = 1 / 30


def frames(studio: Studio, n: int, *, x: float = 0.3, level: float = 0.35, t0: float = 0.0):
    matte = person_matte(x, scale=0.6)
    image = picture(matte, SIZE, level=level)
    small = picture(matte, WORK, level=level)
    out = None
    for i in range(n):
        out = studio.process(image, matte, small, t0 + i * DT)
    assert out is not None
    return image, matte, small, out


def test_off_costs_nothing_and_returns_its_inputs() -> None:
    studio = Studio(EffectsConfig(), SIZE)
    image, matte, small, (out, a8, hint) = frames(studio, 3)
    assert out is image and a8 is matte and hint is small
    assert not studio.active
    assert studio.status()["autoframe"] == {
        "on": False,
        "zoom": 1.0,
        "crop": [0, 0, 640, 360],
        "person": False,
    }


def test_both_on_frame_and_light_without_touching_the_callers_frame() -> None:
    studio = Studio(EffectsConfig(autoframe=True, light="auto"), SIZE)
    image, matte, small, (out, a8, hint) = frames(studio, 90)
    before = image.copy()
    out, a8, hint = studio.process(image, matte, small, 90 * DT)
    assert np.array_equal(image, before)  # the source's frame is never written
    assert out.shape == image.shape and out is not image
    assert a8 is not None and a8.shape == matte.shape and a8 is not matte
    # The compositor's shrunk picture: the shrunk frame cropped alike (not the framed frame
    # shrunk again), brightened like the picture.
    assert hint is not None and hint.shape == small.shape and hint is not small
    ref = CropWarp(SIZE).small(small, studio.crop)
    lit = cv2.convertScaleAbs(ref, alpha=studio.light.gain)
    assert np.abs(hint.astype(int) - lit).max() <= 1
    framed_small = cv2.resize(out, small.shape[1::-1], interpolation=cv2.INTER_AREA)
    assert np.abs(framed_small.astype(float) - hint).mean() < 4.0  # close to shrinking it
    assert studio.crop.zoom > 1.5
    assert out.mean() > 1.5 * image.mean()  # brightened
    status = studio.status()
    assert status["autoframe"]["person"] and status["light"]["gain"] > 1.5
    # The framed matte is the same crop of the matte as the picture is of the frame: the person
    # (zoomed in, centred) covers the middle of both.
    h, w = a8.shape
    assert a8[h // 2, w // 2] == 255


def test_fail_closed_a_missing_matte_stays_missing() -> None:
    studio = Studio(EffectsConfig(autoframe=True, light="auto"), SIZE)
    image, *_ = frames(studio, 60)
    _out, a8, hint = studio.process(image, None, None, 61 * DT)
    assert a8 is None and hint is None  # the caller blurs the whole (framed) picture
    assert not studio.crop.is_full  # a short miss holds the frame


def test_switching_autoframe_off_eases_out_then_stops() -> None:
    studio = Studio(EffectsConfig(autoframe=True), SIZE)
    image, matte, small, _ = frames(studio, 90)
    studio.update(EffectsConfig(autoframe=False))
    assert studio.active  # still easing out
    for i in range(120):
        out, a8, hint = studio.process(image, matte, small, (91 + i) * DT)
    assert studio.crop.is_full and not studio.active
    assert out is image and a8 is matte and hint is small


def test_light_only_brightens_the_hint_too() -> None:
    studio = Studio(EffectsConfig(light="auto"), SIZE)
    _image, matte, small, (_out, a8, hint) = frames(studio, 2)
    assert a8 is matte
    assert hint is not None and hint is not small and hint.mean() > 1.5 * small.mean()
    studio.update(EffectsConfig(light="off"))
    assert not studio.active


def test_relighting_only_the_cropped_part_gives_the_same_picture() -> None:
    studio = Studio(EffectsConfig(autoframe=True, light="auto"), SIZE)
    image, matte, small, _ = frames(studio, 45, x=0.2)  # still moving towards the person
    out, _a8, _hint = studio.process(image, matte, small, 45 * DT)
    assert not studio.crop.is_full and studio.light.gain > 1.5
    lit = cv2.convertScaleAbs(image, alpha=studio.light.gain)
    ref = CropWarp(SIZE).image(lit, studio.crop)
    assert np.array_equal(out, ref)


def test_autoframe_switched_on_while_running_eases_in() -> None:
    studio = Studio(EffectsConfig(), SIZE)
    image, matte, small, _ = frames(studio, 5)
    studio.update(EffectsConfig(autoframe=True))
    studio.process(image, matte, small, 6 * DT)
    assert studio.crop.zoom < 1.01
    frames(studio, 60, t0=7 * DT)
    assert studio.crop.zoom > 1.5
