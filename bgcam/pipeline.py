"""The live pipeline: source → segmentation thread → output thread → sink, at a steady rate.

:class:`Pipeline` conducts the parts in :mod:`bgcam.live` (docs/architecture.md draws the threads
and the frame's path) and is the :class:`~bgcam.control.commands.Daemon` that commands act on.
The output thread is the caller of :meth:`Pipeline.run` (the main thread, so signals reach it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from functools import partial
from pathlib import Path

from bgcam.config import Config, load_config
from bgcam.control.commands import CommandQueue, ToggleMemory
from bgcam.engine import Engine, SegmenterFactory
from bgcam.frame import Image
from bgcam.governor import WINDOW, Governor
from bgcam.live import devices
from bgcam.live.cards import LastOutput
from bgcam.live.changes import StageChanges
from bgcam.live.clock import OutputClock, Periodic
from bgcam.live.masks import MaskExchange
from bgcam.live.output import Output, wants_matte
from bgcam.live.state import Lifecycle, PipelineState
from bgcam.live.worker import SegmentationWorker
from bgcam.segment import Segmenter, create_segmenter, roi_status
from bgcam.sinks import Sink
from bgcam.sources import OpenCancelled, Source
from bgcam.stats import RunStats, Stats, format_line
from bgcam.status import DaemonStatus
from bgcam.studio import studio_status

log = logging.getLogger(__name__)

__all__ = ["Pipeline"]

RUNNING = PipelineState.RUNNING


class Pipeline:
    """Owns the parts, the stats and the command queue of a running daemon."""

    def __init__(
        self,
        cfg: Config,
        *,
        config_path: Path | None = None,
        loader: Callable[[], Config] | None = None,
        source: Source | None = None,
        sink: Sink | None = None,
        segmenter: Segmenter | None = None,
        build_segmenter: SegmenterFactory = create_segmenter,
        demand_path: str | None = None,
    ) -> None:
        self._cfg = self._baseline = cfg
        self.config_path = config_path
        self._loader = loader or (lambda: load_config(config_path))
        self.commands = CommandQueue()
        self._memory = ToggleMemory()
        self.stats = Stats()
        self.stop_requested = False
        self.abandoned_open: Source | None = None
        """The source whose start-up open a stop gave up (its helper thread may still run)."""
        self._source, self._sink = source, sink
        self._new_engine = partial(Engine, segmenter=segmenter, build_segmenter=build_segmenter)
        self._demand_path = demand_path
        self.engine: Engine | None = None
        self.size: tuple[int, int] = (0, 0)
        self.lifecycle = Lifecycle(PipelineState.STARTING)
        self._camera = devices.Camera(self.lifecycle, lambda: self._source)
        self.governor = Governor.of(cfg)
        self._masks = MaskExchange()
        self._worker: SegmentationWorker | None = None
        self._changes: StageChanges | None = None
        self._last = LastOutput()

    # -- the Daemon protocol -------------------------------------------------------------

    @property
    def config(self) -> Config:
        return self._cfg

    @property
    def state(self) -> PipelineState:
        return self.lifecycle.state

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
        self._camera.pause(paused)

    def reload_config(self) -> Config:
        return self._loader()

    def save_config(self) -> Path:
        from bgcam.control.save import save_config

        path = save_config(self.config_path, self._cfg, baseline=self._baseline)
        self._baseline = self._cfg
        return path

    def apply_config(self, cfg: Config) -> None:
        """Move to ``cfg`` between frames (output thread); when that loads a model, once it is
        built (off this thread: the reply waits on :meth:`settling`)."""
        if cfg == self._cfg:
            return
        if self._changes is None:  # not running yet
            self._cfg = cfg
            return
        self._changes.request(cfg)

    def settling(self) -> Future[None] | None:
        return self._changes.settling if self._changes is not None else None

    def status(self) -> DaemonStatus:
        cfg, engine, src, sink = self._cfg, self.engine, self._source, self._sink
        seg = self._worker.segmenter if self._worker is not None else None
        return DaemonStatus(
            state=self.state.label,
            paused=self.state.paused,
            mode=cfg.compose.mode,
            blur=cfg.compose.blur,
            segmenter=seg.name if seg is not None else cfg.segment.segmenter,
            segment_every=self.governor.every(cfg.segment)[0],
            governor=self.governor.current.label,
            source=devices.source_status(src, cfg),
            sink=sink.name if sink else cfg.output.sink,
            device=sink.device if sink else None,
            size=self.size,
            on_demand=None if self._camera.demand is None else self._camera.demand.method,
            stats=self.stats.summary(),
            config=cfg,
            roi=roi_status(seg),
            studio=engine.studio.status() if engine is not None else studio_status(cfg),
        )

    def latest_output(self, copy: bool = True) -> tuple[Image | None, int]:
        """The last frame sent (``copy=False``: the live buffer, overwritten by the next frame)
        and its sequence number (it changes when the content does)."""
        return self._last.get(copy)

    # -- start / stop --------------------------------------------------------------------

    def start(self) -> None:
        """Open source, sink and stages; start the threads. Raises BgCamError when impossible."""
        self.lifecycle.to(PipelineState.STARTING)
        cfg = self._cfg
        # A stop (TERM, INT, `ctl quit`) while the source opens ends the start at once.
        source, sink, size = devices.open_ends(
            cfg, self._source, self._sink, cancelled=lambda: self.stop_requested
        )
        self._source, self._sink, self.size = source, sink, size
        try:
            self.engine = engine = self._new_engine(self.governor.overlay(cfg), size)
            sink.open(size, cfg.output.fps)
        except BaseException:
            source.stop()
            if self.engine is not None:
                self.engine.close()
            raise
        self._camera.watch_readers(cfg.output, sink, self._demand_path)
        self.stats.restart()
        self._worker = SegmentationWorker(
            engine,
            self._masks,
            self.stats,
            source=lambda: self._source,
            schedule=lambda: self.governor.every(self._cfg.segment),
            active=lambda: wants_matte(self._cfg),
        )
        self._worker.start()
        self._changes = StageChanges(
            engine, self._worker, self.governor, config=lambda: self._cfg, adopt=self._adopt
        )
        source.start()
        devices.first_frame(source, cancelled=lambda: self.stop_requested)
        self.lifecycle.to(RUNNING)
        log.info("running: %s → %s, %dx%d at %g fps, mode %s", source.uri, sink.name, *size,
                 cfg.output.fps, cfg.compose.mode)  # fmt: skip

    def close(self) -> None:
        """Stop the threads and release everything (idempotent)."""
        if self.state is PipelineState.STOPPED:
            return
        self.lifecycle.to(PipelineState.STOPPING)
        if self._source is not None:
            self._source.stop()
        stopped = self._worker.stop(1.0) if self._worker is not None else True
        self._worker = None
        if self._sink is not None:
            devices.close_sink(self._sink)
        self._camera.close()
        if self.engine is not None and stopped:
            self.engine.close()  # joins a build under way
        if self._changes is not None:
            self._changes.close()
            self._changes = None
        self.engine = None
        self.lifecycle.to(PipelineState.STOPPED)

    def run(self, seconds: float | None = None) -> RunStats:
        """Start, run until stopped (``seconds``, a command, a signal, the end of a file), close;
        return the run's stats (what ``--stats-json`` writes)."""
        try:
            self.start()
            self._loop(seconds)
        except OpenCancelled as exc:
            self.abandoned_open = exc.source
            log.info("stopped while the source was opening")
        finally:
            self.close()
        summary = self.stats.summary()
        log.info("stopped: %s", format_line(summary))
        sink_stats = getattr(self._sink, "stats", None)
        if sink_stats is not None:  # e.g. the PipeWire camera: written, dropped, restarts, CPU
            summary["sink"] = sink_stats()
        return summary

    # -- changes between frames (output thread) ------------------------------------------

    def _adopt(self, cfg: Config) -> None:
        """Take a command's config once its stages are in use."""
        old = self._cfg
        if cfg.source != old.source:
            # an open error reaches the command's reply, with the old source still running
            running = self.state is RUNNING
            self._source = devices.replace_source(self._source, cfg, self.size, running)
        self._cfg = cfg
        if cfg.segment != old.segment:
            self.governor.reset(cfg.segment)
        if cfg.output != old.output:
            log.warning("output.* changes take effect at the next start of bgcam run")
        if cfg.log != old.log:
            logging.getLogger("bgcam").setLevel(cfg.log.level.upper())

    # -- the output thread ---------------------------------------------------------------

    def _loop(self, seconds: float | None) -> None:
        cfg, engine, changes = self._cfg, self.engine, self._changes
        assert engine is not None and changes is not None
        output = Output(
            engine,
            self._masks,
            self.sink,
            self.stats,
            self._last,
            every=lambda: self.governor.every(self._cfg.segment)[0],
            masking=lambda: wants_matte(self._cfg),
            fail_closed=lambda: self._cfg.compose.mode != "off",
        )
        clock = OutputClock(cfg.output.fps)
        t_end = clock.next_t + seconds if seconds is not None else float("inf")
        logs, governs = Periodic(cfg.log.stats_interval), Periodic(WINDOW)
        self.stats.take_window("gov")
        while not self.stop_requested and time.monotonic() < t_end:
            changes.finish()
            try:
                self.commands.run_pending(self, self._memory)
            except Exception:  # a bug in a command must not stop the video
                log.exception("a command failed unexpectedly")
            if self._camera.idle():
                if not output.idle(clock):
                    break
                continue
            if not output.tick(self.source, clock, paused=self.state.paused):
                break
            now = time.monotonic()
            if logs.due(now):
                log.info("%s", format_line(self.stats.take_window("log")))
            if window := governs.due(now):
                self._govern(window)
            if clock.advance(now):
                self.stats.late()
            # A late tick is made up by sending the next one at once: the rate stays exact.
            clock.sleep(lambda: self.stop_requested)

    def _govern(self, seconds: float) -> None:
        w = self.stats.take_window("gov")
        changes = self._changes
        if changes is None or changes.building or self.state is not RUNNING:
            return
        changes.govern_compose(w)
        if self.governor.observe(w, self.source.fps, seconds) is not None:
            changes.govern()
