"""``bgcam render`` from the command line: real runs, clean errors, Ctrl-C leaves nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from skimage import data

from bgcam.cli import main
from bgcam.media import probe_input

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("model_dir")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 10-frame 320x240 clip of the astronaut, the crop drifting as a camera would."""
    path = tmp_path_factory.mktemp("clip") / "talk.mp4"
    photo = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 20.0, (320, 240))
    for i in range(10):
        writer.write(cv2.resize(photo[3 * i : 3 * i + 400, 5 * i : 5 * i + 480], (320, 240)))
    writer.release()
    return path


def bgcam(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bgcam", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_render_subprocess_writes_video_and_masks(clip: Path, tmp_path: Path) -> None:
    proc = bgcam(
        "render",
        clip,
        "-o",
        tmp_path / "out.mp4",
        "--masks",
        tmp_path / "m",
        "--blur",
        "80",
        "--blur-type",
        "box",
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"wrote 10 frames (320x240) to {tmp_path / 'out.mp4'}" in proc.stderr
    info = probe_input(tmp_path / "out.mp4")
    assert (info.kind, info.size, info.fps, info.count) == ("video", (320, 240), 20.0, 10)
    masks = sorted((tmp_path / "m").iterdir())
    assert [p.name for p in masks] == [f"{i:05d}.png" for i in range(10)]
    share = np.mean([(cv2.imread(str(p), 0) > 127).mean() for p in masks])
    assert 0.1 < share < 0.9
    assert proc.stdout == ""  # progress and logs go to stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--blur", "300"], 2, "compose.blur: expected a value ≤ 100, got 300"),
        (["--blur", "lots"], 2, "compose.blur: expected an integer, got 'lots'"),
        (["--mode", "sparkle"], 2, "compose.mode: expected one of"),
        (["--blur-type", "fuzzy"], 2, "compose.blur_type: expected one of"),
        (["--segmenter", "magic"], 2, "segment.segmenter: expected one of"),
        (["--set", "compose.bluur=3"], 2, "did you mean 'compose.blur'?"),
        (["--set", "nonsense"], 2, "expected KEY=VALUE"),
        (["--config", "/nonexistent/bgcam.toml"], 2, "does not exist"),
        (["--background", "/nonexistent/beach.jpg"], 4, "background /nonexistent/beach.jpg"),
    ],
)
def test_bad_settings_give_clean_errors(
    clip: Path, tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    out = tmp_path / "out.mp4"
    result = CliRunner().invoke(main, ["render", str(clip), "-o", str(out), *args])
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert list(tmp_path.iterdir()) == []


def test_bad_config_file_names_the_file_and_key(clip: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "mine.toml"
    cfg.write_text("[compose]\nblur = -5\n")
    result = CliRunner().invoke(
        main, ["render", str(clip), "-o", str(tmp_path / "o.mp4"), "--config", str(cfg)]
    )
    assert result.exit_code == 2
    assert f"{cfg}: invalid configuration" in result.output
    assert "compose.blur: expected a value ≥ 0, got -5" in result.output


def test_non_video_input_is_refused_and_output_untouched(tmp_path: Path) -> None:
    fake = tmp_path / "talk.mp4"
    fake.write_text("not a video at all\n")
    out = tmp_path / "out.mp4"
    out.write_bytes(b"yesterday's render")
    proc = bgcam("render", fake, "-o", out, "--masks", tmp_path / "m")
    assert proc.returncode == 4
    assert "error: input" in proc.stderr and "neither a video nor an image" in proc.stderr
    assert "fix:" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert out.read_bytes() == b"yesterday's render"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4", "talk.mp4"]


def test_help_explains_options_with_examples() -> None:
    result = CliRunner().invoke(main, ["render", "--help"])
    assert result.exit_code == 0
    for text in (
        "--masks",
        "--background",
        "--blur-type",
        "gaussian",
        "Examples:",
        "bgcam render talk.mp4 -o talk-blurred.mp4",
        "[compose.blur]",
    ):
        assert text in result.output


def test_ctrl_c_leaves_old_output_and_no_temporaries(tmp_path: Path) -> None:
    """SIGINT (Ctrl-C) in the middle of a render: the old output stays, no partial files remain."""
    photo = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (320, 240))
    long_input = tmp_path / "frames"
    long_input.mkdir()
    cv2.imwrite(str(tmp_path / "photo.png"), photo)
    for i in range(5000):  # far more frames than the test waits for; links are cheap to make
        (long_input / f"{i:05d}.png").symlink_to(tmp_path / "photo.png")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "result.mp4"
    out.write_bytes(b"yesterday's render")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bgcam",
            "render",
            str(long_input),
            "-o",
            str(out),
            "--masks",
            str(out_dir / "masks"),
            "--no-progress",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Wait until frames are being written (the masks' temporary folder fills up).
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            partial = [p for p in out_dir.iterdir() if p.name.startswith(".masks.partial-")]
            if partial and len(list(partial[0].iterdir())) >= 3:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()[1]
        os.kill(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGINT
    assert "Traceback" not in err and "render stopped by SIGINT" in err
    assert out.read_bytes() == b"yesterday's render"
    assert sorted(p.name for p in out_dir.iterdir()) == ["result.mp4"]
