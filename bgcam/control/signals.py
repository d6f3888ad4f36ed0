"""POSIX signals for the daemon: TERM/INT stop, HUP reload the config, USR1 toggle the blur.

The handlers do nothing but write the signal number to a pipe (one ``os.write``, no locks, no
file I/O, no ``sys.exit``). A dispatcher thread reads the pipe and acts:

- TERM, INT: ``pipeline.request_stop()`` (directly: a stop must work even with a full queue);
  a second one while stopping is only logged.
- HUP: the ``reload`` command. A bad file keeps the running config; the error (which names the
  file, the key, the expected and the got) is logged.
- USR1: the ``toggle`` command.

Only the main thread may install handlers; :meth:`SignalDispatcher.stop` restores the old ones.
A native library that later replaces a handler behind Python's back (LLVM inside OpenCL drivers
swallows USR1) is undone within :data:`GUARD_PERIOD` by :class:`HandlerGuard`.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import select
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from bgcam.control.commands import ControlledPipeline
from bgcam.control.grammar import Command, CommandError, CommandTimeout

log = logging.getLogger(__name__)

__all__ = ["HandlerGuard", "SignalDispatcher"]

_WAIT = 10.0  # seconds to wait for the pipeline to apply a signalled command
GUARD_PERIOD = 0.5  # seconds between checks that our handlers are still installed


def _signals() -> dict[int, str]:
    names = ["SIGTERM", "SIGINT", "SIGHUP", "SIGUSR1"]
    return {int(getattr(signal, n)): n for n in names if hasattr(signal, n)}


_NAMES = _signals()


class SignalDispatcher:
    """Installs the handlers and runs the thread that turns signals into commands."""

    def __init__(self, pipeline: ControlledPipeline, config_path: Path | None) -> None:
        self._pipeline = pipeline
        self._config_path = config_path
        self._old: dict[int, Any] = {}
        self._r, self._w = os.pipe()
        os.set_blocking(self._w, False)
        self._thread = threading.Thread(target=self._run, name="bgcam-signals", daemon=True)
        self._stopping = False
        self._closed = False
        self._guard: HandlerGuard | None = None
        self._reported: set[int] = set()
        self.on_stop: Callable[[], None] | None = None

    def start(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("signal handlers can only be installed from the main thread")
        for num in _signals():
            self._old[num] = signal.signal(num, self._handle)
            if sys.platform != "win32":
                signal.siginterrupt(num, False)
        self._guard = HandlerGuard.capture(list(self._old))
        if self._guard is not None:
            # Check between frames too, on the ticks around a stage build (the hooks'
            # schedule): a library that replaces a handler does so while stages are set up
            # (e.g. OpenCL's first compile), so the next tick undoes it. In steady state only
            # the dispatcher's own GUARD_PERIOD check runs: nothing on the output thread.
            self._pipeline.commands.add_hook(self._guard_hook)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """End the dispatcher thread, then restore the previous handlers."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            os.write(self._w, b"\0")  # 0 = wake up and leave
        self._thread.join(timeout)
        if threading.current_thread() is threading.main_thread():
            for num, old in self._old.items():
                signal.signal(num, old)
        if not self._thread.is_alive():
            os.close(self._r)
            os.close(self._w)

    # -- in the signal handler: one write, nothing else --------------------------------------
    def _handle(self, signum: int, frame: FrameType | None) -> None:
        # OSError: pipe full; that many pending signals already say enough
        with contextlib.suppress(OSError):
            os.write(self._w, bytes([signum]))

    # -- in the dispatcher thread ------------------------------------------------------------
    def _run(self) -> None:
        names = _signals()
        while True:
            try:
                ready, _, _ = select.select([self._r], [], [], GUARD_PERIOD)
                if not ready:
                    self._check_guard(names)
                    continue
                data = os.read(self._r, 64)
            except OSError:
                return
            for num in data:
                if num == 0 or self._closed:
                    return
                try:
                    self._dispatch(num, names.get(num, str(num)))
                except Exception:  # keep serving signals whatever one of them hit
                    log.exception("handling signal %s failed", names.get(num, num))

    def _guard_hook(self) -> None:
        if not self._closed:
            self._check_guard(_NAMES)

    def _check_guard(self, names: dict[int, str]) -> None:
        if self._guard is None:
            return
        restored = self._guard.restore_changed()
        fresh = [names.get(n, str(n)) for n in restored if n not in self._reported]
        self._reported.update(restored)
        if fresh:
            log.debug(
                "a native library replaced the handlers of %s (LLVM inside an OpenCL driver "
                "does); put ours back",
                ", ".join(fresh),
            )

    def _dispatch(self, num: int, name: str) -> None:
        if name in ("SIGTERM", "SIGINT"):
            if self._stopping:
                log.warning("%s: already stopping (send SIGKILL to force)", name)
                return
            self._stopping = True
            log.info("%s: stopping", name)
            if self.on_stop is not None:
                self.on_stop()
            self._pipeline.request_stop()
        elif name == "SIGHUP":
            where = self._config_path or "defaults (no --config file)"
            log.info("SIGHUP: reloading the configuration from %s", where)
            self._submit(Command("reload"), f"configuration reloaded from {where}", "reload")
        elif name == "SIGUSR1":
            self._submit(Command("toggle"), "toggled", "toggle")

    def _submit(self, cmd: Command, ok: str, what: str) -> None:
        try:
            result = self._pipeline.commands.call(cmd, _WAIT)
        except CommandTimeout as exc:
            log.error("%s: %s", what, exc)
            return
        except CommandError as exc:
            log.error("%s failed, keeping the running configuration: %s", what, exc)
            return
        log.info("%s (mode %s)", ok, result.mode)


