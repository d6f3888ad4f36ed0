"""Keyframes (``segment.max_skip``): the model runs only where the matte is not predictable.

Real models on a synthetic scene: a person (the astronaut photo) in front of a textured room,
still, then moving fast, then a scene cut. While still, frames are propagated along the optical
flow and the matte stays put; while the person moves, every frame runs the model (no lag beyond
keyframes off); a cut forces a keyframe; the ROI segmenter's full-frame pass is never skipped.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from bgcam.config import Config, load_config
from bgcam.engine import Engine
from bgcam.errors import ConfigError
from bgcam.frame import Mask, ShrunkFrame
from bgcam.segment import Segmenter

W, H = 640, 360
SIDE = 300
STILL, MOVING = 12, 10
STEP = 30  # pixels per frame while moving (0.05 frame widths: a brisk arm or head movement)

Image = npt.NDArray[np.uint8]


class Scene:
    """The astronaut (SIDE px square, at the bottom) in front of a smooth random room, with
    sensor noise (sigma 2) on every frame."""

    def __init__(self, astronaut: Image) -> None:
        rng = np.random.default_rng(3)
        small = rng.integers(60, 200, (H // 8, W // 8, 3), dtype=np.uint8)
        self.room = cv2.resize(small, (W, H), interpolation=cv2.INTER_CUBIC)
        self.person = cv2.resize(astronaut, (SIDE, SIDE), interpolation=cv2.INTER_AREA)
        self.rng = rng

    def at(self, x: int) -> Image:
        f = self.room.copy()
        f[H - SIDE :, x : x + SIDE] = self.person
        noisy = f + self.rng.normal(0.0, 2.0, f.shape)
        return np.clip(noisy, 0, 255).astype(np.uint8)


def positions() -> list[int]:
    return [40] * STILL + [40 + STEP * (i + 1) for i in range(MOVING)] + [40 + STEP * MOVING] * 8


def run(engine: Engine, frames: list[Image]) -> Iterator[tuple[bool, npt.NDArray[np.float32]]]:
    for image in frames:
        engine.mask(image)
        yield engine.keyframe, engine.refiner.alpha8_small.astype(np.float32) / 255.0


@pytest.fixture
def scene(astronaut: Image) -> Scene:
    return Scene(astronaut)


def test_still_frames_are_propagated_moving_ones_are_not(model_dir: Path, scene: Scene) -> None:
    frames = [scene.at(x) for x in positions()]
    on = Config().replace(**{"segment.max_skip": 2})
    with Engine(on, (W, H)) as engine:
        keyed = list(run(engine, frames))
        counts = (engine.keyframes, engine.propagated)
    with Engine(on.replace(**{"segment.max_skip": 0}), (W, H)) as engine:
        every = list(run(engine, frames))
        assert (engine.keyframes, engine.propagated) == (len(frames), 0)

    keys = [k for k, _ in keyed]
    assert counts == (sum(keys), len(keys) - sum(keys))
    assert keys[0]  # the first frame
    # Still: propagated, never more than max_skip in a row, and the matte stays put.
    still = keys[1:STILL]
    assert still.count(False) >= len(still) // 2
    assert "000" not in "".join(str(int(k)) for k in keys)
    for (_, a), (_, b) in itertools.pairwise(keyed[1:STILL]):
        assert float(np.abs(a - b).mean()) < 2e-3
    assert float(keyed[STILL - 1][1].mean()) > 0.1  # someone is there
    # Moving: every frame is a keyframe, and the matte is the one without keyframes.
    moving = slice(STILL, STILL + MOVING)
    assert all(keys[moving])
    for (_, a), (_, b) in zip(keyed[moving], every[moving], strict=True):
        assert float(np.abs(a - b).mean()) < 0.01
    # Still again: propagated again.
    assert keys[STILL + MOVING + 2 :].count(False) >= 2


@pytest.mark.parametrize("max_skip", [2, 4])
def test_propagated_frames_on_a_still_scene_repeat_the_keyframe(
    model_dir: Path, scene: Scene, max_skip: int
) -> None:
    """No drift along the runs: on a still scene (sensor noise only: the flow near the person
    is within STILL_FLOW, the refiner holds its history) every propagated frame's matte is the
    last keyframe's, exactly, however many follow it."""
    cfg = Config().replace(**{"segment.max_skip": max_skip})
    runs, run, key = [], 0, None
    with Engine(cfg, (W, H)) as engine:
        for _ in range(24):
            engine.mask(scene.at(40))
            matte = engine.refiner.alpha8_small
            if engine.keyframe:
                key, run = matte.copy(), 0
            else:
                assert key is not None
                np.testing.assert_array_equal(matte, key)
                run += 1
                runs.append(run)
    assert runs.count(max_skip) >= 3  # (full runs: 24 frames hold at least 3)


