"""A segmenter swap during a live run costs no output frame (issue 15).

A real `bgcam run` plays a real clip to the null sink with the onnx segmenter; after the warm-up
`bgcam ctl segmenter hsv` and `bgcam ctl segmenter onnx` (real CLI processes, through the real
control socket) swap the model twice. The new model is built off the output thread, so the
daemon's own ``--stats-json`` must show no output frame repeated and no source frame dropped
after the warm-up (counted from the status taken just before the first swap). A run with a
repeat or drop is tried once more (see :data:`ATTEMPTS`), and the counts are judged only while
the machine is not overloaded by other work, as in the settings-flood test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bgcam.control.client import SOCKET_NAME, ControlClient
from tests.live_media import (
    DaemonProcess,
    astronaut_frames,
    daemon_env,
    wait_for,
    write_clip,
)

STOP_S = 30
"""How long the daemon may take to stop after TERM (it runs until then: a fixed ``--seconds``
ran out on a machine slow enough that start-up and the two swaps took longer)."""

ATTEMPTS = 2
"""Live runs before a repeated or dropped frame fails the test. A swap that stalls the output
does so in every run; a one-off scheduling hiccup on a shared 2-core machine does not (CI saw
one repeat and one drop once in a whole suite; the same test passed alone every time)."""


@pytest.fixture
def rundir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="bgs-", dir="/tmp"))  # a short path for the socket
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _status(sock: Path) -> dict[str, Any]:
    with ControlClient(sock) as c:
        return c.call("status")


def _ctl(env: dict[str, str], *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bgcam", "ctl", *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    reply: dict[str, Any] = json.loads(done.stdout)
    return reply


def _swap_twice(rundir: Path, request: pytest.FixtureRequest) -> tuple[int, int, dict[str, Any]]:
    """One live run with both swaps: the frames repeated and dropped after the warm-up, and the
    daemon's stats."""
    env = daemon_env(rundir, request)
    clip = write_clip(rundir / "in.avi", astronaut_frames(30), fps=30)
    stats = rundir / "stats.json"
    stats.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "bgcam", "run", "--source", str(clip), "--sink", "null",
            "--set", "segment.segmenter=onnx", "--set", "control.hotkeys=false",
            "--set", "output.governor=false",
            "--stats-json", str(stats)]  # fmt: skip
    sock = rundir / "run" / SOCKET_NAME
    daemon = DaemonProcess(argv, env, sock)
    try:
        daemon.wait_serving(timeout=120)
        wait_for(lambda: _status(sock)["frames_out"] > 30, 60, "the first output frames")
        time.sleep(1.0)  # past the warm-up
        before = _status(sock)
        assert before["segmenter"] == "onnx"
        to_hsv = _ctl(env, "segmenter", "hsv")
        assert to_hsv["segmenter"] == "hsv", to_hsv
        time.sleep(2.0)
        back = _ctl(env, "segmenter", "onnx")
        assert back["segmenter"] == "onnx", back
        time.sleep(2.0)
        assert _status(sock)["segmenter"] == "onnx"
        time.sleep(1.0)  # a second of output at the swapped-back model
        output = daemon.finish(timeout=STOP_S)  # TERM: a clean stop writes the stats
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait(10)
    assert daemon.returncode == 0, output
    data: dict[str, Any] = json.loads(stats.read_text())
    assert data["segment_errors"] == 0
    repeated = data["frames_repeated"] - before["frames_repeated"]
    dropped = data["frames_dropped"] - before["frames_dropped"]
    return repeated, dropped, data


def test_ctl_segmenter_hsv_and_back_repeats_or_drops_no_frame(
    rundir: Path, request: pytest.FixtureRequest
) -> None:
    runs = []
    for _ in range(ATTEMPTS):
        repeated, dropped, data = _swap_twice(rundir, request)
        runs.append(data)
        if (repeated, dropped) == (0, 0):
            return
    load = os.getloadavg()[0] / (os.cpu_count() or 1)
    if load > 1.0:
        pytest.skip(
            f"repeat/drop counts not judged: load {load:.1f} per core (all else checked; "
            f"{repeated} repeated, {dropped} dropped after the warm-up)"
        )
    assert (repeated, dropped) == (0, 0), runs
