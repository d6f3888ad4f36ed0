"""The settings as a reference: every key with its help and default, and the default TOML text."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from bgcam.config.model import Config, model_at


def describe_keys() -> list[tuple[str, str, Any]]:
    """Every leaf setting as (dotted key, help text, default), in declaration order."""
    out: list[tuple[str, str, Any]] = []

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            ann = field.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                walk(ann, f"{prefix}{name}.")
            else:
                out.append((prefix + name, field.description or "", field.get_default()))

    walk(Config, "")
    return out


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def render_default_toml() -> str:
    """The documented default configuration as TOML text (source of configs/default.toml)."""
    lines = [
        "# BgCam configuration: every key with its default and what it does.",
        "# Copy this file, change what you need, run `bgcam run --config FILE`.",
        "# Any key may also be set on the command line: --set compose.blur=80",
    ]
    section = None
    defaults = Config()
    for key, help_text, _ in describe_keys():
        head, _, name = key.rpartition(".")
        if head != section:
            section = head
            model = model_at(tuple(head.split(".")))
            doc = (model.__doc__ or "").strip().splitlines()[0] if model else ""
            lines += ["", f"[{head}]"]
            if doc:
                lines.append(f"# {doc}")
        value: Any = defaults
        for part in key.split("."):
            value = getattr(value, part)
        lines.append(f"# {help_text}")
        lines.append(f"{name} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"
