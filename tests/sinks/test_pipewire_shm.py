"""The shared-memory transport of the PipeWire camera against GStreamer's real ``shmsrc`` (no
PipeWire needed): frames handed over arrive intact and are acknowledged, a hung-up child is seen,
and nothing is left in /dev/shm or the runtime directory after close."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from bgcam.sinks.pipewire_shm import SHM_DIR, ShmFrames, remove_stale
from tests.sinks.pipewire_support import require_shmsrc

SIZE = (64, 48)
FRAME = SIZE[0] * SIZE[1] * 3 // 2


def reader(socket_path: str, out: Path, frames: int) -> subprocess.Popen[bytes]:
    """``shmsrc`` → the first ``frames`` frames into ``out``."""
    return subprocess.Popen(
        [
            "gst-launch-1.0",
            "-q",
            "shmsrc",
            f"socket-path={socket_path}",
            f"num-buffers={frames}",
            "!",
            "filesink",
            f"location={out}",
            "buffer-mode=unbuffered",  # else filesink keeps 64 KiB of frames (not acknowledged)
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_frames_reach_shmsrc_intact_and_come_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_shmsrc()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    shm = ShmFrames(SIZE, count=3)
    out = tmp_path / "got.raw"
    proc = reader(shm.socket_path, out, 6)
    try:
        assert shm.accept(10.0)
        free = [0, 1, 2]
        sent = 0
        deadline = time.monotonic() + 20
        while sent < 6 and time.monotonic() < deadline:
            if free:
                slot = free.pop(0)
                shm.bufs[slot][:] = 10 * (sent + 1)
                assert shm.send(slot)
                sent += 1
            back = shm.acks(0.2)
            assert back is not None
            free.extend(back)
        proc.wait(20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    data = np.frombuffer(out.read_bytes(), np.uint8).reshape(6, FRAME)
    assert [int(f[0]) for f in data] == [10, 20, 30, 40, 50, 60]
    assert all(len(np.unique(f)) == 1 for f in data)
    # The child left after its six frames: the hang-up is seen as None.
    deadline = time.monotonic() + 5
    while shm.acks(0.2) is not None and time.monotonic() < deadline:
        pass
    assert not shm.connected
    name, folder = shm.name, os.path.dirname(shm.socket_path)
    assert os.path.exists(SHM_DIR + name)
    shm.close()
    assert not os.path.exists(SHM_DIR + name) and not os.path.exists(folder)


def test_no_child_connects_within_the_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    shm = ShmFrames(SIZE, count=2)
    try:
        assert not shm.accept(0.05)
        assert not shm.send(0)
        assert shm.acks(0.0) is None
        assert (os.stat(SHM_DIR + shm.name).st_mode & 0o777) == 0o600
    finally:
        shm.close()


def test_areas_left_by_a_dead_bgcam_are_removed() -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = f"{SHM_DIR}/bgcam-{dead.pid}-0badf00d"
    mine = f"{SHM_DIR}/bgcam-{os.getpid()}-0badf00d"
    for path in (stale, mine):
        Path(path).write_bytes(b"x")
    try:
        remove_stale()
        assert not os.path.exists(stale)
        assert os.path.exists(mine)  # a live process's area stays
    finally:
        for path in (stale, mine):
            Path(path).unlink(missing_ok=True)
