"""Sinks: where finished frames go (virtual camera, video file, preview window, nowhere).

A sink is opened once with the output size and rate, then receives exactly ``output.fps`` frames
a second from the pipeline (which does the pacing and repeats frames when late). ``send`` must not
keep a reference to the image: the pipeline reuses the buffer. Built by name::

    virtualcam      the "BgCam" virtual camera (pyvirtualcam; v4l2loopback on Linux)
    file:PATH       a video file, written atomically at close
    preview         a window (needs a display)
    null            discards frames (benchmarks, tests)
"""

from __future__ import annotations

from typing import Protocol

from bgcam.errors import ConfigError
from bgcam.frame import Image

__all__ = ["Sink", "SinkClosed", "create_sink", "sink_names"]


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


def sink_names() -> list[str]:
    return ["file:PATH", "null", "preview", "virtualcam"]


def create_sink(spec: str, device: str = "") -> Sink:
    """The sink named by ``spec`` (``output.sink``), not yet opened."""
    name, _, arg = spec.partition(":")
    if name == "null" and not arg:
        from bgcam.sinks.null import NullSink

        return NullSink()
    if name == "virtualcam" and not arg:
        from bgcam.sinks.virtualcam import VirtualCamSink

        return VirtualCamSink(device)
    if name == "preview" and not arg:
        from bgcam.sinks.preview import PreviewSink

        return PreviewSink()
    if name == "file" and arg:
        from bgcam.sinks.file import FileSink

        return FileSink(arg)
    raise ConfigError(
        f"output.sink: expected one of {', '.join(sink_names())}, got {spec!r}",
        hint="e.g. --sink null, --sink file:out.mp4, --sink virtualcam",
    )
