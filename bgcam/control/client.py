"""The control socket's client, and where the socket is.

This module imports nothing beyond the standard library and :mod:`bgcam.errors`, so that
`bgcam ctl` (a hotkey binding or a script may run it many times a second) costs a Python start-up
and one round trip, not the daemon's imports. The protocol is described in
:mod:`bgcam.control.socket`.
"""

from __future__ import annotations

import json
import os
import socket
import struct
from pathlib import Path
from typing import Any

from bgcam.errors import BgCamError

__all__ = [
    "MAX_LINE",
    "SOCKET_NAME",
    "ControlClient",
    "NotRunningError",
    "default_socket_path",
    "peer_cred",
    "runtime_dir",
]

MAX_LINE = 64 * 1024  # bytes in one request line
SOCKET_NAME = "control.sock"


def runtime_dir() -> Path:
    """The per-user directory for the socket and the lock (not created here)."""
    override = os.environ.get("BGCAM_RUNTIME_DIR")
    if override:
        return Path(override)
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return Path(xdg) / "bgcam"
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path("/tmp") / f"bgcam-{uid}"


def default_socket_path() -> Path:
    return runtime_dir() / SOCKET_NAME


def peer_cred(sock: socket.socket) -> tuple[int, int, int] | None:
    """(pid, uid, gid) of the process at the other end, where the OS tells (Linux)."""
    opt = getattr(socket, "SO_PEERCRED", None)
    if opt is None:
        return None
    raw = sock.getsockopt(socket.SOL_SOCKET, opt, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    return pid, uid, gid


class NotRunningError(BgCamError):
    """No daemon answers on the control socket."""

    exit_code = 7


class ControlClient:
    """A connection to the running daemon: ``call("blur", 40) -> result dict``."""

    def __init__(self, path: Path | None = None, timeout: float = 10.0) -> None:
        self.path = Path(path) if path is not None else default_socket_path()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(str(self.path))
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            self._sock.close()
            raise NotRunningError(
                f"BgCam is not running (nothing answers on {self.path}: {exc.strerror})",
                hint="start it with `bgcam run` (or `systemctl --user start bgcam` for the "
                "service); if it runs with BGCAM_RUNTIME_DIR, set the same here",
            ) from None
        except OSError as exc:
            self._sock.close()
            raise NotRunningError(f"cannot connect to {self.path}: {exc}") from None
        self._file = self._sock.makefile("rb")
        self._next_id = 0

    @property
    def server_pid(self) -> int | None:
        cred = peer_cred(self._sock)
        return cred[0] if cred else None

    def request(self, cmd: str, arg: Any = None) -> dict[str, Any]:
        """Send one request, return the whole reply object."""
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "cmd": cmd}
        if arg is not None:
            msg["arg"] = arg
        return self.send_raw((json.dumps(msg) + "\n").encode())

    def send_raw(self, data: bytes) -> dict[str, Any]:
        """Send raw bytes (one or more lines' worth) and read one reply line."""
        try:
            self._sock.sendall(data)
            line = self._file.readline(MAX_LINE * 16)
        except TimeoutError:
            wait = self._sock.gettimeout()
            raise BgCamError(f"the daemon did not reply within {wait} s") from None
        except OSError as exc:
            raise BgCamError(f"lost the connection to the daemon: {exc}") from None
        if not line:
            raise BgCamError("the daemon closed the connection without a reply")
        reply = json.loads(line)
        if not isinstance(reply, dict):
            raise BgCamError(f"unexpected reply from the daemon: {line!r:.200}")
        return reply

    def call(self, cmd: str, arg: Any = None) -> dict[str, Any]:
        """Send a command; return its result, or raise BgCamError with the daemon's error."""
        reply = self.request(cmd, arg)
        if not reply.get("ok"):
            raise BgCamError(str(reply.get("error")))
        result = reply.get("result")
        return result if isinstance(result, dict) else {"result": result}

    def close(self) -> None:
        self._file.close()
        self._sock.close()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
