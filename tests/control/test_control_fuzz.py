"""Socket fuzzing with hypothesis while frames keep flowing: random bytes, huge lines, random
JSON of every type. Every line gets a well-formed reply, the connection stays usable, and the
video never stops: the frame counter, read back over the socket, keeps advancing."""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bgcam.control.client import MAX_LINE, ControlClient
from bgcam.control.grammar import COMMANDS
from tests.control.control_support import spawn_daemon
from tests.live_media import DaemonProcess, wait_for

# Commands that would legitimately stop or freeze the video are left out of the valid names.
SAFE = sorted(set(COMMANDS) - {"quit", "pause", "save", "reload", "background", "segmenter"})

json_leaf = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                               max_size=4),
    max_leaves=12,
)  # fmt: skip
requests = st.fixed_dictionaries(
    {"cmd": st.sampled_from(SAFE) | st.text(max_size=20) | json_value},
    optional={"id": json_value, "arg": json_value, "extra": json_value},
).map(lambda d: json.dumps(d).encode())
garbage = st.binary(max_size=4096).map(lambda b: b.replace(b"\n", b" "))
huge = st.integers(MAX_LINE - 16, 3 * MAX_LINE).map(lambda n: b'{"cmd": "blur", "arg": "' +
                                                    b"9" * n + b'"}')  # fmt: skip
deep = st.integers(1, 20000).map(lambda n: b'{"cmd": ' + b"[" * n)
lines = st.lists(requests | garbage | huge | deep, min_size=1, max_size=6)


@pytest.fixture(scope="module")
def live(clip: Path) -> Iterator[tuple[DaemonProcess, list[int]]]:
    rundir = Path(tempfile.mkdtemp(prefix="bgc-", dir="/tmp")) / "run"
    daemon = spawn_daemon(rundir, clip)
    frames: list[int] = []
    yield daemon, frames
    out = daemon.finish()
    shutil.rmtree(rundir.parent, ignore_errors=True)
    assert daemon.returncode == 0, out
    assert "Traceback" not in out


def status(daemon: DaemonProcess) -> dict[str, Any]:
    with ControlClient(daemon.socket_path, timeout=30) as c:
        return c.call("status")


@settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=lines)
def test_fuzzed_requests_get_replies_and_never_disturb_the_video(
    live: tuple[DaemonProcess, list[int]], batch: list[bytes]
) -> None:
    daemon, frames = live
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(30)
        s.connect(str(daemon.socket_path))
        s.sendall(b"\n".join(batch) + b'\n{"id": "probe", "cmd": "status"}\n')
        f = s.makefile("rb")
        while True:
            line = f.readline(16 * MAX_LINE)
            assert line.endswith(b"\n"), "connection closed before the probe was answered"
            reply = json.loads(line)
            assert set(reply) == {"id", "ok", "result", "error"}
            assert (reply["error"] is None) == reply["ok"]
            if reply["id"] == "probe":
                assert reply["ok"] is True
                frames.append(int(reply["result"]["frames_out"]))
                break
    assert daemon.proc.poll() is None, daemon.output


def test_frames_kept_flowing_through_the_fuzzing(live: tuple[DaemonProcess, list[int]]) -> None:
    daemon, frames = live
    assert len(frames) >= 50, "the fuzz test did not run"
    assert frames == sorted(frames)
    assert frames[-1] > frames[0]
    after = status(daemon)["frames_out"]
    # the daemon is still alive and making frames after everything it was sent
    wait_for(lambda: status(daemon)["frames_out"] > after, what="frames after the fuzzing")
