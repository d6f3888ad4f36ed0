"""Fixtures for the control tests: a private runtime dir, a daemon double, a daemon process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_double import DaemonDouble

from bgcam.control.socket import ControlServer
from tests.live_media import DaemonProcess, client_ready, wait_for  # noqa: F401 - shared helpers

ROOT = Path(__file__).resolve().parents[2]
DOUBLE = Path(__file__).resolve().parent / "daemon_double.py"


@pytest.fixture
def served(rundir: Path) -> Iterator[tuple[DaemonDouble, ControlServer]]:
    """A daemon double making frames in a thread, with the control socket serving it."""
    daemon = DaemonDouble()
    thread = daemon.start_thread()
    server = ControlServer(daemon.commands)
    server.start()
    yield daemon, server
    server.stop()
    daemon.request_stop()
    thread.join(5)


def spawn_double(rundir: Path, *args: str, env: dict[str, str] | None = None) -> DaemonProcess:
    """The daemon double as its own process (real signals, real socket); waits until it serves."""
    full_env = {**os.environ, "BGCAM_RUNTIME_DIR": str(rundir), **(env or {})}
    daemon = DaemonProcess([sys.executable, str(DOUBLE), *args], full_env, rundir / "control.sock")
    daemon.wait_serving()
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


def real_daemon_available() -> bool:
    """True once `bgcam run` exists (the live-daemon work); until then tests use the double."""
    from bgcam.cli import main

    return "run" in main.commands


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short real video (a moving gradient with a dark 'person' blob), written with OpenCV."""
    import cv2
    import numpy as np

    path = tmp_path_factory.mktemp("clip") / "clip.avi"
    w, h, n = 320, 240, 60
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (w, h))
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
    """The real `bgcam run --source CLIP --sink null` (the double until `bgcam run` exists).

    The cheap ``hsv`` segmenter (given with ``--set``, so reloads keep it) keeps these control
    tests free of model files and light on the shared CPU; XDG_CONFIG_HOME points to an empty
    directory so a user config on the machine cannot leak in.
    """
    base = {"XDG_CONFIG_HOME": str(rundir.parent / "xdg"), **(env or {})}
    if not real_daemon_available():
        return spawn_double(rundir, *(["--config", str(config)] if config else []), env=base)
    full_env = {**os.environ, "BGCAM_RUNTIME_DIR": str(rundir), **base}
    argv = [sys.executable, "-m", "bgcam", "run", "--source", str(clip), "--sink", "null",
            "--set", "segment.segmenter=hsv"]  # fmt: skip
    if config is not None:
        argv += ["--config", str(config)]
    daemon = DaemonProcess(argv, full_env, rundir / "control.sock")
    daemon.wait_serving(timeout=120)
    return daemon
