"""Settings changes never stall the output (issue 12): a real daemon flooded through its socket.

`bgcam run` plays a real clip to the null sink while 8 clients send blur, blur type and mode
changes through the real control socket, 10 a second in all, for 5 s. Every change must be
applied (the reply shows it) and the daemon's own ``--stats-json`` must show the output kept
its frames: at most 3 repeated frames (the issue's target; a run over it is tried once more, see
:data:`ATTEMPTS`), judged only while the machine is not overloaded by other work.
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
from tests.live_media import ROOT, astronaut_frames, daemon_env, wait_for, write_clip

CLIENTS = 8
RATE = 10.0  # commands per second, all clients together
FLOOD_S = 5.0
PER_CLIENT = int(RATE * FLOOD_S) // CLIENTS
ATTEMPTS = 2
"""Live runs before more than 3 repeated frames fail the test: a flood that stalls the output
does so in every run, a one-off scheduling hiccup on a shared 2-core machine does not."""

CLIENT = """
import json, socket, sys, time
path, start, share = sys.argv[1], float(sys.argv[2]), json.loads(sys.argv[3])
s = socket.socket(socket.AF_UNIX)
s.connect(path)
f = s.makefile("rwb")
for k, (name, arg) in enumerate(share):
    time.sleep(max(0.0, start + k * %f - time.time()))
    f.write(json.dumps({"id": k, "cmd": name, "arg": arg}).encode() + b"\\n")
    f.flush()
    reply = json.loads(f.readline())
    print(json.dumps({"sent": [name, arg], **reply}), flush=True)
""" % (CLIENTS / RATE)

CHANGES: list[tuple[str, object]] = [
    *[("blur", s) for s in range(0, 101, 10)],
    *[("blur_type", t) for t in ("gaussian", "box", "median", "bilateral", "lens")],
    ("mode", "remove"),
    ("mode", "blur"),
]


def _frames_flowing(sock: Path) -> bool:
    try:
        with ControlClient(sock) as c:
            return float(c.call("status").get("fps_out", 0.0)) > 0
    except Exception:  # not serving yet
        return False


@pytest.fixture
def rundir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="bgf-", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _flood(rundir: Path, request: pytest.FixtureRequest) -> dict[str, Any]:
    """One live run flooded with changes; every change checked; the daemon's stats."""
    env = daemon_env(rundir, request)
    clip = write_clip(rundir / "in.avi", astronaut_frames(30), fps=30)
    stats = rundir / "stats.json"
    stats.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bgcam",
            "run",
            "--set",
            "control.hotkeys=false",
            "--set",
            "output.governor=false",
            "--source",
            str(clip),
            "--sink",
            "null",
            "--seconds",
            "12",
            "--stats-json",
            str(stats),
        ],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    sock = rundir / "run" / SOCKET_NAME
    clients: list[subprocess.Popen[str]] = []
    try:
        wait_for(sock.exists, 60, "the control socket")
        wait_for(lambda: _frames_flowing(sock), 60, "the first output frames")
        time.sleep(1.0)  # past the warm-up
        # One process per client (the daemon serves at most 2 connections per process).
        start = time.time() + 1.0
        for i in range(CLIENTS):
            share = [CHANGES[(i + k * CLIENTS) % len(CHANGES)] for k in range(PER_CLIENT)]
            clients.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        CLIENT,
                        str(sock),
                        str(start + i / RATE),
                        json.dumps(share),
                    ],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        outs = [c.communicate(timeout=60) for c in clients]
        _, err = proc.communicate(timeout=60)
    finally:
        for c in clients:
            if c.poll() is None:
                c.kill()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    errors = [e for c, (_, e) in zip(clients, outs, strict=True) if c.returncode != 0 or e]
    replies = [json.loads(line) for o, _ in outs for line in o.splitlines()]
    assert not errors, errors
    assert proc.returncode == 0, err
    assert len(replies) >= 0.9 * RATE * FLOOD_S
    for r in replies:  # each change was applied by the time its reply came
        name, arg = r["sent"]
        assert r["ok"], r
        if name in ("blur", "mode"):
            assert r["result"][name] == arg, r
    data: dict[str, Any] = json.loads(stats.read_text())
    assert data["frames_out"] > 300
    return data


def test_a_flood_of_setting_changes_keeps_every_output_frame(
    rundir: Path, request: pytest.FixtureRequest
) -> None:
    runs = []
    for _ in range(ATTEMPTS):
        runs.append(_flood(rundir, request))
        if runs[-1]["frames_repeated"] <= 3:
            return
    load = os.getloadavg()[0] / (os.cpu_count() or 1)
    if load > 1.0:
        # The daemon repeats frames on an overloaded machine with no command at all (measured
        # here: 42 in 12 s at a load of 10 per core): the count would say nothing.
        pytest.skip(f"repeat count not judged: load {load:.1f} per core (all else checked)")
    assert runs[-1]["frames_repeated"] <= 3, runs
