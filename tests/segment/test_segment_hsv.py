"""The no-model ``hsv`` segmenter: output contract, no model files, and its gain over the classic
fixed HSV threshold on real frames (the same clips ``scripts/eval_hsv.py`` scores)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from bgcam.config import SegmentConfig
from bgcam.errors import ModelError
from bgcam.frame import ShrunkFrame
from bgcam.segment import available, create_segmenter
from bgcam.segment.hsv import (
    CASCADE_NAME,
    HsvSegmenter,
    classic_threshold,
    fetch_face_cascade,
    find_face_cascade,
)
from scripts.eval_hsv import (
    Clip,
    composite_clip,
    davis_sequences,
    evaluate,
    noisy_still,
    webcam_crop,
)

HSV = SegmentConfig(segmenter="hsv")


@pytest.fixture
def no_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty model dir: nothing for the segmenter to load."""
    monkeypatch.setenv("BGCAM_MODEL_DIR", str(tmp_path))
    monkeypatch.delenv("BGCAM_FACE_CASCADE", raising=False)
    return tmp_path


@pytest.fixture(scope="session")
def face_cascade(model_dir: Path) -> Path:
    """The frontal-face Haar cascade, fetched into the test model cache when not installed."""
    found = find_face_cascade()
    if found is not None:
        return found
    try:
        return fetch_face_cascade(model_dir)
    except ModelError as exc:
        pytest.skip(f"no face cascade installed and none could be fetched: {exc}")


@pytest.fixture(scope="session")
def astronaut_truth(model_dir: Path) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.bool_]]:
    """The astronaut (BGR) with the mediapipe segmenter's mask as PSEUDO ground truth."""
    from scripts.eval_hsv import astronaut_pseudo_truth

    found = astronaut_pseudo_truth()
    assert found is not None, "the mediapipe segmenter must run with the fetched models"
    return found


@pytest.mark.parametrize("size", [(1280, 720), (640, 480), (641, 479), (300, 500), (64, 36)])
def test_output_contract_without_any_model_file(
    no_models: Path, astronaut: npt.NDArray[np.uint8], size: tuple[int, int]
) -> None:
    assert "hsv" in available()
    seg = create_segmenter(HSV, size)
    try:
        assert isinstance(seg, HsvSegmenter)
        frame = cv2.resize(astronaut, size)
        first = seg.segment(ShrunkFrame(frame))
        w, h = seg.work_size
        assert w == 256 and abs(h - 256 * size[1] / size[0]) <= 1
        assert first.shape == (h, w) and first.dtype == np.float32
        assert first.flags.c_contiguous
        assert np.isfinite(first).all() and first.min() >= 0.0 and first.max() <= 1.0
        second = seg.segment(ShrunkFrame(frame))
        assert second is first  # the output buffer is reused: callers copy what they keep
        assert float(second.min()) >= 0.0 and float(second.max()) <= 1.0
    finally:
        seg.close()


def test_scene_change_resets_what_was_learned(
    no_models: Path, astronaut: npt.NDArray[np.uint8]
) -> None:
    from skimage import data

    other = cv2.resize(cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR), (512, 512))
    used = HsvSegmenter(HSV, (512, 512), cascade=False)
    for _ in range(6):
        used.segment(ShrunkFrame(astronaut))
    after_cut = used.segment(ShrunkFrame(other)).copy()
    fresh = HsvSegmenter(HSV, (512, 512), cascade=False)
    assert np.array_equal(after_cut, fresh.segment(ShrunkFrame(other)))


def _check_gain(clip: Clip, margin: float, cascade: Path | bool) -> dict[str, float]:
    r = evaluate(clip, cascade)
    assert r["hsv"] >= r["baseline"] + margin, r
    return r


def test_beats_threshold_on_astronaut_with_face(
    face_cascade: Path,
    astronaut_truth: tuple[npt.NDArray[np.uint8], npt.NDArray[np.bool_]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Measured (J against the pseudo truth): 12-frame still 0.71 vs 0.51, moving 0.82 vs 0.25."""
    monkeypatch.setenv("BGCAM_FACE_CASCADE", str(face_cascade))
    seg = HsvSegmenter(HSV, (512, 512))  # finds it through the variable
    assert seg.cascade_path is not None and seg.cascade_path.name == CASCADE_NAME
    img, gt = astronaut_truth
    _check_gain(noisy_still(img, gt, 12), 0.15, face_cascade)
    _check_gain(composite_clip(img, gt, 30), 0.3, face_cascade)


def test_beats_threshold_on_moving_composite_without_face(
    no_models: Path, astronaut_truth: tuple[npt.NDArray[np.uint8], npt.NDArray[np.bool_]]
) -> None:
    """No cascade at all: the scene calibration alone (measured 0.62 vs 0.25)."""
    img, gt = astronaut_truth
    _check_gain(composite_clip(img, gt, 30), 0.2, cascade=False)


def test_beats_threshold_on_davis(no_models: Path, davis_dir: Path) -> None:
    """Real frames and masks; first 20 frames per sequence, full frame and webcam-like crop.

    Measured here: full 0.23 vs 0.06, crop 0.58 vs 0.14 (mean J; all frames: 0.18 / 0.55).
    """
    full, crop = [], []
    for _, clip in davis_sequences(davis_dir, 20):
        full.append(evaluate(clip, cascade=False))
        crop.append(evaluate(webcam_crop(clip), cascade=False))
    for results, margin in ((full, 0.06), (crop, 0.2)):
        base = float(np.mean([r["baseline"] for r in results]))
        ours = float(np.mean([r["hsv"] for r in results]))
        assert ours >= base + margin and ours >= 2 * base, (base, ours, results)


def test_classic_threshold_is_the_fixed_rule() -> None:
    hsv = np.array([[[0, 75, 40], [0, 74, 255], [0, 255, 39], [90, 200, 200]]], np.uint8)
    bgr = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
    # round-tripping through BGR may move S/V by one: check against the image's own HSV
    back = cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV)
    expected = (back[..., 1] >= 75) & (back[..., 2] >= 40)
    assert np.array_equal(classic_threshold(bgr), expected)
    assert classic_threshold(bgr)[0, 3] and not classic_threshold(bgr)[0, 2]
