"""``bgcam demo``: a before | after clip from the bundled photo, through the real engine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from bgcam.config import Config
from bgcam.demo import PanZoom, bundled_photo, run_demo

pytestmark = pytest.mark.usefixtures("model_dir")


def test_the_camera_moves_and_the_sensor_is_noisy() -> None:
    source = PanZoom(bundled_photo(), (320, 180), frames=30)
    a, b = source.frame(0).copy(), source.frame(15).copy()
    assert a.shape == (180, 320, 3) and np.abs(a.astype(int) - b.astype(int)).mean() > 10
    again = source.frame(0)
    noise = again.astype(int) - a.astype(int)  # same window, fresh grain
    assert 2 < noise.std() < 12


def test_demo_writes_before_and_after_side_by_side(tmp_path: Path) -> None:
    result = run_demo(Config(), tmp_path / "out" / "demo.mp4", seconds=0.5, preview=False)
    assert result.frames == 15 and not result.previewed
    with av.open(str(result.path)) as c:
        stream = c.streams.video[0]
        assert (stream.codec_context.name, stream.width, stream.height) == ("h264", 1280, 360)
        frame = next(c.decode(stream)).to_ndarray(format="bgr24")
    before, after = frame[:, :640].astype(int), frame[:, 640:].astype(int)
    assert np.abs(before - after).mean() > 3  # the background was blurred


def test_demo_command_prints_the_path(tmp_path: Path, model_dir: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "bgcam", "demo", "--no-preview", "--seconds", "0.5"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().startswith(f"wrote {tmp_path / 'demo.mp4'}")
