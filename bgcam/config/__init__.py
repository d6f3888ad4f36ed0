"""The one validated, frozen configuration object.

Every setting is declared once (:mod:`.sections`: name, type, default, bounds, help text).
``configs/default.toml`` is written from those declarations (:mod:`.reference`) and a test keeps
the two in step. A file or a ``--set KEY=VALUE`` override (:mod:`.loading`) that names an unknown
key, has the wrong type or is out of range raises :class:`~bgcam.errors.ConfigError` naming the
key, what was expected and what was given (:mod:`.messages`). A reload builds a new
:class:`Config` (:mod:`.model`) and swaps it whole.
"""

from bgcam.config.loading import load_config, parse_override, read_toml
from bgcam.config.model import Config, from_mapping
from bgcam.config.reference import describe_keys, render_default_toml
from bgcam.config.sections import (
    MAX_ASPECT,
    MAX_SIDE,
    MIN_SIDE,
    MODES,
    Backend,
    BlurType,
    ComposeConfig,
    ControlConfig,
    EffectsConfig,
    KeysConfig,
    LogConfig,
    Mode,
    OutputConfig,
    RefineConfig,
    SegmentConfig,
    SegmenterName,
    SourceConfig,
    WebConfig,
)

__all__ = [
    "MAX_ASPECT",
    "MAX_SIDE",
    "MIN_SIDE",
    "MODES",
    "Backend",
    "BlurType",
    "ComposeConfig",
    "Config",
    "ControlConfig",
    "EffectsConfig",
    "KeysConfig",
    "LogConfig",
    "Mode",
    "OutputConfig",
    "RefineConfig",
    "SegmentConfig",
    "SegmenterName",
    "SourceConfig",
    "WebConfig",
    "describe_keys",
    "from_mapping",
    "load_config",
    "parse_override",
    "read_toml",
    "render_default_toml",
]
