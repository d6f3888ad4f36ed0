"""The live pipeline: source → segmentation thread → output thread → sink, at a steady rate.

Threads (``bgcam run`` has two busy ones, so both cores work):

- the **capture thread** of the :class:`~bgcam.sources.Source` keeps only the newest frame;
- the **segmentation thread** takes the newest frame, runs the segmenter and the refiner (temporal
  smoother + edge alignment) and publishes the working-size 8-bit matte with the index and
  capture time of its frame (a triple buffer: publishing never waits for the reader, reading
  never sees a half-written mask);
- the **output thread** (the caller of :meth:`Pipeline.run`, the main thread under ``bgcam run``,
  so signals reach it) ticks at exactly ``output.fps``. On each tick it applies queued commands,
  composes the newest frame with the newest usable alpha and sends it; with no new frame it
  re-sends the last output (``frames_repeated``); while the source is lost it sends a placeholder.
  When the source's rate matches the output's, the ticks phase-lock to the frame arrivals (a
  nudge of at most 1 ms per tick), so no source frame is skipped and none waits long.

The segmentation thread runs at a lower priority (Linux nice +5): on a machine whose cores are
all busy, a frame that is due and a tick that is due run first. OpenCV's worker pool only gets
the cores the two busy threads leave free (none on two cores), so they never wait on each other's
work items.

**Fail closed.** While the mode is blur, replace or remove, a frame is composed with a mask only
when that mask is *usable*: it exists, its segmentation did not fail since, and it was computed
from a frame captured at most :func:`max_mask_age` (0.2 s, or ``segment.every + 1`` source frames
if that is longer) before or after this one. Otherwise ``compose(image, None)`` blurs the whole
frame (the compositor's contract). Why a time bound: a mask marks where the person *was*; when
they move, the area they left shows unblurred background for as long as the mask is older than
the picture. 0.2 s is a head turn's worth of exposure at most, and the stale-mask case only happens
when segmentation stalls or falls far behind; in normal running the mask is one frame old (33 ms
at 30 fps). With ``segment.every = 0`` (automatic) the pipeline segments *every* frame while the
picture moves (mean absolute difference of a 1/16-size grey copy above :data:`MOTION_THRESHOLD`)
and skips frames only while it is still, so skipping costs no quality. The placeholder and the
paused card are made from the last *output* frame (already processed), blurred again.

**Pause** releases the camera (LED off) and sends a blurred still of the last output with a
"paused" note until resumed; resuming reopens the camera. **On demand** does the same while no
application reads the virtual camera (see :mod:`bgcam.ondemand`), sending a card once a second.

Commands (:mod:`bgcam.control.commands`) are applied on the output thread between frames. Stage
changes never make the output thread wait for the segmentation thread: new segmenters and
refiners are built first (errors reach the command's reply) and handed over; the segmentation
thread swaps them in before its next frame.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from bgcam.compose import create_compositor
from bgcam.config import Config, OutputConfig, SegmentConfig, load_config
from bgcam.control.commands import CommandQueue, ToggleMemory
from bgcam.engine import Engine
from bgcam.errors import BgCamError, DeviceError
from bgcam.frame import Frame, Image
from bgcam.governor import WINDOW, Governor
from bgcam.ondemand import DemandWatcher, watch_readers
from bgcam.refine import MaskRefiner
from bgcam.segment import Segmenter, create_segmenter
from bgcam.sinks import Sink, SinkClosed, create_sink
from bgcam.sources import Source, SourceState, as_image, create_source
from bgcam.stats import Stats, format_line

log = logging.getLogger(__name__)

__all__ = ["MaskBuffer", "Matte", "Pipeline", "max_mask_age", "output_size"]

MAX_MASK_AGE = 0.2
"""Seconds a mask may be older (or newer) than the frame it is composed with."""
MOTION_THRESHOLD = 1.5
"""Mean absolute grey-level change (0–255) of consecutive frames that counts as motion."""
LOST_GRACE = 0.5
"""Seconds of a lost source before the placeholder replaces the repeated last frame."""
STALL = 2.0
"""Seconds without a new frame, source nominally running, before the placeholder shows."""
PHASE_TARGET = 0.3
"""Where in the frame period the output tick sits after a frame arrives (phase lock)."""
PHASE_STEP = 0.001
IDLE_CARD_PERIOD = 1.0
CATCH_UP_LIMIT = 1.0
"""Seconds behind schedule after which the output clock restarts instead of catching up."""


BUSY_THREADS = 2
"""The pipeline's own busy threads: segmentation and output (capture mostly waits)."""


