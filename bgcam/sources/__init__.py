"""Sources: where live frames come from (camera, video file, image folder, network stream).

Every source runs one capture thread that keeps only the newest frame (:data:`DROP_OLDEST`): a
consumer that is slower than the source skips frames, it never works through a backlog, and no
queue grows. Several consumers (the segmentation thread and the output thread) read the same
slot, each remembering the index it saw last.

A source's life is an explicit state machine guarded by a lock::

    NEW ──open()──▶ OPEN ──start()──▶ RUNNING ◀──────▶ LOST   (reconnecting with back-off)
                                         │
                                         └──▶ ENDED            (a file that does not loop)
    any state ──stop()──▶ STOPPED ──start()──▶ RUNNING/LOST    (pause, on-demand idle)

An illegal transition raises :class:`SourceStateError`. :meth:`Source.stop` returns within about
a second even while the capture thread is blocked in a read: each backend's :meth:`_interrupt`
unblocks its read from the stopping thread (a socket is shut down; OpenCV captures carry a read
timeout), and the thread is joined with a timeout.

Frames are fresh arrays (decoders allocate one per frame; glibc reuses the freed block, so this
costs no page faults in steady state). Because a published frame is never written again, the two
consumer threads can hold it as long as they like without copying.
"""

from __future__ import annotations

import enum
import logging
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

import cv2
import numpy as np

from bgcam.config import SourceConfig
from bgcam.errors import BgCamError, InputError
from bgcam.frame import Frame, Image
from bgcam.osthread import name_this_thread

log = logging.getLogger(__name__)

__all__ = [
    "DROP_OLDEST",
    "BufferPolicy",
    "OpenCancelled",
    "Source",
    "SourceState",
    "SourceStateError",
    "SyntheticSource",
    "as_image",
    "create_source",
    "source_kind",
]

BACKOFF_FIRST = 0.25
"""Seconds before the first reconnection attempt; doubled after each failure…"""
BACKOFF_MAX = 1.0
"""…up to this, so a returning stream or camera is picked up within about a second."""
CANCEL_POLL = 0.05
"""Seconds between checks for a stop while a source opens."""


def as_image(array: object) -> Image:
    """OpenCV's results typed as what they are here: BGR uint8 images."""
    return cast(Image, array)


class BufferPolicy(enum.Enum):
    """What a source does with a frame nobody has read yet when the next one arrives."""

    DROP_OLDEST = "drop_oldest"
    """Replace it: consumers always get the newest frame; latency never builds up."""


DROP_OLDEST = BufferPolicy.DROP_OLDEST


class SourceState(enum.Enum):
    NEW = "new"
    OPEN = "open"
    RUNNING = "running"
    LOST = "lost"
    ENDED = "ended"
    STOPPED = "stopped"


_ALLOWED: dict[SourceState, frozenset[SourceState]] = {
    SourceState.NEW: frozenset({SourceState.OPEN, SourceState.STOPPED}),
    SourceState.OPEN: frozenset({SourceState.RUNNING, SourceState.LOST, SourceState.STOPPED}),
    SourceState.RUNNING: frozenset({SourceState.LOST, SourceState.ENDED, SourceState.STOPPED}),
    SourceState.LOST: frozenset({SourceState.RUNNING, SourceState.STOPPED}),
    SourceState.ENDED: frozenset({SourceState.STOPPED}),
    SourceState.STOPPED: frozenset({SourceState.RUNNING, SourceState.LOST, SourceState.STOPPED}),
}


class SourceStateError(RuntimeError):
    """An illegal state transition, e.g. ``start()`` on a source that is already running."""


class OpenCancelled(BgCamError):
    """:meth:`Source.open` gave up because a stop was requested (not a failure)."""

    exit_code = 0

    def __init__(self, message: str, source: Source) -> None:
        super().__init__(message)
        self.source = source


