"""The MediaPipe selfie-segmentation models: where they live and how to get them.

Files live in the user data dir (``BGCAM_MODEL_DIR`` overrides) as ``<stem>.tflite`` and the
converted ``<stem>.onnx``. ``bgcam models fetch`` gets them from the mediapipe 0.10.21 wheel on PyPI
(:mod:`bgcam.models.fetch`) and converts them with BgCam's own converter
(:mod:`bgcam.models.tflite2onnx`); :func:`ensure_model` does the same on first use.
"""

from __future__ import annotations

import hashlib
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


MEDIAPIPE_VERSION = "0.10.21"
"""The last mediapipe release whose wheels ship the selfie models."""
WHEEL_NAME = f"mediapipe-{MEDIAPIPE_VERSION}-cp311-cp311-manylinux_2_28_x86_64.whl"
WHEEL_SHA256 = "05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3"
WHEEL_MEMBER_DIR = "mediapipe/modules/selfie_segmentation/"


def fixed_wheel_args(requirement: str) -> tuple[str, ...]:
    """``pip download`` arguments for the one Linux x86_64 / CPython 3.11 wheel of
    ``requirement``, whatever this machine is: every machine gets the very same files."""
    return (
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--python-version",
        "3.11",
        "--platform",
        "manylinux_2_28_x86_64",
        requirement,
    )


PIP_DOWNLOAD_ARGS = fixed_wheel_args(f"mediapipe=={MEDIAPIPE_VERSION}")
"""One fixed wheel on every machine, so Python 3.13 or a Mac gets the very same model files."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def model_dir() -> Path:
    """Where models are stored: ``$BGCAM_MODEL_DIR`` or the platform's user data dir."""
    env = os.environ.get("BGCAM_MODEL_DIR")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_data_dir("bgcam", appauthor=False)) / "models"


def choose_model(setting: str, frame_size: tuple[int, int]) -> str:
    """The model name for ``segment.model = setting`` (auto: landscape wider than 4:3)."""
    if setting == "auto":
        w, h = frame_size
        return "landscape" if w * 3 > h * 4 else "general"
    return setting


def resolve_setting(
    setting: str, frame_size: tuple[int, int], suffixes: tuple[str, ...]
) -> Path | str:
    """What ``segment.model = setting`` names, for a segmenter that reads files with
    ``suffixes``: the user's file (a Path, checked to exist), or the name of a bundled model
    (auto chooses by the frame's shape). Raises ModelError naming the expected settings."""
    if setting.endswith(suffixes):
        path = Path(setting).expanduser()
        if not path.is_file():
            raise ModelError(f"segment.model: no such file {path}")
        return path
    name = choose_model(setting, frame_size)
    if name not in MODELS:
        files = "/".join(suffixes)
        raise ModelError(
            f"segment.model: expected auto, landscape, general or a {files} path, got {setting!r}"
        )
    return name


def model_path(name: str, fmt: ModelFormat = "tflite") -> Path:
    return model_dir() / f"{MODELS[name].stem}.{fmt}"


def ensure_model(name: str, fmt: ModelFormat = "tflite", *, fetch: bool = True) -> Path:
    """The path of model ``name`` in format ``fmt``, fetching it first when it is missing.

    With ``fetch=False`` a missing file raises ModelError saying how to get it. A .tflite file
    whose sha256 differs from the pinned one is refused.
    """
    if name not in MODELS:
        raise ModelError(
            f"unknown model {name!r}; expected one of {', '.join(MODELS)} or a file path"
        )
    path = model_path(name, fmt)
    if not path.is_file():
        if not fetch:
            raise ModelError(
                f"model {name} ({fmt}) is missing: {path} does not exist",
                hint="run `bgcam models fetch`",
            )
        from bgcam.models.fetch import fetch_models

        # Every model, in both formats: all come from one download, and a later
        # `bgcam models verify` then finds the set complete.
        fetch_models()
    if fmt == "tflite":
        spec = MODELS[name]
        if path.stat().st_size != spec.size or sha256_file(path) != spec.sha256:
            raise ModelError(
                f"model file {path} is not the expected {spec.stem}.tflite (sha256 differs)",
                hint="run `bgcam models fetch --force` to download it again",
            )
    return path
