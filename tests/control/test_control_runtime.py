"""start_controls as a service sees it: sd_notify READY/STATUS/WATCHDOG/STOPPING on a real
datagram socket, and everything stopped and restored by Controls.stop()."""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bgcam.control.client import ControlClient, NotRunningError
from bgcam.control.runtime import ServiceWatcher, start_controls
from bgcam.errors import DeviceError
from bgcam.pipeline import Pipeline
from bgcam.service import SystemdNotifier
from tests.control.control_support import spawn_daemon
from tests.live_media import RunningPipeline, pipeline_config, wait_for


class NotifyListener:
    """What systemd does: a datagram socket collecting notify messages."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.sock.settimeout(0.2)
        self.messages: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue

    def fields(self) -> list[str]:
        return [f for m in list(self.messages) for f in m.split("\n")]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@pytest.fixture
def listener(rundir: Path) -> Iterator[NotifyListener]:
    rundir.parent.mkdir(exist_ok=True)
    lst = NotifyListener(str(rundir.parent / "notify"))
    yield lst
    lst.close()


def test_notifier_speaks_to_an_abstract_socket() -> None:
    name = f"@bgcam-test-{os.getpid()}"
    lst = NotifyListener(name)
    try:
        notifier = SystemdNotifier(name)
        assert notifier.notify("READY=1\nSTATUS=hello")
        wait_for(lambda: lst.messages, what="the datagram")
        assert lst.messages == ["READY=1\nSTATUS=hello"]
        notifier.close()
    finally:
        lst.close()


def test_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert SystemdNotifier.from_env() is None
    monkeypatch.setenv("NOTIFY_SOCKET", "/run/user/1/systemd/notify")
    monkeypatch.setenv("WATCHDOG_USEC", "20000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    n = SystemdNotifier.from_env()
    assert n is not None and n.watchdog_interval == 20.0
    monkeypatch.setenv("WATCHDOG_PID", "1")  # the watchdog is someone else's
    n = SystemdNotifier.from_env()
    assert n is not None and n.watchdog_interval is None


def test_daemon_reports_ready_status_watchdog_and_stopping(
    rundir: Path, listener: NotifyListener, clip: Path
) -> None:
    env = {"NOTIFY_SOCKET": listener.address, "WATCHDOG_USEC": "1000000"}
    daemon = spawn_daemon(rundir, clip, env=env)
    try:
        wait_for(lambda: listener.fields().count("WATCHDOG=1") >= 3, what="3 watchdog pings")
        fields = listener.fields()
        assert fields.count("READY=1") == 1
        assert fields.index("READY=1") < fields.index("WATCHDOG=1")
        assert any(f.startswith("STATUS=") and " fps, mode blur" in f for f in fields)
    finally:
        out = daemon.finish(signal.SIGTERM)
    assert daemon.returncode == 0, out
    wait_for(lambda: "STOPPING=1" in listener.fields(), what="STOPPING=1")


def test_stop_ends_everything_and_restores_signal_handlers(rundir: Path, model_dir: Path) -> None:
    before = signal.getsignal(signal.SIGHUP)
    running = RunningPipeline().start()
    controls = start_controls(running.pipeline, None)
    try:
        assert controls.server is not None and controls.signals is not None
        assert signal.getsignal(signal.SIGHUP) is not before
        with ControlClient() as c:
            assert c.call("blur", 10)["blur"] == 10
        with pytest.raises(DeviceError, match="already running"):
            start_controls(RunningPipeline().pipeline, None)
        assert signal.getsignal(signal.SIGHUP) is not before  # the refused one restored its own
    finally:
        controls.stop()
        running.stop()
    assert signal.getsignal(signal.SIGHUP) is before
    with pytest.raises(NotRunningError):
        ControlClient()
    controls.stop()  # twice is fine


def test_socket_off_means_no_socket_and_no_lock(rundir: Path) -> None:
    cfg = pipeline_config(**{"control.socket": False, "control.hotkeys": False})
    controls = start_controls(Pipeline(cfg), None)
    try:
        assert controls.server is None and controls.hotkeys is None
        assert not (rundir / "control.sock").exists()
    finally:
        controls.stop()


def test_watchdog_pings_only_while_the_loop_applies_commands(
    listener: NotifyListener, model_dir: Path
) -> None:
    """A hung frame loop must let the systemd watchdog fire: no answer, no WATCHDOG=1."""
    running = RunningPipeline()  # its loop is not running yet: nobody drains the queue
    commands = running.pipeline.commands
    watcher = ServiceWatcher(commands, SystemdNotifier(listener.address, 400_000))
    watcher.start()
    try:
        # 0.2 s period: let several periods pass with nothing answering
        unanswered: list[object] = []
        wait_for(
            lambda: unanswered.extend(commands.drain()) or len(unanswered) >= 3,
            what="unanswered status requests",
        )
        assert listener.fields() == []
        running.start(wait=False)
        wait_for(lambda: listener.fields().count("WATCHDOG=1") >= 2, what="watchdog pings")
        fields = listener.fields()
        # READY once frames flow, before any watchdog ping (a STATUS line may come first).
        assert "READY=1" in fields and fields.index("READY=1") < fields.index("WATCHDOG=1")
    finally:
        watcher.stop()
        running.stop()
    wait_for(lambda: "STOPPING=1" in listener.fields(), what="STOPPING=1")
