"""The live preview: the newest output frame, downscaled and JPEG-encoded on demand.

Nothing is encoded while nobody watches: the MJPEG stream asks :meth:`PreviewEncoder.encode`
at most ``web.preview_fps`` times a second per viewer, and several viewers of the same frame share
one encoding (the result is cached by frame index). The frame is shrunk to at most
:data:`MAX_WIDTH` pixels wide into a buffer reused from call to call, so a viewer at 10 fps costs
a few milliseconds of CPU per second.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import cv2
import numpy as np

from bgcam.frame import Image

__all__ = ["JPEG_QUALITY", "MAX_WIDTH", "PreviewEncoder"]

MAX_WIDTH = 640
JPEG_QUALITY = 75

LatestOutput = Callable[[], tuple[Image | None, int]]


class PreviewEncoder:
    """Turns ``latest()`` into JPEG bytes, once per new frame, thread-safe."""

    def __init__(
        self, latest: LatestOutput, max_width: int = MAX_WIDTH, quality: int = JPEG_QUALITY
    ) -> None:
        self._latest = latest
        self.max_width = max_width
        self._params = [cv2.IMWRITE_JPEG_QUALITY, quality]
        self._lock = threading.Lock()
        self._small: Image | None = None
        self._jpeg: bytes | None = None
        self._index = -1
        self.encoded = 0  # frames encoded so far (tests check that idle means zero)

    def encode(self) -> tuple[bytes | None, int]:
        """(JPEG of the newest output, its frame index); (None, -1) before the first frame."""
        with self._lock:
            image, index = self._latest()
            if image is None:
                return None, -1
            if index == self._index and self._jpeg is not None:
                return self._jpeg, index
            ok, buf = cv2.imencode(".jpg", self._shrink(image), self._params)
            if not ok:  # pragma: no cover - OpenCV encodes any BGR uint8 image
                return self._jpeg, self._index
            self._jpeg = buf.tobytes()
            self._index = index
            self.encoded += 1
            return self._jpeg, index

    def _shrink(self, image: Image) -> Image:
        h, w = image.shape[:2]
        if w <= self.max_width:
            return image
        size = (self.max_width, max(1, round(h * self.max_width / w)))
        small = self._small
        if small is None or small.shape[1::-1] != size:
            small = self._small = np.empty((size[1], size[0], 3), np.uint8)
        # INTER_LINEAR: at 2x it averages 2x2 pixels like INTER_AREA; at other factors it is
        # several times cheaper than INTER_AREA (1080p: 1.4 vs 7.6 ms) with mild aliasing.
        cv2.resize(image, size, dst=small, interpolation=cv2.INTER_LINEAR)
        return small
