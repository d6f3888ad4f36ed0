"""Segmenters: find the person in a frame.

Each segmenter turns a BGR uint8 frame into a low-resolution float32 person probability map in
[0, 1] (its own working size, e.g. 256x144 for the landscape model). Backends are registered by
name and created with :func:`create_segmenter`; when one cannot run, the error says why.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from bgcam.config import SegmentConfig
from bgcam.errors import BackendError
from bgcam.frame import Mask, ShrunkFrame


class Segmenter(Protocol):
    """One method does the work; ``close`` frees native resources."""

    name: str

    def segment(self, frame: ShrunkFrame) -> Mask:
        """Person probability (h, w) float32 in [0, 1] for a BGR uint8 (H, W, 3) frame.

        A segmenter whose input is no larger than ``frame.small`` starts from it instead of
        shrinking the full frame again. The returned array may be reused by the next call:
        copy it to keep it.
        """
        ...

    def close(self) -> None: ...


SegmenterFactory = Callable[[SegmentConfig, tuple[int, int]], Segmenter]
"""Builds a segmenter from its config section and the frame size (width, height)."""

_REGISTRY: dict[str, SegmenterFactory] = {}


def register(name: str) -> Callable[[SegmenterFactory], SegmenterFactory]:
    def deco(factory: SegmenterFactory) -> SegmenterFactory:
        _REGISTRY[name] = factory
        return factory

    return deco


BUILTINS = ("hsv", "mediapipe", "onnx")


def _load_builtins(names: tuple[str, ...] = BUILTINS) -> None:
    # Imported lazily so that `import bgcam` does not load mediapipe or onnxruntime (an import
    # holds the GIL for seconds: only the backend asked for is loaded).
    import importlib

    for name in names:
        importlib.import_module(f"{__name__}.{name}")


def available() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def roi_status(segmenter: Segmenter | None) -> dict[str, Any] | None:
    """What ``bgcam status`` reports about the crop: None when ROI is off (whole frames)."""
    status = getattr(segmenter, "status", None)
    return None if status is None else dict(status())


ROI_SEGMENTERS = ("onnx", "mediapipe")
"""Segmenters that ``segment.roi`` applies to (the ``hsv`` fallback always sees whole frames)."""


def create_segmenter(cfg: SegmentConfig, frame_size: tuple[int, int]) -> Segmenter:
    """Create the segmenter ``cfg.segmenter`` for frames of ``frame_size`` (width, height).

    With ``segment.roi`` (and a model segmenter) it is wrapped in a
    :class:`~bgcam.segment.roi.RoiSegmenter`, whose output is in full-frame coordinates at the
    size of the shrunk frame it is given (the refiner's working size).
    """
    _load_builtins((cfg.segmenter,) if cfg.segmenter in BUILTINS else BUILTINS)
    try:
        factory = _REGISTRY[cfg.segmenter]
    except KeyError:
        raise BackendError(
            f"unknown segmenter {cfg.segmenter!r}; expected one of {', '.join(sorted(_REGISTRY))}"
        ) from None
    whole = factory(cfg, frame_size)
    if not cfg.roi or cfg.segmenter not in ROI_SEGMENTERS:
        return whole
    try:
        return _with_roi(factory, whole, cfg, frame_size)
    except BaseException:
        whole.close()
        raise


def _with_roi(
    factory: SegmenterFactory,
    whole: Segmenter,
    cfg: SegmentConfig,
    frame_size: tuple[int, int],
) -> Segmenter:
    from bgcam.models import choose_model
    from bgcam.segment.roi import RoiSegmenter
    from bgcam.segment.roibox import SQUARE, WIDE

    # auto: each crop gets the model of its shape; a named model or a file serves every crop.
    names = {"auto": {SQUARE: "general", WIDE: "landscape"}, "general": {SQUARE: "general"}}
    names["landscape"] = {WIDE: "landscape"}
    crops: dict[str, Segmenter] = {}
    if cfg.model in names:
        whole_name = choose_model(cfg.model, frame_size)
        try:
            for shape, name in names[cfg.model].items():
                crops[shape] = (
                    whole
                    if name == whole_name
                    else factory(cfg.model_copy(update={"model": name}), frame_size)
                )
        except BaseException:
            for seg in crops.values():
                if seg is not whole:
                    seg.close()
            raise
    else:
        w, h = getattr(whole, "input_size", frame_size)
        crops[SQUARE if 0.95 <= w / h <= 1.05 else WIDE] = whole
    return RoiSegmenter(whole, crops, cfg, frame_size)
