"""Fixtures shared by the whole suite: the real models and real test images.

``model_dir`` uses the user's own models (``make run`` / ``bgcam models fetch`` put them in the
user data dir, or ``$BGCAM_MODEL_DIR``) when they are complete and current, so a machine fetches
them once for both. Otherwise it runs the real ``bgcam models fetch`` code into a per-machine
cache (``~/.cache/bgcam-test-models``, or ``$BGCAM_TEST_MODEL_CACHE``): the 35 MB mediapipe wheel
comes from PyPI once per machine, and later runs only verify the files.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import platformdirs
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared"
DAVIS = SHARED / "evaldata" / "davis-dev"


def _cache_dir() -> Path:
    env = os.environ.get("BGCAM_TEST_MODEL_CACHE")
    return Path(env) if env else platformdirs.user_cache_path("bgcam-test-models")


@pytest.fixture(scope="session")
def model_dir() -> Iterator[Path]:
    """A directory holding both .tflite and both .onnx models; BGCAM_MODEL_DIR points to it."""
    from bgcam.models import model_dir as users_model_dir
    from bgcam.models.fetch import fetch_models, model_status

    explicit_cache = "BGCAM_TEST_MODEL_CACHE" in os.environ
    if not explicit_cache and all(st.tflite_ok and st.onnx_ok for st in model_status()):
        path = users_model_dir()
    else:
        path = _cache_dir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BGCAM_MODEL_DIR", str(path))
        fetch_models(show_progress=False)  # no-op when present and verified
        yield path


@pytest.fixture(scope="session")
def _astronaut_rgb() -> npt.NDArray[np.uint8]:
    from skimage import data

    image: npt.NDArray[np.uint8] = data.astronaut()
    image.setflags(write=False)
    return image


@pytest.fixture
def astronaut(_astronaut_rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """scikit-image's astronaut photo (512x512) as a fresh, writable BGR uint8 array."""
    return cv2.cvtColor(_astronaut_rgb, cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="session")
def davis_dir() -> Path:
    """../shared/evaldata/davis-dev (real video frames with person masks); skips when absent."""
    if not (DAVIS / "JPEGImages").is_dir():
        pytest.skip(f"{DAVIS.resolve()} is absent (the shared evaluation data)")
    return DAVIS


@pytest.fixture
def rundir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A short private BGCAM_RUNTIME_DIR for the control socket and the web token.

    Under /tmp, not pytest's tmp_path: Unix socket paths must stay under ~100 bytes.
    """
    path = Path(tempfile.mkdtemp(prefix="bgc-", dir="/tmp")) / "run"
    monkeypatch.setenv("BGCAM_RUNTIME_DIR", str(path))
    yield path
    shutil.rmtree(path.parent, ignore_errors=True)
