"""Encode BGR frames into a video file with FFmpeg's libraries (PyAV), with the input's sound.

:class:`VideoEncoder` writes H.264 (VP9 for WebM) in 4:2:0 at the frames' own timestamps, so a
variable-frame-rate input keeps its timing. The colour conversion is OpenCV's BGR → I420 into
buffers owned by the encoder (no allocation per frame); the output is tagged with the matrix that
conversion uses (BT.601, limited range) unless the caller passes the input's own tags.

Encoding runs on a thread of its own (PyAV releases the GIL inside the encoder), so on a machine
with two cores it overlaps the next frame's processing instead of adding to it. ``write`` converts
into one of :data:`SLOTS` buffers and returns; it waits only when all are still queued. An
encoding or muxing error is raised by the next ``write`` or by ``close``.

:class:`AudioTrack` copies (or, when the container cannot hold the codec, re-encodes) the audio
stream of another file into the same output, interleaved with the video as it is written.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from bgcam.errors import OutputError
from bgcam.frame import Image
from bgcam.osthread import name_this_thread
from bgcam.video.formats import CONTAINERS, ContainerSpec

log = logging.getLogger(__name__)

BT601 = (6, 6, 6)
"""(colorspace, primaries, transfer) of SMPTE 170M / BT.601: what OpenCV's I420 conversion uses."""
AUDIO_LEAD = 0.5
"""Seconds of audio muxed ahead of the video written so far (keeps the file interleaved)."""
SLOTS = 3
"""I420 buffers between ``write`` and the encoding thread."""
JOIN_TIMEOUT = 60.0
"""Seconds ``close`` waits for the frames still queued (three at most) to be encoded."""


def rate_of(fps: float) -> Fraction:
    """``fps`` as an exact rate: 29.97 → 30000/1001, 25.0 → 25."""
    return Fraction(fps).limit_denominator(1001)


def _av_error(path: Path, what: str, exc: Exception) -> OutputError:
    return OutputError(
        f"cannot {what} {path}: {exc}",
        hint="check free space and permissions of the output folder, or try another container "
        "(-o out.mkv)",
    )


class AudioTrack:
    """The audio stream of ``source``, copied or re-encoded into the output ``container``."""

    def __init__(self, source: Path, container: Any, spec: ContainerSpec) -> None:
        self._in = av.open(str(source))
        try:
            self._stream = self._in.streams.audio[0]
            name = self._stream.codec_context.name
            self.copied = name in container.supported_codecs and (
                spec.audio_copy is None or name in spec.audio_copy
            )
            if self.copied:
                self._out = container.add_stream_from_template(self._stream)
            else:
                self._out = container.add_stream(spec.audio_codec, rate=self._stream.rate)
                layout = self._stream.layout.name
                self._out.layout = "stereo" if self._stream.channels > 2 else layout
        except Exception:
            self._in.close()
            raise
        self.codec = name
        self.summary = (
            f"copied ({name})" if self.copied else f"re-encoded ({name} → {spec.audio_codec})"
        )
        self._container = container
        self._packets: Iterator[Any] = self._in.demux(self._stream)
        self._pending: Any = None
        self.done = False
        self.samples_end = 0.0

    def _next(self) -> Any:
        for packet in self._packets:
            if packet.dts is not None and packet.pts is not None:
                return packet
        return None

    def feed_until(self, seconds: float | None) -> None:
        """Mux the audio up to ``seconds`` (``None``: to its end)."""
        while not self.done:
            packet = self._pending if self._pending is not None else self._next()
            self._pending = None
            if packet is None:
                self.done = True
                break
            start = float(packet.pts * packet.time_base)
            if seconds is not None and start > seconds:
                self._pending = packet
                return
            self._mux(packet)

    def _mux(self, packet: Any) -> None:
        if self.copied:
            packet.stream = self._out
            self._container.mux(packet)
            return
        for frame in packet.decode():
            frame.pts = None  # the encoder's resampler numbers its own frames
            self._container.mux(self._out.encode(frame))

    def finish(self, until: float | None) -> None:
        """Mux what remains (up to ``until`` seconds), flush the encoder, close the source."""
        try:
            self.feed_until(until)
            self.done = True
            if not self.copied:
                self._container.mux(self._out.encode(None))
        finally:
            self._in.close()

    def close(self) -> None:
        self._in.close()


