"""`bgcam run` as a real subprocess: file and stream sources, file and null sinks, signals."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest

from tests.live_media import (
    MjpegServer,
    astronaut_frames,
    free_port,
    models_env,
    solid,
    wait_for,
    write_clip,
)

QUIET = ["--set", "control.hotkeys=false", "--set", "log.stats_interval=1.0"]


@pytest.fixture
def env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    rundir = Path(tempfile.mkdtemp(prefix="bgr-", dir="/tmp"))
    e = dict(os.environ)
    e["BGCAM_MODEL_DIR"] = models_env(request)
    e["BGCAM_RUNTIME_DIR"] = str(rundir / "run")  # a private control socket per daemon
    e["XDG_CONFIG_HOME"] = str(rundir / "config")  # no saved user settings
    e.pop("DISPLAY", None)
    yield e
    shutil.rmtree(rundir, ignore_errors=True)


def bgcam(
    *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bgcam", "run", *QUIET, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def count_frames(path: Path) -> list:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while (res := cap.read())[0]:
        frames.append(res[1])
    return frames


def test_file_to_file_with_stats(tmp_path: Path, env: dict[str, str]) -> None:
    clip = write_clip(tmp_path / "in.avi", astronaut_frames(10), fps=30)
    out, stats = tmp_path / "out.mp4", tmp_path / "stats.json"
    res = bgcam(
        "--source",
        str(clip),
        "--sink",
        f"file:{out}",
        "--seconds",
        "3",
        "--stats-json",
        str(stats),
        env=env,
    )
    assert res.returncode == 0, res.stderr
    data = json.loads(stats.read_text())
    for key in (
        "fps_out",
        "latency_ms_p50",
        "latency_ms_p99",
        "cpu_percent",
        "frames_out",
        "frames_repeated",
        "frames_dropped",
        "keyframes",
        "propagated",
    ):
        assert key in data
    assert data["frames_out"] > 30
    assert data["keyframes"] + data["propagated"] == data["segmentations"] > 0
    frames = count_frames(out)
    assert len(frames) == data["frames_out"]  # the file holds exactly what was sent
    assert frames[0].shape == (180, 320, 3)


def test_stream_killed_and_restarted(tmp_path: Path, env: dict[str, str]) -> None:
    port = free_port()
    red = MjpegServer(lambda n: solid((0, 0, 255)), port=port).start()
    out, stats = tmp_path / "out.avi", tmp_path / "stats.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bgcam",
            "run",
            *QUIET,
            "--source",
            red.url,
            "--sink",
            f"file:{out}",
            "--seconds",
            "12",
            "--stats-json",
            str(stats),
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    green = None
    try:
        wait_for(lambda: red.connections >= 1, 30, "the daemon to connect")
        time.sleep(2.5)
        red.stop()  # the stream dies mid-run
        time.sleep(2.5)
        green = MjpegServer(lambda n: solid((0, 255, 0)), port=port).start()
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill() if proc.poll() is None else None
        if green is not None:
            green.stop()
    assert proc.returncode == 0, err
    assert "logged once" in err and err.count("lost:") == 1  # one message per outage
    data = json.loads(stats.read_text())
    assert data["frames_placeholder"] > 0  # the placeholder covered the outage
    frames = count_frames(out)
    assert len(frames) == data["frames_out"]  # the output never stopped
    greens = [f for f in frames if f[..., 1].mean() > 150 and f[..., 2].mean() < 100]
    assert len(greens) > 30, "frames of the restarted stream did not arrive"


def test_sigterm_while_a_read_blocks(tmp_path: Path, env: dict[str, str]) -> None:
    # One frame, then silence: the capture thread sits in a blocking read when TERM arrives.
    server = MjpegServer(lambda n: solid((200, 0, 0)), frames_before_silence=1).start()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bgcam", "run", *QUIET, "--source", server.url, "--sink", "null"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines: list[str] = []
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "running:" in line:
                break
        time.sleep(1.0)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=20)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
        server.stop()
    assert rc == 0, "".join(lines)
    print(f"stopped {took:.2f} s after SIGTERM")
    assert took < 10  # generous: a blocked read would otherwise hold it for READ_TIMEOUT+


def test_missing_virtual_camera_is_a_clean_error(tmp_path: Path, env: dict[str, str]) -> None:
    clip = write_clip(tmp_path / "in.avi", astronaut_frames(3), fps=30)
    res = bgcam("--source", str(clip), "--sink", "virtualcam", "--seconds", "1", env=env)
    assert res.returncode == 5
    assert "setup-v4l2loopback.sh" in res.stderr
    assert "Traceback" not in res.stderr


def test_fresh_machine_says_what_is_missing(env: dict[str, str]) -> None:
    # No webcam and no v4l2loopback on our machines: both are reported, with the way out.
    if Path("/dev/video0").exists():
        pytest.skip("this machine has a camera")
    res = bgcam("--seconds", "1", env=env)
    assert res.returncode != 0
    assert "no camera" in res.stderr and "v4l2loopback" in res.stderr
    assert "--source clip.mp4 --sink null" in res.stderr
    assert "Traceback" not in res.stderr


def test_stats_json_is_checked_first_and_written_when_the_run_fails(
    env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "taken").touch()
    res = bgcam(
        "--source",
        "clip.mp4",
        "--sink",
        "null",
        "--stats-json",
        str(tmp_path / "taken" / "s.json"),
        env=env,
    )
    assert res.returncode == 7 and "Traceback" not in res.stderr
    assert f"--stats-json {tmp_path / 'taken' / 's.json'}" in res.stderr and "fix:" in res.stderr
    stats = tmp_path / "new" / "stats.json"  # a missing folder is created
    res = bgcam(
        "--source",
        str(tmp_path / "missing.mp4"),
        "--sink",
        "null",
        "--stats-json",
        str(stats),
        env=env,
    )
    assert res.returncode == 4
    data = json.loads(stats.read_text())
    assert data["exit_code"] == 4 and "missing.mp4" in data["error"] and data["frames_out"] == 0


def test_run_takes_the_effect_flags_of_render(env: dict[str, str], tmp_path: Path) -> None:
    clip = tmp_path / "clip.avi"
    write_clip(clip, astronaut_frames(8), fps=10)
    background = tmp_path / "beach.png"
    cv2.imwrite(str(background), solid((255, 128, 0)))
    stats = tmp_path / "stats.json"
    res = bgcam(
        "--source",
        str(clip),
        "--sink",
        "null",
        "--seconds",
        "1.5",
        "--stats-json",
        str(stats),
        "--blur",
        "40",
        "--blur-type",
        "box",
        "--background",
        str(background),
        "--segmenter",
        "hsv",
        env=env,
    )
    assert res.returncode == 0, res.stderr
    assert "No such option" not in res.stderr


@pytest.mark.parametrize(
    ("flags", "mode"),
    [
        ({"background": "beach.jpg"}, "replace"),  # a background switches to replace
        ({"background": "beach.jpg", "mode": "remove"}, "remove"),  # unless --mode is given
        ({"blur": "40"}, "blur"),
    ],
)
def test_effect_flags_resolve_alike_for_run_and_render(flags: dict[str, str], mode: str) -> None:
    from bgcam.cli import EFFECT_PARAMS, effect_overrides
    from bgcam.config import load_config

    args = {name: flags.get(name) for name in EFFECT_PARAMS}
    cfg = load_config(None, effect_overrides(**args))
    assert cfg.compose.mode == mode
