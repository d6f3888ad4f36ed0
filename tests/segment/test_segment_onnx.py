"""The onnx segmenter: real models on onnxruntime, real photos and video frames."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import pytest

from bgcam.config import SegmentConfig
from bgcam.errors import BackendError, ModelError
from bgcam.frame import ShrunkFrame
from bgcam.ort import resolve_providers
from bgcam.segment import available, create_segmenter
from bgcam.segment.onnx import OnnxSegmenter


def _frame(image: npt.NDArray[np.uint8], size: tuple[int, int]) -> npt.NDArray[np.uint8]:
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _cfg(**kw: object) -> SegmentConfig:
    return SegmentConfig.model_validate(
        {"segmenter": "onnx", "providers": ["CPU"], "roi": False, **kw}
    )


def test_registered() -> None:
    assert "onnx" in available()


def test_segments_a_person_and_reuses_its_buffer(
    model_dir: Path, astronaut: npt.NDArray[np.uint8]
) -> None:
    frame = _frame(astronaut, (1280, 720))
    seg = create_segmenter(_cfg(), (1280, 720))
    try:
        assert isinstance(seg, OnnxSegmenter)
        assert seg.input_size == (256, 144)  # landscape model for a 16:9 frame
        mask = seg.segment(ShrunkFrame(frame))
        assert mask.shape == (144, 256) and mask.dtype == np.float32
        assert mask.min() >= 0.0 and mask.max() <= 1.0
        # The astronaut's head and body are person; the dark top right is background.
        assert mask[60:140, 40:160].mean() > 0.8
        assert mask[:40, 180:].mean() < 0.05
        first = mask.copy()
        again = seg.segment(ShrunkFrame(np.ascontiguousarray(frame[:, ::-1])))
        assert again is mask  # the documented contract: the buffer is reused
        assert not np.array_equal(again, first)  # ...and holds the new frame's result:
        fg_first, fg_again = first > 0.5, again[:, ::-1] > 0.5  # about the mirrored mask
        assert (fg_first & fg_again).sum() / (fg_first | fg_again).sum() > 0.9
    finally:
        seg.close()


def test_general_model_for_4_3_frames(model_dir: Path, astronaut: npt.NDArray[np.uint8]) -> None:
    seg = create_segmenter(_cfg(), (640, 480))
    try:
        assert seg.segment(ShrunkFrame(_frame(astronaut, (640, 480)))).shape == (256, 256)
    finally:
        seg.close()


@pytest.mark.parametrize("threads", [1, 2])
def test_threads(model_dir: Path, astronaut: npt.NDArray[np.uint8], threads: int) -> None:
    seg = create_segmenter(_cfg(threads=threads), (512, 512))
    try:
        mask = seg.segment(ShrunkFrame(astronaut))
        assert (mask > 0.5).mean() > 0.2
    finally:
        seg.close()


def test_provider_that_really_runs_is_exposed_and_logged(
    model_dir: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG, logger="bgcam.segment.onnx")
    monkeypatch.setattr("bgcam.segment.onnx._told", set())  # as in a fresh process
    segs = [OnnxSegmenter(_cfg(providers=["CUDA", "CPU"]), (1280, 720)) for _ in range(2)]
    try:
        assert segs[0].provider in ort.get_available_providers()
        assert f"on {segs[0].provider}" in caplog.text
        if "CUDAExecutionProvider" in ort.get_available_providers() and segs[0].provider != (
            "CUDAExecutionProvider"
        ):
            # onnxruntime-gpu lists CUDA without a GPU: one plain INFO line per process, and
            # the library's reason at DEBUG for each load.
            info = [
                r for r in caplog.records if r.levelno == logging.INFO and "GPU" in r.getMessage()
            ]
            assert [r.getMessage() for r in info] == [
                "no usable NVIDIA GPU: the model runs on the CPU (`bgcam -v` says why)"
            ]
            why = [r for r in caplog.records if "is not used" in r.getMessage()]
            assert len(why) == 2 and all(r.levelno == logging.DEBUG for r in why)
    finally:
        for seg in segs:
            seg.close()


@pytest.mark.parametrize(
    ("names", "available", "expected"),
    [
        (
            ["CUDA", "CPU"],
            ["CUDAExecutionProvider", "CPUExecutionProvider"],
            ["CUDAExecutionProvider", "CPUExecutionProvider"],
        ),
        (["CUDA", "DirectML", "CoreML", "CPU"], ["CPUExecutionProvider"], ["CPUExecutionProvider"]),
        (
            ["coreml"],
            ["CoreMLExecutionProvider", "CPUExecutionProvider"],
            ["CoreMLExecutionProvider", "CPUExecutionProvider"],
        ),
        (
            ["TensorRT", "CUDA"],
            ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
            ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
        ),
        (["OpenVINOExecutionProvider"], ["CPUExecutionProvider"], ["CPUExecutionProvider"]),
    ],
)
def test_resolve_providers(names: list[str], available: list[str], expected: list[str]) -> None:
    assert resolve_providers(names, available) == expected


def test_unknown_provider_is_an_error() -> None:
    with pytest.raises(BackendError, match="unknown onnxruntime provider 'Cuda9'"):
        resolve_providers(["Cuda9"], ["CPUExecutionProvider"])


def test_user_supplied_onnx_path(
    model_dir: Path, astronaut: npt.NDArray[np.uint8], tmp_path: Path
) -> None:
    path = tmp_path / "my-model.onnx"
    path.write_bytes((model_dir / "selfie_segmentation.onnx").read_bytes())
    seg = create_segmenter(_cfg(model=str(path)), (1280, 720))  # explicit file: no auto choice
    try:
        assert seg.segment(ShrunkFrame(_frame(astronaut, (1280, 720)))).shape == (256, 256)
    finally:
        seg.close()


def test_user_supplied_tflite_path_is_converted(
    model_dir: Path, astronaut: npt.NDArray[np.uint8]
) -> None:
    path = model_dir / "selfie_segmentation_landscape.tflite"
    seg = create_segmenter(_cfg(model=str(path)), (640, 480))
    try:
        assert seg.segment(ShrunkFrame(_frame(astronaut, (640, 480)))).shape == (144, 256)
    finally:
        seg.close()


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("/nonexistent/model.onnx", "no such file"),
        ("portrait", "expected auto, landscape, general"),
    ],
)
def test_bad_model_setting(model_dir: Path, model: str, expected: str) -> None:
    with pytest.raises(ModelError, match=expected):
        create_segmenter(_cfg(model=model), (1280, 720))


def test_not_an_onnx_file(model_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"this is not a model")
    with pytest.raises(ModelError, match=r"onnxruntime cannot load broken\.onnx"):
        create_segmenter(_cfg(model=str(path)), (1280, 720))
