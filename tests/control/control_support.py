"""Fixtures for the control tests: the real pipeline with its control socket, a daemon process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bgcam.control.socket import ControlServer
from bgcam.pipeline import Pipeline
from tests.live_media import (  # noqa: F401 - shared helpers
    DaemonProcess,
    RunningPipeline,
    client_ready,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[2]
CLOBBERING = Path(__file__).resolve().parent / "clobbering_daemon.py"


@pytest.fixture
def served(rundir: Path, model_dir: Path) -> Iterator[tuple[Pipeline, ControlServer]]:
    """The real pipeline (synthetic source, null sink) on a thread, served by the control socket."""
    running = RunningPipeline().start()
    server = ControlServer(running.pipeline.commands)
    server.start()
    yield running.pipeline, server
    server.stop()
    running.stop()


def spawn_clobbering(rundir: Path, env: dict[str, str] | None = None) -> DaemonProcess:
    """A real daemon process whose SIGUSR1 handler is replaced behind Python's back once its
    controls are up (as LLVM inside an OpenCL driver does); waits until it serves."""
    full_env = {**os.environ, "BGCAM_RUNTIME_DIR": str(rundir), **(env or {})}
    argv = [sys.executable, str(CLOBBERING)]
    daemon = DaemonProcess(argv, full_env, rundir / "control.sock")
    daemon.wait_serving(timeout=120)
    return daemon


def start_xvfb(record: bool = True) -> tuple[subprocess.Popen[bytes], str]:
    """A private X server on a free display (Xvfb picks it: -displayfd); (process, DISPLAY).

    ``record``: with the RECORD extension, which pynput listens through.
    """
    if shutil.which("Xvfb") is None or shutil.which("xdotool") is None:
        pytest.skip("needs Xvfb and xdotool (Debian packages xvfb, xdotool)")
    r, w = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(w), "-nolisten", "tcp",
         "+extension" if record else "-extension", "RECORD", "-screen", "0", "640x480x24"],
        pass_fds=(w,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    os.close(w)
    with os.fdopen(r) as f:
        number = f.readline().strip()  # written once the server accepts connections
    if not number:
        proc.kill()
        pytest.skip("Xvfb did not start")
    return proc, f":{number}"


@pytest.fixture(scope="module")
def xvfb() -> Iterator[str]:
    """DISPLAY of a private X server with the RECORD extension."""
    proc, display = start_xvfb()
    yield display
    proc.terminate()
    proc.wait(10)


def press(display: str, keys: str) -> None:
    """Press a key chord on ``display`` with xdotool, like a user would."""
    subprocess.run(
        ["xdotool", "key", keys],
        env={**os.environ, "DISPLAY": display},
        check=True,
        timeout=30,
    )


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short real video (a moving gradient with a dark 'person' blob), written with OpenCV."""
    import cv2
    import numpy as np

    path = tmp_path_factory.mktemp("clip") / "clip.avi"
    w, h, n = 320, 240, 60
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 30.0, (w, h))
    assert writer.isOpened()
    xs = np.linspace(0, 255, w, dtype=np.float32)
    for i in range(n):
        img = np.empty((h, w, 3), np.uint8)
        img[...] = ((xs + 4 * i) % 256).astype(np.uint8)[None, :, None]
        cv2.circle(img, (w // 2 + (i % 20) - 10, h // 2), 60, (40, 60, 90), -1)
        writer.write(img)
    writer.release()
    return path


def spawn_daemon(
    rundir: Path,
    clip: Path,
    config: Path | None = None,
    env: dict[str, str] | None = None,
) -> DaemonProcess:
    """The real `bgcam run --source CLIP --sink null`.

    The cheap ``hsv`` segmenter (given with ``--set``, so reloads keep it) keeps these control
    tests free of model files and light on the shared CPU; XDG_CONFIG_HOME points to an empty
    directory so a user config on the machine cannot leak in.
    """
    base = {"XDG_CONFIG_HOME": str(rundir.parent / "xdg"), **(env or {})}
    full_env = {**os.environ, "BGCAM_RUNTIME_DIR": str(rundir), **base}
    argv = [sys.executable, "-m", "bgcam", "run", "--source", str(clip), "--sink", "null",
            "--set", "segment.segmenter=hsv"]  # fmt: skip
    if config is not None:
        argv += ["--config", str(config)]
    daemon = DaemonProcess(argv, full_env, rundir / "control.sock")
    daemon.wait_serving(timeout=120)
    return daemon
