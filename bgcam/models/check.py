"""Check a converted ONNX model against its TFLite original on a real photo.

The reference is the TFLite model itself, run by MediaPipe Tasks' ImageSegmenter (the runtime of
the ``mediapipe`` segmenter, and the only one here that knows MediaPipe's custom transpose-conv
op). The photo is fed at the model's input size, so neither side resizes it, and both get the same
RGB pixels / 255. The photo is the public-domain NASA astronaut picture shipped in ``bgcam/data``
(the same as ``skimage.data.astronaut()``), so the check needs no test extras.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from bgcam.errors import BackendError, ModelError

log = logging.getLogger(__name__)

TOLERANCE = 1e-3
"""Largest accepted |ONNX - TFLite| on any output pixel."""

CHECK_IMAGE = Path(__file__).resolve().parents[1] / "data" / "astronaut.jpg"


def check_image(size: tuple[int, int]) -> NDArray[np.uint8]:
    """The check photo as RGB uint8, resized to (width, height)."""
    bgr = cv2.imread(str(CHECK_IMAGE), cv2.IMREAD_COLOR)
    if bgr is None:  # pragma: no cover - the file ships with the package
        raise ModelError(f"the check image {CHECK_IMAGE} is missing from the installation")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA))


def input_size(onnx_model: bytes | Path) -> tuple[int, int]:
    """(width, height) of an NHWC model's input."""
    import onnx

    model = onnx.load_model_from_string(
        onnx_model if isinstance(onnx_model, bytes) else onnx_model.read_bytes()
    )
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    if len(dims) != 4 or dims[3] != 3 or not dims[1] or not dims[2]:
        raise ModelError(f"expected an NHWC input of shape (1, H, W, 3), got {dims}")
    return dims[2], dims[1]


@contextlib.contextmanager
def native_stderr_to_log() -> Iterator[None]:
    """Send what native code writes to stderr (MediaPipe's start-up chatter) to the debug log.

    It would otherwise break a progress display on the terminal. Process-wide while it lasts,
    which is a fraction of a second.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            for line in tmp.read().decode("utf-8", "replace").splitlines():
                if line.strip():
                    log.debug("native: %s", line)


def run_tflite(path: Path, rgb: NDArray[np.uint8]) -> NDArray[np.float32]:
    """The TFLite model's person probability for ``rgb`` (already at its input size)."""
    try:
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision
    except ImportError as exc:  # pragma: no cover - mediapipe is a dependency
        raise BackendError(
            f"mediapipe is needed to check a converted model and cannot be imported: {exc}",
            hint="pip install mediapipe",
        ) from None
    options = vision.ImageSegmenterOptions(
        base_options=BaseOptions(model_asset_path=str(path)),
        running_mode=vision.RunningMode.IMAGE,
        output_confidence_masks=True,
        output_category_mask=False,
    )
    with native_stderr_to_log():
        try:
            segmenter = vision.ImageSegmenter.create_from_options(options)
        except (RuntimeError, ValueError) as exc:
            raise ModelError(f"mediapipe cannot load {path}: {exc}") from None
        try:
            image = mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb)
            mask = segmenter.segment(image).confidence_masks[0].numpy_view()
            return np.array(mask, np.float32).reshape(rgb.shape[:2])
        finally:
            segmenter.close()


def run_onnx(model: bytes | Path, rgb: NDArray[np.uint8]) -> NDArray[np.float32]:
    """The ONNX model's output for ``rgb`` (already at its input size), on the CPU."""
    from bgcam.ort import CPU
    from bgcam.ort import session as ort_session

    source = model if isinstance(model, bytes) else str(model)
    try:
        session = ort_session(source, [CPU])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelError(f"onnxruntime cannot load the ONNX model: {exc}") from None
    x = (rgb.astype(np.float32) / np.float32(255.0))[None]
    out = session.run(None, {session.get_inputs()[0].name: x})[0]
    return np.asarray(out, np.float32).reshape(rgb.shape[:2])


def max_abs_diff(tflite_path: Path, onnx_model: bytes | Path) -> float:
    """Largest |ONNX - TFLite| over the check photo and its mirror image."""
    size = input_size(onnx_model)
    rgb = check_image(size)
    worst = 0.0
    for image in (rgb, np.ascontiguousarray(rgb[:, ::-1])):
        ref = run_tflite(tflite_path, image)
        got = run_onnx(onnx_model, image)
        worst = max(worst, float(np.abs(got - ref).max()))
    return worst
