"""The PipeWire camera's child process ends with BgCam, even when BgCam is killed outright."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bgcam.sinks.pipewire_child import Child, dies_with_parent

ROOT = Path(__file__).resolve().parents[2]

# A parent that starts a Child from a thread that stays alive (as the sink's writer does), says
# the child's pid, then waits to be killed.
PARENT = """
import sys, threading, time
from bgcam.sinks.pipewire_child import Child
def start():
    child = Child([sys.executable, "-c", "import time; time.sleep(120)"], pipe=False)
    print(child.pid, flush=True)
    time.sleep(120)
threading.Thread(target=start, daemon=True).start()
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended; only its parent (init here) has not reaped it


def test_the_command_is_wrapped_only_where_setpriv_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    cmd = ["gst-launch-1.0", "-q", "fakesrc", "!", "fakesink"]
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert dies_with_parent(cmd) == cmd
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    wrapped = dies_with_parent(cmd)
    if sys.platform.startswith("linux"):
        assert wrapped == ["/usr/bin/setpriv", "--pdeathsig", "TERM", "--", *cmd]
    else:
        assert wrapped == cmd


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal: Linux")
def test_a_killed_parent_takes_its_child_with_it() -> None:
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert parent.stdout is not None
        pid = int(parent.stdout.readline())
        assert _alive(pid)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(pid), "the child outlived its killed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)


def test_a_child_of_a_living_parent_runs_on() -> None:
    child = Child([sys.executable, "-c", "import time; time.sleep(30)"], pipe=False)
    try:
        time.sleep(0.5)
        assert child.proc.poll() is None
        assert child.cpu_seconds() >= 0.0
    finally:
        child.kill(expected=True)
        child.reap()
        child.dispose()
