"""Global hotkeys: each binding in ``control.keys`` submits one command to the pipeline's queue.

Backends, chosen by ``control.hotkey_backend`` (``auto`` by default):

- **pynput** (X11, Windows, macOS): ``pynput.keyboard.GlobalHotKeys``. On macOS the terminal or
  the Python binary needs the Accessibility / Input Monitoring permission.
- **evdev** (Linux, any session, also Wayland and the console): reads the keyboards under
  ``/dev/input`` directly with python-evdev. Needs read access to those nodes, normally by being
  in the ``input`` group (``sudo usermod -aG input $USER``, then log in again). Note that any
  process of that user can then read every key typed. Keyboards plugged in after start are not
  picked up.

``auto``: on Wayland (``WAYLAND_DISPLAY`` set or ``XDG_SESSION_TYPE=wayland``) applications cannot
grab global keys; evdev is used when the keyboards are readable, otherwise the log explains how
to bind ``bgcam ctl toggle`` and friends in the desktop's own shortcut settings. On X11, Windows
and macOS pynput is used. With no display at all the daemon runs without hotkeys and says so once.

Bindings use pynput's syntax (``<ctrl>+<alt>+b``, ``<ctrl>+<shift>+<f9>``) for both backends.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import shutil
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol

from bgcam.config import ControlConfig
from bgcam.control.commands import CommandQueue
from bgcam.control.grammar import Command, CommandError
from bgcam.status import DaemonStatus

log = logging.getLogger(__name__)

__all__ = [
    "ChordMatcher",
    "EvdevHotkeys",
    "Hotkeys",
    "PynputHotkeys",
    "bindings",
    "parse_binding",
    "session_kind",
    "start_hotkeys",
]


class Hotkeys(Protocol):
    """A running hotkey listener."""

    backend: str

    def stop(self, timeout: float = 2.0) -> None: ...


def bindings(control: ControlConfig) -> dict[str, str]:
    """binding (pynput syntax) -> command name, for every non-empty key in ``control.keys``."""
    out: dict[str, str] = {}
    for name, combo in control.keys.model_dump().items():
        if combo:
            out[str(combo)] = name
    return out


def session_kind(env: dict[str, str] | None = None) -> str:
    """``wayland``, ``x11``, ``windows``, ``macos`` or ``none`` (no display)."""
    env = dict(os.environ) if env is None else env
    if sys.platform == "win32":
        return "windows"
    if sys.platform == "darwin":
        return "macos"
    if env.get("WAYLAND_DISPLAY") or env.get("XDG_SESSION_TYPE", "").lower() == "wayland":
        return "wayland"
    if env.get("DISPLAY"):
        return "x11"
    return "none"


def _submitter(commands: CommandQueue, name: str, combo: str) -> Callable[[], None]:
    def fire() -> None:  # runs in the listener's thread: enqueue, never block
        try:
            fut = commands.submit(Command.parse(name))
        except CommandError as exc:
            log.warning("hotkey %s (%s): %s", combo, name, exc)
            return
        fut.add_done_callback(lambda f: _report(f, name, combo))

    return fire


def _report(fut: Future[DaemonStatus], name: str, combo: str) -> None:
    exc = fut.exception()
    if exc is not None:
        log.warning("hotkey %s (%s): %s", combo, name, exc)
    else:
        log.info("hotkey %s: %s", combo, name)


# --------------------------------------------------------------------------------------------
# pynput


class PynputHotkeys:
    """``pynput.keyboard.GlobalHotKeys`` in its own thread."""

    backend = "pynput"

    def __init__(self, control: ControlConfig, commands: CommandQueue) -> None:
        from pynput import keyboard  # ImportError without a reachable display

        handlers: dict[str, Callable[[], None]] = {}
        for combo, name in bindings(control).items():
            try:
                keyboard.HotKey.parse(combo)
            except ValueError as exc:
                raise CommandError(
                    f"control.keys.{name}: cannot parse hotkey {combo!r} ({exc}); "
                    "expected pynput syntax like <ctrl>+<alt>+b"
                ) from None
            handlers[combo] = _submitter(commands, name, combo)
        self._listener = keyboard.GlobalHotKeys(handlers)
        self._listener.daemon = True
        self._listener.name = "bgcam-hotkeys"
        self._ready = threading.Event()
        self._describe = _describe(control)

    def start(self, timeout: float = 5.0) -> None:
        """Start listening, without holding up the daemon's start.

        A helper thread waits (up to ``timeout``) for the listener to be ready and logs the
        outcome once: the bindings, or why there are no hotkeys. pynput's own ``wait()`` blocks
        forever when its thread fails first (an X server without the RECORD extension).
        """
        self._listener.start()
        threading.Thread(
            target=self._confirm, args=(timeout,), name="bgcam-hotkeys-wait", daemon=True
        ).start()

    def _confirm(self, timeout: float) -> None:
        waiter = threading.Thread(target=self._listener.wait, daemon=True)
        waiter.start()
        waiter.join(timeout)
        if waiter.is_alive():
            log.warning(
                "hotkeys off: pynput cannot listen here (its listener did not start; an X "
                "server needs the RECORD extension); use `bgcam ctl …`"
            )
        else:
            self._ready.set()
            log.info("hotkeys (pynput): %s", self._describe)

    def stop(self, timeout: float = 2.0) -> None:
        if not self._ready.is_set():
            # pynput's stop() waits for readiness too; a listener that never got ready is a
            # daemon thread that is dead already (or will be at exit).
            return
        self._listener.stop()
        if self._listener.is_alive() and self._listener is not threading.current_thread():
            self._listener.join(timeout)


# --------------------------------------------------------------------------------------------
# evdev

_MODIFIERS: dict[str, tuple[str, ...]] = {
    "ctrl": ("KEY_LEFTCTRL", "KEY_RIGHTCTRL"),
    "ctrl_l": ("KEY_LEFTCTRL",),
    "ctrl_r": ("KEY_RIGHTCTRL",),
    "alt": ("KEY_LEFTALT", "KEY_RIGHTALT"),
    "alt_l": ("KEY_LEFTALT",),
    "alt_r": ("KEY_RIGHTALT",),
    "alt_gr": ("KEY_RIGHTALT",),
    "shift": ("KEY_LEFTSHIFT", "KEY_RIGHTSHIFT"),
    "shift_l": ("KEY_LEFTSHIFT",),
    "shift_r": ("KEY_RIGHTSHIFT",),
    "cmd": ("KEY_LEFTMETA", "KEY_RIGHTMETA"),
    "cmd_l": ("KEY_LEFTMETA",),
    "cmd_r": ("KEY_RIGHTMETA",),
}
_SPECIAL = {
    "up": "KEY_UP", "down": "KEY_DOWN", "left": "KEY_LEFT", "right": "KEY_RIGHT",
    "space": "KEY_SPACE", "enter": "KEY_ENTER", "esc": "KEY_ESC", "tab": "KEY_TAB",
    "backspace": "KEY_BACKSPACE", "delete": "KEY_DELETE", "insert": "KEY_INSERT",
    "home": "KEY_HOME", "end": "KEY_END", "page_up": "KEY_PAGEUP", "page_down": "KEY_PAGEDOWN",
    "pause": "KEY_PAUSE", "print_screen": "KEY_SYSRQ", "scroll_lock": "KEY_SCROLLLOCK",
    "menu": "KEY_COMPOSE", "media_play_pause": "KEY_PLAYPAUSE",
}  # fmt: skip
_CHARS = {
    "-": "KEY_MINUS", "=": "KEY_EQUAL", "[": "KEY_LEFTBRACE", "]": "KEY_RIGHTBRACE",
    ";": "KEY_SEMICOLON", "'": "KEY_APOSTROPHE", ",": "KEY_COMMA", ".": "KEY_DOT",
    "/": "KEY_SLASH", "\\": "KEY_BACKSLASH", "`": "KEY_GRAVE",
}  # fmt: skip


def parse_binding(combo: str) -> tuple[list[tuple[str, ...]], str]:
    """Split a pynput-style binding into modifier groups (any one key of a group counts) and
    the final key, as evdev key names: ``<ctrl>+<alt>+b`` -> ([(LEFTCTRL, RIGHTCTRL), ...], KEY_B).
    """
    parts = [p for p in combo.lower().split("+") if p] if combo != "+" else ["+"]
    if not parts:
        raise ValueError(f"empty hotkey {combo!r}")
    groups: list[tuple[str, ...]] = []
    final: str | None = None
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part.startswith("<") and part.endswith(">"):
            name = part[1:-1]
            if name in _MODIFIERS and not last:
                groups.append(_MODIFIERS[name])
                continue
            if not last:
                raise ValueError(f"{combo!r}: only modifiers may come before the last key")
            if name in _MODIFIERS:
                raise ValueError(f"{combo!r}: ends with a modifier")
            if name in _SPECIAL:
                final = _SPECIAL[name]
            elif name.startswith("f") and name[1:].isdigit() and 1 <= int(name[1:]) <= 24:
                final = f"KEY_F{int(name[1:])}"
            else:
                raise ValueError(f"{combo!r}: unknown key <{name}>")
        elif len(part) == 1 and last:
            if part.isalnum() and part.isascii():
                final = f"KEY_{part.upper()}"
            elif part in _CHARS:
                final = _CHARS[part]
            else:
                raise ValueError(f"{combo!r}: no evdev key for {part!r}")
        else:
            raise ValueError(f"{combo!r}: {part!r} is not a key; use <name> for special keys")
    assert final is not None
    return groups, final


class ChordMatcher:
    """Tracks which keys are down and fires a binding when its final key goes down while one
    key of each modifier group is held (key codes are evdev's; autorepeat does not refire)."""

    def __init__(self) -> None:
        self._chords: list[tuple[list[set[int]], int, Callable[[], None]]] = []
        self._down: set[int] = set()

    def add(self, combo: str, fire: Callable[[], None]) -> None:
        """Add a pynput-style binding (ValueError if it cannot be parsed)."""
        from evdev import ecodes

        groups, final = parse_binding(combo)
        codes = [{int(ecodes.ecodes[k]) for k in g} for g in groups]
        self._chords.append((codes, int(ecodes.ecodes[final]), fire))

    def on_key(self, code: int, value: int) -> None:
        """One EV_KEY event: value 1 = down, 0 = up, 2 = autorepeat."""
        if value == 0:
            self._down.discard(code)
            return
        if value != 1:
            return
        self._down.add(code)
        for groups, final, fire in self._chords:
            if code == final and all(self._down & g for g in groups):
                fire()


class EvdevHotkeys:
    """Reads every readable keyboard under /dev/input; fires on the binding's final key press."""

    backend = "evdev"

    def __init__(self, control: ControlConfig, commands: CommandQueue) -> None:
        import evdev  # optional: python-evdev, Linux only

        self._ecodes = evdev.ecodes
        self._matcher = ChordMatcher()
        for combo, name in bindings(control).items():
            try:
                self._matcher.add(combo, _submitter(commands, name, combo))
            except ValueError as exc:
                raise CommandError(f"control.keys.{name}: {exc}") from None
        self._devices: list[Any] = []
        denied = 0
        key_a = int(evdev.ecodes.KEY_A)
        for path in evdev.list_devices():
            try:
                dev = evdev.InputDevice(path)
            except PermissionError:
                denied += 1
                continue
            except OSError:
                continue
            keys = dev.capabilities().get(evdev.ecodes.EV_KEY, [])
            if key_a in keys:
                self._devices.append(dev)
            else:
                dev.close()
        if not self._devices:
            raise PermissionError(
                f"no readable keyboard under /dev/input ({denied} device(s) denied)"
            )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bgcam-hotkeys", daemon=True)

    def start(self) -> None:
        log.info("evdev hotkeys on %s", ", ".join(d.name for d in self._devices))
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        for dev in self._devices:
            with contextlib.suppress(OSError):
                dev.close()

    def _run(self) -> None:
        ev_key = self._ecodes.EV_KEY
        by_fd = {dev.fd: dev for dev in self._devices}
        while not self._stop.is_set() and by_fd:
            ready, _, _ = select.select(list(by_fd), [], [], 0.5)
            for fd in ready:
                try:
                    events = list(by_fd[fd].read())
                except OSError:  # unplugged
                    log.info("keyboard %s went away", by_fd[fd].name)
                    del by_fd[fd]
                    continue
                for ev in events:
                    if ev.type == ev_key:
                        self._matcher.on_key(int(ev.code), int(ev.value))


# --------------------------------------------------------------------------------------------


def _shortcut_help() -> str:
    exe = shutil.which("bgcam") or "bgcam"
    return (
        "bind these in your desktop's keyboard-shortcut settings (GNOME: Settings → Keyboard → "
        "Custom Shortcuts; KDE: System Settings → Shortcuts → Custom Shortcuts; sway/Hyprland: "
        f"bindsym/bind in the config): Ctrl+Alt+B → `{exe} ctl toggle`, Ctrl+Alt+Up → "
        f"`{exe} ctl blur-up`, Ctrl+Alt+Down → `{exe} ctl blur-down`, Ctrl+Alt+M → "
        f"`{exe} ctl next-mode`"
    )


def start_hotkeys(control: ControlConfig, commands: CommandQueue) -> Hotkeys | None:
    """Start the configured backend; None (after one log line saying why) when none can run."""
    if not bindings(control):
        log.info("hotkeys: no bindings in control.keys")
        return None
    choice = control.hotkey_backend
    kind = session_kind()
    if choice == "auto":
        if kind == "wayland":
            hk = _try_evdev(control, commands, quiet=True)
            if hk is None:
                log.warning(
                    "Wayland session: applications cannot grab global hotkeys here; %s. "
                    "Or join the input group for the evdev backend (sudo usermod -aG input "
                    '$USER, log in again, set control.hotkey_backend = "evdev").',
                    _shortcut_help(),
                )
            return hk
        if kind == "none":
            log.info(
                "no display (DISPLAY and WAYLAND_DISPLAY unset): running without hotkeys; "
                "control BgCam with `bgcam ctl …`. Under systemd, `systemctl --user "
                "import-environment DISPLAY` lets the service see the desktop"
            )
            return None
        return _try_pynput(control, commands)
    if choice == "evdev":
        return _try_evdev(control, commands, quiet=False)
    return _try_pynput(control, commands)


def _try_pynput(control: ControlConfig, commands: CommandQueue) -> Hotkeys | None:
    try:
        hk = PynputHotkeys(control, commands)
        hk.start()
    except CommandError as exc:
        log.error("hotkeys off: %s", exc)
        return None
    except Exception as exc:  # pynput raises ImportError/Xlib errors when no display answers
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        log.warning("hotkeys off: pynput cannot listen here (%s); use `bgcam ctl …`", first)
        return None
    return hk  # it logs its bindings once it is listening


def _try_evdev(control: ControlConfig, commands: CommandQueue, quiet: bool) -> Hotkeys | None:
    try:
        hk = EvdevHotkeys(control, commands)
        hk.start()
    except CommandError as exc:
        log.error("hotkeys off: %s", exc)
        return None
    except ImportError:
        if not quiet:
            log.warning("hotkeys off: python-evdev is not installed (pip install evdev)")
        return None
    except OSError as exc:
        if not quiet:
            log.warning(
                "hotkeys off: %s; join the input group: sudo usermod -aG input $USER "
                "(then log in again)",
                exc,
            )
        return None
    log.info("hotkeys (evdev): %s", _describe(control))
    return hk


def _describe(control: ControlConfig) -> str:
    return ", ".join(f"{combo} → {name}" for combo, name in bindings(control).items())
