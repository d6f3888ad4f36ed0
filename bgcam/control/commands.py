"""The one command set every control surface uses (hotkeys, socket, signals, web page).

Front ends never touch stages: they parse a :class:`Command` and ``submit`` it to the daemon's
:class:`CommandQueue`. The pipeline drains the queue between frames and runs :func:`execute`
against itself (a :class:`Daemon`), so each change is atomic and thread-safe.
"""

from __future__ import annotations

import asyncio
import queue
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from bgcam.config import MODES, Config, SegmenterName
from bgcam.control.grammar import Command, CommandError, CommandTimeout
from bgcam.errors import BgCamError
from bgcam.status import DaemonStatus

BLUR_STEP = 10
SETUP_TICKS = 30
"""Ticks (about a second at 30 fps) during which :meth:`CommandQueue.add_hook`'s hooks keep
running after start, a stage build or a command: native code set up then (an OpenCL driver's
kernels compile on the first frames after a swap) may replace process-wide state."""


def _switch(key: str, arg: str) -> bool:
    value = {"on": True, "true": True, "1": True, "off": False, "false": False, "0": False}
    try:
        return value[arg.strip().lower()]
    except KeyError:
        raise CommandError(f"{key}: expected on or off, got {arg!r}") from None


def _number(kind: type[int] | type[float]) -> Callable[[str, str], int | float]:
    def parse(key: str, arg: str) -> int | float:
        try:
            return kind(arg)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise CommandError(f"{key}: expected {what}, got {arg!r}") from None

    return parse


SEGMENT_SETTINGS: dict[str, Callable[[str, str], bool | int | float]] = {
    "roi": _switch,
    "roi_margin": _number(float),
    "roi_full_every": _number(int),
    "max_skip": _number(int),
}
"""Commands that set ``segment.<name>`` (validated like the config file: ranges, types)."""


def prepare(cmd: Command, frame_size: tuple[int, int] | None) -> None:
    """Do a command's slow, pure work on the submitter's thread, before it is queued.

    ``background IMAGE``: the header is checked, the image decoded and fitted to ``frame_size``
    (the daemon's, from its status) here (see :func:`bgcam.imageload.preload`), so the output
    thread only picks up the result and a bad or oversized file is refused without reaching the
    pipeline. Raises CommandError.
    """
    if cmd.name != "background" or frame_size is None:
        return
    from bgcam.effects import VIDEO_SUFFIXES
    from bgcam.imageload import preload

    path = Path(str(cmd.arg)).expanduser()
    if path.suffix.lower() in VIDEO_SUFFIXES or not path.is_file():
        return  # opened by the pipeline (videos), or refused there with its own message
    try:
        preload(path, frame_size, what=f"background {path}")
    except BgCamError as exc:
        raise CommandError(f"background: {exc.message}") from None


def frame_size(status: DaemonStatus) -> tuple[int, int] | None:
    """The output frame size from a ``status`` reply (None before the pipeline has one)."""
    return status.size if status.size[0] > 0 and status.size[1] > 0 else None


class Daemon(Protocol):
    """What a running pipeline offers to commands (implemented by ``bgcam.pipeline``)."""

    @property
    def config(self) -> Config: ...

    def apply_config(self, cfg: Config) -> None:
        """Swap in a new validated config between frames."""
        ...

    def set_paused(self, paused: bool) -> None: ...

    def reload_config(self) -> Config:
        """Read the config file again and return it (ConfigError if it is bad)."""
        ...

    def save_config(self) -> Path:
        """Write run-time changes back; return the file written."""
        ...

    def status(self) -> DaemonStatus:
        """What the daemon is doing now (every command's reply)."""
        ...

    def request_stop(self) -> None: ...

    def settling(self) -> Future[None] | None:
        """After a change whose stages are still being built: resolved when they are in use
        (or failed). Commands wait for it; their reply comes after it."""
        ...


@dataclass(slots=True)
class ToggleMemory:
    """What ``toggle`` returns to: the last mode that was not ``off``."""

    last_on: str = "blur"


