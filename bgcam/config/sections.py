"""The settings, one frozen section per stage, each key declared once (type, default, bounds, help).

:class:`bgcam.config.Config` holds one of each; :mod:`bgcam.config.reference` writes
``configs/default.toml`` from these declarations.
"""

from __future__ import annotations

import sys
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

if sys.version_info >= (3, 11):
    pass
else:  # pragma: no cover - exercised on Python 3.10 only
    pass

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


class Section(BaseModel):
    """A frozen config section: unknown keys and loose types are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class SourceConfig(Section):
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


class SegmentConfig(Section):
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
        description="also segment the whole frame every Nth frame, to find "
        "newcomers outside the crop (15 = 0.5 s at 30 fps)",
    )
    max_skip: int = Field(
        2,
        ge=0,
        le=4,
        description="keyframes: run the model only when the matte is not predictable from the "
        "last one; at most this many frames in a row follow the last matte along the optical "
        "flow (only where nothing near the person moves beyond it); 0 = the model on every frame",
    )


class RefineConfig(Section):
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


class ComposeConfig(Section):
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


class EffectsConfig(Section):
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


class OutputConfig(Section):
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
    compose_budget_ms: float = Field(
        0.0,
        ge=0,
        le=1000,
        description="compositing time per frame above which the governor blurs on a smaller "
        "image (same look, cheaper; logged); 0 = half the frame interval",
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


class KeysConfig(Section):
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


class ControlConfig(Section):
    """How the running daemon is controlled."""

    socket: bool = Field(True, description="serve the control socket for `bgcam ctl`")
    hotkeys: bool = Field(True, description="listen for global hotkeys (X11, Windows, macOS)")
    hotkey_backend: Literal["auto", "pynput", "evdev"] = Field(
        "auto",
        description="auto (pynput; evdev on Wayland) | pynput | "
        "evdev (Linux, needs the input group)",
    )
    keys: KeysConfig = Field(default_factory=KeysConfig)


class WebConfig(Section):
    """The local web control panel."""

    enabled: bool = Field(False, description="serve the control panel on loopback")
    port: int = Field(8765, ge=1, le=65535, description="TCP port on 127.0.0.1")
    preview_fps: float = Field(10.0, gt=0, le=30, description="live preview rate")


class LogConfig(Section):
    """What the daemon reports."""

    level: Literal["debug", "info", "warning", "error"] = Field("info", description="log level")
    stats_interval: float = Field(5.0, ge=0, le=3600, description="seconds between stats lines")
