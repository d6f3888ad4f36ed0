"""The mattes handed from the segmentation thread to the output thread, and when they may be used.

:class:`MaskBuffer` is a triple buffer: publishing never waits for the reader, reading never sees
a half-written matte. :class:`MaskExchange` adds the age policy (fail closed): a frame is composed
with a matte only when that matte is *usable*: it exists, segmentation has not failed since, and it
was computed from a frame captured at most :func:`max_mask_age` before or after this one. Otherwise
the caller blurs the whole frame. A mask marks where the person *was*; the bound limits how long
an area the person left can show unblurred background.

The exchange also knows which frame the segmentation thread is on (:meth:`MaskExchange.taken`),
so the output thread can wait, within a deadline, for the matte of the very frame it composes
(:meth:`MaskExchange.wait_own`) instead of composing it with the previous frame's matte, whose
edge trails a moving person by a frame. A publish, a failure or a stop wakes the waiter.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import numpy.typing as npt

from bgcam.frame import Frame, Image

__all__ = ["MAX_MASK_AGE", "TOOK_WEIGHT", "MaskBuffer", "MaskExchange", "Matte", "max_mask_age"]

MAX_MASK_AGE = 0.2
"""Seconds a mask may be older (or newer) than the frame it is composed with."""


TOOK_WEIGHT = 0.2
"""Weight of the newest segmentation in the moving average of how long one takes."""


def max_mask_age(every: int, source_fps: float) -> float:
    """:data:`MAX_MASK_AGE`, or ``every + 1`` source frames when that is longer."""
    return max(MAX_MASK_AGE, (max(every, 1) + 1) / max(source_fps, 1.0))


class Matte:
    """A handed-over matte: the refiner's working-size 8-bit alpha and the frame shrunk to that
    size (the blur may start from it when the same frame is composed). Owned copies."""

    __slots__ = ("alpha8", "small")

    def __init__(self) -> None:
        self.alpha8: npt.NDArray[np.uint8] = np.zeros((1, 1), np.uint8)
        self.small: Image = np.zeros((1, 1, 3), np.uint8)

    def fill(self, alpha8: npt.NDArray[np.uint8], small: Image) -> None:
        """Copy both in (the refiner reuses its buffers); a new size gets new buffers."""
        if self.alpha8.shape != alpha8.shape:
            self.alpha8 = np.empty_like(alpha8)
        if self.small.shape != small.shape:
            self.small = np.empty_like(small)
        np.copyto(self.alpha8, alpha8)
        np.copyto(self.small, small)


class MaskBuffer:
    """Three mattes: one being written, one ready, one being read (never waits or tears).
    ``_changed`` is notified on every publish and invalidation (for :class:`MaskExchange`)."""

    def __init__(self) -> None:
        self._bufs = [Matte() for _ in range(3)]
        self._write, self._ready, self._read = 0, 1, 2
        self._fresh = False
        self._ready_meta: tuple[int, float] | None = None
        self._read_meta: tuple[int, float] | None = None
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)

    def publish(
        self, alpha8: npt.NDArray[np.uint8], small: Image, index: int, t_capture: float
    ) -> None:
        """Copy the matte of frame ``index`` in and make it the newest (segmentation thread)."""
        self._bufs[self._write].fill(alpha8, small)
        with self._lock:
            self._write, self._ready = self._ready, self._write
            self._ready_meta = (index, t_capture)
            self._fresh = True
            self._published(index)
            self._changed.notify_all()

    def _published(self, index: int) -> None:
        """Called under the lock when frame ``index``'s matte became the newest."""

    def invalidate(self) -> None:
        """No usable mask until the next publish (segmentation failed)."""
        with self._lock:
            self._fresh = False
            self._ready_meta = self._read_meta = None
            self._published(-1)
            self._changed.notify_all()

    def acquire(self) -> tuple[Matte, int, float] | None:
        """The newest matte with its frame index and capture time (output thread only)."""
        with self._lock:
            if self._fresh:
                self._read, self._ready = self._ready, self._read
                self._read_meta, self._fresh = self._ready_meta, False
            meta = self._read_meta
        if meta is None:
            return None
        return self._bufs[self._read], meta[0], meta[1]


class MaskExchange(MaskBuffer):
    """A :class:`MaskBuffer` that hands out only mattes usable for a given frame, and lets the
    output wait for a frame's own matte while the segmentation thread is on (or about to take)
    that frame."""

    def __init__(self) -> None:
        super().__init__()
        self._taken = -1
        """The index of the frame the segmentation thread took last."""
        self._working = False
        """It is segmenting that frame now."""
        self._next = False
        """It will segment the next new frame too (it segments every frame, and works)."""
        self._t_start = 0.0
        """When it started segmenting the frame it took (``time.monotonic()``)."""
        self._took = 0.0
        """Seconds from taking a frame to publishing its matte, a moving average."""

    def taken(self, index: int, *, segment: bool, then: bool) -> None:
        """Segmentation thread: frame ``index`` was taken; ``segment``: it is segmented now (its
        publish follows); ``then``: the next new frame will be segmented as well."""
        with self._lock:
            self._taken, self._working, self._next = index, segment, then
            if segment:
                self._t_start = time.monotonic()
            self._changed.notify_all()

    def idle(self) -> None:
        """Segmentation thread (or its stopper): nothing is being segmented, nor will be soon
        (not segmenting, failed, stopped): a waiting output stops waiting."""
        with self._lock:
            self._working = self._next = False
            self._changed.notify_all()

    def _published(self, index: int) -> None:
        if index < 0:  # failed
            self._next = False
        elif self._working and index == self._taken:
            took = time.monotonic() - self._t_start
            self._took += TOOK_WEIGHT * (took - self._took) if self._took else took
        self._working = False

    def _expected(self, index: int) -> float:
        """Under the lock, for a frame that is :meth:`_coming`: when its matte should be out."""
        if self._taken == index:
            return self._t_start + self._took
        if self._working:  # an older frame first
            return self._t_start + 2 * self._took
        return time.monotonic() + self._took

    def _coming(self, index: int) -> bool:
        """Under the lock: frame ``index``'s matte is not the newest yet, but it is being made
        or will be (the thread works on it, or takes every frame and has not reached it)."""
        meta = self._ready_meta if self._fresh else self._read_meta
        if meta is not None and meta[0] >= index:
            return False
        if self._taken == index:
            return self._working
        return self._taken < index and self._next

    def wait_own(self, index: int, deadline: float) -> float | None:
        """Wait until frame ``index``'s matte is published, or until it is clear that none is
        coming, or until ``deadline`` (``time.monotonic()``). None when there was nothing to wait
        for, or when the matte would come too late (segmentation has lately taken longer than
        the time left); else the seconds waited (the caller then looks at :meth:`usable` as
        always)."""
        with self._lock:
            if not self._coming(index) or self._expected(index) > deadline:
                return None
            t0 = time.monotonic()
            while self._coming(index):
                left = deadline - time.monotonic()
                if left <= 0 or not self._changed.wait(left):
                    break
            return time.monotonic() - t0

    def usable(self, frame: Frame, every: int, source_fps: float) -> tuple[Matte, bool] | None:
        """The newest matte if it may be composed with ``frame``, and whether it was computed
        from that very frame (then its shrunk copy is ``frame`` shrunk); else None."""
        got = self.acquire()
        if got is None:
            return None
        matte, index, t_mask = got
        if abs(frame.t_capture - t_mask) > max_mask_age(every, source_fps):
            return None
        return matte, index == frame.index
