"""Sinks: where finished frames go (virtual camera, video file, preview window, nowhere).

A sink is opened once with the output size and rate, then receives exactly ``output.fps`` frames
a second from the pipeline (which does the pacing and repeats frames when late). ``send`` must not
keep a reference to the image: the pipeline reuses the buffer. A sink that sends I420 anyway
(PipeWire; v4l2loopback in I420) says so with ``accepts_i420`` and takes the frame as an I420
(YU12) array, (H * 3/2, W), in ``send_i420``: the CPU compositor then writes I420 directly
(:mod:`bgcam.compose.i420`) and nobody converts the whole frame (:func:`takes_i420`). Built by
name::

    auto            virtualcam when the v4l2loopback device exists, else pipewire
    virtualcam      the "BgCam" virtual camera (pyvirtualcam; v4l2loopback on Linux)
    pipewire        the "BgCam" PipeWire camera (no kernel module; browsers, OBS, Flatpak apps)
    file:PATH       a video file, written atomically at close
    preview         a window (needs a display)
    null            discards frames (benchmarks, tests)
"""

from __future__ import annotations

from typing import Protocol

from bgcam.errors import ConfigError
from bgcam.frame import Image

__all__ = ["Sink", "SinkClosed", "create_sink", "sink_names", "takes_i420"]


class SinkClosed(Exception):
    """The sink was closed from its side (e.g. the preview window); the pipeline stops cleanly."""


class Sink(Protocol):
    name: str
    device: str | None
    """The device node readers open (virtual camera), watched for on-demand; else None."""

    def locate(self) -> str | None:
        """Find the device readers will open, now (before the camera is opened, so both errors
        are reported together); None for a sink without one."""
        ...

    def open(self, size: tuple[int, int], fps: float) -> None:
        """Open for frames of ``size`` (width, height) at ``fps``; raise a BgCamError if not."""
        ...

    def send(self, image: Image) -> None: ...

    def close(self) -> None: ...


def takes_i420(sink: object) -> bool:
    """Whether ``sink`` takes I420 frames (``accepts_i420`` true and a ``send_i420`` method)."""
    return bool(getattr(sink, "accepts_i420", False)) and callable(getattr(sink, "send_i420", None))


def sink_names() -> list[str]:
    return ["auto", "file:PATH", "null", "pipewire", "preview", "virtualcam"]


PLAIN_SINKS = frozenset({"auto", "null", "pipewire", "preview", "virtualcam"})


def split_sinks(spec: str) -> list[str]:
    """The sinks of ``a,b,…``. A ``file:`` path may hold commas: a part after it that names no
    sink (``null``, ``pipewire``, … or ``file:…``) belongs to that path."""
    parts: list[str] = []
    for raw in spec.split(","):
        part = raw.strip()
        names_a_sink = part in PLAIN_SINKS or part.startswith("file:")
        if parts and parts[-1].startswith("file:") and not names_a_sink:
            parts[-1] += "," + raw
        else:
            parts.append(part)
    return parts


def create_sink(
    spec: str,
    device: str = "",
    *,
    device_name: str = "BgCam",
    pixel_format: str = "I420",
) -> Sink:
    """The sink named by ``spec`` (``output.sink``), not yet opened.

    ``a,b`` feeds several sinks the same composed frame (:class:`~bgcam.sinks.multi.MultiSink`,
    split by :func:`split_sinks`);
    ``auto`` is resolved here (:func:`~bgcam.sinks.auto.resolve_auto`).
    """
    parts = split_sinks(spec)
    if len(parts) > 1:
        from bgcam.sinks.multi import MultiSink

        if len(set(parts)) != len(parts) or "" in parts or "auto" in parts:
            raise ConfigError(
                f"output.sink: expected distinct sinks separated by commas, got {spec!r}",
                hint="e.g. --sink virtualcam,pipewire",
            )
        return MultiSink(
            [
                create_sink(p, device, device_name=device_name, pixel_format=pixel_format)
                for p in parts
            ]
        )
    spec = parts[0]
    if spec == "auto":
        from bgcam.sinks.auto import resolve_auto

        spec = resolve_auto(device, device_name)
    name, _, arg = spec.partition(":")
    if name == "pipewire" and not arg:
        from bgcam.sinks.pipewire import PipeWireSink

        return PipeWireSink(device_name)
    if name == "null" and not arg:
        from bgcam.sinks.null import NullSink

        return NullSink()
    if name == "virtualcam" and not arg:
        from bgcam.sinks.virtualcam import VirtualCamSink

        return VirtualCamSink(device, card_name=device_name, pixel_format=pixel_format)
    if name == "preview" and not arg:
        from bgcam.sinks.preview import PreviewSink

        return PreviewSink()
    if name == "file" and arg:
        from bgcam.sinks.file import FileSink

        return FileSink(arg)
    raise ConfigError(
        f"output.sink: expected one of {', '.join(sink_names())}, got {spec!r}",
        hint="e.g. --sink null, --sink file:out.mp4, --sink virtualcam, --sink pipewire",
    )
