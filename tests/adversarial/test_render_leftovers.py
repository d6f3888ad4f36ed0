"""Offline render leftovers (finding 8 of issue 13): signals, SIGKILL, existing folders, paths."""

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

from tests.live_media import ROOT, astronaut_frames

pytestmark = pytest.mark.slow


def long_input(tmp_path: Path) -> Path:
    """A folder of 3000 frames (links to a few real photos): far more than a test waits for."""
    folder = tmp_path / "frames"
    folder.mkdir()
    photos = []
    for i, frame in enumerate(astronaut_frames(4)):
        photos.append(tmp_path / f"photo{i}.png")
        cv2.imwrite(str(photos[-1]), frame)
    for i in range(3000):
        (folder / f"{i:05d}.png").symlink_to(photos[i % 4])
    return folder


def start_render(src: Path, *args: str) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "bgcam", "render", str(src), *args, "--no-progress",
            "--set", "segment.segmenter=hsv"]  # fmt: skip
    return subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def wait_for_partial(folder: Path, proc: subprocess.Popen[str]) -> None:
    """Until the render's temporary video beside the output has grown (frames are written)."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        partial = [p for p in folder.iterdir() if ".partial-" in p.name]
        if partial and partial[0].stat().st_size > 0:
            return
        time.sleep(0.05)
    raise AssertionError(f"no partial output appeared (exit {proc.poll()})")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_stopping_signal_leaves_nothing_beside_the_output(
    tmp_path: Path, sig: signal.Signals
) -> None:
    src = long_input(tmp_path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc = start_render(src, "-o", str(out_dir / "result.mp4"))
    try:
        wait_for_partial(out_dir, proc)
        os.kill(proc.pid, sig)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + sig, err
    assert f"render stopped by {sig.name}" in err and "Traceback" not in err
    assert list(out_dir.iterdir()) == []


def test_after_sigkill_the_next_run_removes_the_stale_temporaries(tmp_path: Path) -> None:
    src = long_input(tmp_path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "result.mp4"
    proc = start_render(src, "-o", str(out))
    try:
        wait_for_partial(out_dir, proc)
        proc.kill()
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    (stale,) = list(out_dir.iterdir())
    assert ".partial-" in stale.name
    small = tmp_path / "small"
    small.mkdir()
    for i, frame in enumerate(astronaut_frames(3)):
        cv2.imwrite(str(small / f"{i}.png"), frame)
    r = subprocess.run(
        [sys.executable, "-m", "bgcam", "render", str(small), "-o", str(out), "--no-progress",
         "--set", "segment.segmenter=hsv"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out_dir.iterdir()) == ["result.mp4"]
    assert "left by an interrupted render" in r.stderr


def test_a_non_empty_folder_needs_force_and_no_folders_are_made_up(tmp_path: Path) -> None:
    small = tmp_path / "small"
    small.mkdir()
    for i, frame in enumerate(astronaut_frames(2)):
        cv2.imwrite(str(small / f"{i}.png"), frame)
    out = tmp_path / "frames_out"
    out.mkdir()
    cv2.imwrite(str(out / "0.png"), np.zeros((8, 8, 3), np.uint8))
    base = [sys.executable, "-m", "bgcam", "render", str(small), "--no-progress",
            "--set", "segment.segmenter=hsv"]  # fmt: skip

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=120)  # fmt: skip

    r = run("-o", str(out))
    assert r.returncode == 7 and "is not empty" in r.stderr and "--force" in r.stderr
    assert cv2.imread(str(out / "0.png")).shape == (8, 8, 3)  # untouched
    r = run("-o", str(out), "--force")
    assert r.returncode == 0, r.stderr
    assert cv2.imread(str(out / "0.png")).shape[:2] == (180, 320)
    r = run("-o", str(tmp_path / "no" / "such" / "dir" / "out.mp4"))
    assert r.returncode == 7 and "does not exist" in r.stderr
    assert not (tmp_path / "no").exists()
