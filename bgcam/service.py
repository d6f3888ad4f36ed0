"""BgCam as a systemd user service: the unit file, and the ``sd_notify`` protocol.

``bgcam service install`` writes ``~/.config/systemd/user/bgcam.service`` (``Type=notify``,
a watchdog, ``Restart=on-failure``, ``ExecReload`` sending HUP) and enables it with
``systemctl --user`` when that works, otherwise it prints the commands to run.

:class:`SystemdNotifier` speaks the notify protocol on a plain ``AF_UNIX`` datagram socket (an
abstract address when ``NOTIFY_SOCKET`` starts with ``@``); it is ``None`` when the variable is
unset, so nothing happens outside systemd. Logs need nothing special: systemd captures stderr
into the journal and the CLI drops its timestamps when ``JOURNAL_STREAM`` is set.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bgcam.errors import BgCamError

log = logging.getLogger(__name__)

__all__ = [
    "UNIT_NAME",
    "ServiceResult",
    "SystemdNotifier",
    "bgcam_executable",
    "install",
    "render_unit",
    "service_status",
    "uninstall",
    "unit_path",
]

UNIT_NAME = "bgcam.service"
WATCHDOG_SEC = 20


# --------------------------------------------------------------------------------------------
# sd_notify


class SystemdNotifier:
    """Sends ``READY=1``, ``STATUS=…``, ``WATCHDOG=1``, ``STOPPING=1`` to systemd."""

    def __init__(self, address: str, watchdog_usec: int | None = None) -> None:
        self.address = address
        self._addr = "\0" + address[1:] if address.startswith("@") else address
        self.watchdog_interval = watchdog_usec / 1e6 if watchdog_usec else None
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self._warned = False

    @classmethod
    def from_env(cls) -> SystemdNotifier | None:
        """From ``NOTIFY_SOCKET`` / ``WATCHDOG_USEC`` / ``WATCHDOG_PID``; None when unset."""
        addr = os.environ.get("NOTIFY_SOCKET")
        if not addr or not hasattr(socket, "AF_UNIX"):
            return None
        if not (addr.startswith("/") or addr.startswith("@")):
            log.warning("NOTIFY_SOCKET=%r is not a unix socket address; not notifying", addr)
            return None
        usec: int | None = None
        raw = os.environ.get("WATCHDOG_USEC")
        pid = os.environ.get("WATCHDOG_PID")
        if raw and (not pid or pid == str(os.getpid())):
            try:
                usec = int(raw) or None
            except ValueError:
                log.warning("WATCHDOG_USEC=%r is not a number; no watchdog pings", raw)
        return cls(addr, usec)

    def notify(self, message: str) -> bool:
        """Send one datagram; False (logged once) when systemd does not take it."""
        try:
            self._sock.sendto(message.encode(), self._addr)
        except OSError as exc:
            if not self._warned:
                log.warning("sd_notify to %s failed: %s", self.address, exc)
                self._warned = True
            return False
        return True

    def close(self) -> None:
        self._sock.close()


# --------------------------------------------------------------------------------------------
# The unit


def unit_path() -> Path:
    """``$XDG_CONFIG_HOME/systemd/user/bgcam.service`` (``~/.config/...`` by default)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "systemd" / "user" / UNIT_NAME


def bgcam_executable() -> list[str]:
    """The absolute command that runs this very bgcam (its script, else ``python -m bgcam``)."""
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if argv0 is not None and argv0.name == "bgcam":
        found = shutil.which(str(argv0)) if not argv0.is_absolute() else str(argv0)
        if found and os.access(found, os.X_OK):
            return [str(Path(found).absolute())]
    script = Path(sys.executable).parent / "bgcam"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [str(Path(sys.executable).absolute()), "-m", "bgcam"]


