"""The segmentation thread: newest frame → segmenter → refiner → :class:`MaskExchange`.

It runs at a lower priority (Linux nice +:data:`SEGMENT_NICE`): on a machine whose cores are all
busy, a frame that is due (capture) and a tick that is due (output) run first. New stages arrive
built (:meth:`~bgcam.engine.Engine.plan`, off the output thread) through a one-slot hand-over and
are swapped in between frames. With automatic skipping (``segment.every = 0``) it segments every
frame while the picture moves and skips only while it is still. A failing segmenter invalidates
the matte (the output blurs whole frames) and is retried with a back-off up to 2 s.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable

import cv2
import numpy as np

from bgcam.engine import Engine, StageSwap
from bgcam.frame import Image
from bgcam.live.masks import MaskExchange
from bgcam.osthread import name_this_thread
from bgcam.segment import Segmenter
from bgcam.sources import Source
from bgcam.stats import Stats

log = logging.getLogger(__name__)

__all__ = [
    "MOTION_THRESHOLD",
    "SEGMENT_NICE",
    "MotionGate",
    "SegmentationWorker",
    "opencv_threads",
    "yield_to_others",
]

MOTION_THRESHOLD = 1.5
"""Mean absolute grey-level change (0–255) of consecutive frames that counts as motion."""
SEGMENT_NICE = 5
"""How much lower the segmentation thread's priority is than the process's (Linux nice)."""
BUSY_THREADS = 2
"""The pipeline's own busy threads: segmentation and output (capture mostly waits)."""
BACKOFF_MAX = 2.0
"""Seconds between retries of a failing segmenter, at most."""


def opencv_threads(cores: int | None = None) -> int:
    """Threads OpenCV may use per call while the pipeline runs: the cores its own busy threads
    leave free, at least 1 (no pool: on two cores it only makes the threads wait on each other)."""
    if cores is None:
        affinity = getattr(os, "sched_getaffinity", None)
        cores = len(affinity(0)) if affinity is not None else (os.cpu_count() or 1)
    return max(1, cores - BUSY_THREADS)


def yield_to_others(increment: int) -> None:
    """Lower the calling thread's scheduling priority (Linux threads have their own nice; no
    privilege needed). Elsewhere this does nothing."""
    setpriority = getattr(os, "setpriority", None)
    if setpriority is None or sys.platform != "linux":
        return
    try:
        tid = threading.get_native_id()
        setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + increment))
    except OSError as exc:
        log.debug("cannot lower the segmentation thread's priority: %s", exc)


