"""Write run-time changes back to the config file, keeping its comments and layout.

``bgcam ctl save`` ends here. Only keys whose value differs from what the file (plus defaults)
already says are touched, through tomlkit, so comments, ordering and untouched keys survive.

When the daemon was started without ``--config`` there is no file to update; the changes then go
to the user's own config file, :func:`user_config_path` (``~/.config/bgcam/config.toml`` on
Linux), holding only the keys that differ from the defaults. ``bgcam run`` reads that file when
no ``--config`` is given, so a saved change survives a restart.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import platformdirs
import tomlkit
from tomlkit.items import Table

from bgcam.config import Config, load_config
from bgcam.errors import ConfigError

log = logging.getLogger(__name__)

__all__ = ["changed_keys", "save_config", "user_config_path"]


def user_config_path() -> Path:
    """The per-user config file ``bgcam run`` uses when no ``--config`` is given."""
    return Path(platformdirs.user_config_dir("bgcam", appauthor=False)) / "config.toml"


def _leaves(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, f"{prefix}{k}.")
    else:
        yield prefix.rstrip("."), value


def changed_keys(old: Config, new: Config) -> dict[str, Any]:
    """Dotted keys whose value differs between two configs, with the new value (TOML-ready)."""
    before = dict(_leaves(old.model_dump()))
    out: dict[str, Any] = {}
    for key, value in _leaves(new.model_dump()):
        if before.get(key) != value:
            out[key] = list(value) if isinstance(value, tuple) else value
    return out


def save_config(path: Path | None, cfg: Config, baseline: Config | None = None) -> Path:
    """Write the keys of ``cfg`` that differ from ``baseline`` into ``path``; return the file.

    ``baseline`` defaults to what the file currently says (defaults when it does not exist), so
    by default exactly the keys the file would get wrong are written. A pipeline that passes the
    config it started with writes only the run-time changes. ``path=None`` writes
    :func:`user_config_path`. Raises ConfigError when the file cannot be read or written.
    """
    target = Path(path) if path is not None else user_config_path()
    exists = target.is_file()
    if baseline is None:
        baseline = load_config(target) if exists else Config()
    changes = changed_keys(baseline, cfg)
    try:
        text = target.read_text(encoding="utf-8") if exists else ""
        doc = tomlkit.parse(text)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {target}: {exc}") from None
    except tomlkit.exceptions.ParseError as exc:
        raise ConfigError(
            f"{target}: not valid TOML ({exc}); not saving over it",
            hint="fix the file, or save to another one: bgcam run --config NEW.toml",
        ) from None
    if not exists:
        doc.add(tomlkit.comment("BgCam settings saved by `bgcam ctl save` (defaults omitted)."))
    for key, value in changes.items():
        _set(doc, key.split("."), value)
    if not changes and exists:
        log.info("save: nothing changed since %s was read", target)
        return target
    _write_atomic(target, tomlkit.dumps(doc))
    log.info("saved %d setting(s) to %s: %s", len(changes), target, ", ".join(changes) or "-")
    return target


def _set(doc: Any, parts: list[str], value: Any) -> None:
    node = doc
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = tomlkit.table()
            node.add(part, child)
        elif not isinstance(child, (Table, dict)):
            raise ConfigError(f"{'.'.join(parts)}: {part!r} is a value in the file, not a section")
        node = child
    node[parts[-1]] = value


def _write_atomic(target: Path, text: str) -> None:
    target = target.resolve()  # a symlinked config stays a symlink
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        mode = target.stat().st_mode & 0o777 if target.exists() else 0o644
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.chmod(tmp, mode)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ConfigError(f"cannot write config file {target}: {exc}") from None
