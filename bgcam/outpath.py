"""One check for every path BgCam writes to, done before any work starts.

``-o``, ``--masks``, ``--sink file:`` and ``--stats-json`` all go through :func:`check_output`,
so they behave alike: the output's own folder is created when it is missing (with its parents),
nothing else is; a path that cannot be written is an :class:`~bgcam.errors.OutputError` that
names the path the user gave and says how to fix it, raised before a frame is processed.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Literal

from bgcam.errors import OutputError

Kind = Literal["file", "folder"]


def _describe(exc: OSError) -> str:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.EROFS:
        return "read-only file system"
    return exc.strerror or str(exc)


def check_output(path: str | Path, *, what: str, kind: Kind = "file") -> Path:
    """``path`` (``~`` expanded) once its folder exists and is writable; ``what`` names the
    option in messages (``"-o"``, ``"--stats-json"``…)."""
    given = str(path)
    target = Path(path).expanduser()
    if kind == "file" and target.is_dir():
        raise OutputError(
            f"{what} {given} is an existing folder, not a file",
            hint=f"give a file name, e.g. {what} {Path(given) / ('out' + _suffix(what))}",
        )
    if kind == "folder" and target.exists() and not target.is_dir():
        raise OutputError(
            f"{what} {given} is an existing file, not a folder",
            hint="choose another name, or remove the file",
        )
    folder = target.parent
    if not folder.is_dir() and not folder.parent.is_dir():
        # Only the output's own folder is created: a typo in `-o /data/typo/x/out.mp4` must
        # not leave folders behind.
        raise OutputError(
            f"cannot write {what} {given}: the folder {folder.parent} does not exist",
            hint=f"check the path, or create it first: mkdir -p {folder}",
        )
    try:
        folder.mkdir(exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise OutputError(
            f"cannot write {what} {given}: a file is in the way of its folder {folder}",
            hint="choose another path, or move that file",
        ) from None
    except OSError as exc:
        raise OutputError(
            f"cannot create the folder {folder} for {what} {given}: {_describe(exc)}",
            hint="choose a folder you can write to (your home or the current folder)",
        ) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(
            f"cannot write {what} {given}: the folder {folder} is not writable",
            hint=f"choose a folder you can write to, or `chmod u+w {folder}`",
        )
    return target


def _suffix(what: str) -> str:
    return ".json" if what == "--stats-json" else ".mp4"
