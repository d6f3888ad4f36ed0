"""Reading the configuration: a TOML file, then ``--set KEY=VALUE`` overrides, then validation."""

from __future__ import annotations

import sys
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bgcam.config.model import Config, from_mapping, model_at, set_dotted
from bgcam.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


def load_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> Config:
    """Build the Config from defaults, an optional TOML file and ``KEY=VALUE`` overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        data = read_toml(Path(path))
    for item in overrides:
        key, value = parse_override(item)
        set_dotted(data, key, value)
    return from_mapping(data, source=str(path) if path else None)


def read_toml(path: Path) -> dict[str, Any]:
    """Read a TOML file, turning every failure into a ConfigError that names the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} does not exist",
            hint="pass an existing file with --config, e.g. --config configs/default.toml",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def parse_override(item: str) -> tuple[str, Any]:
    """Split ``compose.blur=80`` into a key and a TOML-typed value (bare words are strings)."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"override {item!r}: expected KEY=VALUE, e.g. compose.blur=80")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    if isinstance(value, str) and _is_list_key(key):
        # A list setting takes `a,b,c` as well as the TOML list ["a", "b", "c"].
        value = [part.strip() for part in value.split(",") if part.strip()]
    return key, value


def _is_list_key(key: str) -> bool:
    """Whether the dotted ``key`` names a list setting (``segment.providers``)."""
    *sections, name = key.split(".")
    model = model_at(tuple(sections))
    field = model.model_fields.get(name) if model is not None else None
    return field is not None and typing.get_origin(field.annotation) in (tuple, list)