class HandlerGuard:
    """Puts our C-level signal handlers back when a native library replaces them.

    Python cannot see such a replacement: ``signal.getsignal`` reports the Python-level handler
    only. LLVM (which pocl and other OpenCL drivers load) installs its own handlers when it first
    compiles; it passes TERM/INT/HUP on to the previous handler but swallows USR1 (its "info"
    signal). This reads each handler with libc ``sigaction`` right after we installed ours and
    writes the saved one back when it changed. ``sigaction`` is process-wide, so this works from
    the dispatcher thread, where ``signal.signal`` may not be called.
    """

    _SIZE = 512  # bytes, larger than struct sigaction on every libc

    def __init__(self, libc: Any, saved: dict[int, Any]) -> None:
        self._libc = libc
        self._saved = saved
        # sa_handler comes first in struct sigaction: read it in place, without copies
        self._handlers = {n: ctypes.c_void_p.from_buffer(buf).value for n, buf in saved.items()}
        self._now = ctypes.create_string_buffer(self._SIZE)
        self._now_handler = ctypes.c_void_p.from_buffer(self._now)
        self._lock = threading.Lock()

    @classmethod
    def capture(cls, signums: list[int]) -> HandlerGuard | None:
        """Save the current handlers of ``signums``; None where libc cannot be reached."""
        if sys.platform == "win32":
            return None
        try:
            # PyDLL: sigaction is one quick system call, so keep the GIL across it. CDLL would
            # release and re-take it around each call, which costs far more than the call
            # when other threads hold the GIL (up to the interpreter's switch interval).
            libc = ctypes.PyDLL(None, use_errno=True)
            libc.sigaction.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
            libc.sigaction.restype = ctypes.c_int
        except (OSError, AttributeError) as exc:
            log.debug("no libc sigaction (%s): signal handlers unguarded", exc)
            return None
        saved: dict[int, Any] = {}
        for num in signums:
            buf = ctypes.create_string_buffer(cls._SIZE)
            if libc.sigaction(num, None, buf) == 0:
                saved[num] = buf
        return cls(libc, saved)

    def restore_changed(self) -> list[int]:
        """Write back every saved handler that was replaced; return their signal numbers."""
        changed = []
        with self._lock:  # called from the pipeline's thread and the dispatcher
            for num, saved in self._saved.items():
                if self._libc.sigaction(num, None, self._now) != 0:
                    continue
                replaced = self._now_handler.value != self._handlers[num]
                if replaced and self._libc.sigaction(num, saved, None) == 0:
                    changed.append(num)
        return changed
