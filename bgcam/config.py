"""The one validated, frozen configuration object.

Every setting is declared once here (name, type, default, bounds, help text).
``configs/default.toml`` documents each key and a test keeps the two in step. A file or a
``--set KEY=VALUE`` override that names an unknown key, has the wrong type or is out of range
raises :class:`ConfigError` naming the key, what was expected and what was given. A reload builds
a new object and swaps it whole.
"""

from __future__ import annotations

import difflib
import sys
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from bgcam.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

Mode = Literal["blur", "replace", "remove", "off"]
MODES: tuple[Mode, ...] = ("blur", "replace", "remove", "off")
BlurType = Literal["gaussian", "box", "median", "bilateral", "lens"]
SegmenterName = Literal["mediapipe", "onnx", "hsv"]
Backend = Literal["auto", "cpu", "opencl", "cuda"]

MIN_SIDE = 64
"""Smallest frame side: below it segmentation has nothing to work with."""
MAX_SIDE = 8192
MAX_ASPECT = 4.0
"""Widest (or tallest) frame shape accepted: 4:1."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class SourceConfig(_Section):
    """Where frames come from."""

    uri: str = Field(
        "0",
        description="camera index (0), /dev/videoN, a video file, an image folder, or a "
        "stream URL (http://…/mjpeg, rtsp://…)",
    )
    width: int = Field(
        1280, ge=MIN_SIDE, le=MAX_SIDE, description="requested capture width (cameras)"
    )
    height: int = Field(
        720, ge=MIN_SIDE, le=MAX_SIDE, description="requested capture height (cameras)"
    )
    fps: float = Field(30.0, ge=1, le=240, description="requested capture rate (cameras)")
    fourcc: str = Field(
        "MJPG", description="camera pixel format, 4 characters (MJPG, YUYV) or empty for default"
    )
    mirror: bool = Field(False, description="flip the image horizontally")
    loop: bool = Field(True, description="restart a video file at its end")

    @field_validator("fourcc")
    @classmethod
    def _fourcc(cls, v: str) -> str:
        if v and len(v) != 4:
            raise ValueError("a FOURCC of exactly 4 characters, or empty")
        return v


class SegmentConfig(_Section):
    """Which model finds the person."""

    segmenter: SegmenterName = Field(
        "onnx",
        description="onnx (default: the MediaPipe selfie model on onnxruntime, one thread, GPU "
        "when there is one) | mediapipe (the same model on MediaPipe Tasks) | hsv (no model)",
    )
    model: str = Field(
        "auto",
        description="auto (landscape model for frames wider than 4:3) | landscape | general | "
        "a path to a .tflite (mediapipe) or .onnx (onnx) model",
    )
    providers: tuple[str, ...] = Field(
        ("CUDA", "DirectML", "CoreML", "CPU"),
        strict=False,  # TOML gives a list; stored as a tuple so the config stays immutable
        description="onnxruntime execution providers to try, in order",
    )
    threads: int = Field(1, ge=1, le=64, description="inference threads")
    every: int = Field(
        1, ge=0, le=30, description="segment every Nth frame (0 = automatic by load)"
    )
    roi: bool = Field(
        True,
        description="segment a tracked crop around the people instead of the whole frame "
        "(square crops use the general model; close framing runs whole frames as before)",
    )
    roi_margin: float = Field(
        0.15,
        ge=0.05,
        le=1.0,
        description="room around the people in the crop, as a share of their larger side",
    )
    roi_full_every: int = Field(
        15,
        ge=1,
        le=300,
        description="also segment the whole frame every Nth segmented frame, to find "
        "newcomers outside the crop (15 = 0.5 s at 30 fps)",
    )


class RefineConfig(_Section):
    """How the low-resolution model output becomes a steady, edge-aligned alpha matte."""

    temporal: bool = Field(True, description="motion-adaptive temporal smoothing of the mask")
    still_weight: float = Field(
        0.1, gt=0, le=1, description="share of the new mask taken where nothing moves"
    )
    motion_weight: float = Field(
        0.9, gt=0, le=1, description="share of the new mask taken where the image moves"
    )
    motion_compensation: bool = Field(
        True,
        description="follow camera and body motion with optical flow before smoothing",
    )
    flow_detail: Literal["normal", "fine"] = Field(
        "normal",
        description=(
            "optical-flow detail for motion compensation: normal | fine (flow at twice the "
            "resolution: fast limbs and thin objects are followed more closely, ~0.6 ms more "
            "per frame on one core)"
        ),
    )
    motion_threshold: float = Field(
        8.0,
        gt=0,
        le=100,
        description="mean grey-level change (0–255) above which a region counts as moving",
    )
    hysteresis: float = Field(
        0.1,
        ge=0,
        lt=0.5,
        description="a pixel changes side only when the mask crosses 0.5 ± this (0 = off)",
    )
    sharpen: float = Field(
        3.0,
        ge=1,
        le=20,
        description="steepness of the alpha edge around 0.5 (1 = as soft as the model's)",
    )
    edge: Literal["guided", "none"] = Field(
        "guided",
        description="align the mask with image edges: guided (colour-guided filter) | none",
    )
    edge_radius: float = Field(
        0.02,
        gt=0,
        le=0.1,
        description="guided-filter window radius as a fraction of frame height",
    )
    edge_eps: float = Field(
        5e-4,
        gt=0,
        le=1,
        description="guided-filter regularisation (colour 0–1, squared): lower keeps fainter edges",
    )
    work_height: int = Field(
        128,
        ge=32,
        le=4320,
        description="refine at the frame size halved while its height stays ≥ this",
    )


class ComposeConfig(_Section):
    """What happens to the background."""

    mode: Mode = Field("blur", description="blur | replace | remove | off")
    blur: int = Field(60, ge=0, le=100, description="blur strength 0–100, same look at any size")
    blur_type: BlurType = Field(
        "gaussian", description="gaussian | box | median | bilateral | lens (disc bokeh)"
    )
    background: str = Field(
        "", description="image or video (looped) shown behind you in replace mode"
    )
    color: str = Field("#00b140", description="fill colour for remove mode, #rrggbb")
    backend: Backend = Field(
        "auto", description="compositor backend: auto (measured at start) | cpu | opencl | cuda"
    )

    @field_validator("color")
    @classmethod
    def _color(cls, v: str) -> str:
        s = v.removeprefix("#")
        if len(s) != 6 or any(c not in "0123456789abcdefABCDEF" for c in s):
            raise ValueError("a colour as #rrggbb")
        return "#" + s.lower()


class EffectsConfig(_Section):
    """Studio effects on the picture itself: auto-framing and low-light correction."""

    autoframe: bool = Field(
        False,
        description="auto-framing: the picture follows you, centred with headroom, zooming in "
        "a little when you sit back",
    )
    autoframe_zoom: float = Field(
        2.0, ge=1.0, le=4.0, description="auto-framing's largest zoom (1 = never zoom in)"
    )
    autoframe_settle: float = Field(
        1.0,
        ge=0.2,
        le=10.0,
        description="seconds the auto-framing takes to settle after you move (lower = faster)",
    )
    autoframe_dead_zone: float = Field(
        0.05,
        ge=0.0,
        le=0.3,
        description="moves smaller than this share of the picture do not move the frame",
    )
    light: Literal["off", "auto"] = Field(
        "off", description="low-light correction: off | auto (brighten an underexposed person)"
    )
    light_strength: float = Field(
        1.0, ge=0.0, le=1.0, description="share of the low-light correction applied (1 = full)"
    )
    light_max_gain: float = Field(
        4.0, ge=1.0, le=8.0, description="low-light correction brightens at most this many times"
    )


class OutputConfig(_Section):
    """Where frames go."""

    sink: str = Field(
        "auto",
        description="auto (the v4l2loopback camera if it exists, else the PipeWire camera) | "
        "virtualcam | pipewire | file:PATH (a video) | preview (a window) | null; "
        "several with commas, e.g. virtualcam,pipewire",
    )
    device: str = Field(
        "", description="virtual camera device (/dev/videoN); empty = the one named device_name"
    )
    device_name: str = Field(
        "BgCam",
        min_length=1,
        max_length=64,
        description="the camera's name in apps: the v4l2loopback card label looked for, and "
        "the PipeWire camera's description",
    )
    pixel_format: Literal["I420", "YUYV"] = Field(
        "I420",
        description="v4l2loopback pixel format: I420 (4:2:0, half the bytes, what Chrome and "
        "Zoom prefer) | YUYV (4:2:2, what OBS writes; some apps list only it)",
    )
    fps: float = Field(30.0, ge=1, le=120, description="output frame rate, held exactly")
    width: int = Field(
        0,
        ge=0,
        le=MAX_SIDE,
        description=f"output width (0 = the source's, else {MIN_SIDE}–{MAX_SIDE}); sizes are "
        "rounded down to even",
    )
    height: int = Field(
        0, ge=0, le=MAX_SIDE, description=f"output height (0 = the source's, else ≥ {MIN_SIDE})"
    )
    on_demand: bool = Field(
        False,
        description="release the webcam while no application reads the virtual camera "
        "(v4l2loopback readers or PipeWire links)",
    )
    governor: bool = Field(
        True,
        description="when the output cannot hold its fps, lower segmentation quality step by "
        "step (logged) and restore it when there is headroom",
    )

    @field_validator("device_name")
    @classmethod
    def _device_name(cls, v: str) -> str:
        if v != v.strip() or any(not c.isprintable() or c in '"\\,;=' for c in v):
            raise ValueError('a printable name without surrounding spaces or "\\,;= (e.g. BgCam)')
        return v

    @field_validator("width", "height")
    @classmethod
    def _side(cls, v: int) -> int:
        if 0 < v < MIN_SIDE:
            raise ValueError(f"0 (the source's) or {MIN_SIDE}–{MAX_SIDE} pixels")
        return v

    @model_validator(mode="after")
    def _aspect(self) -> OutputConfig:
        w, h = self.width, self.height
        if w and h and max(w / h, h / w) > MAX_ASPECT:
            raise ValueError(f"width and height within {MAX_ASPECT:g}:1 of each other")
        return self


class KeysConfig(_Section):
    """Global hotkeys, in pynput's syntax."""

    toggle: str = Field("<ctrl>+<alt>+b", description="blur on/off")
    blur_up: str = Field("<ctrl>+<alt>+<up>", description="blur strength +10")
    blur_down: str = Field("<ctrl>+<alt>+<down>", description="blur strength −10")
    next_mode: str = Field("<ctrl>+<alt>+m", description="next mode: blur → replace → remove → off")
    autoframe: str = Field(
        "", description="auto-framing on/off (unbound; for example <ctrl>+<alt>+f)"
    )
    light: str = Field(
        "", description="low-light correction auto/off (unbound; for example <ctrl>+<alt>+g)"
    )


