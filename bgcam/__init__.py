"""BgCam: a virtual camera with a blurred or replaced background.

``Config``, ``load_config`` and ``Frame`` are imported on first use (PEP 562): they pull in
pydantic, numpy and OpenCV, which commands such as ``bgcam ctl`` never need, and a short-lived
``bgcam ctl`` process must not take a busy machine's CPU from the live camera for a second.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bgcam.errors import (
    BackendError,
    BgCamError,
    ConfigError,
    DeviceError,
    InputError,
    ModelError,
    OutputError,
)

if TYPE_CHECKING:
    from bgcam.config import Config, load_config
    from bgcam.frame import Frame

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "BgCamError",
    "Config",
    "ConfigError",
    "DeviceError",
    "Frame",
    "InputError",
    "ModelError",
    "OutputError",
    "__version__",
    "load_config",
]

_LAZY = {"Config": "bgcam.config", "load_config": "bgcam.config", "Frame": "bgcam.frame"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'bgcam' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
