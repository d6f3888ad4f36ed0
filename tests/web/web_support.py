"""Fixtures for the web panel tests: models, the real pipeline on a photo, the panel, a browser."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import skimage.data

from bgcam.config import WebConfig
from bgcam.control.socket import ControlServer
from bgcam.frame import Image
from bgcam.pipeline import Pipeline
from bgcam.web.server import WebHandle, start_web
from tests.live_media import (  # noqa: F401 - shared helpers
    RunningPipeline,
    debian_chromium,
    pipeline_config,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def photo(size: tuple[int, int] = (640, 360)) -> Image:
    """A real photo of a person (skimage's astronaut, RGB → BGR), resized to ``size``."""
    bgr = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    return np.ascontiguousarray(cv2.resize(bgr, size, interpolation=cv2.INTER_AREA))


@pytest.fixture(scope="session")
def web_models(model_dir: Path) -> Path:
    """BGCAM_MODEL_DIR with the models (the suite's ``model_dir`` fixture)."""
    return model_dir


def photo_pipeline(
    folder: Path, size: tuple[int, int] = (640, 360), **settings: object
) -> RunningPipeline:
    """The real pipeline (not started) showing :func:`photo` from a file, to the null sink."""
    path = folder / f"photo-{size[0]}x{size[1]}.png"
    cv2.imwrite(str(path), photo(size))
    return RunningPipeline(pipeline_config(str(path), **settings))


@pytest.fixture
def pipeline(web_models: Path, tmp_path: Path) -> Iterator[Pipeline]:
    running = photo_pipeline(tmp_path).start()
    yield running.pipeline
    running.stop()


@pytest.fixture
def upload_dir(tmp_path: Path) -> Path:
    return tmp_path / "backgrounds"


@pytest.fixture
def web(pipeline: Pipeline, rundir: Path, upload_dir: Path) -> Iterator[WebHandle]:
    """The panel serving ``pipeline`` on a free port, token in ``rundir``."""
    handle = start_web(
        pipeline, WebConfig(enabled=True), port=0, runtime_dir=rundir, upload_dir=upload_dir
    )
    yield handle
    handle.stop()


@pytest.fixture
def control(pipeline: Pipeline, rundir: Path) -> Iterator[Path]:
    """The real control socket on the same command queue; yields its path."""
    server = ControlServer(pipeline.commands, rundir / "control.sock")
    server.start()
    yield server.path
    server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's chromium driven by Playwright (never a downloaded browser)."""
    with debian_chromium(CHROMIUM_ARGS) as b:
        yield b


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