class ControlConfig(_Section):
    """How the running daemon is controlled."""

    socket: bool = Field(True, description="serve the control socket for `bgcam ctl`")
    hotkeys: bool = Field(True, description="listen for global hotkeys (X11, Windows, macOS)")
    hotkey_backend: Literal["auto", "pynput", "evdev"] = Field(
        "auto",
        description="auto (pynput; evdev on Wayland) | pynput | "
        "evdev (Linux, needs the input group)",
    )
    keys: KeysConfig = Field(default_factory=KeysConfig)


class WebConfig(_Section):
    """The local web control panel."""

    enabled: bool = Field(False, description="serve the control panel on loopback")
    port: int = Field(8765, ge=1, le=65535, description="TCP port on 127.0.0.1")
    preview_fps: float = Field(10.0, gt=0, le=30, description="live preview rate")


class LogConfig(_Section):
    """What the daemon reports."""

    level: Literal["debug", "info", "warning", "error"] = Field("info", description="log level")
    stats_interval: float = Field(5.0, ge=0, le=3600, description="seconds between stats lines")


class Config(_Section):
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
            _set_dotted(data, key, value)
        return from_mapping(data)


# --------------------------------------------------------------------------------------------
# Loading


def load_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> Config:
    """Build the Config from defaults, an optional TOML file and ``KEY=VALUE`` overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        data = read_toml(Path(path))
    for item in overrides:
        key, value = parse_override(item)
        _set_dotted(data, key, value)
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
    model = _model_at(tuple(sections))
    field = model.model_fields.get(name) if model is not None else None
    return field is not None and typing.get_origin(field.annotation) in (tuple, list)


def from_mapping(data: Mapping[str, Any], source: str | None = None) -> Config:
    """Validate a nested mapping into a Config, with errors that name key, expected and got."""
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        lines = [_describe(err) for err in exc.errors()]
        where = f"{source}: " if source else ""
        raise ConfigError(where + "invalid configuration\n  " + "\n  ".join(lines)) from None


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{key}: {part!r} is a value, not a section")
        node = child
    node[parts[-1]] = value


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
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


def _describe(err: Mapping[str, Any]) -> str:
    loc = tuple(err["loc"])
    key = ".".join(str(p) for p in loc)
    given = err.get("input")
    kind = err["type"]
    if kind == "extra_forbidden":
        parent = _model_at(loc[:-1]) or Config
        known = list(parent.model_fields)
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        maybe = f" (did you mean {'.'.join([*map(str, loc[:-1]), close[0]])!r}?)" if close else ""
        return f"{key}: unknown key{maybe}; expected one of: {', '.join(known)}"
    expected = _expected(err)
    if kind == "tuple_type" or (len(loc) > 2 and isinstance(loc[-1], int)):
        list_key = ".".join(str(p) for p in loc if not isinstance(p, int))
        expected += f' (e.g. --set {list_key}=A,B or {list_key} = ["A", "B"] in a file)'
    return f"{key}: expected {expected}, got {given!r}"


_TYPE_WORDS = {
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "string_type": "a string",
    "tuple_type": "a list",
    "model_type": "a table (section)",
    "dict_type": "a table (section)",
}


def _expected(err: Mapping[str, Any]) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind in _TYPE_WORDS:
        return str(_TYPE_WORDS[kind])
    if kind == "literal_error":
        return "one of " + str(ctx.get("expected", ""))
    bounds = {
        "greater_than": "a value > {gt}",
        "greater_than_equal": "a value ≥ {ge}",
        "less_than": "a value < {lt}",
        "less_than_equal": "a value ≤ {le}",
    }
    if kind in bounds:
        return bounds[kind].format(**ctx)
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    return str(err["msg"]).lower()


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
            model = _model_at(tuple(head.split(".")))
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