def execute(daemon: Daemon, cmd: Command, memory: ToggleMemory) -> DaemonStatus:
    """Run one command against the daemon; return the reply payload (raise CommandError)."""
    cfg = daemon.config
    compose = cfg.compose
    if compose.mode != "off":
        memory.last_on = compose.mode
    name, arg = cmd.name, cmd.arg
    try:
        if name == "toggle":
            new_mode = memory.last_on if compose.mode == "off" else "off"
            daemon.apply_config(cfg.replace(**{"compose.mode": new_mode}))
        elif name in ("blur_up", "blur_down", "blur"):
            if name == "blur":
                level = int(arg)  # type: ignore[arg-type]
            else:
                step = BLUR_STEP if name == "blur_up" else -BLUR_STEP
                level = min(100, max(0, compose.blur + step))
            daemon.apply_config(cfg.replace(**{"compose.blur": level}))
        elif name == "mode":
            daemon.apply_config(cfg.replace(**{"compose.mode": arg}))
        elif name == "next_mode":
            nxt = MODES[(MODES.index(compose.mode) + 1) % len(MODES)]
            daemon.apply_config(cfg.replace(**{"compose.mode": nxt}))
        elif name == "blur_type":
            daemon.apply_config(cfg.replace(**{"compose.blur_type": arg}))
        elif name == "background":
            path = Path(str(arg)).expanduser()
            if not path.is_file():
                raise CommandError(f"background: no such file {path}")
            daemon.apply_config(
                cfg.replace(**{"compose.background": str(path), "compose.mode": "replace"})
            )
        elif name == "segmenter":
            seg: SegmenterName | str = str(arg)
            daemon.apply_config(cfg.replace(**{"segment.segmenter": seg}))
        elif name in SEGMENT_SETTINGS:
            key = f"segment.{name}"
            daemon.apply_config(cfg.replace(**{key: SEGMENT_SETTINGS[name](key, str(arg))}))
        elif name == "autoframe":
            on = not cfg.effects.autoframe if arg == "toggle" else arg == "on"
            daemon.apply_config(cfg.replace(**{"effects.autoframe": on}))
        elif name == "light":
            light = arg
            if arg == "toggle":
                light = "auto" if cfg.effects.light == "off" else "off"
            daemon.apply_config(cfg.replace(**{"effects.light": light}))
        elif name in ("pause", "resume"):
            daemon.set_paused(name == "pause")
        elif name == "reload":
            daemon.apply_config(daemon.reload_config())
        elif name == "save":
            saved = daemon.save_config()
            return replace(daemon.status(), saved=str(saved))
        elif name == "quit":
            daemon.request_stop()
        return daemon.status()
    except CommandError:
        raise
    except BgCamError as exc:
        raise CommandError(f"{name}: {exc.message}") from None