def test_a_scene_cut_a_setting_change_and_the_first_frame_are_keyframes(
    model_dir: Path, scene: Scene
) -> None:
    still = scene.at(40)
    cfg = Config().replace(**{"segment.max_skip": 4})
    with Engine(cfg, (W, H)) as engine:
        # The first frame; the second too, when ROI found someone in the first (its box grew).
        flags = [k for k, _ in run(engine, [still] * 5)]
        assert flags[0] and flags[2:] == [False, False, False]
        engine.mask(255 - still)  # a cut: the history is reset, the model runs
        assert engine.keyframe
        assert not all(k for k, _ in run(engine, [255 - still] * 3))
        # A setting change: the next frame is a keyframe; max_skip 0: every frame is.
        segmenter = engine.segmenter
        engine.update(cfg.replace(**{"segment.max_skip": 0}))
        assert engine.segmenter is segmenter  # nothing rebuilt for the gate's setting
        assert [k for k, _ in run(engine, [255 - still] * 3)] == [True, True, True]
        engine.update(cfg.replace(**{"segment.max_skip": 1}))
        assert [k for k, _ in run(engine, [255 - still] * 4)] == [True, False, True, False]


class CountingWhole:
    """A real segmenter, counted: how often (and at which frame) the whole frame is seen."""

    def __init__(self, inner: Segmenter) -> None:
        self.inner = inner
        self.name = inner.name
        self.frame = 0
        self.seen: list[int] = []

    def segment(self, frame: ShrunkFrame) -> Mask:
        self.seen.append(self.frame)
        return self.inner.segment(frame)

    def close(self) -> None:
        self.inner.close()


def test_the_roi_full_frame_pass_is_never_skipped(model_dir: Path, astronaut: Image) -> None:
    from bgcam.bench import bench_frames_far
    from bgcam.segment.roi import RoiSegmenter

    still = bench_frames_far((1280, 720), 1)[0]  # a person a little over half the height
    every = 5
    cfg = Config().replace(**{"segment.max_skip": 3, "segment.roi_full_every": every})
    rng = np.random.default_rng(5)
    with Engine(cfg, (1280, 720)) as engine:
        seg = engine.segmenter
        assert isinstance(seg, RoiSegmenter)
        whole = seg._whole = CountingWhole(seg._whole)
        for i in range(40):
            whole.frame = i
            noisy = np.clip(still + rng.normal(0.0, 2.0, still.shape), 0, 255).astype(np.uint8)
            engine.mask(noisy)
        assert engine.propagated > 10
        gaps = np.diff(whole.seen[1:])
        assert len(gaps) >= 5 and gaps.max() <= every, whole.seen


@pytest.mark.parametrize(("value", "got"), [("5", "5"), ("-1", "-1"), ("two", "two")])
def test_max_skip_is_validated(value: str, got: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, [f"segment.max_skip={value}"])
    text = str(err.value)
    assert "segment.max_skip" in text and got in text
    assert "expected" in text
