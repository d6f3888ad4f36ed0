"""Errors that BgCam reports to users.

Every error a user can act on derives from :class:`BgCamError`; the CLI prints its message (and
hint, when there is one) without a traceback and exits non-zero. ::

    BgCamError                 user-facing, printed without traceback
    ├── ConfigError            a config file, key or value is wrong
    ├── ModelError             a model is missing, corrupt or cannot be fetched
    ├── InputError             an input file/folder/URL cannot be read as video or image
    ├── OutputError            an output file/folder cannot be written
    ├── DeviceError            a camera or virtual-camera device is missing or busy
    └── BackendError           a segmenter/compositor backend cannot run here
"""

from __future__ import annotations


class BgCamError(Exception):
    """An error the user can act on: ``message`` says what failed, ``hint`` how to fix it."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  fix: {self.hint}"
        return self.message


class ConfigError(BgCamError):
    exit_code = 2


class ModelError(BgCamError):
    exit_code = 3


class InputError(BgCamError):
    exit_code = 4


class OutputError(BgCamError):
    exit_code = 7


class DeviceError(BgCamError):
    exit_code = 5


class BackendError(BgCamError):
    exit_code = 6


def combine(errors: list[BgCamError]) -> BgCamError:
    """One error reporting all of ``errors`` (each with its hint); the error itself if alone."""
    if len(errors) == 1:
        return errors[0]
    lines = [f"- {e.message}" + (f"\n    fix: {e.hint}" if e.hint else "") for e in errors]
    return DeviceError("cannot start:\n  " + "\n  ".join(lines))
