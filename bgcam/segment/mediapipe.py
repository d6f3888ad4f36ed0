"""The ``mediapipe`` segmenter: MediaPipe Tasks ImageSegmenter running the selfie models.

The frame is resized to the model's input size by OpenCV first (cheaper than letting MediaPipe
resize a full frame), converted to RGB, and run in VIDEO mode with monotonic timestamps.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import cv2
import numpy as np

from bgcam.config import SegmentConfig
from bgcam.errors import BackendError, ModelError
from bgcam.frame import Mask, ShrunkFrame
from bgcam.models import MODELS, ensure_model, resolve_setting
from bgcam.segment import register
from bgcam.shrink import Shrinker

log = logging.getLogger(__name__)


def resolve_tflite(setting: str, frame_size: tuple[int, int]) -> tuple[Path, tuple[int, int]]:
    """The .tflite file and its (width, height) input size for a ``segment.model`` setting."""
    chosen = resolve_setting(setting, frame_size, (".tflite",))
    if isinstance(chosen, Path):
        return chosen, _input_size(chosen)
    spec = MODELS[chosen]
    return ensure_model(chosen, "tflite"), (spec.width, spec.height)


def _input_size(path: Path) -> tuple[int, int]:
    import tflite

    buf = path.read_bytes()
    try:
        model = tflite.Model.GetRootAsModel(buf, 0)
        graph = model.Subgraphs(0)
        shape = graph.Tensors(graph.Inputs(0)).ShapeAsNumpy()
        return int(shape[2]), int(shape[1])
    except Exception as exc:
        raise ModelError(f"{path} is not a TFLite model: {exc}") from None


class MediaPipeSegmenter:
    name = "mediapipe"

    def __init__(self, cfg: SegmentConfig, frame_size: tuple[int, int]) -> None:
        try:
            import mediapipe as mp
            from mediapipe.tasks.python import BaseOptions, vision
        except ImportError as exc:  # pragma: no cover - mediapipe is a dependency
            raise BackendError(
                f"mediapipe cannot be imported: {exc}", hint="pip install mediapipe"
            ) from None
        self.model_path, self.input_size = resolve_tflite(cfg.model, frame_size)
        options = vision.ImageSegmenterOptions(
            base_options=BaseOptions(model_asset_path=str(self.model_path)),
            running_mode=vision.RunningMode.VIDEO,
            output_confidence_masks=True,
            output_category_mask=False,
        )
        from bgcam.models.check import native_stderr_to_log

        try:
            # MediaPipe's and TFLite's start-up lines (XNNPACK delegate, feedback manager) go
            # to the debug log, so `bgcam -v` still shows them.
            with native_stderr_to_log():
                self._seg = vision.ImageSegmenter.create_from_options(options)
        except (RuntimeError, ValueError) as exc:
            raise ModelError(f"mediapipe cannot load {self.model_path}: {exc}") from None
        self._mp = mp
        w, h = self.input_size
        self._shrinker = Shrinker((w, h))
        self._rgb = np.empty((h, w, 3), np.uint8)
        self._mask = np.empty((h, w), np.float32)
        self._last_ts = -1
        log.info("segmenter mediapipe: %s (%dx%d)", self.model_path.name, w, h)

    def segment(self, frame: ShrunkFrame) -> Mask:
        small = self._shrinker.shrink(frame)
        cv2.cvtColor(small, cv2.COLOR_BGR2RGB, dst=self._rgb)
        ts = max(int(time.monotonic() * 1000), self._last_ts + 1)  # strictly increasing ms
        self._last_ts = ts
        mp_image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=self._rgb)
        result = self._seg.segment_for_video(mp_image, ts)
        view = result.confidence_masks[0].numpy_view()
        np.copyto(self._mask, view.reshape(self._mask.shape))
        return self._mask

    def close(self) -> None:
        seg, self._seg = getattr(self, "_seg", None), None
        if seg is not None:
            seg.close()


@register("mediapipe")
def _create(cfg: SegmentConfig, frame_size: tuple[int, int]) -> MediaPipeSegmenter:
    return MediaPipeSegmenter(cfg, frame_size)
