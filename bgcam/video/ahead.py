"""Decode a video on a thread of its own, a few frames ahead of the one being processed.

``bgcam render`` spends its time in three places: decoding, the engine, and encoding. The
encoder already has its thread (:mod:`bgcam.video.writer`); :class:`DecodeAhead` gives decoding
and the YUV → BGR conversion one too, so on two cores the engine's thread does only the engine.
FFmpeg and OpenCV release the GIL while they work.

The thread decodes into :data:`SLOTS` BGR buffers owned by this object. A yielded frame stays
valid until the consumer asks for the next one (as with :class:`~bgcam.video.reader.VideoReader`,
whose bookkeeping, ``read``, ``error``, ``last_time`` and ``short``, stays on the reader and is
final once the iteration has ended). An exception on the decoding thread is raised in the
consumer.

Life: ``__iter__`` starts the thread once; :meth:`close` (also on leaving the ``with`` block or
abandoning the iteration) sets the stop event and joins the thread with a timeout.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Generator
from contextlib import closing
from types import TracebackType

import numpy as np

from bgcam.frame import Image
from bgcam.osthread import name_this_thread
from bgcam.video.reader import VideoReader

log = logging.getLogger(__name__)

SLOTS = 3
"""BGR buffers: one held by the consumer, up to two decoded ahead."""
POLL = 0.1
"""Seconds between stop checks while the decoding thread waits for a free buffer."""
JOIN_TIMEOUT = 5.0
"""Seconds :meth:`DecodeAhead.close` waits for the thread (it finishes the frame it decodes)."""

_END = -1


class DecodeAhead:
    """Iterates ``(frame, pts)`` like ``reader``, decoded and converted on another thread."""

    def __init__(self, reader: VideoReader, slots: int = SLOTS) -> None:
        if slots < 2:
            raise ValueError(f"slots: expected at least 2, got {slots}")
        self.reader = reader
        w, h = reader.info.size
        self._bufs: list[Image] = [np.empty((h, w, 3), np.uint8) for _ in range(slots)]
        # Ready: (slot, image, pts); ``image`` is the slot's buffer unless a frame of another
        # size had to be resized into a new array. Both queues hold at most ``slots`` items.
        self._ready: queue.Queue[tuple[int, Image | None, int]] = queue.Queue(slots + 1)
        self._free: queue.Queue[int] = queue.Queue(slots)
        for i in range(slots):
            self._free.put(i)
        self._stop = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._decode_loop, name="bgcam-decoder", daemon=True)

    # -- the decoding thread ---------------------------------------------------------------

    def _take_free(self) -> int | None:
        while not self._stop.is_set():
            try:
                return self._free.get(timeout=POLL)
            except queue.Empty:
                continue
        return None

    def _decode_loop(self) -> None:
        name_this_thread()
        try:
            with closing(self.reader.decoded()) as frames:
                for frame, pts in frames:
                    slot = self._take_free()
                    if slot is None:
                        return
                    image = self.reader.convert(frame, self._bufs[slot])
                    self._ready.put((slot, image, pts))
        except BaseException as exc:  # handed to the consumer, which raises it
            self._failure = exc
        finally:
            self._ready.put((_END, None, 0))  # never blocks: there is room for it

    # -- the consumer ----------------------------------------------------------------------

    def __iter__(self) -> Generator[tuple[Image, int]]:
        if self._thread.ident is not None:
            raise RuntimeError("DecodeAhead iterates once")
        self._thread.start()
        try:
            while True:
                slot, image, pts = self._ready.get()
                if image is None:
                    break
                yield image, pts
                self._free.put(slot)
        finally:
            self.close()
        if self._failure is not None:
            raise self._failure

    def close(self) -> None:
        """Stop decoding and join the thread (idempotent). The thread never waits on the ready
        queue (it has room for every slot and the end mark), only for a free slot, which it
        gives up at the stop event; so it ends within one frame's decoding."""
        self._stop.set()
        if self._thread.ident is None:
            return
        self._thread.join(JOIN_TIMEOUT)
        if self._thread.is_alive():
            log.warning(
                "the decoding thread of %s did not stop in %g s", self.reader.path, JOIN_TIMEOUT
            )

    def __enter__(self) -> DecodeAhead:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
