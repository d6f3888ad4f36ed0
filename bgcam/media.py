"""Reading and writing frames from files: a video, one image, or a folder of images.

Input kinds are detected by decoding, not by file name: an image is a file OpenCV recognises by
its signature and decodes; a video is a file FFmpeg opens *and* yields a first frame from; a folder
holds at least one such image (other files are skipped). Anything else raises
:class:`~bgcam.errors.InputError` before any output is touched.

Outputs are atomic. Every writer works under a hidden temporary name next to its target
(``.NAME.partial-XXXX``) and only :meth:`FrameWriter.commit` moves the result into place, so a
failure or Ctrl-C leaves the previous OUTPUT (if any) untouched and no half-written file behind
(:meth:`FrameWriter.abort` removes the temporary). A folder output that already exists is merged
into: files of the same name are replaced at commit, other files are left alone.
"""

from __future__ import annotations

import logging
import math
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, cast

import cv2
import numpy as np

from bgcam.errors import InputError, OutputError
from bgcam.frame import Image, Mask

log = logging.getLogger(__name__)

InputKind = Literal["video", "image", "folder"]
OutputKind = Literal["video", "image", "folder"]

VIDEO_SUFFIXES: dict[str, str] = {
    # suffix → FOURCC. OpenCV 5's FFmpeg build here writes MPEG-4 part 2 (mp4v) into every one
    # of these containers; H.264 (avc1) is not available in the opencv-contrib-python wheel.
    ".mp4": "mp4v",
    ".m4v": "mp4v",
    ".mov": "mp4v",
    ".mkv": "mp4v",
    ".avi": "mp4v",
}
DEFAULT_FPS = 30.0


def _natural_key(path: Path) -> list[int | str]:
    """Sort key: names in order, digit runs compared as numbers (frame2 before frame10)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


@dataclass(frozen=True, slots=True)
class InputInfo:
    """What :func:`probe_input` found: the kind, first frame size and frame rate.

    ``count`` is exact for images and folders and the container's estimate for a video.
    """

    path: Path
    kind: InputKind
    size: tuple[int, int]
    fps: float
    count: int
    files: tuple[Path, ...] = ()

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
    if not cv2.haveImageReader(str(path)):
        return None
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return cast(Image, image) if image is not None and image.size else None


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
    with quiet_decoders():
        cap = open_video(path)
        ok, frame = cap.read() if cap.isOpened() else (False, None)
    try:
        if not ok or frame is None or frame.ndim != 3:
            raise InputError(
                f"input {path} is neither a video nor an image that OpenCV can decode",
                hint="pass a video (.mp4, .avi, .mkv, …), an image (.png, .jpg, …) or a folder "
                "of images; `ffprobe FILE` shows what the file really holds",
            )
        h, w = frame.shape[:2]
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        cap.release()
    if not math.isfinite(fps) or not 0.0 < fps <= 1000.0:
        log.warning("%s does not say its frame rate; assuming %g fps", path, DEFAULT_FPS)
        fps = DEFAULT_FPS
    return InputInfo(path, "video", (w, h), fps, max(count, 1))


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
    if info.kind != "video":
        for f in info.files:
            image = read_image(f)
            if image is None:
                raise InputError(f"cannot decode image {f}", hint="remove or replace the file")
            yield image
        return
    cap = open_video(info.path)
    if not cap.isOpened():
        raise InputError(f"cannot reopen video {info.path}")
    w, h = info.size
    buf: Image = np.empty((h, w, 3), np.uint8)
    try:
        while True:
            ok, frame = cap.read(buf)
            if not ok:
                return
            buf = cast(Image, frame)  # OpenCV writes into buf when the size matches
            yield buf
    finally:
        cap.release()


# --------------------------------------------------------------------------------------------
# Writing


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


def _prepare_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create folder {path.parent}: {exc}") from None


class FrameWriter(Protocol):
    """Writes frames under a temporary name; ``commit`` moves them into place."""

    path: Path

    def write(self, name: str, image: Image) -> None:
        """Add one frame; ``name`` is the file name it keeps in a folder output."""
        ...

    def commit(self) -> None: ...

    def abort(self) -> None: ...


def _temp_name(target: Path) -> Path:
    """A hidden name next to ``target`` keeping its suffix (encoders choose by suffix)."""
    token = f"{os.getpid()}-{secrets.token_hex(4)}"
    return target.with_name(f".{target.stem}.partial-{token}{target.suffix}")


def _temp_file(target: Path) -> Path:
    """Create a fresh temporary file for ``target`` (mode from the umask, like any output)."""
    _prepare_parent(target)
    tmp = _temp_name(target)
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as exc:
        raise OutputError(f"cannot write in {target.parent}: {exc}") from None
    return tmp


def _check_replaceable_file(target: Path) -> None:
    if target.is_dir():
        raise OutputError(
            f"output {target} is an existing folder, not a file",
            hint="choose another output name, or remove the folder",
        )


class VideoFileWriter:
    """A video at ``fps`` and ``size`` (width, height), encoded by OpenCV's FFmpeg backend.

    MPEG-4 video is 4:2:0, so an odd width or height loses its last column or row.
    """

    def __init__(self, path: Path, fps: float, size: tuple[int, int]) -> None:
        _check_replaceable_file(path)
        self.path = path
        self.size = size
        self._tmp = _temp_file(path)
        fourcc = cv2.VideoWriter.fourcc(*VIDEO_SUFFIXES[path.suffix.lower()])
        self._writer = cv2.VideoWriter(str(self._tmp), cv2.CAP_FFMPEG, fourcc, fps, size)
        if not self._writer.isOpened():
            self.abort()
            raise OutputError(
                f"cannot open a {path.suffix} video writer for {path} "
                f"({size[0]}x{size[1]} at {fps:g} fps)",
                hint="try another container, e.g. -o out.mp4 or -o out.avi",
            )
        self.frames = 0

    def write(self, name: str, image: Image) -> None:
        h, w = image.shape[:2]
        if (w, h) != self.size:
            raise ValueError(f"video frame: expected size {self.size}, got {(w, h)}")
        self._writer.write(image)
        self.frames += 1

    def commit(self) -> None:
        self._writer.release()
        if self.frames == 0 or self._tmp.stat().st_size == 0:
            self.abort()
            raise OutputError(f"no frames were written to {self.path}")
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        writer = getattr(self, "_writer", None)
        if writer is not None:
            writer.release()
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
        _check_replaceable_file(path)
        self.path = path
        self._tmp = _temp_file(path)
        self.frames = 0

    def write(self, name: str, image: Image) -> None:
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

    def __init__(self, path: Path) -> None:
        if path.exists() and not path.is_dir():
            raise OutputError(
                f"output folder {path} is an existing file",
                hint="choose another name, or remove the file",
            )
        self.path = path
        _prepare_parent(path)
        self._tmp = _temp_name(path)
        try:
            self._tmp.mkdir(0o777)
        except OSError as exc:
            raise OutputError(f"cannot write in {path.parent}: {exc}") from None
        self.names: list[str] = []

    def write(self, name: str, image: Image) -> None:
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

    def __init__(self, path: Path) -> None:
        self.path = path
        self._folder = ImageFolderWriter(path)
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


def open_writer(path: Path, kind: OutputKind, fps: float, size: tuple[int, int]) -> FrameWriter:
    """The writer for ``kind`` at ``path`` (temporary until committed)."""
    if kind == "video":
        return VideoFileWriter(path, fps, size)
    if kind == "image":
        return ImageFileWriter(path)
    return ImageFolderWriter(path)
