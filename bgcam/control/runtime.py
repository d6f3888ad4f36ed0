"""Start and stop every control surface of a running daemon with one call.

``bgcam run`` calls :func:`start_controls` once its pipeline exists (before opening the camera,
so a second daemon is refused early) and :meth:`Controls.stop` on the way out::

    controls = start_controls(pipeline, config_path)   # may raise DeviceError: already running
    try:
        pipeline.run()
    finally:
        controls.stop()

What starts, each only when it applies:

- the control socket (``control.socket``), which also makes this the only daemon of the user;
- global hotkeys (``control.hotkeys``; pynput on X11/Windows/macOS, evdev on Wayland);
- signal handlers (only when called from the main thread): TERM/INT stop, HUP reload, USR1 toggle;
- systemd notification (only when ``NOTIFY_SOCKET`` is set): READY=1 once frames flow, STATUS=
  with the output fps, WATCHDOG=1 while the pipeline answers, STOPPING=1 at the end.

Everything talks to the pipeline through ``pipeline.commands`` (a :class:`CommandQueue`), except
a stop signal, which calls ``pipeline.request_stop()`` directly so it works even when the queue is
full. Ready means frames flow (the status's ``frames_out``), or ``state == "idle"`` (on-demand,
no reader).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from bgcam.control.commands import CommandQueue, ControlledPipeline
from bgcam.control.grammar import Command, CommandError
from bgcam.control.hotkeys import Hotkeys, start_hotkeys
from bgcam.control.signals import SignalDispatcher
from bgcam.control.socket import ControlServer
from bgcam.service import SystemdNotifier
from bgcam.status import DaemonStatus

log = logging.getLogger(__name__)

__all__ = ["ControlledPipeline", "Controls", "start_controls"]


@dataclass
class Controls:
    """The running control surfaces; :meth:`stop` ends all of them (idempotent)."""

    server: ControlServer | None = None
    hotkeys: Hotkeys | None = None
    signals: SignalDispatcher | None = None
    watcher: ServiceWatcher | None = None
    pipeline: ControlledPipeline | None = None
    _stopped: bool = field(default=False, init=False)

    def stop(self, timeout: float = 2.0) -> None:
        """Stop everything, joining each thread with ``timeout``; restore signal handlers.

        Call it after the pipeline's loop has ended: commands still queued then are answered
        with an error instead of leaving their senders waiting.
        """
        if self._stopped:
            return
        self._stopped = True
        if self.watcher is not None:
            self.watcher.stop(timeout)
        if self.hotkeys is not None:
            self.hotkeys.stop(timeout)
        if self.server is not None:
            self.server.stop(timeout)
        if self.signals is not None:
            self.signals.stop(timeout)
        if self.pipeline is not None:  # nobody will apply what is still queued: say so
            for _, fut in self.pipeline.commands.drain():
                if fut.set_running_or_notify_cancel():
                    fut.set_exception(CommandError("the daemon stopped before applying it"))


def start_controls(
    pipeline: ControlledPipeline, config_path: Path | None, *, socket_path: Path | None = None
) -> Controls:
    """Start what ``pipeline.config.control`` asks for; raise DeviceError if already running.

    ``socket_path`` overrides the default control socket (tests; see
    :func:`bgcam.control.socket.default_socket_path` for the default and ``BGCAM_RUNTIME_DIR``).
    """
    cfg = pipeline.config
    controls = Controls(pipeline=pipeline)
    try:
        if cfg.control.socket:
            controls.server = ControlServer(pipeline.commands, socket_path)
            controls.server.start()
        else:
            log.info("control socket off (control.socket = false): `bgcam ctl` cannot reach it")
        if threading.current_thread() is threading.main_thread():
            controls.signals = SignalDispatcher(pipeline, config_path)
            controls.signals.start()
        else:
            log.debug("not on the main thread: signal handlers left alone")
        if cfg.control.hotkeys:
            controls.hotkeys = start_hotkeys(cfg.control, pipeline.commands)
        notifier = SystemdNotifier.from_env()
        if notifier is not None:
            controls.watcher = ServiceWatcher(pipeline.commands, notifier)
            controls.watcher.start()
            if controls.signals is not None:
                controls.signals.on_stop = lambda: _stopping(notifier)
    except BaseException:
        controls.stop()
        raise
    return controls


class ServiceWatcher:
    """Tells systemd how the daemon is doing: READY, STATUS, WATCHDOG, STOPPING.

    It asks the pipeline for its status *through the command queue*, so a watchdog ping proves
    that the loop which applies commands is alive, not merely that a thread exists.
    """

    def __init__(self, commands: CommandQueue, notifier: SystemdNotifier) -> None:
        self._commands = commands
        self._notifier = notifier
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bgcam-sdnotify", daemon=True)
        self.ready = False
        wd = notifier.watchdog_interval
        self.period = min(5.0, wd / 2) if wd else 5.0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        if not self._stop.is_set():
            self._stop.set()
            self._notifier.notify("STOPPING=1")
        self._thread.join(timeout)

    def _ask(self, wait: float) -> DaemonStatus | None:
        try:
            return self._commands.call(Command("status"), wait)
        except CommandError:
            return None

    def _run(self) -> None:
        last_status = ""
        while not self._stop.is_set():
            wait = self.period if self.ready else min(self.period, 0.5)
            status = self._ask(wait)
            if self._stop.is_set():
                break
            if status is not None:
                flowing = status.stats["frames_out"] > 0
                text = _status_line(status)
                msgs = []
                if not self.ready and (flowing or status.state == "idle"):
                    self.ready = True
                    msgs.append("READY=1")
                if self.ready:
                    msgs.append("WATCHDOG=1")
                if text != last_status:
                    msgs.append(f"STATUS={text}")
                    last_status = text
                if msgs:
                    self._notifier.notify("\n".join(msgs))
            else:
                log.debug("pipeline did not answer a status request within %.1f s", wait)
            self._stop.wait(wait)


def _stopping(notifier: SystemdNotifier) -> None:
    notifier.notify("STOPPING=1")


def _status_line(status: DaemonStatus) -> str:
    parts = [f"{status.stats['fps_out']:.1f} fps", f"mode {status.mode}"]
    if status.paused:
        parts.append("paused")
    parts.append(status.state)
    return ", ".join(parts)
