"""The MediaPipe selfie-segmentation models: where they live and how to get them.

Files live in the user data dir (``BGCAM_MODEL_DIR`` overrides) as ``<stem>.tflite`` and the
converted ``<stem>.onnx``. ``bgcam models fetch`` gets them from the mediapipe 0.10.21 wheel on PyPI.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import platformdirs

from bgcam.errors import ModelError

ModelFormat = Literal["tflite", "onnx"]


@dataclass(frozen=True, slots=True)
class ModelSpec:
    name: str
    stem: str
    width: int
    height: int
    sha256: str
    size: int


MODELS: dict[str, ModelSpec] = {
    "general": ModelSpec(
        "general",
        "selfie_segmentation",
        256,
        256,
        "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c",
        249_505,
    ),
    "landscape": ModelSpec(
        "landscape",
        "selfie_segmentation_landscape",
        256,
        144,
        "a77d03f4659b9f6b6c1f5106947bf40e99d7655094b6527f214ea7d451106edd",
        250_145,
    ),
}


def model_dir() -> Path:
    """Where models are stored: ``$BGCAM_MODEL_DIR`` or the platform's user data dir."""
    env = os.environ.get("BGCAM_MODEL_DIR")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_data_dir("bgcam", appauthor=False)) / "models"


def choose_model(setting: str, frame_size: tuple[int, int]) -> str:
    """The model name for ``segment.model = setting`` (auto: landscape for frames wider than 4:3)."""
    if setting == "auto":
        w, h = frame_size
        return "landscape" if w * 3 > h * 4 else "general"
    return setting


def model_path(name: str, fmt: ModelFormat = "tflite") -> Path:
    return model_dir() / f"{MODELS[name].stem}.{fmt}"


def ensure_model(name: str, fmt: ModelFormat = "tflite") -> Path:
    """The path of model ``name`` in format ``fmt``; raise ModelError saying how to get it."""
    if name not in MODELS:
        raise ModelError(
            f"unknown model {name!r}; expected one of {', '.join(MODELS)} or a file path"
        )
    path = model_path(name, fmt)
    if not path.is_file():
        raise ModelError(
            f"model {name} ({fmt}) is missing: {path} does not exist",
            hint="run `bgcam models fetch`",
        )
    return path
