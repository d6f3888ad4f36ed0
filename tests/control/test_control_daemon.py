"""One daemon per user, for real: a second `bgcam run` is refused with the first one's pid, and
the socket a killed daemon leaves behind is cleaned up by the next start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from bgcam.control.client import ControlClient
from tests.control.control_support import ROOT, spawn_daemon


def run_second(rundir: Path, clip: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bgcam", "run", "--source", str(clip), "--sink", "null",
         "--set", "segment.segmenter=hsv", "--seconds", "5"],
        cwd=ROOT,
        env={**os.environ, "BGCAM_RUNTIME_DIR": str(rundir),
             "XDG_CONFIG_HOME": str(rundir.parent / "xdg")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip


def test_a_second_daemon_is_refused(rundir: Path, clip: Path) -> None:
    first = spawn_daemon(rundir, clip)
    try:
        second = run_second(rundir, clip)
        assert second.returncode == 5, second.stderr
        assert f"BgCam is already running (pid {first.proc.pid})" in second.stderr
        assert "Traceback" not in second.stderr
        with ControlClient(rundir / "control.sock") as c:  # the first one is untouched
            assert c.server_pid == first.proc.pid
            assert c.call("status")["frames_out"] > 0
    finally:
        out = first.finish()
    assert first.returncode == 0, out


def test_a_stale_socket_from_a_killed_daemon_is_cleaned_up(rundir: Path, clip: Path) -> None:
    crashed = spawn_daemon(rundir, clip)
    crashed.finish(signal.SIGKILL)  # no clean-up at all, like a crash
    assert (rundir / "control.sock").exists()
    again = spawn_daemon(rundir, clip)
    try:
        with ControlClient(rundir / "control.sock") as c:
            assert c.server_pid == again.proc.pid
    finally:
        out = again.finish()
    assert "removing a stale control socket" in out
    assert again.returncode == 0, out
