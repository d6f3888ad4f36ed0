"""BgCam: a virtual camera with a blurred or replaced background."""

from bgcam.config import Config, load_config
from bgcam.errors import (
    BackendError,
    BgCamError,
    ConfigError,
    DeviceError,
    InputError,
    ModelError,
    OutputError,
)
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
