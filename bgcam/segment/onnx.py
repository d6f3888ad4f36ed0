"""The ``onnx`` segmenter: the same selfie models on onnxruntime, on the best provider here.

The frame is resized to the model's input size by OpenCV (as the ``mediapipe`` segmenter does),
written into a preallocated float32 input buffer and run through an IO binding whose input and
output are that buffer and a preallocated output array, so no frame allocates. The model is
first rewritten by :mod:`bgcam.segment.ortlayout`: it takes the BGR planes in 0–255 as they are
(the RGB order and the 1/255 scale folded into its first convolution) and stays in
onnxruntime's blocked CPU layout; together 0.4 ms less per 720p frame on one core.

Providers are tried in the configured order (``segment.providers``: CUDA, TensorRT, DirectML,
CoreML, OpenVINO, ROCm, CPU, or full onnxruntime names), keeping those this onnxruntime build
offers. A listed provider may still fail to start (onnxruntime-gpu lists CUDA on a machine
without a GPU): the provider that really runs is read back from the session, exposed as
``provider`` and logged, with one line saying why the preferred one was not used.
"""

from __future__ import annotations

import ctypes
import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bgcam.config import SegmentConfig
from bgcam.errors import BackendError, ModelError
from bgcam.frame import Mask, ShrunkFrame
from bgcam.models import MODELS, choose_model, ensure_model
from bgcam.segment import register
from bgcam.segment.ortlayout import bgr255_planar_input, keep_nchwc
from bgcam.shrink import Shrinker

log = logging.getLogger(__name__)

