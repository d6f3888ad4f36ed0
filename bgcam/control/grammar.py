"""The control commands' names and arguments, and how one is validated.

Every control surface parses with :class:`Command` (the command line, the socket, signals,
hotkeys, the web page). This module imports nothing beyond the standard library, so a client
(`bgcam ctl`) that validates before sending costs a Python start-up, not the daemon's imports;
:mod:`bgcam.control.commands` runs the commands.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["COMMANDS", "SWITCHES", "Command", "CommandError", "CommandTimeout"]

SWITCHES: dict[str, tuple[str, ...]] = {
    "autoframe": ("on", "off", "toggle"),
    "light": ("auto", "off", "toggle"),
}
"""Commands whose argument is one of a few words; without one they toggle (for hotkeys)."""

# name -> kind of argument: None (no argument), "int", "str" or "switch" (SWITCHES, optional)
COMMANDS: dict[str, str | None] = {
    "toggle": None,
    "blur_up": None,
    "blur_down": None,
    "blur": "int",
    "mode": "str",
    "next_mode": None,
    "blur_type": "str",
    "background": "str",
    "segmenter": "str",
    "roi": "str",
    "roi_margin": "str",
    "roi_full_every": "str",
    "max_skip": "str",
    "autoframe": "switch",
    "light": "switch",
    "pause": None,
    "resume": None,
    "reload": None,
    "save": None,
    "status": None,
    "quit": None,
}


class CommandError(ValueError):
    """A request that cannot be run: unknown name, bad argument, full queue, failed effect."""


class CommandTimeout(CommandError):
    """The daemon did not apply a command in time; ``applied`` is False when it never will be
    (it was withdrawn before it started), None when it is still running."""

    def __init__(self, message: str, applied: bool | None) -> None:
        super().__init__(message)
        self.applied = applied


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    arg: str | int | None = None

    @classmethod
    def from_text(cls, name: str, text: str | None) -> Command:
        """:meth:`parse` for a command line, where every argument is a string (``blur 40``)."""
        arg: object = text
        if text is not None and COMMANDS.get(name) == "int":
            try:
                arg = int(text)
            except ValueError:
                raise CommandError(f"{name}: expected an integer 0–100, got {text!r}") from None
        return cls.parse(name, arg)

    @classmethod
    def parse(cls, name: object, arg: object = None) -> Command:
        """Validate a name and argument as a client sent them (JSON types: ``40``, not ``"40"``;
        a command line goes through :meth:`from_text`)."""
        if not isinstance(name, str) or name not in COMMANDS:
            raise CommandError(f"unknown command {name!r}; expected one of {', '.join(COMMANDS)}")
        kind = COMMANDS[name]
        if kind == "switch":
            words = SWITCHES[name]
            word = "toggle" if arg is None else arg
            if word == "on" and "on" not in words:
                word = words[0]  # `light on` means its first word (auto)
            if not isinstance(word, str) or word not in words:
                raise CommandError(f"{name}: expected one of {', '.join(words)}, got {arg!r}")
            return cls(name, word)
        if kind is None:
            if arg is not None:
                raise CommandError(f"{name}: takes no argument, got {arg!r}")
            return cls(name)
        if arg is None:
            raise CommandError(f"{name}: needs an argument ({kind})")
        if kind == "int":
            if isinstance(arg, bool) or not isinstance(arg, int):
                raise CommandError(f"{name}: expected an integer 0–100, got {arg!r}")
            value = arg
            if not 0 <= value <= 100:
                raise CommandError(f"{name}: expected an integer 0–100, got {value}")
            return cls(name, value)
        if not isinstance(arg, str) or not arg:
            raise CommandError(f"{name}: expected a non-empty string, got {arg!r}")
        return cls(name, arg)