class MotionGate:
    """Is the picture moving? Compares a 1/16-size grey copy of each frame with the last one."""

    def __init__(self, size: tuple[int, int]) -> None:
        w, h = size
        self._grey = np.empty((h, w), np.uint8)
        self._small = np.empty((max(1, h // 16), max(1, w // 16)), np.uint8)
        self._prev: Image | None = None

    def moving(self, image: Image) -> bool:
        cv2.cvtColor(image, cv2.COLOR_BGR2GRAY, dst=self._grey)
        cv2.resize(
            self._grey, self._small.shape[::-1], dst=self._small, interpolation=cv2.INTER_AREA
        )
        prev = self._prev
        if prev is None:
            self._prev = self._small.copy()
            return True
        diff = float(cv2.norm(self._small, prev, cv2.NORM_L1)) / self._small.size
        np.copyto(prev, self._small)
        return diff > MOTION_THRESHOLD


class SegmentationWorker:
    """Runs the engine's segment side on its own thread until :meth:`stop`.

    ``source()`` is the current source (it may be replaced while running); ``schedule()`` gives
    ``(every, auto)``: segment at most every Nth frame, and whether still frames may be skipped
    beyond that; ``active()`` is False while nothing needs masks (mode off).
    """

    def __init__(
        self,
        engine: Engine,
        masks: MaskExchange,
        stats: Stats,
        *,
        source: Callable[[], Source | None],
        schedule: Callable[[], tuple[int, bool]],
        active: Callable[[], bool],
    ) -> None:
        self._engine = engine
        self._masks = masks
        self._stats = stats
        self._source = source
        self._schedule = schedule
        self._active = active
        self._stop = threading.Event()
        self._slot_lock = threading.Lock()
        self._slot: StageSwap | None = None
        self._thread: threading.Thread | None = None
        self._cv_threads: int | None = None
        self._failing = False

    def start(self) -> None:
        """Start the thread; OpenCV's pool is limited to :func:`opencv_threads` until stop."""
        if self._cv_threads is None:
            self._cv_threads = cv2.getNumThreads()
            cv2.setNumThreads(opencv_threads())
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="bgcam-segment", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 1.0) -> bool:
        """Stop and join; False when the thread is still stuck in a stage after ``timeout``."""
        self._stop.set()
        self._masks.idle()  # an output waiting for a matte stops waiting
        if self._cv_threads is not None:
            cv2.setNumThreads(self._cv_threads)
            self._cv_threads = None
        thread, self._thread = self._thread, None
        if thread is None:
            return True
        thread.join(timeout)
        if thread.is_alive():
            log.warning("segmentation thread did not stop within %g s (stalled segmenter)", timeout)
            return False
        self._drop_slot()
        return True

    @property
    def segmenter(self) -> Segmenter:
        """The segmenter of the next segmentation: one handed over and not yet taken, else the
        engine's (so a command's reply already names the model it swapped in)."""
        with self._slot_lock:
            if self._slot is not None and self._slot.segmenter is not None:
                return self._slot.segmenter
        return self._engine.segmenter

    def hand_over(self, swap: StageSwap) -> None:
        """Swap in ``swap``'s segment-side stages before the next frame (any thread). A swap
        still waiting is replaced (its stages closed)."""
        with self._slot_lock:
            stale, self._slot = self._slot, swap
        if stale is not None:
            stale.discard_segment_side()

    def _drop_slot(self) -> None:
        with self._slot_lock:
            stale, self._slot = self._slot, None
        if stale is not None:
            stale.discard_segment_side()

    def _take_over(self) -> None:
        with self._slot_lock:
            swap, self._slot = self._slot, None
        if swap is not None:
            self._engine.swap_segment_side(swap)

    def _run(self) -> None:
        name_this_thread()
        yield_to_others(SEGMENT_NICE)
        engine, masks, stats = self._engine, self._masks, self._stats
        motion = MotionGate(engine.frame_size)
        last = -1
        last_seg = -(10**9)
        backoff = 0.0
        while not self._stop.is_set():
            if self._slot is not None:
                self._take_over()
            source = self._source()
            if source is None:
                break
            frame = source.wait_newer(last, 0.1)
            if frame is None:
                continue
            last = frame.index
            if not self._active():
                masks.idle()
                continue
            every, auto = self._schedule()
            if auto and every > 1 and motion.moving(frame.image):
                every = 1
            segment = frame.index - last_seg >= every
            # The output may wait for this frame's matte (or the next one's) while it is made.
            masks.taken(frame.index, segment=segment, then=segment and every <= 1)
            if not segment:
                continue
            try:
                engine.mask(frame.image)
                masks.publish(*engine.matte(), frame.index, frame.t_capture)
            except Exception as exc:
                masks.invalidate()
                stats.segmented(error=True)
                self._failed(exc)
                backoff = min(BACKOFF_MAX, max(0.1, backoff * 2))
                self._stop.wait(backoff)
                continue
            if self._failing:
                log.info("segmentation works again")
                self._failing = False
            backoff = 0.0
            last_seg = frame.index
            stats.segmented(keyframe=engine.keyframe)
            times = engine.times
            stats.stage("segment", times.segment)
            stats.stage("refine", times.refine)
        masks.idle()

    def _failed(self, exc: Exception) -> None:
        if self._failing:
            return
        self._failing = True
        log.error(
            "segmentation failed: %s; blurring whole frames until it works (logged once)",
            exc,
            exc_info=log.isEnabledFor(logging.DEBUG),
        )
