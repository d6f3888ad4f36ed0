"""``file:PATH``: the output as a video file, moved into place only when the run ends cleanly."""

from __future__ import annotations

import logging
from pathlib import Path

from bgcam.errors import OutputError
from bgcam.frame import Image
from bgcam.media import VideoFileWriter
from bgcam.outpath import check_output
from bgcam.video.formats import VIDEO_SUFFIXES

log = logging.getLogger(__name__)


class FileSink:
    name = "file"
    device: str | None = None

    def __init__(self, path: str) -> None:
        self.path = Path(path).expanduser()
        if self.path.suffix.lower() not in VIDEO_SUFFIXES:
            raise OutputError(
                f"output file {self.path}: unknown video type {self.path.suffix or '(none)'}",
                hint=f"use one of {', '.join(VIDEO_SUFFIXES)}, e.g. --sink file:out.mp4",
            )
        check_output(self.path, what="--sink file:")
        self._writer: VideoFileWriter | None = None

    def open(self, size: tuple[int, int], fps: float) -> None:
        self._writer = VideoFileWriter(self.path, fps, size)

    def locate(self) -> str | None:
        return None

    def send(self, image: Image) -> None:
        assert self._writer is not None, "send() before open()"
        self._writer.write("", image)

    def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is None:
            return
        try:
            writer.commit()
        except OutputError as exc:
            log.warning("file sink: %s", exc.message)
        else:
            log.info("wrote %d frames to %s", writer.frames, self.path)
