"""The mediapipe segmenter, and its agreement with the onnx one on real images."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from bgcam.config import SegmentConfig
from bgcam.errors import ModelError
from bgcam.frame import ShrunkFrame
from bgcam.segment import Segmenter, available, create_segmenter
from bgcam.segment.mediapipe import MediaPipeSegmenter


def _cfg(segmenter: str, **kw: object) -> SegmentConfig:
    return SegmentConfig.model_validate(
        {"segmenter": segmenter, "providers": ["CPU"], "roi": False, **kw}
    )


@pytest.fixture
def pair(model_dir: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Segmenter, Segmenter]]:
    """A mediapipe and an onnx segmenter for frames of size ``request.param``."""
    size = request.param
    mp_seg = create_segmenter(_cfg("mediapipe"), size)
    onnx_seg = create_segmenter(_cfg("onnx"), size)
    yield mp_seg, onnx_seg
    mp_seg.close()
    onnx_seg.close()


def _iou(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float:
    fa, fb = a > 0.5, b > 0.5
    union = int((fa | fb).sum())
    return 1.0 if union == 0 else int((fa & fb).sum()) / union


def test_registered() -> None:
    assert "mediapipe" in available()


def test_segments_a_person(model_dir: Path, astronaut: npt.NDArray[np.uint8]) -> None:
    seg = create_segmenter(_cfg("mediapipe"), (512, 512))
    try:
        assert isinstance(seg, MediaPipeSegmenter)
        mask = seg.segment(ShrunkFrame(astronaut))
        assert mask.shape == (256, 256) and mask.dtype == np.float32  # general model for 1:1
        assert mask.min() >= 0.0 and mask.max() <= 1.0
        assert mask[120:250, 60:180].mean() > 0.8  # head and torso
        assert mask[:60, 200:].mean() < 0.05  # dark top right
        assert seg.segment(ShrunkFrame(astronaut)) is mask  # the buffer is reused
    finally:
        seg.close()


def test_user_supplied_tflite_path(model_dir: Path, astronaut: npt.NDArray[np.uint8]) -> None:
    path = model_dir / "selfie_segmentation_landscape.tflite"
    seg = create_segmenter(_cfg("mediapipe", model=str(path)), (512, 512))
    try:
        assert seg.segment(ShrunkFrame(astronaut)).shape == (144, 256)
    finally:
        seg.close()


def test_missing_tflite_path(model_dir: Path) -> None:
    with pytest.raises(ModelError, match="no such file"):
        create_segmenter(_cfg("mediapipe", model="/nonexistent/x.tflite"), (640, 480))


@pytest.mark.parametrize("pair", [(1280, 720), (640, 480)], indirect=True)
def test_mediapipe_and_onnx_agree_on_astronaut(
    pair: tuple[Segmenter, Segmenter], astronaut: npt.NDArray[np.uint8]
) -> None:
    mp_seg, onnx_seg = pair
    for view in (astronaut, astronaut[:, ::-1], astronaut[64:448, :]):
        frame = np.ascontiguousarray(view)
        a, b = mp_seg.segment(ShrunkFrame(frame)).copy(), onnx_seg.segment(ShrunkFrame(frame))
        assert a.shape == b.shape
        assert _iou(a, b) >= 0.98
        assert float(np.abs(a - b).max()) < 1e-3  # same weights, same input: same numbers


@pytest.mark.parametrize("pair", [(854, 480)], indirect=True)
def test_mediapipe_and_onnx_agree_on_davis_frames(
    pair: tuple[Segmenter, Segmenter], davis_dir: Path
) -> None:
    mp_seg, onnx_seg = pair
    frames = sorted((davis_dir / "JPEGImages").glob("*/00020.jpg"))
    assert frames, f"no frames in {davis_dir}"
    for path in frames:
        frame = cv2.imread(str(path))
        a, b = mp_seg.segment(ShrunkFrame(frame)).copy(), onnx_seg.segment(ShrunkFrame(frame))
        assert (a > 0.5).any(), path  # the people in these frames are found at all
        assert _iou(a, b) >= 0.98, path
