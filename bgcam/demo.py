"""``bgcam demo``: BgCam at work on a machine without a webcam, from material in the package.

A short clip is made from the bundled photo (:file:`bgcam/data/astronaut.jpg`): a slow pan and
zoom, like a hand-held camera, with the grain of a real sensor (Gaussian noise whose pattern
changes every frame). Each frame goes through the live :class:`~bgcam.engine.Engine`; the
result is written side by side with the input (before | after) as an H.264 video, and shown in
the preview window as it is made when there is a display.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import cast

import cv2
import numpy as np

from bgcam.config import Config
from bgcam.engine import Engine
from bgcam.errors import BgCamError, InputError
from bgcam.frame import Image
from bgcam.media import VideoFileWriter
from bgcam.outpath import check_output
from bgcam.sinks import SinkClosed

log = logging.getLogger(__name__)

PHOTO = "astronaut.jpg"
NOISE_SIGMA = 6.0
"""Standard deviation of the sensor grain, in 8-bit levels (a webcam in an office)."""


@dataclass(frozen=True, slots=True)
class DemoResult:
    path: Path
    frames: int
    seconds: float
    previewed: bool


def bundled_photo() -> Image:
    """The photo shipped in the package (BGR)."""
    data = resources.files("bgcam.data").joinpath(PHOTO).read_bytes()
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"the bundled {PHOTO} does not decode", hint="reinstall BgCam")
    return cast(Image, image)


class PanZoom:
    """Frames of ``size`` cut from ``photo`` by a window that drifts and zooms smoothly."""

    def __init__(self, photo: Image, size: tuple[int, int], frames: int) -> None:
        self.photo = photo
        self.size = size
        self.frames = max(frames, 2)
        w, h = size
        self._out: Image = np.empty((h, w, 3), np.uint8)
        self._noise = np.empty((h, w, 3), np.int16)
        self._work = np.empty((h, w, 3), np.int16)
        self._m = np.empty((2, 3), np.float64)
        self._mean = np.zeros(3)
        self._sigma = np.full(3, NOISE_SIGMA)

    def frame(self, i: int) -> Image:
        """Frame ``i``: the window's centre and scale follow slow sines (no jumps at the ends)."""
        ph, pw = self.photo.shape[:2]
        w, h = self.size
        t = i / (self.frames - 1)
        # The largest window of the output's aspect that fits, zoomed in by up to 15 %, kept
        # around the face (upper third of the portrait).
        base = min(pw / w, ph / h)
        scale = base / (1.0 + 0.15 * (0.5 - 0.5 * np.cos(2 * np.pi * t)))
        cx = pw / 2 + 0.10 * pw * np.sin(2 * np.pi * t)
        cy = 0.36 * ph + 0.04 * ph * np.sin(4 * np.pi * t)
        # Keep the window inside the photo.
        cx = float(np.clip(cx, w * scale / 2, pw - w * scale / 2))
        cy = float(np.clip(cy, h * scale / 2, ph - h * scale / 2))
        m = self._m
        m[:] = ((scale, 0.0, cx - w * scale / 2), (0.0, scale, cy - h * scale / 2))
        cv2.warpAffine(
            self.photo,
            m,
            self.size,
            dst=self._out,
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REFLECT,
        )
        # Sensor grain: fresh noise every frame, added with saturation.
        cv2.randn(self._noise, self._mean, self._sigma)
        np.add(self._out, self._noise, out=self._work, casting="unsafe")
        np.clip(self._work, 0, 255, out=self._work)
        self._out[...] = self._work
        return self._out


def _has_display() -> bool:
    if not sys.platform.startswith("linux"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _label(image: Image, text: str) -> None:
    h = image.shape[0]
    scale = max(h / 720, 0.4)
    org = (int(16 * scale), int(40 * scale))
    cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 4, cv2.LINE_AA)
    cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)


def run_demo(
    cfg: Config,
    output: str | Path,
    *,
    seconds: float = 4.0,
    size: tuple[int, int] = (640, 360),
    fps: float = 30.0,
    preview: bool = True,
) -> DemoResult:
    """Render the demo into ``output`` (before | after, side by side)."""
    path = check_output(output, what="-o")
    frames = max(round(seconds * fps), 2)
    source = PanZoom(bundled_photo(), size, frames)
    w, h = size
    both: Image = np.empty((h, 2 * w, 3), np.uint8)
    window = None
    if preview and _has_display():
        from bgcam.sinks.preview import PreviewSink

        window = PreviewSink()
        try:
            window.open((2 * w, h), fps)
        except BgCamError as exc:
            log.info("no preview: %s", exc.message)
            window = None
    t0 = time.monotonic()
    writer = VideoFileWriter(path, fps, (2 * w, h))
    try:
        with Engine(cfg, size) as engine:
            for i in range(frames):
                image = source.frame(i)
                both[:, :w] = image
                both[:, w:] = engine.process(image)
                _label(both[:, :w], "before")
                _label(both[:, w:], f"after: {cfg.compose.mode}")
                writer.write("", both)
                if window is not None:
                    try:
                        window.send(both)
                    except SinkClosed:  # the window was closed: keep rendering without it
                        window.close()
                        window = None
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    finally:
        if window is not None:
            window.close()
    return DemoResult(path, frames, time.monotonic() - t0, preview and window is not None)
