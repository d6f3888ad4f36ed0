"""The control socket: newline-delimited JSON over a Unix socket (the daemon's side; the client
is :mod:`bgcam.control.client`).

Where: ``$XDG_RUNTIME_DIR/bgcam/control.sock``. Without ``XDG_RUNTIME_DIR`` (no systemd login
session, e.g. a container or cron), ``/tmp/bgcam-<uid>/`` is used instead; ``BGCAM_RUNTIME_DIR``
overrides both (several daemons side by side, tests). The directory is created with mode 0700
(an existing one must belong to us and is tightened to 0700), the socket has mode 0600, and the
server also checks each peer's uid (``SO_PEERCRED``) and refuses other users.

Protocol, one JSON object per line each way::

    → {"id": 1, "cmd": "blur", "arg": 40}
    ← {"id": 1, "ok": true, "result": {...status...}, "error": null}
    ← {"id": 2, "ok": false, "result": null, "error": "blur: expected an integer 0–100, got 'x'"}

``cmd`` may be spelled with ``-`` or ``_`` (``blur-up``). Malformed JSON, a line over
:data:`MAX_LINE` bytes (the rest of it is discarded), an unknown command or a wrong argument get
an error reply; none of them reaches the pipeline. Each accepted command goes through the
pipeline's :class:`CommandQueue`, and the reply waits (up to :data:`REPLY_TIMEOUT`) until the
pipeline has applied it between frames.

Only one daemon per runtime directory: :meth:`ControlServer.start` holds an exclusive lock
(``bgcam.lock``, with the pid) for the daemon's life, refuses to start while another daemon holds
it ("BgCam is already running (pid N)") and removes a stale socket a crashed daemon left.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import select
import socket
import stat
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from bgcam.control import wire
from bgcam.control.client import MAX_LINE, default_socket_path, peer_cred
from bgcam.control.commands import CommandQueue, frame_size, prepare
from bgcam.control.grammar import Command, CommandError
from bgcam.errors import DeviceError

if sys.platform != "win32":
    import fcntl

log = logging.getLogger(__name__)

__all__ = [
    "IDLE_TIMEOUT",
    "MAX_CLIENTS",
    "MAX_PER_PEER",
    "ControlServer",
    "ensure_private_dir",
    "parse_request",
]

MAX_CLIENTS = 16  # connections served at once; more are told "busy" and closed
MAX_PER_PEER = 2  # connections one process may hold at once
REPLY_TIMEOUT = 5.0  # seconds to wait for the pipeline to apply a command
IDLE_TIMEOUT = 5.0  # seconds a client has to send a complete request (after connecting or a reply)
ACCEPT_BACKOFF = 0.5  # seconds to wait after a failed accept (e.g. out of descriptors)
LOCK_NAME = "bgcam.lock"


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` with mode 0700, or check an existing one is ours and make it 0700."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = path.lstat()
    except OSError as exc:
        raise DeviceError(f"cannot create the runtime directory {path}: {exc}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise DeviceError(f"{path} exists and is not a directory", hint=f"remove it: rm {path}")
    if st.st_uid != os.getuid():
        raise DeviceError(
            f"the runtime directory {path} belongs to uid {st.st_uid}, not to you",
            hint="set BGCAM_RUNTIME_DIR to a directory of your own",
        )
    if stat.S_IMODE(st.st_mode) != 0o700:
        os.chmod(path, 0o700)


def _reply(req_id: Any, result: Any = None, error: str | None = None) -> bytes:
    body = {"id": req_id, "ok": error is None, "result": result, "error": error}
    return (json.dumps(body, default=str, ensure_ascii=False) + "\n").encode()


def parse_request(line: bytes) -> tuple[Any, Command]:
    """Decode one request line into (id, Command); raise _RequestError (with the id) if bad."""
    try:
        req = wire.loads(line)
    except ValueError as exc:
        raise _RequestError(None, f"malformed request: not JSON ({exc})") from None
    if not isinstance(req, dict):
        raise _RequestError(None, f"malformed request: expected a JSON object, got {req!r:.80}")
    req_id = req.get("id")
    if req_id is not None and not isinstance(req_id, (str, int, float)):
        raise _RequestError(None, "malformed request: 'id' must be a string or a number")
    extra = set(req) - {"id", "cmd", "arg"}
    if extra:
        raise _RequestError(req_id, f"unknown field(s) {sorted(extra)}; expected id, cmd, arg")
    name = req.get("cmd")
    if isinstance(name, str):
        name = name.replace("-", "_")
    try:
        return req_id, Command.parse(name, req.get("arg"))
    except CommandError as exc:
        raise _RequestError(req_id, str(exc)) from None


class _RequestError(Exception):
    def __init__(self, req_id: Any, message: str) -> None:
        super().__init__(message)
        self.req_id = req_id
        self.message = message


class ControlServer:
    """Serves the control socket in background threads until :meth:`stop`."""

    def __init__(self, commands: CommandQueue, path: Path | None = None) -> None:
        self.commands = commands
        self.path = Path(path) if path is not None else default_socket_path()
        self._sock: socket.socket | None = None
        self._lock_file: IO[str] | None = None
        self._stop = threading.Event()
        self._slots = threading.BoundedSemaphore(MAX_CLIENTS)
        self._clients: set[socket.socket] = set()
        self._per_peer: dict[int, int] = {}  # pid -> connections it holds
        self._clients_lock = threading.Lock()
        self._threads: set[threading.Thread] = set()
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name="bgcam-control", daemon=True
        )

    # -- life --------------------------------------------------------------------------------
    def start(self) -> None:
        """Lock, clean a stale socket, bind (0600) and start accepting; DeviceError if taken."""
        ensure_private_dir(self.path.parent)
        self._take_lock()
        try:
            self._bind()
        except BaseException:
            self._release_lock()
            raise
        self._accept_thread.start()
        log.info("control socket: %s (try `bgcam status`)", self.path)

    def _take_lock(self) -> None:
        if sys.platform == "win32":  # no flock; the socket probe in _bind still guards
            return
        lock_path = self.path.parent / LOCK_NAME
        fh = open(lock_path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the daemon's life
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                fh.close()
                raise DeviceError(f"cannot lock {lock_path}: {exc}") from None
            fh.seek(0)
            pid = fh.read().strip() or "unknown"
            fh.close()
            raise DeviceError(
                f"BgCam is already running (pid {pid}); one daemon per user at a time",
                hint="control it with `bgcam ctl …`, or stop it first: `bgcam ctl quit`",
            ) from None
        os.chmod(lock_path, 0o600)
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        self._lock_file = fh

    def _release_lock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # closing drops the flock
            self._lock_file = None

    def _bind(self) -> None:
        if self.path.exists() or self.path.is_symlink():
            # We hold the lock, so no live daemon owns it: a crash left it behind.
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.settimeout(1.0)
                probe.connect(str(self.path))
            except OSError:
                log.info("removing a stale control socket left by a crashed daemon: %s", self.path)
                self.path.unlink(missing_ok=True)
            else:
                cred = peer_cred(probe)
                pid = cred[0] if cred else "unknown"
                raise DeviceError(
                    f"BgCam is already running (pid {pid}): {self.path} answers",
                    hint="stop it first: `bgcam ctl quit`",
                )
            finally:
                probe.close()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)  # the socket is born 0600: no window where others connect
        try:
            sock.bind(str(self.path))
        except OSError as exc:
            sock.close()
            raise DeviceError(f"cannot create the control socket {self.path}: {exc}") from None
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o600)
        sock.listen(MAX_CLIENTS)
        sock.settimeout(None)
        self._sock = sock

    def stop(self, timeout: float = 2.0) -> None:
        """Stop accepting, close every connection, remove the socket, release the lock."""
        deadline = time.monotonic() + timeout
        self._stop.set()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
        if self._accept_thread.is_alive():
            self._accept_thread.join(timeout)
        # Stop reading from clients, but let replies in flight (e.g. to `quit`) go out ...
        self._shutdown_clients(socket.SHUT_RD)
        with self._clients_lock:
            threads = list(self._threads)
        for t in threads:  # one shared deadline, however many clients there are
            t.join(max(0.0, deadline - time.monotonic()))
        # ... then cut whoever is still blocked writing to a client that does not read.
        self._shutdown_clients(socket.SHUT_RDWR)
        for t in threads:
            t.join(0.2)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            with contextlib.suppress(OSError):
                self.path.unlink()
        self._release_lock()

    def _shutdown_clients(self, how: int) -> None:
        with self._clients_lock:
            for conn in list(self._clients):
                with contextlib.suppress(OSError):
                    conn.shutdown(how)

    # -- serving -----------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._sock], [], [], 0.5)
                if not ready:
                    continue
                conn, _ = self._sock.accept()
            except OSError as exc:
                if self._stop.is_set():
                    return
                # No traceback: this repeats while the cause lasts (the log filter counts it).
                log.warning("control socket: accept failed: %s; retrying", exc)
                self._stop.wait(ACCEPT_BACKOFF)
                continue
            self._admit(conn)

    def _admit(self, conn: socket.socket) -> None:
        cred = peer_cred(conn)
        if cred is not None and cred[1] != os.getuid():
            log.warning(
                "control socket: refused pid %d of uid %d (only uid %d may control BgCam)",
                cred[0],
                cred[1],
                os.getuid(),
            )
            with contextlib.suppress(OSError):
                conn.sendall(_reply(None, error="permission denied: not the daemon's user"))
            conn.close()
            return
        pid = cred[0] if cred is not None else -1
        with self._clients_lock:
            mine = self._per_peer.get(pid, 0)
            if mine >= MAX_PER_PEER:
                refusal = f"busy: this process holds {MAX_PER_PEER} connections already"
            elif not self._slots.acquire(blocking=False):
                refusal = f"busy: {MAX_CLIENTS} clients connected already"
            else:
                refusal = ""
                self._per_peer[pid] = mine + 1
        if refusal:
            with contextlib.suppress(OSError):
                conn.setblocking(False)  # a client that does not read must not stall accept
                conn.send(_reply(None, error=refusal + "; try again in a few seconds"))
            conn.close()
            return
        t = threading.Thread(
            target=self._serve, args=(conn, pid), name="bgcam-control-client", daemon=True
        )
        with self._clients_lock:
            self._clients.add(conn)
            self._threads.add(t)
        t.start()

    def _serve(self, conn: socket.socket, pid: int) -> None:
        try:
            # The deadline for a complete request: blank lines and dribbled bytes do not move it.
            deadline = time.monotonic() + IDLE_TIMEOUT
            buf = bytearray()
            discarding = False
            while not self._stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    log.debug("control socket: closed a client idle for %.0f s", IDLE_TIMEOUT)
                    return
                conn.settimeout(left)
                try:
                    chunk = conn.recv(65536)
                except (TimeoutError, OSError):
                    return
                if not chunk:
                    return
                buf += chunk
                while True:
                    nl = buf.find(b"\n")
                    if nl < 0:
                        if len(buf) > MAX_LINE:
                            if not discarding:
                                conn.sendall(_reply(None, error=_too_long()))
                                discarding = True
                            buf.clear()
                        break
                    line = bytes(buf[:nl])
                    del buf[: nl + 1]
                    if discarding:  # the tail of an oversized line
                        discarding = False
                        continue
                    if len(line) > MAX_LINE:
                        conn.sendall(_reply(None, error=_too_long()))
                        continue
                    if line.strip():
                        conn.settimeout(REPLY_TIMEOUT)  # a client that does not read is cut
                        conn.sendall(self._handle(line))
                        deadline = time.monotonic() + IDLE_TIMEOUT
        except OSError:
            return  # the client went away mid-reply
        finally:
            conn.close()
            with self._clients_lock:
                self._clients.discard(conn)
                self._threads.discard(threading.current_thread())
                left = self._per_peer.pop(pid, 1) - 1
                if left > 0:
                    self._per_peer[pid] = left
            self._slots.release()

    def _handle(self, line: bytes) -> bytes:
        try:
            req_id, cmd = parse_request(line)
        except _RequestError as exc:
            return _reply(exc.req_id, error=exc.message)
        except Exception as exc:  # a bug here must not cost the client its reply
            log.exception("control socket: cannot parse a request")
            return _reply(None, error=f"malformed request: {exc}")
        try:
            if cmd.name == "background":  # decoded here, for the daemon's frame size
                size = frame_size(self.commands.call(Command("status"), REPLY_TIMEOUT))
                prepare(cmd, size)
            result = self.commands.call(cmd, REPLY_TIMEOUT)
        except CommandError as exc:
            return _reply(req_id, error=str(exc))
        except Exception as exc:  # the pipeline hit an unexpected error running it
            log.exception("control socket: %s failed", cmd.name)
            return _reply(req_id, error=f"{cmd.name}: internal error: {exc}")
        return _reply(req_id, result=result.to_json())


def _too_long() -> str:
    return f"request line longer than {MAX_LINE} bytes: discarded"