@dataclass
class CommandQueue:
    """A bounded queue of commands, each with a Future the submitter can wait on."""

    maxsize: int = 64
    _q: queue.Queue[tuple[Command, Future[DaemonStatus]]] = field(init=False)
    _hooks: list[Callable[[], None]] = field(init=False, default_factory=list)
    _hook_ticks: int = field(init=False, default=SETUP_TICKS)
    """Ticks left on which the hooks run (see :meth:`add_hook`); the first ones after start."""
    _held: tuple[Command, Future[DaemonStatus], Future[None]] | None = field(
        init=False, default=None
    )

    def __post_init__(self) -> None:
        self._q = queue.Queue(maxsize=self.maxsize)

    def submit(self, cmd: Command) -> Future[DaemonStatus]:
        """Enqueue ``cmd`` without blocking; raise CommandError when the queue is full."""
        fut: Future[DaemonStatus] = Future()
        try:
            self._q.put_nowait((cmd, fut))
        except queue.Full:
            raise CommandError("busy: too many commands waiting; try again") from None
        return fut

    def call(self, cmd: Command, timeout: float) -> DaemonStatus:
        """Submit ``cmd`` and wait for its reply: the one submit-and-wait of every control surface.

        A command the daemon has not started within ``timeout`` is withdrawn (it will never be
        applied); one already running (its stages being built) gets ``timeout`` more. Raises
        CommandError (refused, failed, queue full) or its subclass CommandTimeout.
        """
        fut = self.submit(cmd)
        try:
            return fut.result(timeout)
        except FutureTimeout:
            if fut.cancel():
                raise _timeout(cmd, timeout, started=False) from None
        try:
            return fut.result(timeout)
        except FutureTimeout:
            raise _timeout(cmd, 2 * timeout, started=True) from None

    async def acall(self, cmd: Command, timeout: float) -> DaemonStatus:
        """:meth:`call` for an asyncio event loop (waits without blocking it or using a thread)."""
        fut = self.submit(cmd)
        inner = asyncio.wrap_future(fut)
        inner.add_done_callback(_consume)
        for first in (True, False):
            try:
                # shield: a timeout must not cancel the queued Future under the daemon's feet.
                return await asyncio.wait_for(asyncio.shield(inner), timeout)
            except asyncio.TimeoutError:
                if first and fut.cancel():
                    raise _timeout(cmd, timeout, started=False) from None
        raise _timeout(cmd, 2 * timeout, started=True)

    def drain(self) -> list[tuple[Command, Future[DaemonStatus]]]:
        """Everything waiting now, oldest first, with a reply still held (at the end)."""
        items = []
        if self._held is not None:
            cmd, fut, _ = self._held
            self._held = None
            items.append((cmd, fut))
        while True:
            try:
                items.append(self._q.get_nowait())
            except queue.Empty:
                return items

    def add_hook(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` on the pipeline's thread (between frames) at the :meth:`run_pending` of
        the ticks when native code may have changed process-wide state: the first
        :data:`SETUP_TICKS` ticks, every tick while stages are being built (``settling``), and
        the :data:`SETUP_TICKS` ticks after that or after any command ran. In steady state it
        does not run at all: a hook that must also notice changes then has its own timer (the
        signal guard checks from its dispatcher thread).

        Keep it cheap, never raise.
        """
        self._hooks.append(hook)

    def _run_hooks(self, setup: bool) -> None:
        """The hooks' schedule (:meth:`add_hook`); ``setup``: stages are being set up now."""
        if setup:
            self._hook_ticks = SETUP_TICKS
        elif self._hook_ticks <= 0:
            return
        else:
            self._hook_ticks -= 1
        for hook in self._hooks:
            hook()

    def run_pending(self, daemon: Daemon, memory: ToggleMemory) -> int:
        """Execute the waiting commands against ``daemon`` in order, resolving each future.

        While the daemon is settling (stages being built) no command runs; the one that started
        the build gets its reply once the build is done.
        """
        settling = daemon.settling()
        self._run_hooks(settling is not None)
        if settling is not None and not settling.done():
            return 0
        if self._held is not None:
            cmd, fut, settled = self._held
            self._held = None
            if settled.exception() is None:
                fut.set_result(daemon.status())
            else:
                fut.set_exception(_failed(cmd, settled.exception()))
        if not self._q.queue:  # nothing waiting (a lock-free look; a racing submit is seen
            return 0  # at the next tick): the output thread's usual case, at no cost
        n = 0
        while True:
            try:
                cmd, fut = self._q.get_nowait()
            except queue.Empty:
                return n
            n += 1
            self._hook_ticks = SETUP_TICKS  # a command may build a stage in place: watch after
            if not fut.set_running_or_notify_cancel():
                continue  # the submitter gave up waiting; do not run a cancelled command
            try:
                reply = execute(daemon, cmd, memory)
            except CommandError as exc:
                fut.set_exception(exc)
                continue
            settling = daemon.settling()
            if settling is None:
                fut.set_result(reply)
            else:
                self._held = (cmd, fut, settling)
                return n


def _timeout(cmd: Command, seconds: float, *, started: bool) -> CommandTimeout:
    if started:
        return CommandTimeout(f"{cmd.name}: still running after {seconds:.0f} s", applied=None)
    return CommandTimeout(
        f"{cmd.name}: the daemon did not get to it within {seconds:.0f} s; not applied "
        "(is it stuck? see its log)",
        applied=False,
    )


def _consume(fut: asyncio.Future[Any]) -> None:
    """Retrieve a late result/exception so asyncio does not log it as never retrieved."""
    if not fut.cancelled():
        fut.exception()


def _failed(cmd: Command, exc: BaseException | None) -> CommandError:
    if isinstance(exc, CommandError):
        return exc
    message = exc.message if isinstance(exc, BgCamError) else str(exc)
    return CommandError(f"{cmd.name}: {message}")


class ControlledPipeline(Daemon, Protocol):
    """A daemon with its command queue: what the control surfaces are started with."""

    @property
    def commands(self) -> CommandQueue: ...
