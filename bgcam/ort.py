"""onnxruntime in one place: provider names, session options, sessions, and why a provider does
not run. Used by the ``onnx`` segmenter, the ``cuda`` compositor, the model check and ``bgcam
doctor``. onnxruntime itself is imported only when a session is made.

A provider listed by ``get_available_providers()`` may still fail to start (onnxruntime-gpu
lists CUDA on a machine without a GPU); what really runs is read back from the session.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bgcam.errors import BackendError

__all__ = [
    "CPU",
    "CUDA",
    "PROVIDERS",
    "library_error",
    "resolve_providers",
    "session",
    "session_options",
    "why_not",
]

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"

PROVIDERS = {
    "cuda": CUDA,
    "tensorrt": "TensorrtExecutionProvider",
    "directml": "DmlExecutionProvider",
    "dml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "migraphx": "MIGraphXExecutionProvider",
    "cpu": CPU,
}
"""Short provider names accepted in ``segment.providers`` (case-insensitive)."""

_PROVIDER_LIBS = {
    CUDA: "cuda",
    "TensorrtExecutionProvider": "tensorrt",
    "ROCMExecutionProvider": "rocm",
    "MIGraphXExecutionProvider": "migraphx",
    "OpenVINOExecutionProvider": "openvino",
}


def resolve_providers(names: Sequence[str], available: Sequence[str]) -> list[str]:
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
    if CPU not in chosen:
        chosen.append(CPU)
    return chosen


def library_error(provider: str) -> str | None:
    """Why ``provider``'s shared library does not load (a missing CUDA runtime…), or None when
    it loads or the provider has no library of its own. Cheap: no session is made."""
    lib = _PROVIDER_LIBS.get(provider)
    if lib is None:
        return None
    import onnxruntime

    path = Path(onnxruntime.__file__).parent / "capi" / f"libonnxruntime_providers_{lib}.so"
    if not path.is_file():
        return None
    try:
        ctypes.CDLL(str(path))
    except OSError as exc:
        return f"its library does not load: {str(exc).replace(str(path) + ': ', '')}"
    return None


def why_not(provider: str) -> str:
    """Best guess at why onnxruntime could not start ``provider``."""
    return library_error(provider) or (
        "onnxruntime could not initialise it (no supported device or driver?)"
    )


def session_options(threads: int = 1) -> Any:
    """Sequential, fully optimised, quiet, ``threads`` intra-op threads that never spin idle
    (CPU load matters more here than 0.1 ms)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return so


def session(model: bytes | str, providers: Sequence[str], threads: int = 1) -> Any:
    """An InferenceSession on the first of ``providers`` that starts. onnxruntime's own
    messages about providers that fail are silenced: the caller says it in one line
    (:func:`why_not`). Raises what onnxruntime raises for a model it cannot load."""
    import onnxruntime as ort

    ort.set_default_logger_severity(4)
    try:
        return ort.InferenceSession(model, session_options(threads), providers=list(providers))
    finally:
        ort.set_default_logger_severity(2)