def opencv_threads(cores: int | None = None) -> int:
    """Threads OpenCV may use per call while the pipeline runs: the cores its own busy threads
    leave free, and at least 1 (no worker pool). With two cores, a pool would only make the
    segmentation and output threads wait for each other's work items (measured: ~2 % of a core
    more at 720p30, for no gain in rate)."""
    if cores is None:
        affinity = getattr(os, "sched_getaffinity", None)
        cores = len(affinity(0)) if affinity is not None else (os.cpu_count() or 1)
    return max(1, cores - BUSY_THREADS)


SEGMENT_NICE = 5
"""How much lower the segmentation thread's priority is than the process's (Linux nice)."""


def _yield_to_others(increment: int) -> None:
    """Lower the calling thread's scheduling priority (Linux: threads have their own nice).

    The segmentation thread is the one that can wait: when all cores are busy, the capture
    thread (a frame due now) and the output thread (a tick due now) should run first, or a frame
    arrives after its tick and is shown one tick late (a repeat, then a skip). Lowering one's own
    priority needs no privilege; elsewhere this does nothing.
    """
    setpriority = getattr(os, "setpriority", None)
    if setpriority is None or sys.platform != "linux":
        return
    try:
        tid = threading.get_native_id()
        setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + increment))
    except OSError as exc:
        log.debug("cannot lower the segmentation thread's priority: %s", exc)


def max_mask_age(every: int, source_fps: float) -> float:
    return max(MAX_MASK_AGE, (max(every, 1) + 1) / max(source_fps, 1.0))


