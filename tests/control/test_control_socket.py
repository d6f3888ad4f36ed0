"""The control socket for real: protocol, errors, limits, permissions, one daemon per user."""

from __future__ import annotations

import json
import os
import select
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bgcam.control.client import (
    MAX_LINE,
    ControlClient,
    NotRunningError,
    default_socket_path,
    runtime_dir,
)
from bgcam.control.commands import CommandQueue
from bgcam.control.socket import IDLE_TIMEOUT, MAX_CLIENTS, MAX_PER_PEER, ControlServer
from bgcam.errors import BgCamError, DeviceError
from bgcam.pipeline import Pipeline
from tests.live_media import RunningPipeline, wait_for

Served = tuple[Pipeline, ControlServer]
ROOT = Path(__file__).resolve().parents[2]


def raw(path: Path, data: bytes, replies: int = 1) -> list[dict[str, object]]:
    """Send bytes on a fresh connection and read ``replies`` reply lines."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(20)
        s.connect(str(path))
        s.sendall(data)
        f = s.makefile("rb")
        return [json.loads(f.readline()) for _ in range(replies)]


def test_runtime_dir_follows_xdg_and_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BGCAM_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1234")
    assert default_socket_path() == Path("/run/user/1234/bgcam/control.sock")
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert runtime_dir() == Path(f"/tmp/bgcam-{os.getuid()}")
    monkeypatch.setenv("BGCAM_RUNTIME_DIR", "/somewhere/else")
    assert runtime_dir() == Path("/somewhere/else")


def test_commands_round_trip_and_are_applied_between_frames(served: Served) -> None:
    daemon, _server = served
    with ControlClient() as c:
        reply = c.request("blur", 40)
        assert reply["ok"] is True and reply["error"] is None and reply["id"] == 1
        assert reply["result"]["blur"] == 40
        assert c.call("blur-up")["blur"] == 50
        assert c.call("blur_down")["blur"] == 40
        assert c.call("toggle")["mode"] == "off"
        assert c.call("toggle")["mode"] == "blur"
        assert c.call("mode", "remove")["mode"] == "remove"
        assert c.call("next_mode")["mode"] == "off"
        assert c.call("pause")["paused"] is True
        assert c.call("resume")["paused"] is False
        assert c.server_pid == os.getpid()
    assert daemon.config.compose.blur == 40
    assert daemon.config.compose.mode == "off"


def test_studio_effect_commands_round_trip(served: Served) -> None:
    daemon, _server = served
    with ControlClient() as c:
        c.call("autoframe", "on")
        assert daemon.config.effects.autoframe is True
        c.call("autoframe", "toggle")
        assert daemon.config.effects.autoframe is False
        c.call("autoframe")  # no argument (a hotkey): toggle
        assert daemon.config.effects.autoframe is True
        c.call("autoframe", "off")
        assert daemon.config.effects.autoframe is False
        c.call("light", "auto")
        assert daemon.config.effects.light == "auto"
        c.call("light", "off")
        assert daemon.config.effects.light == "off"
        c.call("light", "on")  # an alias of auto
        assert daemon.config.effects.light == "auto"
        c.call("light")
        assert daemon.config.effects.light == "off"


@pytest.mark.parametrize(
    ("line", "error_part"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"id": 7, "cmd": "explode"}', "unknown command 'explode'"),
        (b'{"id": 7, "cmd": "blur", "arg": "lots"}', "expected an integer 0–100"),
        (b'{"id": 7, "cmd": "blur", "arg": 101}', "expected an integer 0–100, got 101"),
        (b'{"id": 7, "cmd": "blur", "arg": true}', "expected an integer"),
        (b'{"id": 7, "cmd": "blur"}', "needs an argument"),
        (b'{"id": 7, "cmd": "toggle", "arg": 3}', "takes no argument"),
        (b'{"id": 7, "cmd": "autoframe", "arg": "maybe"}', "expected one of on, off, toggle"),
        (b'{"id": 7, "cmd": "light", "arg": 2}', "expected one of auto, off, toggle"),
        (b'{"id": 7, "cmd": "mode", "arg": "sepia"}', "compose.mode: expected one of"),
        (b'{"id": 7, "cmd": "background", "arg": "/no/such.jpg"}', "no such file"),
        (b'{"id": 7, "cmd": "status", "extra": 1}', "unknown field"),
        (b'{"id": [1], "cmd": "status"}', "'id' must be"),
        (b"\xff\xfe\x00garbage", "not JSON"),
        (b"[" * 50000, "nested too deeply"),
        (b'{"id": NaN, "cmd": "status"}', "NaN is not JSON"),
        (b'{"id": 8, "cmd": "blur", "arg": ' + b"9" * 5000 + b"}", "not JSON"),
        (b'{"id": 1e999, "cmd": "status"}', "out of range"),
        (b'{"id": 7, "cmd": "blur", "arg": "40"}', "expected an integer 0–100, got '40'"),
        (b'{"id": 9, "cmd": "status", "arg": [[[[[[[[[1]]]]]]]]]}', "nested too deeply"),
    ],
)
def test_bad_requests_get_an_error_reply(served: Served, line: bytes, error_part: str) -> None:
    daemon, server = served
    before = daemon.config
    (reply,) = raw(server.path, line + b"\n")
    assert reply["ok"] is False and reply["result"] is None
    assert error_part in str(reply["error"])
    if b'"id": 7' in line:
        assert reply["id"] == 7
    assert daemon.config == before


def test_an_oversized_line_is_refused_and_the_rest_of_it_discarded(served: Served) -> None:
    _, server = served
    huge = b'{"cmd": "blur", "arg": 1' + b" " * (3 * MAX_LINE) + b"}\n"
    replies = raw(server.path, huge + b'{"id": 2, "cmd": "blur", "arg": 30}\n', replies=2)
    assert replies[0]["ok"] is False and "longer than" in str(replies[0]["error"])
    assert replies[1]["ok"] is True and replies[1]["id"] == 2


CLIENT = """
import json, socket, sys
level = int(sys.argv[2])
with socket.socket(socket.AF_UNIX) as s:
    s.settimeout(60)
    s.connect(sys.argv[1])
    f = s.makefile("rb")
    for i in range(5):
        s.sendall(json.dumps({"id": i, "cmd": "blur", "arg": level}).encode() + b"\\n")
        reply = json.loads(f.readline())
        assert reply["ok"] and reply["result"]["blur"] in range(101), reply
