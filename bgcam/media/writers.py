"""Writing frames to files: a video, one image, a folder of images, or a folder of masks.

Every writer works under a hidden temporary (:mod:`bgcam.media.partial`) and only
:meth:`FrameWriter.commit` moves the result into place (:meth:`FrameWriter.abort` removes it). A
folder output that already exists is merged into: files of the same name are replaced at commit,
other files are left alone.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal, Protocol

import cv2
import numpy as np

from bgcam.errors import OutputError
from bgcam.frame import Image, Mask
from bgcam.media.partial import check_replaceable_file, prepare_parent, temp_file, temp_name
from bgcam.video.formats import VIDEO_SUFFIXES
from bgcam.video.writer import VideoEncoder

log = logging.getLogger(__name__)

OutputKind = Literal["video", "image", "folder"]


def output_kind(path: str | Path) -> OutputKind:
    """What to write at ``path``: an existing folder or a name without suffix is a folder."""
    path = Path(path)
    if path.is_dir():
        return "folder"
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return "video"
    if suffix and cv2.haveImageWriter(path.name):
        return "image"
    if not suffix:
        return "folder"
    raise OutputError(
        f"cannot tell what to write from the output name {path} (suffix {suffix!r})",
        hint=f"use {', '.join(VIDEO_SUFFIXES)} for a video, .png or .jpg for an image, or a name "
        "without a suffix for a folder of images",
    )


class FrameWriter(Protocol):
    """Writes frames under a temporary name; ``commit`` moves them into place."""

    path: Path

    def write(self, name: str, image: Image, pts: int | None = None) -> None:
        """Add one frame; ``name`` is the file name it keeps in a folder output, ``pts`` its
        time in a video output (see :class:`VideoOptions`)."""
        ...

    def commit(self) -> None: ...

    def abort(self) -> None: ...


@dataclass(frozen=True, slots=True)
class VideoOptions:
    """How a video output is encoded (see :class:`~bgcam.video.writer.VideoEncoder`)."""

    crf: int | None = None
    """Quality: lower is better and larger (``None``: the codec's default)."""
    audio_from: Path | None = None
    """Copy the sound of this file into the output."""
    time_base: Fraction | None = None
    """Unit of the frames' ``pts`` (``None``: one frame at the output rate)."""
    colour: tuple[int, int, int] | None = None
    """Colour tags of the input (see :class:`~bgcam.video.reader.VideoInfo`)."""


class VideoFileWriter:
    """A video at ``fps`` and ``size`` (width, height): H.264 (VP9 for .webm) in 4:2:0, so an
    odd width or height loses its last column or row."""

    def __init__(
        self,
        path: Path,
        fps: float,
        size: tuple[int, int],
        options: VideoOptions | None = None,
    ) -> None:
        check_replaceable_file(path)
        self.path = path
        self.size = size
        opts = options or VideoOptions()
        self._tmp = temp_file(path)
        try:
            self._encoder: VideoEncoder | None = VideoEncoder(
                self._tmp,
                size,
                fps=fps,
                suffix=path.suffix,
                time_base=opts.time_base,
                crf=opts.crf,
                audio_from=opts.audio_from,
                colour=opts.colour,
                label=path,
            )
        except OutputError:
            self._tmp.unlink(missing_ok=True)
            raise
        audio = self._encoder.audio
        self.audio = audio.summary if audio is not None else None
        """What happens to the sound: ``"copied (aac)"``, ``"re-encoded (… → aac)"``, None."""
        self.frames = 0

    @property
    def end_time(self) -> float:
        """Where the last written frame ends, in seconds."""
        return self._encoder.end_time if self._encoder is not None else 0.0

    def write(self, name: str, image: Image, pts: int | None = None) -> None:
        assert self._encoder is not None, "write() after commit() or abort()"
        self._encoder.write(image, pts)
        self.frames += 1

    def commit(self, audio_until: float | None = None) -> None:
        encoder, self._encoder = self._encoder, None
        if encoder is None:
            return
        try:
            encoder.close(audio_until)
        except OutputError:
            self._tmp.unlink(missing_ok=True)
            raise
        if self.frames == 0 or self._tmp.stat().st_size == 0:
            self.abort()
            raise OutputError(f"no frames were written to {self.path}")
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        encoder, self._encoder = getattr(self, "_encoder", None), None
        if encoder is not None:
            encoder.abandon()
        self._tmp.unlink(missing_ok=True)


def _imwrite(path: Path, image: Image) -> None:
    try:
        ok = cv2.imwrite(str(path), image)
    except cv2.error as exc:
        raise OutputError(f"cannot encode {path.name}: {exc}") from None
    if not ok:
        raise OutputError(f"cannot write image {path} (disk full or unsupported format?)")


class ImageFileWriter:
    """One image file: the last written frame."""

    def __init__(self, path: Path) -> None:
        check_replaceable_file(path)
        self.path = path
        self._tmp = temp_file(path)
        self.frames = 0

    def write(self, name: str, image: Image, pts: int | None = None) -> None:
        if self.frames:
            raise OutputError(f"{self.path} is one image, but the input has several frames")
        _imwrite(self._tmp, image)
        self.frames += 1

    def commit(self) -> None:
        if not self.frames:
            self.abort()
            raise OutputError(f"no frame was written to {self.path}")
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        self._tmp.unlink(missing_ok=True)


class ImageFolderWriter:
    """A folder of images, each under the name given to :meth:`write`."""

    def __init__(self, path: Path, *, force: bool = False) -> None:
        if path.exists() and not path.is_dir():
            raise OutputError(
                f"output folder {path} is an existing file",
                hint="choose another name, or remove the file",
            )
        if not force and path.is_dir() and any(path.iterdir()):
            raise OutputError(
                f"output folder {path} is not empty: its frames would be overwritten",
                hint="choose a new folder, or add --force to write into it",
            )
        self.path = path
        prepare_parent(path)
        self._tmp = temp_name(path)
        try:
            self._tmp.mkdir(0o777)
        except OSError as exc:
            raise OutputError(f"cannot write in {path.parent}: {exc}") from None
        self.names: list[str] = []

    def write(self, name: str, image: Image, pts: int | None = None) -> None:
        _imwrite(self._tmp / name, image)
        self.names.append(name)

    def commit(self) -> None:
        if not self.path.exists():
            os.replace(self._tmp, self.path)
            return
        for name in self.names:
            os.replace(self._tmp / name, self.path / name)
        shutil.rmtree(self._tmp, ignore_errors=True)

    def abort(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)


class MaskFolderWriter:
    """Alpha mattes as 8-bit PNGs (0 = background, 255 = person) in a folder, atomically."""

    def __init__(self, path: Path, *, force: bool = False) -> None:
        self.path = path
        self._folder = ImageFolderWriter(path, force=force)
        self._buf: np.ndarray | None = None

    def write_mask(self, stem: str, alpha: Mask) -> None:
        if self._buf is None or self._buf.shape != alpha.shape:
            self._buf = np.empty(alpha.shape, np.uint8)
        cv2.convertScaleAbs(alpha, dst=self._buf, alpha=255.0)  # rounds and saturates
        self._folder.write(stem + ".png", self._buf)

    def commit(self) -> None:
        self._folder.commit()

    def abort(self) -> None:
        self._folder.abort()


def open_writer(
    path: Path,
    kind: OutputKind,
    fps: float,
    size: tuple[int, int],
    video: VideoOptions | None = None,
    *,
    force: bool = False,
) -> FrameWriter:
    """The writer for ``kind`` at ``path`` (temporary until committed); ``force`` allows a
    folder output that already holds files."""
    if kind == "video":
        return VideoFileWriter(path, fps, size, video)
    if kind == "image":
        return ImageFileWriter(path)
    return ImageFolderWriter(path, force=force)
