"""The whole configuration (:class:`Config`) and its validation into one frozen object."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from bgcam.config.messages import describe_error
from bgcam.config.sections import (
    ComposeConfig,
    ControlConfig,
    EffectsConfig,
    LogConfig,
    OutputConfig,
    RefineConfig,
    Section,
    SegmentConfig,
    SourceConfig,
    WebConfig,
)
from bgcam.errors import ConfigError


class Config(Section):
    """The whole configuration: one frozen object, built from defaults, a file and overrides."""

    source: SourceConfig = Field(default_factory=SourceConfig)
    segment: SegmentConfig = Field(default_factory=SegmentConfig)
    refine: RefineConfig = Field(default_factory=RefineConfig)
    compose: ComposeConfig = Field(default_factory=ComposeConfig)
    effects: EffectsConfig = Field(default_factory=EffectsConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    control: ControlConfig = Field(default_factory=ControlConfig)
    web: WebConfig = Field(default_factory=WebConfig)
    log: LogConfig = Field(default_factory=LogConfig)

    def replace(self, **dotted: Any) -> Config:
        """A new validated Config with ``{"compose.blur": 80}``-style keys replaced."""
        data = self.model_dump()
        for key, value in dotted.items():
            set_dotted(data, key, value)
        return from_mapping(data)


def from_mapping(data: Mapping[str, Any], source: str | None = None) -> Config:
    """Validate a nested mapping into a Config, with errors that name key, expected and got."""
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        lines = [
            describe_error(err, model_at(tuple(err["loc"])[:-1]) or Config) for err in exc.errors()
        ]
        where = f"{source}: " if source else ""
        raise ConfigError(where + "invalid configuration\n  " + "\n  ".join(lines)) from None


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{key}: {part!r} is a value, not a section")
        node = child
    node[parts[-1]] = value


def model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] = Config
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
        else:
            return None
    return model