"""  # plain sockets: sixteen interpreters importing bgcam would be slow on a busy machine


def test_many_clients_at_once(served: Served, rundir: Path) -> None:
    """MAX_CLIENTS processes (one connection each) served at the same time."""
    daemon, server = served
    env = {**os.environ, "BGCAM_RUNTIME_DIR": str(rundir)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CLIENT, str(server.path), str(i * 5)],
            env=env,
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(MAX_CLIENTS)
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    assert daemon.config.compose.blur % 5 == 0


def test_one_process_holds_at_most_max_per_peer_slots(served: Served) -> None:
    _, server = served
    held = [socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(MAX_PER_PEER)]
    try:
        for s in held:
            s.connect(str(server.path))
        wait_for(lambda: len(server._clients) == MAX_PER_PEER, what="this process's slots taken")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as extra:
            extra.settimeout(20)
            extra.connect(str(server.path))  # told at once, before it sends anything
            reply = json.loads(extra.makefile("rb").readline())
        assert reply["ok"] is False and "busy: this process" in str(reply["error"])
    finally:
        for s in held:
            s.close()
    wait_for(lambda: not server._clients, what="slots freed")
    (reply,) = raw(server.path, b'{"cmd": "status"}\n')
    assert reply["ok"] is True


def test_a_silent_client_is_cut_after_the_idle_timeout(served: Served) -> None:
    _, server = served
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(IDLE_TIMEOUT * 4)
        s.connect(str(server.path))
        t0 = time.monotonic()
        closed = False
        while not closed and time.monotonic() - t0 < IDLE_TIMEOUT * 3:
            try:
                s.sendall(b"\n")  # blank lines do not count as requests
            except (BrokenPipeError, ConnectionResetError):
                break
            readable, _, _ = select.select([s], [], [], 0.5)
            closed = bool(readable) and s.recv(1) == b""
        assert time.monotonic() - t0 < IDLE_TIMEOUT * 3, "still open"
        assert time.monotonic() - t0 < IDLE_TIMEOUT + 2


def test_socket_and_dir_are_private(served: Served, rundir: Path) -> None:
    _, server = served
    assert stat.S_IMODE(rundir.stat().st_mode) == 0o700
    st = server.path.stat()
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_uid == os.getuid()


def test_an_existing_open_dir_is_tightened(rundir: Path) -> None:
    rundir.mkdir(mode=0o755)
    os.chmod(rundir, 0o755)
    server = ControlServer(CommandQueue())
    server.start()
    try:
        assert stat.S_IMODE(rundir.stat().st_mode) == 0o700
    finally:
        server.stop()


SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin:/bin")  # one "nobody" may run


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to connect as another user")
@pytest.mark.skipif(SYSTEM_PYTHON is None, reason="no /usr/bin/python3 for the other user")
def test_peers_of_other_users_are_refused(served: Served, rundir: Path) -> None:
    """Even if the permissions were opened up by mistake, SO_PEERCRED keeps others out."""
    daemon, server = served
    os.chmod(rundir.parent, 0o755)
    os.chmod(rundir, 0o755)
    os.chmod(server.path, 0o666)
    code = (
        "import socket,sys\n"
        "s=socket.socket(socket.AF_UNIX); s.settimeout(20); s.connect(sys.argv[1])\n"
        "print(s.makefile().readline())  # refused at once, before it can send anything\n"
        'try: s.sendall(b\'{"cmd":"blur","arg":3}\\n\')\n'
        "except OSError: pass\n"
    )
    proc = subprocess.run(
        [str(SYSTEM_PYTHON), "-c", code, str(server.path)],
        user=65534,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    reply = json.loads(proc.stdout)
    assert reply["ok"] is False and "permission denied" in reply["error"]
    assert daemon.config.compose.blur != 3


def test_a_second_daemon_is_refused_with_the_pid(served: Served) -> None:
    with pytest.raises(DeviceError, match=rf"already running \(pid {os.getpid()}\)"):
        ControlServer(CommandQueue()).start()


def test_a_stale_socket_is_cleaned_up(rundir: Path, model_dir: Path) -> None:
    """A crash leaves the socket file behind with nobody listening: the next start removes it."""
    rundir.mkdir(mode=0o700)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(rundir / "control.sock"))
    stale.close()  # file stays, connect() is refused
    with pytest.raises(NotRunningError, match="not running"):
        ControlClient()
    running = RunningPipeline().start()
    server = ControlServer(running.pipeline.commands)
    server.start()
    try:
        (reply,) = raw(server.path, b'{"cmd": "status"}\n')
        assert reply["ok"] is True
    finally:
        server.stop()
        running.stop()
    assert not server.path.exists()


def test_stop_removes_the_socket_and_frees_the_lock(served: Served) -> None:
    daemon, server = served
    server.stop()
    assert not server.path.exists()
    with pytest.raises(NotRunningError) as err:
        ControlClient()
    assert "bgcam run" in str(err.value.hint)
    again = ControlServer(daemon.commands)
    again.start()
    again.stop()


def test_client_reports_daemon_errors(served: Served) -> None:
    with ControlClient() as c, pytest.raises(BgCamError, match="expected an integer"):
        c.call("blur", "x")


def test_a_command_the_daemon_does_not_get_to_is_dropped_not_applied_late(
    rundir: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bgcam.control.socket as control_socket

    monkeypatch.setattr(control_socket, "REPLY_TIMEOUT", 0.5)
    running = RunningPipeline()  # not started: nothing applies commands
    server = ControlServer(running.pipeline.commands)
    server.start()
    try:
        (reply,) = raw(server.path, b'{"id": 1, "cmd": "blur", "arg": 5}\n')
        assert reply["ok"] is False and "not applied" in str(reply["error"])
        running.start()  # the loop comes (back)
        with ControlClient() as c:
            assert c.call("status")["blur"] == 60  # the dropped command never ran
    finally:
        server.stop()
        running.stop()