def output_size(out: OutputConfig, native: tuple[int, int]) -> tuple[int, int]:
    """The processing and output size: the configured one, else the source's; always even."""
    nw, nh = native
    w, h = out.width, out.height
    if w and not h:
        h = round(nh * w / nw)
    elif h and not w:
        w = round(nw * h / nh)
    elif not w and not h:
        w, h = nw, nh
    return max(2, w - w % 2), max(2, h - h % 2)


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
    Compositors upsample the working-size alpha as they blend."""

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
        """Copy the refiner's results for frame ``index`` in and make them the newest matte
        (segmentation thread only)."""
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


def _combine(errors: list[BgCamError]) -> BgCamError:
    if len(errors) == 1:
        return errors[0]
    lines = [f"- {e.message}" + (f"\n    fix: {e.hint}" if e.hint else "") for e in errors]
    return DeviceError("cannot start:\n  " + "\n  ".join(lines))


class Pipeline:
    """Owns the stages, the threads, the stats and the command queue of a running daemon."""

    def __init__(
        self,
        cfg: Config,
        *,
        config_path: Path | None = None,
        loader: Callable[[], Config] | None = None,
        source: Source | None = None,
        sink: Sink | None = None,
        segmenter: Segmenter | None = None,
        demand_path: str | None = None,
    ) -> None:
        self._cfg = cfg
        self._baseline = cfg
        self.config_path = config_path
        self._loader = loader or (lambda: load_config(config_path))
        self.commands = CommandQueue()
        self._memory = ToggleMemory()
        self.stats = Stats()
        self.stop_requested = False
        self._source = source
        self._sink = sink
        self._segmenter_override = segmenter
        self._demand_path = demand_path
        self._demand: DemandWatcher | None = None
        self.engine: Engine | None = None
        self.size: tuple[int, int] = (0, 0)
        self.state = "starting"
        self._paused = False
        self._idle = False
        self.governor = Governor(cfg.segment, cfg.output.fps, enabled=cfg.output.governor)
        self._every = self.governor.current.every
        self._masks: MaskBuffer | None = None
        self._seg_thread: threading.Thread | None = None
        self._cv_threads: int | None = None
        self._threads_stop = threading.Event()
        self._handoff_lock = threading.Lock()
        self._pending_seg: Segmenter | SegmentConfig | None = None
        self._pending_ref: MaskRefiner | None = None
        self._gov_failure: tuple[int, str] | None = None
        self._out_lock = threading.Lock()
        self._last_out: Image | None = None
        self._out_seq = 0
        self._card: Image | None = None
        self._card_key: tuple[str, int] | None = None
        self._seg_error_logged = False

    # -- the Daemon protocol -------------------------------------------------------------

    @property
    def config(self) -> Config:
        return self._cfg

    @property
    def source(self) -> Source:
        assert self._source is not None, "pipeline not started"
        return self._source

    @property
    def sink(self) -> Sink:
        assert self._sink is not None, "pipeline not started"
        return self._sink

    def request_stop(self) -> None:
        """Ask the output loop to stop after the current frame (safe from any thread/handler)."""
        self.stop_requested = True

    def set_paused(self, paused: bool) -> None:
        if paused == self._paused:
            return
        self._paused = paused
        if self._source is not None and not self._idle:
            if paused:
                self._source.stop()
                log.info("paused: camera released; sending a still")
            else:
                self._source.start()
                log.info("resumed")

    def reload_config(self) -> Config:
        return self._loader()

    def save_config(self) -> Path:
        from bgcam.control.save import save_config

        path = save_config(self.config_path, self._cfg, baseline=self._baseline)
        self._baseline = self._cfg
        return path

    def apply_config(self, cfg: Config) -> None:
        """Swap in ``cfg`` between frames (output thread). Stage errors leave the old config."""
        old = self._cfg
        if cfg == old:
            return
        if self.engine is None:  # not running yet
            self._cfg = cfg
            return
        if cfg.segment != old.segment:
            self.governor.reset(cfg.segment)
            self._every = self.governor.current.every
        self._rebuild_stages(self._effective(cfg))
        if cfg.source != old.source:
            self._replace_source(cfg)
        if cfg.output != old.output:
            log.warning("output.* changes take effect at the next start of bgcam run")
        if cfg.log != old.log:
            logging.getLogger("bgcam").setLevel(cfg.log.level.upper())
        self._cfg = cfg

    def status(self) -> dict[str, Any]:
        cfg = self._cfg
        engine = self.engine
        src = self._source
        out: dict[str, Any] = {
            "state": self.state,
            "paused": self._paused,
            "mode": cfg.compose.mode,
            "blur": cfg.compose.blur,
            "segmenter": engine.segmenter.name if engine is not None else cfg.segment.segmenter,
            "segment_every": self._every if cfg.segment.every == 0 else cfg.segment.every,
            "governor": self.governor.current.label,
            "source": {
                "uri": src.uri if src else cfg.source.uri,
                "kind": src.kind if src else None,
                "state": src.state.value if src else None,
            },
            "sink": self._sink.name if self._sink else cfg.output.sink,
            "device": self._sink.device if self._sink else None,
            "size": list(self.size),
            "on_demand": None if self._demand is None else self._demand.method,
        }
        out.update(self.stats.summary())
        out["config"] = cfg.model_dump(mode="json")
        return out

    def latest_output(self, copy: bool = True) -> tuple[Image | None, int]:
        """The last frame sent and its sequence number (it changes when the content does).

        ``copy=False`` returns the live buffer, which the next frame overwrites.
        """
        with self._out_lock:
            out = self._last_out
            if out is not None and copy:
                out = out.copy()
            return out, self._out_seq

    # -- start / stop --------------------------------------------------------------------

    def start(self) -> None:
        """Open source, sink and stages; start the threads. Raises BgCamError when impossible."""
        cfg = self._cfg
        errors: list[BgCamError] = []
        try:
            sink = self._sink or create_sink(cfg.output.sink, cfg.output.device)
            self._sink = sink
            locate = getattr(sink, "locate", None)
            if locate is not None:
                locate()
        except BgCamError as exc:
            errors.append(exc)
        try:
            source = self._source or create_source(cfg.source)
            self._source = source
            native = source.open()
        except BgCamError as exc:
            errors.append(exc)
        if errors:
            raise _combine(errors)
        self.size = size = output_size(cfg.output, native)
        if size != native:
            source.target_size = size
            log.info("processing and output at %dx%d (source %dx%d)", *size, *native)
        try:
            self.engine = Engine(self._effective(cfg), size, segmenter=self._segmenter_override)
            self._masks = MaskBuffer()
            sink.open(size, cfg.output.fps)
        except BaseException:
            source.stop()
            if self.engine is not None:
                self.engine.close()
            raise
        if cfg.output.on_demand:
            path = self._demand_path or sink.device or (cfg.output.device or None)
            if path is None or sys.platform != "linux":
                # Not an error: the same profile must work with --sink null or file:… to try it.
                log.warning(
                    "output.on_demand ignored: it watches a Linux v4l2loopback device for "
                    "readers, and this run has none (sink %s); the camera stays open",
                    cfg.output.sink,
                )
            else:
                self._demand = watch_readers(path)
        self.stats.restart()
        self._threads_stop.clear()
        self._cv_threads = cv2.getNumThreads()
        cv2.setNumThreads(opencv_threads())
        self._seg_thread = threading.Thread(
            target=self._segment_loop, name="bgcam-segment", daemon=True
        )
        self._seg_thread.start()
        source.start()
        if source.wait_newer(-1, 2.0) is None:  # the first frame, so the output starts with it
            log.warning("no frame from %s within 2 s of starting", source.uri)
        self.state = "running"
        log.info(
            "running: %s → %s, %dx%d at %g fps, %s",
            source.uri,
            sink.name,
            *size,
            cfg.output.fps,
            f"mode {cfg.compose.mode}",
        )

    def close(self) -> None:
        """Stop the threads and release everything (idempotent)."""
        self.state = "stopping"
        self._threads_stop.set()
        if self._source is not None:
            self._source.stop()
        seg_alive = False
        if self._seg_thread is not None:
            self._seg_thread.join(1.0)
            seg_alive = self._seg_thread.is_alive()
            if seg_alive:
                log.warning("segmentation thread did not stop within 1 s (stalled segmenter)")
        if self._sink is not None:
            try:
                self._sink.close()
            except Exception as exc:
                log.warning("closing the %s sink failed: %s", self._sink.name, exc)
        if self._demand is not None:
            self._demand.close()
            self._demand = None
        if self.engine is not None and not seg_alive:
            self.engine.close()
        self.engine = None
        if self._cv_threads is not None:
            cv2.setNumThreads(self._cv_threads)
            self._cv_threads = None
        self.state = "stopped"

    def run(self, seconds: float | None = None) -> dict[str, Any]:
        """Start, run until stopped (``seconds``, a command, a signal, the end of a file), close.

        Returns the run's stats (what ``--stats-json`` writes).
        """
        try:
            self.start()
            self._loop(seconds)
        finally:
            self.close()
        summary = self.stats.summary()
        log.info("stopped: %s", format_line(summary))
        return summary

    # -- stages --------------------------------------------------------------------------

    def _effective(self, cfg: Config) -> Config:
        """``cfg`` with the governor's segment settings."""
        seg = self.governor.current.segment
        return cfg if seg == cfg.segment else cfg.model_copy(update={"segment": seg})

    def _rebuild_stages(self, new: Config) -> None:
        engine = self.engine
        assert engine is not None
        old = engine.cfg
        seg = create_segmenter(new.segment, self.size) if new.segment != old.segment else None
        ref = MaskRefiner(new.refine, self.size) if new.refine != old.refine else None
        if new.compose != old.compose:
            if new.compose.backend != old.compose.backend:
                comp = create_compositor(new.compose, self.size)
                engine.compositor.close()
                engine.compositor = comp
            else:
                engine.compositor.update(new.compose)
        if seg is not None or ref is not None:
            self._hand_over(seg, ref)
        engine.cfg = new

    def _hand_over(self, seg: Segmenter | SegmentConfig | None, ref: MaskRefiner | None) -> None:
        with self._handoff_lock:
            if seg is not None:
                stale = self._pending_seg
                if stale is not None and not isinstance(stale, SegmentConfig):
                    stale.close()
                self._pending_seg = seg
            if ref is not None:
                self._pending_ref = ref

    def _take_over(self) -> None:
        """Swap in handed-over stages (segmentation thread, between frames)."""
        with self._handoff_lock:
            seg, self._pending_seg = self._pending_seg, None
            ref, self._pending_ref = self._pending_ref, None
        engine = self.engine
        assert engine is not None
        if isinstance(seg, SegmentConfig):
            try:
                seg = create_segmenter(seg, self.size)
            except Exception as exc:
                self._gov_failure = (self.governor.level, str(getattr(exc, "message", exc)))
                seg = None
        if seg is not None:
            old, engine.segmenter = engine.segmenter, seg
            old.close()
            log.info("segmenter now %s", seg.name)
        if ref is not None:
            engine.refiner = ref

    def _replace_source(self, cfg: Config) -> None:
        new = create_source(cfg.source)
        new.open()  # errors reach the command's reply; the old source keeps running
        old = self._source
        if old is not None:
            old.stop()
        new.target_size = self.size if new.native_size != self.size else None
        self._source = new
        if not (self._paused or self._idle):
            new.start()
        log.info("source now %s", new.uri)

    # -- the segmentation thread ---------------------------------------------------------

    def _segment_loop(self) -> None:
        engine, masks = self.engine, self._masks
        assert engine is not None and masks is not None
        _yield_to_others(SEGMENT_NICE)
        last = -1
        last_seg = -(10**9)
        prev_small: Image | None = None
        small = np.empty((max(1, self.size[1] // 16), max(1, self.size[0] // 16)), np.uint8)
        grey = np.empty(self.size[::-1], np.uint8)
        backoff = 0.0
        while not self._threads_stop.is_set():
            if self._pending_seg is not None or self._pending_ref is not None:
                self._take_over()
            source = self._source
            if source is None:
                break
            frame = source.wait_newer(last, 0.1)
            if frame is None:
                continue
            last = frame.index
            if self._cfg.compose.mode == "off":
                continue
            every = self._every if self._cfg.segment.every == 0 else self._cfg.segment.every
            if self._cfg.segment.every == 0 and every > 1:
                cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY, dst=grey)
                cv2.resize(grey, small.shape[::-1], dst=small, interpolation=cv2.INTER_AREA)
                moving = prev_small is None or (
                    float(cv2.norm(small, prev_small, cv2.NORM_L1)) / small.size > MOTION_THRESHOLD
                )
                if prev_small is None:
                    prev_small = small.copy()
                else:
                    np.copyto(prev_small, small)
                if moving:
                    every = 1
            if frame.index - last_seg < every:
                continue
            try:
                t0 = time.monotonic()
                refiner = engine.refiner
                low = engine.segmenter.segment(frame.image, refiner.shrink(frame.image))
                t1 = time.monotonic()
                refiner.update(low, frame.image)
                t2 = time.monotonic()
                masks.publish(refiner.alpha8_small, refiner.small, frame.index, frame.t_capture)
            except Exception as exc:
                masks.invalidate()
                self.stats.segmented(error=True)
                if not self._seg_error_logged:
                    self._seg_error_logged = True
                    log.error(
                        "segmentation failed: %s; blurring whole frames until it works "
                        "(logged once)",
                        exc,
                        exc_info=log.isEnabledFor(logging.DEBUG),
                    )
                backoff = min(2.0, max(0.1, backoff * 2))
                self._threads_stop.wait(backoff)
                continue
            if self._seg_error_logged:
                log.info("segmentation works again")
                self._seg_error_logged = False
            backoff = 0.0
            last_seg = frame.index
            self.stats.segmented()
            self.stats.stage("segment", (t1 - t0) * 1e3)
            self.stats.stage("refine", (t2 - t1) * 1e3)

    # -- the output thread ---------------------------------------------------------------

    def _compose(self, frame: Frame) -> tuple[Image, bool]:
        engine, masks = self.engine, self._masks
        assert engine is not None and masks is not None
        matte: Matte | None = None
        small: Image | None = None
        cfg = self._cfg
        if cfg.compose.mode != "off":
            got = masks.acquire()
            if got is not None:
                candidate, index, t_mask = got
                every = self._every if cfg.segment.every == 0 else cfg.segment.every
                if abs(frame.t_capture - t_mask) <= max_mask_age(every, self.source.fps):
                    matte = candidate
                    # Refined from this very frame: its shrunk copy saves the blur a pass.
                    small = candidate.small if index == frame.index else None
        t0 = time.monotonic()
        with self._out_lock:
            compositor = engine.compositor
            if matte is None:
                out = compositor.compose(frame.image, None)
            else:
                out = compositor.compose_matte(frame.image, matte.alpha8, small)
            self._last_out = out
            self._out_seq += 1
        self.stats.stage("compose", (time.monotonic() - t0) * 1e3)
        return out, matte is None and cfg.compose.mode != "off"

    def _card_for(self, text: str) -> Image:
        """A blurred still of the last output with a short note (cached per text and output)."""
        key = (text, id(self._last_out) ^ self._out_seq)
        if self._card is not None and self._card_key == key:
            return self._card
        w, h = self.size
        base = self._last_out
        if base is None:
            card = np.full((h, w, 3), 40, np.uint8)
        else:
            small = cv2.resize(base, (max(1, w // 8), max(1, h // 8)), interpolation=cv2.INTER_AREA)
            small = cv2.GaussianBlur(small, (0, 0), max(1.0, h / 8 / 30))
            card = as_image(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR))
            cv2.convertScaleAbs(card, dst=card, alpha=0.6)
        scale = max(0.4, h / 720 * 1.2)
        thick = max(1, round(scale * 2))
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        org = ((w - tw) // 2, (h + th) // 2)
        cv2.putText(
            card, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA
        )
        self._card, self._card_key = card, key
        with self._out_lock:
            self._out_seq += 1
        return card

    def _send(self, image: Image) -> None:
        t0 = time.monotonic()
        self.sink.send(image)
        self.stats.stage("send", (time.monotonic() - t0) * 1e3)

    def _sleep_until(self, t: float) -> None:
        while not self.stop_requested:
            remaining = t - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(remaining, 0.05))

    def _demand_idle(self) -> bool:
        """Poll the on-demand watcher; start/stop the source; True while nobody reads."""
        demand = self._demand
        if demand is None:
            return False
        wanted = demand.poll(0 if not self._idle else 0.2)
        if wanted and self._idle:
            self._idle = False
            self.state = "running"
            log.info("on-demand: a reader appeared: starting %s", self.source.uri)
            if not self._paused:
                self.source.start()
        elif not wanted and not self._idle:
            self._idle = True
            self.state = "idle"
            log.info("on-demand: no reader: releasing %s and idling", self.source.uri)
            self.source.stop()
        return self._idle

    def _loop(self, seconds: float | None) -> None:
        cfg = self._cfg
        period = 1.0 / cfg.output.fps
        t_start = time.monotonic()
        t_end = t_start + seconds if seconds is not None else float("inf")
        next_t = t_start
        last_index = -1
        t_new = t_start
        next_log = t_start + cfg.log.stats_interval if cfg.log.stats_interval else float("inf")
        next_gov = t_start + WINDOW
        next_card = 0.0
        self.stats.take_window("gov")
        while not self.stop_requested and time.monotonic() < t_end:
            try:
                self.commands.run_pending(self, self._memory)
            except Exception:  # a bug in a command must not stop the video
                log.exception("a command failed unexpectedly")
            if self._demand_idle():
                now = time.monotonic()
                if now >= next_card:
                    next_card = now + IDLE_CARD_PERIOD
                    self._send(self._card_for("BgCam: waiting for a viewer"))
                    self.stats.frame_out(new=False, placeholder=True)
                next_t = time.monotonic()
                continue
            source = self.source
            sched, tick = next_t, time.monotonic()
            frame = source.latest()
            new = unmasked = placeholder = False
            dropped = 0
            if self._paused:
                out, placeholder = self._card_for("paused"), True
            elif frame is not None and frame.index > last_index:
                out, unmasked = self._compose(frame)
                dropped = frame.index - last_index - 1 if last_index >= 0 else 0
                last_index, new, t_new = frame.index, True, tick
                if abs(source.fps - cfg.output.fps) < 0.03 * cfg.output.fps:
                    # Measured from the *scheduled* tick, so a late wake-up (a busy machine)
                    # does not bias the rate: with a source at the same rate the nudges
                    # average to zero.
                    offset = sched - frame.t_capture
                    if -period < offset < 2 * period:
                        err = offset - PHASE_TARGET * period
                        next_t -= max(-PHASE_STEP, min(PHASE_STEP, 0.1 * err))
            elif source.state is SourceState.ENDED:
                log.info("the source ended: stopping")
                break
            elif (
                (source.state is SourceState.LOST and source.lost_for > LOST_GRACE)
                or tick - t_new > STALL
                or self._last_out is None
            ):
                out, placeholder = self._card_for("camera unavailable"), True
            else:
                out = self._last_out
            try:
                self._send(out)
            except SinkClosed as exc:
                log.info("%s: stopping", exc)
                break
            latency = (time.monotonic() - frame.t_capture) * 1e3 if new and frame else None
            self.stats.frame_out(
                new=new,
                latency_ms=latency,
                dropped=dropped,
                placeholder=placeholder,
                unmasked=unmasked,
            )
            now = time.monotonic()
            if now >= next_log:
                next_log = now + cfg.log.stats_interval
                log.info("%s", format_line(self.stats.take_window("log")))
            if now >= next_gov:
                self._govern(now - next_gov + WINDOW)
                next_gov = now + WINDOW
            next_t += period
            if now - next_t > 0.5 * period:
                self.stats.late()
                if now - next_t > CATCH_UP_LIMIT:
                    next_t = now  # hopelessly behind (suspended?): restart the clock
            # A late tick is made up by sending the next one at once: the rate stays exact.
            self._sleep_until(next_t)

    def _govern(self, seconds: float) -> None:
        failure, self._gov_failure = self._gov_failure, None
        w = self.stats.take_window("gov")
        level = None
        if failure is not None:
            level = self.governor.unavailable(*failure)
        elif not (self._paused or self._idle):
            level = self.governor.observe(w, self.source.fps, seconds)
        if level is None:
            return
        self._every = level.every
        engine = self.engine
        assert engine is not None
        if level.segment != engine.cfg.segment:
            self._hand_over(level.segment, None)
            engine.cfg = engine.cfg.model_copy(update={"segment": level.segment})
