"""A sink that discards frames: for benchmarks, tests and measuring the pipeline alone."""

from __future__ import annotations

from bgcam.frame import Image


class NullSink:
    name = "null"
    device: str | None = None

    def __init__(self) -> None:
        self.frames = 0
        self.size: tuple[int, int] | None = None

    def open(self, size: tuple[int, int], fps: float) -> None:
        self.size = size

    def locate(self) -> str | None:
        return None

    def send(self, image: Image) -> None:
        self.frames += 1

    def close(self) -> None:
        pass
