"""Reading frames from files: a video, one image, or a folder of images.

Input kinds are detected by decoding, not by file name: an image is a file OpenCV recognises by
its signature and decodes; a video is a file FFmpeg (through PyAV) opens *and* yields a first
frame from; a folder holds at least one such image (other files are skipped). Anything else
raises :class:`~bgcam.errors.InputError` before any output is touched.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2

from bgcam import imageload
from bgcam.errors import InputError
from bgcam.frame import Image
from bgcam.imageload import ImageTooLarge
from bgcam.video.reader import VideoInfo, VideoReader, probe_video

log = logging.getLogger(__name__)

InputKind = Literal["video", "image", "folder"]

DEFAULT_FPS = 30.0


def _natural_key(path: Path) -> list[int | str]:
    """Sort key: names in order, digit runs compared as numbers (frame2 before frame10)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


@dataclass(frozen=True, slots=True)
class InputInfo:
    """What :func:`probe_input` found: the kind, first frame size and frame rate.

    ``count`` is exact for images and folders and the container's estimate for a video, whose
    stream details (time base, sound) are in ``video``.
    """

    path: Path
    kind: InputKind
    size: tuple[int, int]
    fps: float
    count: int
    files: tuple[Path, ...] = ()
    video: VideoInfo | None = None

    def frame_names(self) -> Iterator[str]:
        """The file name each frame keeps in a folder output (image inputs keep theirs)."""
        if self.kind == "video":
            i = 0
            while True:
                yield f"{i:05d}.png"
                i += 1
        for f in self.files:
            yield f.name if cv2.haveImageWriter(f.name) else f.stem + ".png"


def read_image(path: Path) -> Image | None:
    """The image at ``path``, or None when it is not one; ImageTooLarge for a bomb (the
    header is checked before decoding, see :mod:`bgcam.imageload`)."""
    if not cv2.haveImageReader(str(path)):
        return None
    try:
        return imageload.read_image(path)
    except ImageTooLarge:
        raise
    except InputError:
        return None


def open_video(path: Path, threads: int = 0) -> cv2.VideoCapture:
    """Open a video with FFmpeg (any backend as a fallback); ``threads`` > 0 limits the
    decoder's threads (0: FFmpeg's choice, one per core)."""
    params = [cv2.CAP_PROP_N_THREADS, threads] if threads > 0 else []
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, params)
    if not cap.isOpened():
        cap = cv2.VideoCapture(str(path), cv2.CAP_ANY)
    return cap


@contextmanager
def quiet_decoders() -> Iterator[None]:
    """Silence OpenCV's and FFmpeg's stderr chatter while probing: we report failures ourselves.

    OpenCV reads ``OPENCV_FFMPEG_LOGLEVEL`` at every open (-8 = AV_LOG_QUIET); both settings
    are restored afterwards.
    """
    old_env = os.environ.get("OPENCV_FFMPEG_LOGLEVEL")
    old_level = cv2.utils.logging.getLogLevel()
    os.environ["OPENCV_FFMPEG_LOGLEVEL"] = "-8"
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(old_level)
        if old_env is None:
            os.environ.pop("OPENCV_FFMPEG_LOGLEVEL", None)
        else:
            os.environ["OPENCV_FFMPEG_LOGLEVEL"] = old_env


def probe_input(path: str | Path) -> InputInfo:
    """Find out what ``path`` holds by decoding its first frame; raise InputError if nothing."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"input {path} does not exist", hint="check the path (ls it)")
    if path.is_dir():
        return _probe_folder(path)
    if not path.is_file():
        raise InputError(f"input {path} is not a regular file or folder")
    try:
        empty = path.stat().st_size == 0
    except OSError as exc:
        raise InputError(f"cannot read input {path}: {exc}") from None
    if empty:
        raise InputError(f"input {path} is empty (0 bytes): not a video or image")
    if not os.access(path, os.R_OK):
        raise InputError(f"cannot read input {path}: permission denied")
    image = read_image(path)
    if image is not None:
        h, w = image.shape[:2]
        return InputInfo(path, "image", (w, h), DEFAULT_FPS, 1, (path,))
    video = probe_video(path)
    if video is None:
        raise InputError(
            f"input {path} is neither a video nor an image that can be decoded",
            hint="pass a video (.mp4, .avi, .mkv, …), an image (.png, .jpg, …) or a folder "
            "of images; `ffprobe FILE` shows what the file really holds",
        )
    return InputInfo(path, "video", video.size, video.fps, max(video.frames, 1), video=video)


def _probe_folder(path: Path) -> InputInfo:
    try:
        entries = sorted(
            (p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")),
            key=_natural_key,
        )
    except OSError as exc:
        raise InputError(f"cannot list input folder {path}: {exc}") from None
    files = tuple(p for p in entries if cv2.haveImageReader(str(p)))
    skipped = len(entries) - len(files)
    if not files:
        raise InputError(
            f"input folder {path} holds no images"
            + (f" ({skipped} other files)" if skipped else " (it is empty)"),
            hint="put .png/.jpg frames in the folder (they are processed sorted by name), "
            "or pass a video file",
        )
    if skipped:
        log.warning("%s: skipping %d files that are not images", path, skipped)
    first = read_image(files[0])
    if first is None:
        raise InputError(f"cannot decode image {files[0]} (first frame of folder {path})")
    h, w = first.shape[:2]
    return InputInfo(path, "folder", (w, h), DEFAULT_FPS, len(files), files)


def read_frames(info: InputInfo) -> Iterator[Image]:
    """Yield the BGR frames of ``info`` in order, one at a time (a video is streamed).

    For a video the yielded array is reused by the next frame: copy it to keep it.
    """
    if info.video is None:
        for f in info.files:
            image = read_image(f)
            if image is None:
                raise InputError(f"cannot decode image {f}", hint="remove or replace the file")
            yield image
        return
    for image, _ in VideoReader(info.path, info.video):
        yield image
