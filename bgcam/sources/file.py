"""A video file (looped, paced at its own frame rate), one image, or a folder of images.

Pacing: frame n is published at ``t0 + n / fps``, so decoding time does not slow the rate down.
When the reader falls more than one frame behind (a paused process, a stolen core) the schedule
restarts from now instead of bursting frames to catch up. A folder plays at ``source.fps``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import cv2

from bgcam.errors import InputError
from bgcam.frame import Image
from bgcam.media import InputInfo, open_video, probe_input, quiet_decoders, read_image
from bgcam.sources import Source, as_image

log = logging.getLogger(__name__)

SINGLE_THREAD_DECODE = 1920 * 1080
"""Videos up to this many pixels are decoded on the capture thread alone: one core decodes them
well within a frame time, and FFmpeg's frame threads would add a frame of latency each and
their hand-over costs CPU. Larger ones get a thread per core."""


class FileSource(Source):
    kind = "file"

    def __init__(
        self, path: Path, *, loop: bool = True, mirror: bool = False, folder_fps: float = 30.0
    ) -> None:
        super().__init__(str(path), mirror=mirror)
        self.path = path
        self.loop = loop
        self._folder_fps = folder_fps
        self._info: InputInfo | None = None
        self._cap: cv2.VideoCapture | None = None
        self._pos = 0
        self._next = 0.0
        self._still: Image | None = None

    def _connect(self) -> None:
        if self._info is None:
            info = probe_input(self.path)
            self._info = info
            self.native_size = info.size
            self.fps = info.fps if info.kind == "video" else self._folder_fps
            log.info(
                "file source: %s (%s, %dx%d, %.3g fps%s)",
                self.path,
                info.kind,
                info.size[0],
                info.size[1],
                self.fps,
                ", looped" if self.loop else "",
            )
        if self._info.kind == "video":
            w, h = self._info.size
            with quiet_decoders():
                cap = open_video(self.path, threads=1 if w * h <= SINGLE_THREAD_DECODE else 0)
            if not cap.isOpened():
                raise InputError(f"cannot reopen video {self.path}")
            self._cap = cap
        self._pos = 0
        self._next = time.monotonic()

    def _disconnect(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()

    def _pace(self) -> bool:
        """Sleep until the next frame is due; False when stopped meanwhile."""
        period = 1.0 / self.fps
        now = time.monotonic()
        if now - self._next > period:
            self._next = now  # fell behind: restart the schedule, do not burst
        delay = self._next - now
        self._next += period
        return not (delay > 0 and self._stop.wait(delay))

    def _read(self) -> Image | None:
        info = self._info
        assert info is not None
        image = self._read_video() if info.kind == "video" else self._read_still(info)
        if image is None or not self._pace():
            return None
        return image

    def _read_video(self) -> Image | None:
        cap = self._cap
        assert cap is not None
        ok, image = cap.read()
        if not ok:
            if not self.loop or self._pos == 0:
                self._at_end = True
                return None
            # Rewind; a container that cannot seek is reopened.
            if not cap.set(cv2.CAP_PROP_POS_FRAMES, 0) or not (res := cap.read())[0]:
                self._disconnect()
                self._connect()
                assert self._cap is not None
                res = self._cap.read()
            ok, image = res
            if not ok:
                self._lost_reason = f"cannot read {self.path} again after its end"
                return None
            self._pos = 0
        self._pos += 1
        return as_image(image)

    def _read_still(self, info: InputInfo) -> Image | None:
        if self._pos >= len(info.files):
            if not self.loop:
                self._at_end = True
                return None
            self._pos = 0
        if len(info.files) == 1:
            if self._still is None:
                self._still = read_image(info.files[0])
            image = self._still  # frames are read-only downstream: one array serves all
        else:
            image = read_image(info.files[self._pos])
        self._pos += 1
        if image is None:
            self._lost_reason = f"cannot decode {info.files[self._pos - 1]}"
        return image
