"""The mattes handed from the segmentation thread to the output thread, and when they may be used.

:class:`MaskBuffer` is a triple buffer: publishing never waits for the reader, reading never sees
a half-written matte. :class:`MaskExchange` adds the age policy (fail closed): a frame is composed
with a matte only when that matte is *usable*: it exists, segmentation has not failed since, and it
was computed from a frame captured at most :func:`max_mask_age` before or after this one. Otherwise
the caller blurs the whole frame. A mask marks where the person *was*; the bound limits how long
an area the person left can show unblurred background.
"""

from __future__ import annotations

import threading

import numpy as np
import numpy.typing as npt

from bgcam.frame import Frame, Image

__all__ = ["MAX_MASK_AGE", "MaskBuffer", "MaskExchange", "Matte", "max_mask_age"]

MAX_MASK_AGE = 0.2
"""Seconds a mask may be older (or newer) than the frame it is composed with."""


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
    """Three mattes: one being written, one ready, one being read (never waits or tears)."""

    def __init__(self) -> None:
        self._bufs = [Matte() for _ in range(3)]
        self._write, self._ready, self._read = 0, 1, 2
        self._fresh = False
        self._ready_meta: tuple[int, float] | None = None
        self._read_meta: tuple[int, float] | None = None
        self._lock = threading.Lock()

    def publish(
        self, alpha8: npt.NDArray[np.uint8], small: Image, index: int, t_capture: float
    ) -> None:
        """Copy the matte of frame ``index`` in and make it the newest (segmentation thread)."""
        self._bufs[self._write].fill(alpha8, small)
        with self._lock:
            self._write, self._ready = self._ready, self._write
            self._ready_meta = (index, t_capture)
            self._fresh = True

    def invalidate(self) -> None:
        """No usable mask until the next publish (segmentation failed)."""
        with self._lock:
            self._fresh = False
            self._ready_meta = self._read_meta = None

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
    """A :class:`MaskBuffer` that hands out only mattes usable for a given frame."""

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
