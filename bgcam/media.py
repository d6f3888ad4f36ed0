"""Reading and writing frames from files: a video, one image, or a folder of images.

Input kinds are detected by decoding, not by file name: an image is a file OpenCV recognises by
its signature and decodes; a video is a file FFmpeg (through PyAV) opens *and* yields a first
frame from; a folder
holds at least one such image (other files are skipped). Anything else raises
:class:`~bgcam.errors.InputError` before any output is touched.

Outputs are atomic. Every writer works under a hidden temporary name next to its target
(``.NAME.partial-XXXX``) and only :meth:`FrameWriter.commit` moves the result into place, so a
failure or Ctrl-C leaves the previous OUTPUT (if any) untouched and no half-written file behind
(:meth:`FrameWriter.abort` removes the temporary). A folder output that already exists is merged
into: files of the same name are replaced at commit, other files are left alone.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal, Protocol

import cv2
import numpy as np

from bgcam import imageload
from bgcam.errors import InputError, OutputError
from bgcam.frame import Image, Mask
from bgcam.imageload import ImageTooLarge
from bgcam.outpath import check_output
from bgcam.video.formats import VIDEO_SUFFIXES
from bgcam.video.reader import VideoInfo, VideoReader, probe_video
from bgcam.video.writer import VideoEncoder

log = logging.getLogger(__name__)

InputKind = Literal["video", "image", "folder"]
OutputKind = Literal["video", "image", "folder"]

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
    """Check the output's folder (see :func:`bgcam.outpath.check_output`) and remove what a
    killed render left beside it."""
    check_output(path, what="output", kind="folder" if path.is_dir() else "file")
    remove_stale_temporaries(path)


_PARTIAL = re.compile(r"\.(?P<stem>.*)\.partial-(?P<pid>\d+)-[0-9a-f]{8}(?P<suffix>.*)")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def remove_stale_temporaries(target: Path) -> list[Path]:
    """Remove what a killed render left beside ``target`` (its ``.partial-PID-…`` files and
    folders whose process is gone); return what was removed."""
    removed: list[Path] = []
    try:
        entries = list(target.parent.glob(f".{glob.escape(target.stem)}.partial-*"))
    except OSError:
        return removed
    for entry in entries:
        m = _PARTIAL.fullmatch(entry.name)
        if m is None or m["stem"] != target.stem or m["suffix"] != target.suffix:
            continue
        if _alive(int(m["pid"])):
            continue  # a render running right now
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError as exc:
            log.warning("cannot remove the stale temporary %s: %s", entry, exc)
            continue
        log.info("removed %s, left by an interrupted render", entry)
        removed.append(entry)
    return removed


class FrameWriter(Protocol):
    """Writes frames under a temporary name; ``commit`` moves them into place."""

    path: Path

    def write(self, name: str, image: Image, pts: int | None = None) -> None:
        """Add one frame; ``name`` is the file name it keeps in a folder output, ``pts`` its
        time in a video output (see :class:`VideoOptions`)."""
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
    except OSError as exc:  # its strerror only: the temporary name means nothing to the user
        raise OutputError(
            f"cannot write {target}: {exc.strerror}",
            hint=f"choose a folder you can write to, or make {target.parent} writable",
        ) from None
    return tmp


def _check_replaceable_file(target: Path) -> None:
    if target.is_dir():
        raise OutputError(
            f"output {target} is an existing folder, not a file",
            hint="choose another output name, or remove the folder",
        )


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
        _check_replaceable_file(path)
        self.path = path
        self.size = size
        opts = options or VideoOptions()
        self._tmp = _temp_file(path)
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
        _check_replaceable_file(path)
        self.path = path
        self._tmp = _temp_file(path)
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
        _prepare_parent(path)
        self._tmp = _temp_name(path)
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
