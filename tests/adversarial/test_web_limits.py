"""The web panel against a hostile local process: slow-loris, deep JSON, loose types, big bodies.

Findings 2, 7 and 10 of issue 13, each against the real daemon on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import select
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import cv2
import httpx
import numpy as np
import pytest

from tests.adversarial.adversary import panel, raise_own_nofile, spawn, status
from tests.live_media import DaemonProcess

pytestmark = pytest.mark.slow

DAEMON_NOFILE = 256
# Bounded: 10 s in the suite; BGCAM_ATTACK_SECONDS=20 for the Target's run (docs/hardening.md).
ATTACK_SECONDS = float(os.environ.get("BGCAM_ATTACK_SECONDS", "10"))
# Bounded in count too, above what the server sheds (~8,500 connections a second here), so that
# the attack lasts its time.
MAX_CONNECTS = int(12000 * ATTACK_SECONDS)


def _open(port: int) -> socket.socket | None:
    s = socket.socket()
    s.setblocking(False)
    try:
        s.connect_ex(("127.0.0.1", port))
    except OSError:
        s.close()
        return None
    return s


def _get(port: int, path: str, token: str, timeout: float = 5.0) -> bytes:
    """One plain HTTP/1.1 GET (no client library set-up in the timing), the whole reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-BgCam-Token: {token}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    return reply


def test_slowloris_with_twice_the_descriptor_limit(tmp_path: Path, rundir: Path) -> None:
    """2 x RLIMIT_NOFILE slow-loris connections for ATTACK_SECONDS: the daemon keeps sending
    frames, its control socket answers during the attack, the panel answers a legitimate
    request at once when it stops, and the log grows by at most 100 lines."""
    n = 2 * DAEMON_NOFILE
    raise_own_nofile(n + 256)
    d = spawn(rundir, tmp_path, web=True, nofile=DAEMON_NOFILE)
    url, token = panel(rundir)
    port = int(url.rstrip("/").rsplit(":", 1)[1])
    calm = status(rundir)
    t_calm = time.monotonic()
    time.sleep(5.0)  # the output rate without an attack, on this machine now
    lines_before = len(d.lines)
    before = status(rundir)
    t_before = time.monotonic()
    assert before is not None and calm is not None
    calm_fps = (before["frames_out"] - calm["frames_out"]) / (t_before - t_calm)
    socks: list[socket.socket] = []
    connects = 0
    answered_during = 0
    try:
        end = time.monotonic() + ATTACK_SECONDS
        next_dribble = 0.0
        next_status = time.monotonic() + 2.0
        while time.monotonic() < end and connects < MAX_CONNECTS:
            # Keep n connections open: reopen whatever the server closed.
            while len(socks) < n and connects < MAX_CONNECTS:
                s = _open(port)
                connects += 1
                if s is None:
                    break
                socks.append(s)
            now = time.monotonic()
            if now >= next_dribble:  # one more header line on each: never a complete request
                next_dribble = now + 1.0
                for s in list(socks):
                    try:
                        s.send(b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-a: b\r\n")
                    except OSError:
                        socks.remove(s)
                        s.close()
            readable, _, _ = select.select(socks, [], [], 0.05)
            for s in readable:  # closed (or answered) by the server
                try:
                    data = s.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    socks.remove(s)
                    s.close()
            if now >= next_status:
                next_status = now + 2.0
                answered_during += status(rundir, timeout=3.0) is not None
        assert d.proc.poll() is None, d.output
        during = status(rundir)
        t_during = time.monotonic()
        assert during is not None, "the control socket does not answer during the attack"
    finally:
        for s in socks:
            s.close()
    t0 = time.monotonic()
    reply = _get(port, "/api/status", token)
    first_answer = time.monotonic() - t0
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
    out = d.finish()
    assert d.returncode == 0, out
    grown = len(d.lines) - lines_before
    assert grown <= 100, "".join(d.lines[lines_before : lines_before + 40])
    assert "Traceback" not in out
    assert answered_during >= 1
    fps = (during["frames_out"] - before["frames_out"]) / (t_during - t_before)
    print(  # the numbers, for the record (-s)
        f"slow-loris: {n} connections kept open for {t_during - t_before:.1f} s ({connects} "
        f"connects), panel answered in {first_answer * 1000:.0f} ms after it, log +{grown} "
        f"lines, output {fps:.2f} fps during it ({calm_fps:.2f} fps before)"
    )


class Panel(NamedTuple):
    daemon: DaemonProcess
    url: str
    token: str
    home: Path


@pytest.fixture
def daemon(tmp_path: Path, rundir: Path) -> Iterator[Panel]:
    d = spawn(rundir, tmp_path, web=True)
    url, token = panel(rundir)
    yield Panel(d, url, token, tmp_path)
    d.finish()


def test_deep_json_is_a_400_without_a_traceback(daemon: Panel, rundir: Path) -> None:
    d, url, token, _ = daemon
    for body in ("[" * 4000, '{"name": "blur", "arg": ' + "[" * 1500 + "]" * 1500 + "}"):
        r = httpx.post(
            url + "api/command",
            content=body,
            headers={"X-BgCam-Token": token, "Content-Type": "application/json"},
            timeout=10,
        )
        assert r.status_code == 400, r.text
        assert "nested too deeply" in r.json()["error"]
    assert status(rundir) is not None
    assert "Traceback" not in d.output and "RecursionError" not in d.output


def test_strict_types_and_finite_ids(daemon: Panel, rundir: Path) -> None:
    _, url, token, _ = daemon
    r = httpx.post(
        url + "api/command",
        json={"name": "blur", "arg": "40"},
        headers={"X-BgCam-Token": token},
        timeout=10,
    )
    assert r.status_code == 400 and "expected an integer" in r.json()["error"]
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(str(rundir / "control.sock"))
        s.sendall(b'{"id": 1e999, "cmd": "status"}\n{"id": 2, "cmd": "blur", "arg": "40"}\n')
        f = s.makefile("rb")
        replies = [f.readline(), f.readline()]

    def no_constants(name: str) -> object:
        raise AssertionError(f"reply carries {name}, which is not JSON")

    first, second = (json.loads(line, parse_constant=no_constants) for line in replies)
    assert first["ok"] is False and first["id"] is None and "out of range" in first["error"]
    assert second["ok"] is False and second["id"] == 2 and "'40'" in second["error"]


def _png() -> bytes:
    ok, buf = cv2.imencode(".png", np.full((90, 160, 3), 200, np.uint8))
    assert ok
    return buf.tobytes()


def test_uploads_are_private(daemon: Panel) -> None:
    _, url, token, home = daemon
    r = httpx.post(
        url + "api/background",
        files={"image": ("bg.png", _png(), "image/png")},
        headers={"X-BgCam-Token": token},
        timeout=20,
    )
    assert r.status_code == 200, r.text
    folder = home / "data" / "bgcam" / "backgrounds"
    (saved,) = folder.iterdir()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert saved.stat().st_uid == os.getuid()


def test_a_50_mb_upload_gets_a_413_not_a_reset(daemon: Panel) -> None:
    """Five times over: the refusal is read by the client every time."""
    _, url, token, home = daemon
    body = os.urandom(50 * 1024 * 1024)
    for _ in range(5):
        r = httpx.post(
            url + "api/background",
            files={"image": ("big.png", body, "image/png")},
            headers={"X-BgCam-Token": token},
            timeout=30,
        )
        assert r.status_code == 413, r.text
        assert "larger than" in r.json()["error"]
    folder = home / "data" / "bgcam" / "backgrounds"
    assert not folder.exists() or not any(folder.iterdir())
