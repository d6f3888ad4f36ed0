"""``bgcam.studio.Studio``: both effects between refining and compositing."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from bgcam.compose.cpu import CpuCompositor
from bgcam.config import ComposeConfig, EffectsConfig
from bgcam.engine import composite
from bgcam.frame import ShrunkFrame, upsample_alpha8
from bgcam.studio import CropWarp, FramedPicture, Studio
from bgcam.studio.box import reach, reach_bands
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


def test_light_on_with_autoframe_switched_off_stops_stepping_the_framer() -> None:
    studio = Studio(EffectsConfig(autoframe=True, light="auto"), SIZE)
    image, matte, small, _ = frames(studio, 90)
    studio.update(EffectsConfig(light="auto"))
    assert not studio.framer.at_rest  # still easing out
    for i in range(120):
        studio.process(image, matte, small, (91 + i) * DT)
    assert studio.crop.is_full and studio.framer.at_rest and studio.active
    clock = studio.framer._clock
    studio.process(image, matte, small, 300 * DT)
    assert studio.framer._clock == clock  # at rest: not stepped
    studio.update(EffectsConfig(autoframe=True, light="auto"))  # on again: eases in
    frames(studio, 60, t0=301 * DT)
    assert studio.crop.zoom > 1.5


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


@pytest.mark.parametrize(
    "effects",
    [
        EffectsConfig(autoframe=True),
        EffectsConfig(light="auto"),
        EffectsConfig(autoframe=True, light="auto"),
    ],
    ids=["autoframe", "light", "both"],
)
@pytest.mark.parametrize("with_small", [True, False], ids=["small", "no-small"])
def test_framing_only_the_persons_part_composes_the_same_picture(
    effects: EffectsConfig, with_small: bool
) -> None:
    """``whole=False`` (the compositor blurs from the shrunk picture): the picture is framed
    and relit only where the matte reaches, and the composite is exactly the same; with
    ``defer=True`` too, the CPU compositor framing it straight into its output."""
    size = SIZE  # the default blur starts from a shrunk frame of WORK's size
    part, full = Studio(effects, size), Studio(effects, size)
    deferred = Studio(effects, size)
    comp = CpuCompositor(ComposeConfig(), size)
    assert not comp.reads_background(WORK)
    for i in range(40):
        matte = person_matte(0.25 + 0.005 * i, scale=0.6)  # moving: the crop pans
        image = picture(matte, size, level=0.35, seed=i)
        seen = cv2.resize(image, WORK, interpolation=cv2.INTER_LINEAR)  # the matte's frame
        small = seen if with_small else None  # live: often the matte is a frame older
        p_out, p_a8, p_hint = part.process(
            image, matte, small, i * DT, matte_small=seen, whole=False
        )
        f_out, f_a8, f_hint = full.process(image, matte, small, i * DT, matte_small=seen)
        assert p_a8 is not None and p_hint is not None and p_hint.shape == (*WORK[::-1], 3)
        assert f_a8 is not None and np.array_equal(p_a8, f_a8)
        if f_hint is not None:
            assert np.array_equal(p_hint, f_hint)
        else:  # the frame came without a shrunk copy: one is made, not the picture shrunk
            f_hint = cv2.resize(f_out, WORK, interpolation=cv2.INTER_LINEAR)
            assert np.abs(p_hint.astype(int) - f_hint).mean() < 2.0  # the noise sampled apart
        bands = reach_bands(p_a8, size)
        area = sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in bands)
        x0, y0, x1, y1 = reach(p_a8, size)
        assert 0 < area <= (x1 - x0) * (y1 - y0) < 0.6 * size[0] * size[1]
        person = upsample_alpha8(p_a8, size) > 0
        for x0, y0, x1, y1 in bands:  # framed and relit there, as the whole picture is
            assert np.array_equal(p_out[y0:y1, x0:x1], f_out[y0:y1, x0:x1])
            person[y0:y1, x0:x1] = False
        assert not person.any()
        got = comp.compose_matte(ShrunkFrame(p_out, p_hint), p_a8).copy()
        d_out, d_a8, d_hint = deferred.process(
            image, matte, small, i * DT, matte_small=seen, whole=False, defer=True
        )
        assert d_a8 is not None and d_hint is not None
        assert isinstance(d_out, FramedPicture) is effects.autoframe
        assert np.array_equal(composite(comp, d_out, d_a8, d_hint), got)
        want = comp.compose_matte(ShrunkFrame(f_out, p_hint), f_a8)
        assert np.array_equal(got, want)
    assert part.crop == full.crop and (part.crop.is_full is not effects.autoframe)
    comp.close()


def test_framing_only_the_persons_part_with_nobody_in_view() -> None:
    studio = Studio(EffectsConfig(autoframe=True, light="auto"), SIZE)
    image, matte, small, _ = frames(studio, 30)
    empty = np.zeros_like(matte)
    for i in range(3):  # the frame holds for a while: the crop is still applied
        out, a8, hint = studio.process(image, empty, small, (30 + i) * DT, whole=False)
        assert a8 is not None and not a8.any() and hint is not None
        assert out.shape == image.shape and not studio.crop.is_full
