"""The I420 frames between the PipeWire camera's output thread and its writer thread."""

from __future__ import annotations

import threading
from collections import deque

import cv2
import numpy as np
import numpy.typing as npt

from bgcam.frame import Image

__all__ = ["I420Slots"]


class I420Slots:
    """A few I420 frames between the output thread and the writer thread, oldest first.

    ``put`` converts into a free buffer and never waits: when none is free, the oldest unsent
    frame is dropped (counted) and its buffer reused. ``take`` hands the oldest unsent frame's
    index to the writer, which gives the buffer back with ``release`` once the child no longer
    needs it (after the pipe write; after the child's acknowledgement with shared memory). Four
    buffers absorb a writer that is late by up to three frame periods (a busy machine) without
    losing frames. ``bufs`` lets the buffers live in shared memory.
    """

    def __init__(
        self,
        size: tuple[int, int],
        count: int = 4,
        bufs: list[npt.NDArray[np.uint8]] | None = None,
    ) -> None:
        w, h = size
        self._bufs = (
            bufs
            if bufs is not None
            else [np.zeros((h * 3 // 2, w), np.uint8) for _ in range(count)]
        )
        self._free = list(range(1, len(self._bufs)))
        self._fill = 0
        self._pending: deque[int] = deque()
        self._cond = threading.Condition()
        self.dropped = 0

    def put(self, image: Image, *, i420: bool = False) -> None:
        """Convert BGR ``image`` (``i420``: copy the I420 frame) into a free buffer."""
        if i420:
            np.copyto(self._bufs[self._fill], image)
        else:
            cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420, dst=self._bufs[self._fill])
        with self._cond:
            if self._free:
                self._pending.append(self._fill)
                self._fill = self._free.pop()
            elif self._pending:
                self._pending.append(self._fill)
                self._fill = self._pending.popleft()
                self.dropped += 1
            else:  # every other buffer is lent out: this frame is dropped, its buffer refilled
                self.dropped += 1
            self._cond.notify()

    def take(self, timeout: float) -> int | None:
        with self._cond:
            if not self._pending and not self._cond.wait(timeout):
                return None
            if not self._pending:
                return None
            return self._pending.popleft()

    def view(self, index: int) -> memoryview:
        return memoryview(self._bufs[index].data).cast("B")

    def release(self, index: int, *, dropped: bool = False) -> None:
        """Give buffer ``index`` back; ``dropped``: its frame never reached the child."""
        with self._cond:
            self._free.append(index)
            self.dropped += dropped
