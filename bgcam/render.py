"""Offline rendering: run the live engine over a video, an image or a folder of images.

The input is one sequence: one :class:`~bgcam.engine.Engine` processes every frame in order, so the
temporal smoother carries its state from frame to frame exactly as it does live. Frames are
streamed (one decoded frame in memory at a time), so memory does not grow with the input length.

Frame sizes inside a folder may differ. Every frame is processed at the *first* frame's size
(resized to it when needed, with one warning) so the sequence keeps one engine and one smoother
state; a folder or image output and the masks are then written back at each frame's own size,
a video output keeps the first frame's size.

A video input keeps its timing (each frame's own timestamp, so variable frame rates survive)
and its sound (copied, see :mod:`bgcam.video.writer`), unless ``fps`` re-times the frames or
``audio=False``. An input that stops decoding early (cut off, damaged) is rendered as far as it
goes, with a warning naming the frames announced and read; :attr:`RenderResult.short` tells.

Nothing is written before the input, the output name and the config have been checked and the
engine has been built; outputs are atomic (see :mod:`bgcam.media`).
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import cv2
import numpy as np

from bgcam.config import Config
from bgcam.engine import Engine
from bgcam.errors import BgCamError, InputError, OutputError
from bgcam.frame import Image, Mask
from bgcam.media import (
    FrameWriter,
    InputInfo,
    MaskFolderWriter,
    OutputKind,
    VideoFileWriter,
    VideoOptions,
    open_writer,
    output_kind,
    probe_input,
    read_frames,
)
from bgcam.outpath import check_output
from bgcam.video.ahead import DecodeAhead
from bgcam.video.reader import VideoReader

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
"""Called after each frame with (frames done, expected total)."""


@dataclass(frozen=True, slots=True)
class RenderResult:
    """What :func:`render` wrote."""

    input: InputInfo
    output: Path
    output_kind: OutputKind
    masks: Path | None
    frames: int
    seconds: float
    resized: int
    expected: int = 0
    """Frames the input announced (a video's container; 0 when unknown)."""
    short: bool = False
    """The input stopped decoding early (see the warning logged)."""
    audio: str | None = None
    """What happened to the sound: ``"copied (aac)"``, ``"re-encoded (pcm_s16le → aac)"``…"""

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


class Stop:
    """Set from a signal handler (one attribute write), read by :func:`render` between frames."""

    def __init__(self) -> None:
        self.requested = ""
        """The reason (e.g. ``"SIGTERM"``); empty while rendering goes on."""


class RenderStopped(BgCamError):
    """The render was stopped (a signal) before its end; nothing was written."""

    def __init__(self, reason: str, output: Path) -> None:
        super().__init__(f"render stopped by {reason}; {output} was not written")
        signum = getattr(signal, reason, None)
        self.exit_code = 128 + int(signum) if signum is not None else 1


def check_outputs(info: InputInfo, output: Path, masks: Path | None) -> OutputKind:
    """The output kind for ``info``; raises before anything is written when they do not fit."""
    kind = output_kind(output)
    check_output(output, what="-o", kind="folder" if kind == "folder" else "file")
    if masks is not None:
        check_output(masks, what="--masks", kind="folder")
    if kind == "image" and info.kind != "image":
        raise OutputError(
            f"cannot write the {info.kind} {info.path} as the single image {output}",
            hint="give a folder (a name without suffix) or a video name such as out.mp4",
        )
    resolved = {info.path.resolve()}
    for target in (output, masks):
        if target is not None and target.resolve() in resolved:
            raise OutputError(
                f"output {target} would overwrite the input (or the other output)",
                hint="write to another path",
            )
        if target is not None:
            resolved.add(target.resolve())
    if masks is not None and info.kind == "folder":
        stems = [f.stem for f in info.files]
        if len(set(stems)) != len(stems):
            dup = sorted({s for s in stems if stems.count(s) > 1})
            raise InputError(
                f"input folder {info.path} has several images named {dup[0]}.* "
                "and --masks names each mask after its image's stem",
                hint="keep one image per name",
            )
    return kind


class _Resizer:
    """Brings frames to the engine size and results back to each frame's own size."""

    def __init__(self, size: tuple[int, int]) -> None:
        w, h = size
        self.size = size
        self._in = np.empty((h, w, 3), np.uint8)
        self.count = 0

    def to_engine(self, image: Image) -> Image:
        h, w = image.shape[:2]
        if (w, h) == self.size:
            return image
        if self.count == 0:
            log.warning(
                "frame size %dx%d differs from the first frame's %dx%d: "
                "processing such frames at %dx%d",
                w,
                h,
                *self.size,
                *self.size,
            )
        self.count += 1
        cv2.resize(image, self.size, dst=self._in, interpolation=cv2.INTER_AREA)
        return self._in


def _video_options(
    info: InputInfo, kind: OutputKind, fps: float | None, audio: bool, crf: int | None
) -> VideoOptions:
    """How the output video is encoded: the input's timing and sound unless ``fps`` re-times."""
    video = info.video
    if kind != "video" or video is None:
        return VideoOptions(crf=crf)
    if fps is not None:
        if audio and video.audio:
            log.warning("--fps re-times the frames, so the sound of %s is left out", info.path)
        return VideoOptions(crf=crf, colour=video.colour)
    return VideoOptions(
        crf=crf,
        audio_from=info.path if audio and video.audio else None,
        time_base=video.time_base,
        colour=video.colour,
    )


def _frames(info: InputInfo, reader: VideoReader | None) -> Generator[tuple[Image, int | None]]:
    if reader is not None:
        # Decoding on a thread of its own overlaps the engine's work (see DecodeAhead).
        with DecodeAhead(reader) as ahead:
            yield from ahead
        return
    for image in read_frames(info):
        yield image, None


def _warn_short(info: InputInfo, reader: VideoReader) -> None:
    video = info.video
    if video is None or not video.frames:
        expected = "more frames"
    else:
        expected = f"{'' if video.exact else 'about '}{video.frames} frames"
    log.warning(
        "%s ends early: the file announces %s, %d were read; decoding stopped at %.2f s%s "
        "(the output has the frames read)",
        info.path,
        expected,
        reader.read,
        reader.last_time,
        f" ({reader.error})" if reader.error else "",
    )


def render(
    cfg: Config,
    input_path: str | Path,
    output_path: str | Path,
    *,
    masks: str | Path | None = None,
    fps: float | None = None,
    audio: bool = True,
    crf: int | None = None,
    progress: Progress | None = None,
    force: bool = False,
    stop: Stop | None = None,
) -> RenderResult:
    """Composite every frame of ``input_path`` into ``output_path`` (and masks into ``masks``).

    ``fps`` re-times the output video at that constant rate (default: the input video's own
    timestamps, 30 fps for images); ``audio=False`` leaves the sound out; ``crf`` sets the
    video quality (lower is better; the codec's default otherwise). ``force`` allows folder
    outputs that already hold files. ``stop`` is checked between frames: once set, the
    temporaries are removed and :class:`RenderStopped` is raised.
    """
    output = Path(output_path)
    mask_dir = Path(masks) if masks is not None else None
    info = probe_input(input_path)
    kind = check_outputs(info, output, mask_dir)
    out_fps = fps or info.fps
    video_options = _video_options(info, kind, fps, audio, crf)
    # One decoding thread: FFmpeg's frame threads would cost more CPU in their hand-over than
    # they gain, now that decoding runs beside the engine instead of before it.
    reader = VideoReader(info.path, info.video, threads=1) if info.video is not None else None
    every = cfg.segment.every or 1  # 0 = "by load" live; offline there is no deadline

    t0 = time.monotonic()
    with Engine(cfg, info.size) as engine:
        writer: FrameWriter | None = None
        mask_writer: MaskFolderWriter | None = None
        resizer = _Resizer(info.size)
        done = 0
        frames = _frames(info, reader)
        try:
            writer = open_writer(output, kind, out_fps, info.size, video_options, force=force)
            if mask_dir is not None:
                mask_writer = MaskFolderWriter(mask_dir, force=force)
            names = info.frame_names()
            for image, pts in frames:
                if stop is not None and stop.requested:
                    raise RenderStopped(stop.requested, output)
                name = next(names)
                h, w = image.shape[:2]
                out = engine.process(
                    resizer.to_engine(image), segment=done % every == 0, t=done / out_fps
                )
                if (w, h) != info.size and kind != "video":
                    out = cast(Image, cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR))
                writer.write(name, out, pts if fps is None else None)
                # The full-size alpha is computed on access (1.2 ms at 720p): only for --masks.
                if mask_writer is not None and (alpha := engine.alpha) is not None:
                    if (w, h) != info.size:
                        alpha = cast(
                            Mask, cv2.resize(alpha, (w, h), interpolation=cv2.INTER_LINEAR)
                        )
                    mask_writer.write_mask(Path(name).stem, alpha)
                done += 1
                if progress is not None:
                    progress(done, max(info.count, done))
            if done == 0:
                raise InputError(f"input {info.path} yielded no frames")
            short = reader is not None and reader.short
            if short and reader is not None:
                _warn_short(info, reader)
            if isinstance(writer, VideoFileWriter):
                # A short input's sound stops with its last frame.
                writer.commit(audio_until=writer.end_time if short else None)
                sound = writer.audio
            else:
                writer.commit()
                sound = None
            writer = None
            if mask_writer is not None:
                mask_writer.commit()
                mask_writer = None
        finally:
            frames.close()  # stops the decoding thread when the loop was left early
            # Reached with a writer still set only on failure or a stop: remove the temporaries.
            if writer is not None:
                writer.abort()
            if mask_writer is not None:
                mask_writer.abort()
    seconds = time.monotonic() - t0
    result = RenderResult(
        info,
        output,
        kind,
        mask_dir,
        done,
        seconds,
        resizer.count,
        expected=info.count if info.video is not None and info.video.frames else 0,
        short=short,
        audio=sound,
    )
    log.debug(
        "rendered %d frames (%dx%d) from %s to %s%s in %.1f s (%.1f fps)",
        done,
        *info.size,
        info.path,
        output,
        f", masks to {mask_dir}" if mask_dir else "",
        seconds,
        result.fps,
    )
    return result
