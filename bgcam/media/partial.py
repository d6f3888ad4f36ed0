"""Atomic outputs: the hidden temporary (``.NAME.partial-PID-XXXX``) every writer works under.

Only a writer's ``commit`` moves it into place, so a failure or Ctrl-C leaves the previous output
untouched; what a killed render left behind is removed by the next one
(:func:`remove_stale_temporaries`).
"""

from __future__ import annotations

import glob
import logging
import os
import re
import secrets
import shutil
from pathlib import Path

from bgcam.errors import OutputError
from bgcam.outpath import check_output

log = logging.getLogger(__name__)


def prepare_parent(path: Path) -> None:
    """Check the output's folder (see :func:`bgcam.outpath.check_output`) and remove what a
    killed render left beside it."""
    check_output(path, what="output", kind="folder" if path.is_dir() else "file")
    remove_stale_temporaries(path)


_PARTIAL = re.compile(r"\.(?P<stem>.*)\.partial-(?P<pid>\d+)-[0-9a-f]{8}(?P<suffix>.*)")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def remove_stale_temporaries(target: Path) -> list[Path]:
    """Remove what a killed render left beside ``target`` (its ``.partial-PID-…`` files and
    folders whose process is gone); return what was removed."""
    removed: list[Path] = []
    try:
        entries = list(target.parent.glob(f".{glob.escape(target.stem)}.partial-*"))
    except OSError:
        return removed
    for entry in entries:
        m = _PARTIAL.fullmatch(entry.name)
        if m is None or m["stem"] != target.stem or m["suffix"] != target.suffix:
            continue
        if _alive(int(m["pid"])):
            continue  # a render running right now
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError as exc:
            log.warning("cannot remove the stale temporary %s: %s", entry, exc)
            continue
        log.info("removed %s, left by an interrupted render", entry)
        removed.append(entry)
    return removed


def temp_name(target: Path) -> Path:
    """A hidden name next to ``target`` keeping its suffix (encoders choose by suffix)."""
    token = f"{os.getpid()}-{secrets.token_hex(4)}"
    return target.with_name(f".{target.stem}.partial-{token}{target.suffix}")


def temp_file(target: Path) -> Path:
    """Create a fresh temporary file for ``target`` (mode from the umask, like any output)."""
    prepare_parent(target)
    tmp = temp_name(target)
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as exc:  # its strerror only: the temporary name means nothing to the user
        raise OutputError(
            f"cannot write {target}: {exc.strerror}",
            hint=f"choose a folder you can write to, or make {target.parent} writable",
        ) from None
    return tmp


def check_replaceable_file(target: Path) -> None:
    if target.is_dir():
        raise OutputError(
            f"output {target} is an existing folder, not a file",
            hint="choose another output name, or remove the folder",
        )
