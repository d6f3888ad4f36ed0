"""The ``onnx`` segmenter: the same selfie models on onnxruntime, on the best provider here.

The frame is resized to the model's input size by OpenCV (as the ``mediapipe`` segmenter does),
written into a preallocated float32 input buffer and run through an IO binding whose input and
output are that buffer and a preallocated output array, so no frame allocates. The model is
first rewritten by :mod:`bgcam.segment.ortlayout`: it takes the BGR planes in 0–255 as they are
(the RGB order and the 1/255 scale folded into its first convolution) and stays in
onnxruntime's blocked CPU layout. The rewrite is cached on disk
(:mod:`bgcam.segment.layoutcache`), so a start does not import the slow ``onnx`` package.

Providers are tried in the configured order (``segment.providers``: CUDA, TensorRT, DirectML,
CoreML, OpenVINO, ROCm, CPU, or full onnxruntime names), keeping those this onnxruntime build
offers. A listed provider may still fail to start (onnxruntime-gpu lists CUDA on a machine
without a GPU): the provider that really runs is read back from the session, exposed as
``provider`` and logged, with one line saying why the preferred one was not used.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bgcam.config import SegmentConfig
from bgcam.errors import BackendError, ModelError
from bgcam.frame import Mask, ShrunkFrame
from bgcam.models import ensure_model, resolve_setting
from bgcam.ort import resolve_providers, session, why_not
from bgcam.segment import layoutcache, register
from bgcam.shrink import Shrinker

log = logging.getLogger(__name__)


def resolve_onnx(setting: str, frame_size: tuple[int, int]) -> tuple[bytes | Path, str]:
    """The ONNX model (a path, or bytes converted from a .tflite) and a label for logs."""
    chosen = resolve_setting(setting, frame_size, (".onnx", ".tflite"))
    if not isinstance(chosen, Path):
        path = ensure_model(chosen, "onnx")
        return path, path.name
    if chosen.suffix == ".onnx":
        return chosen, chosen.name
    from bgcam.models.fetch import convert_checked

    data, diff = convert_checked(chosen, chosen.stem)
    log.info("converted %s to ONNX in memory (max abs diff %.1e)", chosen.name, diff)
    return data, chosen.name


def rewrite(model: bytes | Path, label: str, width: int | None = None) -> tuple[bytes | None, bool]:
    """The model rewritten by :mod:`bgcam.segment.ortlayout` (``None`` when nothing changed),
    and whether it now takes planar BGR 0–255 input
    (:func:`~bgcam.segment.ortlayout.bgr255_planar_input`). With ``width``, a square model is
    first given an input that narrow (:func:`~bgcam.segment.ortlayout.narrow_input`); a model
    that cannot be narrowed raises ValueError. Imports onnx (slow, see
    :mod:`bgcam.segment.layoutcache`). Raises what onnx raises for a model it cannot read."""
    import onnx

    from bgcam.segment.ortlayout import bgr255_planar_input, keep_nchwc, narrow_input

    proto = onnx.load_from_string(model) if isinstance(model, bytes) else onnx.load(model)
    if width is not None and not narrow_input(proto, width):
        raise ValueError(f"{label} cannot be given a {width}-pixel-wide input")
    planar = bgr255_planar_input(proto)
    rewritten = keep_nchwc(proto)
    log.debug(
        "onnx: %s: planar BGR input %s, %d node(s) rewritten for the blocked CPU layout",
        label,
        "yes" if planar else "no",
        rewritten,
    )
    changed = planar or rewritten or width is not None
    return (proto.SerializeToString() if changed else None), planar


def for_cpu_layout(
    model: bytes | Path, label: str, *, cached: bool = True, width: int | None = None
) -> tuple[bytes | str, bool, str | None]:
    """What onnxruntime loads for ``model`` (see :func:`rewrite`, ``width`` included), whether
    it takes planar BGR input, and its cache key (None when the cache was not used).
    ``cached=False`` rewrites again and replaces the cache entry.

    A model the ``onnx`` package cannot read or infer shapes for is passed on unchanged, for
    onnxruntime to load or to report on (and is not cached); with ``width``, the caller checks
    the input it gets.
    """
    unchanged = model if isinstance(model, bytes) else str(model)
    try:
        data = model if isinstance(model, bytes) else model.read_bytes()
    except OSError:
        return unchanged, False, None
    key = layoutcache.cache_key(data if width is None else data + b"\0narrow %d" % width)
    hit = layoutcache.lookup(key) if cached else None
    if hit is not None:
        log.debug("onnx: %s: the rewritten model comes from the cache (%s)", label, key[:12])
    else:
        try:
            hit = rewrite(data, label, width)
        except Exception as exc:  # onnx raises several types (DecodeError, InferenceError, ...)
            log.debug("onnx: %s left as it is (%s)", label, exc)
            return unchanged, False, None
        layoutcache.store(key, *hit)
    rewritten, planar = hit
    return (rewritten if rewritten is not None else unchanged), planar, key


_told: set[tuple[str, str]] = set()
"""Fallbacks already reported at INFO in this process (every model load would repeat them)."""


def _tell_fallback(wanted: str, running: str) -> None:
    """One plain INFO line per process and fallback; the library's reason at DEBUG each time.

    Expected with onnxruntime-gpu on a machine without an NVIDIA GPU, so not a warning.
    """
    log.debug("onnx: %s is not used (%s); running on %s", wanted, why_not(wanted), running)
    if (wanted, running) in _told:
        return
    _told.add((wanted, running))
    if wanted == "CUDAExecutionProvider" and running == "CPUExecutionProvider":
        log.info("no usable NVIDIA GPU: the model runs on the CPU (`bgcam -v` says why)")
    else:
        log.info(
            "%s is not usable here: the model runs on %s (`bgcam -v` says why)", wanted, running
        )


class OnnxSegmenter:
    name = "onnx"

    def __init__(
        self, cfg: SegmentConfig, frame_size: tuple[int, int], *, width: int | None = None
    ) -> None:
        """``width``: give a square model an input that many pixels wide (same height), for
        :meth:`narrower`; ModelError when the model cannot take it."""
        self._cfg, self._frame_size = cfg, frame_size
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - onnxruntime is a dependency
            raise BackendError(
                f"onnxruntime cannot be imported: {exc}", hint="pip install onnxruntime"
            ) from None
        model, self.model_label = resolve_onnx(cfg.model, frame_size)
        providers = resolve_providers(list(cfg.providers), ort.get_available_providers())

        source, self._planar, key = for_cpu_layout(model, self.model_label, width=width)
        try:
            self._session = session(source, providers, cfg.threads)
        except Exception as exc:  # onnxruntime has its own exception types
            if key is None:
                raise ModelError(f"onnxruntime cannot load {self.model_label}: {exc}") from None
            # A damaged cache entry: rewrite the model again (replacing the entry).
            log.debug("onnx: the cached rewrite of %s does not load: %s", self.model_label, exc)
            layoutcache.forget(key)
            source, self._planar, _ = for_cpu_layout(
                model, self.model_label, cached=False, width=width
            )
            try:
                self._session = session(source, providers, cfg.threads)
            except Exception as exc2:
                raise ModelError(f"onnxruntime cannot load {self.model_label}: {exc2}") from None
        running = self._session.get_providers()
        self.provider: str = running[0]
        if self.provider != providers[0]:
            _tell_fallback(providers[0], self.provider)

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
        if width is not None and w != width:
            raise ModelError(
                f"{self.model_label}: cannot be given a {width}-pixel-wide input (got {w} wide)"
            )
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

    def narrower(self, widths: tuple[int, ...]) -> dict[int, OnnxSegmenter]:
        """The same model with inputs of these widths (same height), for
        :class:`~bgcam.segment.roi.RoiSegmenter`'s tall crops; the widths it cannot take
        (a model other than the square selfie one) are left out."""
        out: dict[int, OnnxSegmenter] = {}
        for width in widths:
            try:
                out[width] = OnnxSegmenter(self._cfg, self._frame_size, width=width)
            except ModelError as exc:
                log.debug("onnx: no %d-wide variant: %s", width, exc)
        return out

    def close(self) -> None:
        self._binding = None
        self._session = None


@register("onnx")
def _create(cfg: SegmentConfig, frame_size: tuple[int, int]) -> OnnxSegmenter:
    return OnnxSegmenter(cfg, frame_size)
