"""`bgcam ctl` and `bgcam status` as separate processes talking to a live control socket."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bgcam.config import Config
from bgcam.control.socket import ControlServer
from bgcam.pipeline import Pipeline
from tests.live_media import RunningPipeline

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def rundir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="bgc-", dir="/tmp")) / "run"
    yield path
    shutil.rmtree(path.parent, ignore_errors=True)


@pytest.fixture
def daemon(rundir: Path, model_dir: Path) -> Iterator[Pipeline]:
    """The real pipeline (synthetic source, null sink) behind a real control socket."""
    running = RunningPipeline().start()
    server = ControlServer(running.pipeline.commands, rundir / "control.sock")
    server.start()
    yield running.pipeline
    server.stop()
    running.stop()


def bgcam(rundir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return python(rundir, "-m", "bgcam", *args)


def python(rundir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """This Python with ``args``, talking to the daemon in ``rundir``."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, "BGCAM_RUNTIME_DIR": str(rundir)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_ctl_commands(daemon: Pipeline, rundir: Path) -> None:
    res = bgcam(rundir, "ctl", "blur", "35")
    assert res.returncode == 0, res.stderr
    assert "blur" in res.stdout and "35" in res.stdout
    assert daemon.config.compose.blur == 35
    assert bgcam(rundir, "ctl", "blur-up").returncode == 0
    assert daemon.config.compose.blur == 45
    assert bgcam(rundir, "ctl", "mode", "remove").returncode == 0
    assert daemon.config.compose.mode == "remove"
    res = bgcam(rundir, "ctl", "toggle", "--json")
    assert json.loads(res.stdout)["mode"] == "off"
    assert bgcam(rundir, "ctl", "next-mode").returncode == 0
    assert daemon.config.compose.mode == "blur"
    assert bgcam(rundir, "ctl", "blur-type", "box").returncode == 0
    assert daemon.config.compose.blur_type == "box"


def test_ctl_roi_settings(daemon: Pipeline, rundir: Path) -> None:
    assert bgcam(rundir, "ctl", "roi", "off").returncode == 0
    assert daemon.config.segment.roi is False
    assert bgcam(rundir, "ctl", "roi", "on").returncode == 0
    assert daemon.config.segment.roi is True
    assert bgcam(rundir, "ctl", "roi-margin", "0.3").returncode == 0
    assert daemon.config.segment.roi_margin == 0.3
    assert bgcam(rundir, "ctl", "roi-full-every", "10").returncode == 0
    assert daemon.config.segment.roi_full_every == 10
    assert bgcam(rundir, "ctl", "max-skip", "3").returncode == 0
    assert daemon.config.segment.max_skip == 3


def test_ctl_studio_effects(daemon: Pipeline, rundir: Path) -> None:
    assert bgcam(rundir, "ctl", "autoframe", "on").returncode == 0
    assert daemon.config.effects.autoframe is True
    assert bgcam(rundir, "ctl", "autoframe", "toggle").returncode == 0
    assert daemon.config.effects.autoframe is False
    assert bgcam(rundir, "ctl", "light", "auto").returncode == 0
    assert daemon.config.effects.light == "auto"
    assert bgcam(rundir, "ctl", "light", "off").returncode == 0
    assert daemon.config.effects.light == "off"
    res = bgcam(rundir, "ctl", "light", "dim")
    assert res.returncode == 1 and "expected one of auto, off, toggle" in res.stderr


def test_status_plain_and_json(daemon: Pipeline, rundir: Path) -> None:
    res = bgcam(rundir, "status", "--json")
    assert res.returncode == 0, res.stderr
    status = json.loads(res.stdout)
    assert status["mode"] == "blur" and status["frames_out"] > 0
    assert status["keyframes"] + status["propagated"] == status["segmentations"]
    assert status["config"]["segment"]["max_skip"] == Config().segment.max_skip == 2
    res = bgcam(rundir, "status")
    assert res.returncode == 0 and "frames_out" in res.stdout and "fps_out" in res.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ctl", "blur", "500"], "expected an integer 0–100, got 500"),
        (["ctl", "blur"], "needs an argument"),
        (["ctl", "mode", "sepia"], "compose.mode: expected one of"),
        (["ctl", "background", "/no/such.png"], "no such file"),
        (["ctl", "roi", "maybe"], "segment.roi: expected on or off, got 'maybe'"),
        (["ctl", "roi-margin", "5"], "segment.roi_margin"),
        (["ctl", "roi-margin", "wide"], "segment.roi_margin: expected a number"),
        (["ctl", "roi-full-every", "0"], "segment.roi_full_every"),
        (["ctl", "roi-full-every", "2.5"], "segment.roi_full_every: expected an integer"),
        (["ctl", "max-skip", "5"], "segment.max_skip: expected a value ≤ 4, got 5"),
        (["ctl", "max-skip", "one"], "segment.max_skip: expected an integer"),
    ],
)
def test_ctl_errors_are_clean(
    daemon: Pipeline, rundir: Path, args: list[str], message: str
) -> None:
    res = bgcam(rundir, *args)
    assert res.returncode == 1
    assert message in res.stderr
    assert "Traceback" not in res.stderr


def test_background_paths_are_made_absolute(daemon: Pipeline, rundir: Path, tmp_path: Path) -> None:
    import cv2
    import numpy as np

    cv2.imwrite(str(tmp_path / "beach.png"), np.full((8, 8, 3), 200, np.uint8))
    res = subprocess.run(
        [sys.executable, "-m", "bgcam", "ctl", "background", "beach.png"],
        cwd=tmp_path,  # a relative path, from another directory than the daemon's
        env={**os.environ, "BGCAM_RUNTIME_DIR": str(rundir), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    assert daemon.config.compose.background == str(tmp_path / "beach.png")
    assert daemon.config.compose.mode == "replace"


def test_usage_mistakes_are_caught_without_a_daemon(rundir: Path) -> None:
    res = bgcam(rundir, "ctl", "blur", "x")
    assert res.returncode == 1 and "expected an integer 0–100" in res.stderr
    res = bgcam(rundir, "ctl", "toggle", "now")
    assert res.returncode == 1 and "takes no argument" in res.stderr


def test_unknown_command_is_a_usage_error(rundir: Path) -> None:
    res = bgcam(rundir, "ctl", "explode")
    assert res.returncode == 2 and "explode" in res.stderr


def test_not_running_says_how_to_start(rundir: Path) -> None:
    res = bgcam(rundir, "status")
    assert res.returncode == 7
    assert "BgCam is not running" in res.stderr and "bgcam run" in res.stderr
    assert "Traceback" not in res.stderr


HEAVY = ("cv2", "numpy", "onnxruntime", "mediapipe", "pydantic", "rich", "bgcam.config")
"""What `bgcam run` needs and `bgcam ctl` must not import: a hotkey binding or a script may run
`bgcam ctl` ten times a second, and each of these costs tens of milliseconds of start-up."""


def test_ctl_imports_only_the_client(daemon: Pipeline, rundir: Path) -> None:
    code = (
        "import sys\n"
        "from bgcam.cli import main\n"
        "main(['ctl', 'blur', '35'], standalone_mode=False)\n"
        f"print('heavy:', [m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    res = python(rundir, "-c", code)
    assert res.returncode == 0, res.stderr
    assert daemon.config.compose.blur == 35
    assert res.stdout.strip().splitlines()[-1] == "heavy: []", res.stdout