PROVIDERS = {
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "directml": "DmlExecutionProvider",
    "dml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "migraphx": "MIGraphXExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
"""Short provider names accepted in ``segment.providers`` (case-insensitive)."""

_PROVIDER_LIBS = {
    "CUDAExecutionProvider": "cuda",
    "TensorrtExecutionProvider": "tensorrt",
    "ROCMExecutionProvider": "rocm",
    "MIGraphXExecutionProvider": "migraphx",
    "OpenVINOExecutionProvider": "openvino",
}


def resolve_providers(names: tuple[str, ...] | list[str], available: list[str]) -> list[str]:
    """onnxruntime provider names for ``names``, in order, keeping the available ones.

    The CPU provider is always last, so a session can always be created.
    """
    chosen: list[str] = []
    for name in names:
        full = name if name.endswith("ExecutionProvider") else PROVIDERS.get(name.lower())
        if full is None:
            raise BackendError(
                f"segment.providers: unknown onnxruntime provider {name!r}; expected names "
                f"from {', '.join(sorted({k for k in PROVIDERS if k != 'dml'}))} "
                "or a full name such as CUDAExecutionProvider"
            )
        if full in available and full not in chosen:
            chosen.append(full)
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    return chosen


def _why_not(provider: str) -> str:
    """Best guess at why onnxruntime could not start ``provider``."""
    lib = _PROVIDER_LIBS.get(provider)
    if lib is not None:
        import onnxruntime

        path = Path(onnxruntime.__file__).parent / "capi" / f"libonnxruntime_providers_{lib}.so"
        if path.is_file():
            try:
                ctypes.CDLL(str(path))
            except OSError as exc:
                return f"its library does not load: {str(exc).replace(str(path) + ': ', '')}"
    return "onnxruntime could not initialise it (no supported device or driver?)"


def resolve_onnx(setting: str, frame_size: tuple[int, int]) -> tuple[bytes | Path, str]:
    """The ONNX model (a path, or bytes converted from a .tflite) and a label for logs."""
    if setting.endswith((".onnx", ".tflite")):
        path = Path(setting).expanduser()
        if not path.is_file():
            raise ModelError(f"segment.model: no such file {path}")
        if path.suffix == ".onnx":
            return path, path.name
        from bgcam.models.fetch import convert_checked

        data, diff = convert_checked(path, path.stem)
        log.info("converted %s to ONNX in memory (max abs diff %.1e)", path.name, diff)
        return data, path.name
    name = choose_model(setting, frame_size)
    if name not in MODELS:
        raise ModelError(
            "segment.model: expected auto, landscape, general or a .onnx/.tflite path, "
            f"got {setting!r}"
        )
    path = ensure_model(name, "onnx")
    return path, path.name


def _for_cpu_layout(model: bytes | Path, label: str) -> tuple[bytes | str, bool]:
    """The model rewritten by :mod:`bgcam.segment.ortlayout`, and whether it now takes planar
    BGR 0–255 input (:func:`~bgcam.segment.ortlayout.bgr255_planar_input`).

    A model the ``onnx`` package cannot read or infer shapes for is passed on unchanged, for
    onnxruntime to load or to report on.
    """
    import onnx

    unchanged = model if isinstance(model, bytes) else str(model)
    try:
        proto = onnx.load_from_string(model) if isinstance(model, bytes) else onnx.load(model)
        planar = bgr255_planar_input(proto)
        rewritten = keep_nchwc(proto)
    except Exception as exc:  # onnx raises several types (DecodeError, InferenceError, ...)
        log.debug("onnx: %s left as it is (%s)", label, exc)
        return unchanged, False
    log.debug(
        "onnx: %s: planar BGR input %s, %d node(s) rewritten for the blocked CPU layout",
        label,
        "yes" if planar else "no",
        rewritten,
    )
    return (proto.SerializeToString() if planar or rewritten else unchanged), planar


class OnnxSegmenter:
    name = "onnx"

    def __init__(self, cfg: SegmentConfig, frame_size: tuple[int, int]) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - onnxruntime is a dependency
            raise BackendError(
                f"onnxruntime cannot be imported: {exc}", hint="pip install onnxruntime"
            ) from None
        model, self.model_label = resolve_onnx(cfg.model, frame_size)
        providers = resolve_providers(list(cfg.providers), ort.get_available_providers())

        so = ort.SessionOptions()
        so.intra_op_num_threads = cfg.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        # Idle worker threads must not spin: CPU load matters more than 0.1 ms here.
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        source, self._planar = _for_cpu_layout(model, self.model_label)
        # onnxruntime prints provider start-up failures itself; we log one line instead.
        ort.set_default_logger_severity(4)
        try:
            self._session = ort.InferenceSession(source, so, providers=providers)
        except Exception as exc:  # onnxruntime has its own exception types
            raise ModelError(f"onnxruntime cannot load {self.model_label}: {exc}") from None
        finally:
            ort.set_default_logger_severity(2)
        running = self._session.get_providers()
        self.provider: str = running[0]
        if self.provider != providers[0]:
            log.info(  # expected with onnxruntime-gpu on a machine without a GPU
                "onnx: %s is not used (%s); running on %s",
                providers[0],
                _why_not(providers[0]),
                self.provider,
            )

        inp, out = self._session.get_inputs()[0], self._session.get_outputs()[0]
        # NHWC RGB in [0, 1] as the models come; NCHW BGR in 0–255 once rewritten.
        shape = list(inp.shape)
        hw = shape[2:4] if self._planar else shape[1:3]
        if (
            len(shape) != 4
            or shape[1 if self._planar else 3] != 3
            or not all(isinstance(d, int) and d > 0 for d in hw)
        ):
            raise ModelError(
                f"{self.model_label}: expected an NHWC input of shape (1, H, W, 3), got {shape}"
            )
        h, w = int(hw[0]), int(hw[1])
        self.input_size = (w, h)
        self._shrinker = Shrinker((w, h))
        self._rgb = np.empty((h, w, 3), np.uint8)
        self._planes = [np.empty((h, w), np.uint8) for _ in range(3)]
        self._x = np.empty((1, 3, h, w) if self._planar else (1, h, w, 3), np.float32)
        self._y = np.empty((1, h, w, 1), np.float32)
        self._mask: Mask = self._y.reshape(h, w)  # a view: filled by every run
        self._binding: Any = self._session.io_binding()
        self._binding.bind_ortvalue_input(inp.name, ort.OrtValue.ortvalue_from_numpy(self._x))
        self._binding.bind_ortvalue_output(out.name, ort.OrtValue.ortvalue_from_numpy(self._y))
        log.info(
            "segmenter onnx: %s (%dx%d) on %s, %d thread(s)",
            self.model_label,
            w,
            h,
            self.provider,
            cfg.threads,
        )

    def segment(self, frame: ShrunkFrame) -> Mask:
        small = self._shrinker.shrink(frame)
        if self._planar:
            cv2.split(small, self._planes)
            for plane, x in zip(self._planes, self._x[0], strict=True):
                np.copyto(x, plane)
        else:
            cv2.cvtColor(small, cv2.COLOR_BGR2RGB, dst=self._rgb)
            np.multiply(self._rgb, np.float32(1.0 / 255.0), out=self._x[0])
        self._session.run_with_iobinding(self._binding)
        return self._mask

    def close(self) -> None:
        self._binding = None
        self._session = None


@register("onnx")
def _create(cfg: SegmentConfig, frame_size: tuple[int, int]) -> OnnxSegmenter:
    return OnnxSegmenter(cfg, frame_size)