def _quote(arg: str) -> str:
    """Quote one ExecStart word for systemd (C-style quoting, ``%`` and ``$`` escaped)."""
    word = arg.replace("%", "%%").replace("$", "$$")
    if word and all(c.isalnum() or c in "/._-+=:,@" for c in word):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_unit(
    config: Path | None, command: list[str] | None = None, watchdog_sec: int = WATCHDOG_SEC
) -> str:
    """The text of ``bgcam.service``."""
    cmd = [*(command or bgcam_executable()), "run"]
    if config is not None:
        cmd += ["--config", str(config.absolute())]
    exec_start = " ".join(_quote(a) for a in cmd)
    return f"""\
# Written by `bgcam service install`; remove with `bgcam service uninstall`.
[Unit]
Description=BgCam virtual camera with a blurred background
After=graphical-session.target pipewire.service
PartOf=graphical-session.target

[Service]
Type=notify
NotifyAccess=main
ExecStart={exec_start}
ExecReload=/bin/kill -HUP $MAINPID
WatchdogSec={watchdog_sec}
Restart=on-failure
RestartSec=3
TimeoutStopSec=10
# stderr goes to the journal: journalctl --user -u bgcam
Environment=PYTHONUNBUFFERED=1

[Install]
WantedBy=default.target
"""


@dataclass(frozen=True)
class ServiceResult:
    """What ``install``/``uninstall`` did, and what the user still has to run."""

    path: Path
    done: list[str]
    todo: list[str]


def _systemctl(*args: str) -> tuple[bool, str]:
    exe = shutil.which("systemctl")
    if exe is None:
        return False, "systemctl not found"
    try:
        proc = subprocess.run(
            [exe, "--user", *args], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    out = (proc.stdout + proc.stderr).strip()
    return proc.returncode == 0, out


def install(config: Path | None, enable: bool = True, start: bool = False) -> ServiceResult:
    """Write the unit, then daemon-reload and enable (and start) it when systemctl works."""
    if config is not None and not config.is_file():
        raise BgCamError(
            f"config file {config} does not exist",
            hint="write one first: cp configs/default.toml ~/.config/bgcam/config.toml",
        )
    path = unit_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_unit(config), encoding="utf-8")
    except OSError as exc:
        raise BgCamError(f"cannot write the unit file {path}: {exc}") from None
    steps = [["daemon-reload"]]
    if enable:
        steps.append(["enable", UNIT_NAME])
    if start:
        steps.append(["restart", UNIT_NAME])
    return _run_steps(path, steps)


def uninstall() -> ServiceResult:
    """Stop and disable the service, then remove the unit file."""
    path = unit_path()
    first = _run_steps(path, [["disable", "--now", UNIT_NAME]])
    existed = path.exists()
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise BgCamError(f"cannot remove the unit file {path}: {exc}") from None
    second = _run_steps(path, [["daemon-reload"]])
    done = [*first.done, *([f"removed {path}"] if existed else []), *second.done]
    return ServiceResult(path, done, [*first.todo, *second.todo])


def _run_steps(path: Path, steps: list[list[str]]) -> ServiceResult:
    done: list[str] = []
    todo: list[str] = []
    for step in steps:
        line = "systemctl --user " + " ".join(shlex.quote(s) for s in step)
        if todo:  # an earlier step failed: the rest is for the user too
            todo.append(line)
            continue
        ok, out = _systemctl(*step)
        if ok:
            done.append(line)
        else:
            log.info("%s failed: %s", line, out.splitlines()[-1] if out else "no output")
            todo.append(line)
    return ServiceResult(path, done, todo)


NO_USER_MANAGER = ("Failed to connect to bus", "systemctl not found", "No medium found")
"""What ``systemctl --user`` says when there is no user manager to ask."""


def service_status() -> tuple[bool, str]:
    """(unit installed, text from ``systemctl --user status``).

    Raises :class:`BgCamError` when there is no user manager to ask (no user bus: ssh without
    lingering, a container, sudo), since the service's state is then unknown.
    """
    path = unit_path()
    _, out = _systemctl("status", "--no-pager", "--lines=5", UNIT_NAME)
    if any(sign in out for sign in NO_USER_MANAGER):
        where = "installed" if path.exists() else "not installed"
        raise BgCamError(
            f"cannot ask systemd about the service (unit {path}: {where}): {out.splitlines()[0]}",
            hint="run `bgcam service status` in your desktop session; over ssh, "
            "`loginctl enable-linger $USER` once and `export XDG_RUNTIME_DIR=/run/user/$(id -u)`",
        )
    if not out:
        out = "systemctl --user status gave no output"
    return path.exists(), out