class VideoEncoder:
    """Frames of ``size`` (width, height) into ``path``, by the rules for ``suffix``.

    ``write(image, pts)`` takes the frame's time in ``time_base`` units (default: ``1/fps``,
    and ``pts=None`` numbers the frames). An odd width or height loses its last column or row
    (4:2:0 needs even sizes).
    """

    def __init__(
        self,
        path: Path,
        size: tuple[int, int],
        *,
        fps: float,
        suffix: str | None = None,
        time_base: Fraction | None = None,
        crf: int | None = None,
        audio_from: Path | None = None,
        colour: tuple[int, int, int] | None = None,
        label: Path | None = None,
    ) -> None:
        self.path = path
        self.label = label or path
        """The name errors give (the user's, when ``path`` is a temporary file)."""
        self.spec = CONTAINERS[(suffix or path.suffix).lower()]
        w, h = size[0] & ~1, size[1] & ~1
        if w < 2 or h < 2:
            raise OutputError(f"cannot encode {size[0]}x{size[1]} frames as video (too small)")
        self.size = (w, h)
        if (w, h) != tuple(size):
            log.info(
                "%s: %dx%d frames are written at %dx%d (4:2:0 video needs an even width and "
                "height: the last column or row is dropped)",
                self.label, size[0], size[1], w, h,
            )  # fmt: skip
        rate = rate_of(fps)
        spec = self.spec
        self._timed = time_base is not None and not spec.constant_rate
        self.time_base = time_base if time_base is not None and self._timed else 1 / rate
        crf = spec.crf_default if crf is None else crf
        if not 0 <= crf <= spec.crf_max:
            raise OutputError(
                f"crf {crf} is out of range for {spec.video_codec}",
                hint=f"pass --crf between 0 (best) and {spec.crf_max} (smallest file)",
            )
        try:
            self._out: Any = av.open(
                str(path), "w", format=spec.format, options=spec.container_options
            )
        except (av.FFmpegError, OSError) as exc:
            raise _av_error(self.label, "create", exc) from None
        try:
            options = {**spec.video_options, "crf": str(crf)}
            stream: Any = self._out.add_stream(spec.video_codec, rate=rate, options=options)
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            stream.time_base = self.time_base
            cc = stream.codec_context
            cc.time_base = self.time_base
            cc.thread_type = "AUTO"
            cc.colorspace, cc.color_primaries, cc.color_trc = colour or BT601
            cc.color_range = 1  # limited ("tv"), what OpenCV's I420 conversion produces
            self._stream = stream
            self.audio = AudioTrack(audio_from, self._out, spec) if audio_from is not None else None
        except (av.FFmpegError, ValueError) as exc:
            self._out.close()
            raise OutputError(
                f"cannot set up the {spec.video_codec} encoder for {self.label}: {exc}",
                hint="try another container, e.g. -o out.mkv",
            ) from None
        self._slots = [np.empty((h * 3 // 2, w), np.uint8) for _ in range(SLOTS)]
        self._free: queue.SimpleQueue[int] = queue.SimpleQueue()
        for i in range(SLOTS):
            self._free.put(i)
        self._todo: queue.SimpleQueue[tuple[int, int] | None] = queue.SimpleQueue()
        self._error: OutputError | None = None
        self._frame = av.VideoFrame(w, h, "yuv420p")
        self._last_pts = -1
        self.frames = 0
        self.end_time = 0.0
        self._thread = threading.Thread(target=self._encode_loop, name="bgcam-encoder", daemon=True)
        self._thread.start()

    def _fill(self, i420: np.ndarray[Any, np.dtype[np.uint8]]) -> Any:
        w, h = self.size
        frame = self._frame
        frame.make_writable()  # a new buffer only if the encoder still holds the old one
        q = h // 4
        for plane, rows, src in (
            (frame.planes[0], h, i420[:h]),
            (frame.planes[1], h // 2, i420[h : h + q].reshape(h // 2, w // 2)),
            (frame.planes[2], h // 2, i420[h + q :].reshape(h // 2, w // 2)),
        ):
            dst = np.frombuffer(memoryview(plane), np.uint8).reshape(rows, -1)
            dst[:, : src.shape[1]] = src
        return frame

    def _encode_loop(self) -> None:
        """The encoding thread: frames from ``_todo`` into the file, until ``None``."""
        name_this_thread()
        while (item := self._todo.get()) is not None:
            slot, pts = item
            try:
                if self._error is None:
                    frame = self._fill(self._slots[slot])
                    frame.pts = pts
                    if self.audio is not None:
                        self.audio.feed_until(float(pts * self.time_base) + AUDIO_LEAD)
                    self._out.mux(self._stream.encode(frame))
            except Exception as exc:  # any failure ends the file with an error, never a hang
                self._error = _av_error(self.label, "write", exc)
            finally:
                self._free.put(slot)

    def _stop_thread(self) -> None:
        if self._thread.is_alive():
            self._todo.put(None)
            self._thread.join(JOIN_TIMEOUT)
        if self._thread.is_alive() and self._error is None:
            self._error = OutputError(
                f"the encoder of {self.label} did not finish in {JOIN_TIMEOUT:g} s",
                hint="try another container (-o out.mkv) or a lower resolution",
            )

    def write(self, image: Image, pts: int | None = None) -> None:
        """Queue one frame shown at ``pts`` (``time_base`` units); times must increase."""
        if self._error is not None:
            raise self._error
        ih, iw = image.shape[:2]
        if iw < self.size[0] or ih < self.size[1]:
            raise ValueError(f"video frame: expected size {self.size}, got {(iw, ih)}")
        pts = pts if pts is not None and self._timed else self.frames
        pts = max(pts, self._last_pts + 1)  # a repeated or out-of-order time: the next tick
        self._last_pts = pts
        w, h = self.size
        slot = self._free.get()
        cv2.cvtColor(image[:h, :w], cv2.COLOR_BGR2YUV_I420, dst=self._slots[slot])
        self._todo.put((slot, pts))
        self.frames += 1
        self.end_time = float((pts + 1) * self.time_base)

    def close(self, audio_until: float | None = None) -> None:
        """Flush the encoder, add the rest of the audio (up to ``audio_until`` seconds), close."""
        try:
            self._stop_thread()
            if self._error is not None:
                raise self._error
            self._out.mux(self._stream.encode(None))
            if self.audio is not None:
                self.audio.finish(audio_until)
        except av.FFmpegError as exc:
            raise _av_error(self.label, "finish", exc) from None
        finally:
            self.abandon()

    def abandon(self) -> None:
        """Close the file without flushing (the caller removes it)."""
        self._stop_thread()
        if self.audio is not None:
            self.audio.close()
        try:
            self._out.close()
        except av.FFmpegError as exc:
            log.debug("closing %s: %s", self.label, exc)