class Source:
    """Base class: subclasses implement ``_connect``, ``_read``, ``_disconnect``.

    ``_read`` returns the next BGR image, or None at the end of a file (``_at_end`` True) or when
    the source is lost (``_lost_reason`` says why). It may block; ``_interrupt`` must unblock it.
    """

    kind = "source"
    policy = DROP_OLDEST

    def __init__(self, uri: str, *, mirror: bool = False) -> None:
        self.uri = uri
        self.mirror = mirror
        self.native_size: tuple[int, int] | None = None
        self.fps: float = 30.0
        """Nominal frame rate (a file's own rate, the camera's, a stream's measured)."""
        self.target_size: tuple[int, int] | None = None
        """Frames are resized to this (width, height) in the capture thread when set."""
        self.frames_captured = 0
        self.failures = 0
        self._state = SourceState.NEW
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._latest: Frame | None = None
        self._index = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._opener: threading.Thread | None = None
        self._at_end = False
        self._lost_reason = ""
        self._lost_since: float | None = None
        self._outage_logged = False

    # -- backend hooks -------------------------------------------------------------------

    def _connect(self) -> None:
        """Open the backend (raise a BgCamError/OSError saying why it cannot)."""
        raise NotImplementedError

    def _read(self) -> Image | None:
        raise NotImplementedError

    def _disconnect(self) -> None:
        """Release the backend (idempotent; called from the capture thread)."""

    def _interrupt(self) -> None:
        """Unblock a ``_read`` in progress (called from the stopping thread)."""

    # -- state ---------------------------------------------------------------------------

    @property
    def state(self) -> SourceState:
        return self._state

    def _set_state(self, new: SourceState) -> None:
        with self._lock:
            self._transition(new)

    def _transition(self, new: SourceState) -> None:
        """Change state; the caller holds ``self._lock``."""
        if new not in _ALLOWED[self._state]:
            raise SourceStateError(
                f"{self.kind} source: cannot go from {self._state.value} to {new.value}"
            )
        self._state = new
        if new is SourceState.LOST:
            self._lost_since = time.monotonic()
        elif new is SourceState.RUNNING:
            self._lost_since = None
        self._cond.notify_all()

    @property
    def lost_for(self) -> float:
        """Seconds since the source was lost (0 while it delivers)."""
        since = self._lost_since
        return 0.0 if since is None else time.monotonic() - since

    # -- life ----------------------------------------------------------------------------

    def open(self, cancelled: Callable[[], bool] | None = None) -> tuple[int, int]:
        """Open the backend now and return the native (width, height).

        Raises the backend's error (InputError, DeviceError) so start-up problems reach the user.
        With ``cancelled`` the open runs on a helper thread and the caller polls
        ``cancelled()`` (every :data:`CANCEL_POLL` s): once it is true the source is stopped and
        :class:`OpenCancelled` raised at once, whatever the backend is blocked in (an FFmpeg
        open cannot be interrupted); the helper releases what it opened when it returns.
        """
        with self._lock:
            if self._state is not SourceState.NEW:
                raise SourceStateError(f"open() on a {self._state.value} source")
        if cancelled is None:
            self._connect()
        else:
            self._open_cancellable(cancelled)
        self._set_state(SourceState.OPEN)
        assert self.native_size is not None
        return self.native_size

    @property
    def open_abandoned(self) -> bool:
        """True once :meth:`open` gave up on a stop; its helper thread may still run (an FFmpeg
        open cannot be interrupted), so a process that exits now should not wait for it."""
        return (
            self._opener is not None
            and self._state is SourceState.STOPPED
            and (self.native_size is None or self._opener.is_alive())
        )

    def _open_cancellable(self, cancelled: Callable[[], bool]) -> None:
        done = threading.Event()
        failure: list[BaseException] = []

        def opener() -> None:
            try:
                self._connect()
            except BaseException as exc:
                failure.append(exc)
            finally:
                with self._lock:
                    done.set()
                    abandoned = self._state is SourceState.STOPPED
                if abandoned and not failure:
                    self._disconnect()  # opened after the caller gave up: release it

        thread = threading.Thread(target=opener, name=f"bgcam-open-{self.kind}", daemon=True)
        self._opener = thread
        thread.start()
        while not done.wait(CANCEL_POLL):
            if cancelled():
                with self._lock:
                    if not done.is_set():
                        self._transition(SourceState.STOPPED)
                if self._state is SourceState.STOPPED:
                    self._stop.set()
                    try:
                        self._interrupt()
                    except Exception as exc:  # best effort, as in stop()
                        log.debug("%s: interrupt failed: %s", self.kind, exc)
                    raise OpenCancelled(f"stopped while opening {self.uri}", self)
        if failure:
            raise failure[0]

    def start(self) -> None:
        """Start the capture thread (after ``open()``, or again after ``stop()``)."""
        with self._lock:
            if self._state is SourceState.OPEN:
                self._transition(SourceState.RUNNING)
            elif self._state is SourceState.STOPPED:
                # Reopened by the thread; LOST until the first frame says otherwise.
                self._transition(SourceState.LOST)
            else:
                raise SourceStateError(f"start() on a {self._state.value} source")
            self._stop.clear()
            self._at_end = False
            self._outage_logged = False
            self._thread = threading.Thread(
                target=self._run, name=f"bgcam-capture-{self.kind}", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        """Stop capturing and release the device; returns within ``timeout`` seconds."""
        with self._lock:
            if self._state is SourceState.STOPPED:
                return
            self._transition(SourceState.STOPPED)
            thread = self._thread
        self._stop.set()
        try:
            self._interrupt()
        except Exception as exc:  # interrupting is best effort; the join below is bounded
            log.debug("%s: interrupt failed: %s", self.kind, exc)
        if thread is None:
            self._disconnect()  # opened but never started
            return
        thread.join(timeout)
        if thread.is_alive():
            log.warning(
                "%s source: capture thread still blocked after %.1f s; it releases the device "
                "when its read times out",
                self.kind,
                timeout,
            )

    # -- frames --------------------------------------------------------------------------

    def latest(self) -> Frame | None:
        """The newest frame (None before the first). Never blocks."""
        return self._latest

    def wait_newer(self, index: int, timeout: float) -> Frame | None:
        """The newest frame with an index above ``index``, waiting up to ``timeout`` seconds."""
        with self._cond:
            frame = self._latest
            if frame is not None and frame.index > index:
                return frame
            self._cond.wait(timeout)
            frame = self._latest
            return frame if frame is not None and frame.index > index else None

    def _publish(self, image: Image) -> None:
        if self.target_size is not None and (image.shape[1], image.shape[0]) != self.target_size:
            image = as_image(cv2.resize(image, self.target_size, interpolation=cv2.INTER_AREA))
        if self.mirror:
            image = as_image(cv2.flip(image, 1))
        frame = Frame(image, self._index, time.monotonic())
        with self._cond:
            self._index += 1
            self.frames_captured += 1
            self._latest = frame  # DROP_OLDEST: an unread frame is simply replaced
            self._cond.notify_all()

    # -- the capture thread --------------------------------------------------------------

    def _run(self) -> None:
        name_this_thread()
        backoff = BACKOFF_FIRST
        connected = self._state is SourceState.RUNNING
        try:
            while not self._stop.is_set():
                if not connected:
                    try:
                        self._connect()
                    except Exception as exc:
                        self._note_lost(str(getattr(exc, "message", exc)))
                        self._stop.wait(backoff)
                        backoff = min(BACKOFF_MAX, backoff * 2)
                        continue
                    connected = True
                    backoff = BACKOFF_FIRST
                try:
                    image = self._read()
                except Exception as exc:
                    image, self._lost_reason = None, str(exc) or type(exc).__name__
                if self._stop.is_set():
                    break
                if image is None:
                    if self._at_end:
                        log.info("%s source: end of %s", self.kind, self.uri)
                        self._set_state_unless_stopped(SourceState.ENDED)
                        break
                    self._disconnect()
                    connected = False
                    self._note_lost(self._lost_reason or "no frame")
                    continue
                if self._state is SourceState.LOST:
                    if self._outage_logged:
                        log.info(
                            "%s source: %s is back after %d failed attempt(s)",
                            self.kind,
                            self.uri,
                            self.failures,
                        )
                    self.failures = 0
                    self._outage_logged = False
                    self._set_state_unless_stopped(SourceState.RUNNING)
                self._publish(image)
        finally:
            self._disconnect()

    def _set_state_unless_stopped(self, new: SourceState) -> None:
        with self._lock:
            if self._state is not SourceState.STOPPED:
                self._transition(new)

    def _note_lost(self, reason: str) -> None:
        """Log a loss once per outage (not once per attempt) and go to LOST."""
        self.failures += 1
        with self._lock:
            if self._state not in (SourceState.STOPPED, SourceState.LOST):
                self._transition(SourceState.LOST)
        first, self._outage_logged = not self._outage_logged, True
        if first:
            log.warning(
                "%s source %s lost: %s; reconnecting (every ≤ %.0f s, logged once)",
                self.kind,
                self.uri,
                reason,
                BACKOFF_MAX,
            )
        else:
            log.debug(
                "%s source: reconnect attempt %d failed: %s", self.kind, self.failures, reason
            )


# ------------------------------------------------------------------------------------------
# A synthetic source: for tests and benchmarks, no files needed.


class SyntheticSource(Source):
    """``synthetic:WxH[@FPS]``: a moving gradient with a moving disc, paced at FPS."""

    kind = "synthetic"

    def __init__(self, uri: str, *, mirror: bool = False) -> None:
        super().__init__(uri, mirror=mirror)
        m = re.fullmatch(r"synthetic:(\d+)x(\d+)(?:@([\d.]+))?", uri)
        if not m:
            raise InputError(f"source {uri!r}: expected synthetic:WIDTHxHEIGHT[@FPS]")
        w, h = int(m[1]), int(m[2])
        if not (16 <= w <= 7680 and 16 <= h <= 4320):
            raise InputError(f"source {uri!r}: size out of range")
        self.fps = float(m[3]) if m[3] else 30.0
        self._size = (w, h)
        self._n = 0
        self._next = 0.0
        xs = np.linspace(0, 255, w, dtype=np.float32)
        ys = np.linspace(0, 255, h, dtype=np.float32)
        base = np.empty((h, w, 3), np.uint8)
        base[..., 0] = xs[None, :].astype(np.uint8)
        base[..., 1] = ys[:, None].astype(np.uint8)
        base[..., 2] = 128
        self._base = base

    def _connect(self) -> None:
        self.native_size = self._size
        self._next = time.monotonic()

    def _read(self) -> Image | None:
        self._next = max(self._next + 1.0 / self.fps, time.monotonic() - 1.0 / self.fps)
        delay = self._next - time.monotonic()
        if delay > 0 and self._stop.wait(delay):
            return None
        w, h = self._size
        image = np.roll(self._base, self._n * 4, axis=1)
        cx = int(w / 2 + w / 4 * np.sin(self._n / 15.0))
        cv2.circle(image, (cx, h // 2), h // 4, (40, 80, 220), -1)
        self._n += 1
        return image


# ------------------------------------------------------------------------------------------
# The registry


def source_kind(uri: str) -> str:
    """Which backend reads ``uri``: camera, stream, file (video, image, folder) or synthetic."""
    if uri.startswith("synthetic:"):
        return "synthetic"
    if re.fullmatch(r"\d+", uri) or re.fullmatch(r"/dev/video\d+", uri):
        return "camera"
    if re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*://", uri):
        return "stream"
    return "file"


def create_source(cfg: SourceConfig) -> Source:
    """The source for ``cfg.uri`` (not yet opened)."""
    kind = source_kind(cfg.uri)
    if kind == "synthetic":
        return SyntheticSource(cfg.uri, mirror=cfg.mirror)
    if kind == "camera":
        from bgcam.sources.camera import CameraSource

        return CameraSource(cfg)
    if kind == "stream":
        from bgcam.sources.stream import open_stream_source

        return open_stream_source(cfg)
    from bgcam.sources.file import FileSource

    path = Path(cfg.uri).expanduser()
    return FileSource(path, loop=cfg.loop, mirror=cfg.mirror, folder_fps=cfg.fps)
