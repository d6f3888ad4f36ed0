"""The pipeline's two ends: the source (camera, file, stream) and the sink, opened together; the
processing size that follows from them; and the camera following pause and on-demand."""

from __future__ import annotations

import logging
from collections.abc import Callable

from bgcam.config import Config, OutputConfig
from bgcam.errors import BgCamError, combine
from bgcam.live.state import Lifecycle, PipelineState
from bgcam.ondemand import DemandWatcher, watch_for
from bgcam.sinks import Sink, create_sink
from bgcam.sources import OpenCancelled, Source, create_source
from bgcam.status import SourceStatus

log = logging.getLogger(__name__)

__all__ = [
    "Camera",
    "close_sink",
    "first_frame",
    "open_ends",
    "output_size",
    "replace_source",
    "source_status",
]


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


def open_ends(
    cfg: Config,
    source: Source | None,
    sink: Sink | None,
    cancelled: Callable[[], bool] | None = None,
) -> tuple[Source, Sink, tuple[int, int]]:
    """Create what is not given, find the sink's device and open the source (both errors are
    reported together; ``cancelled``: see :meth:`Source.open`, OpenCancelled). The source scales
    every frame to the output size, which is fixed for the run: a camera or stream that comes
    back at another resolution is still delivered at it, so the stages and the sink never see
    another size. The sink is opened later, once the size is known to work for the stages."""
    errors: list[BgCamError] = []
    try:
        sink = sink or create_sink(
            cfg.output.sink,
            cfg.output.device,
            device_name=cfg.output.device_name,
            pixel_format=cfg.output.pixel_format,
        )
        sink.locate()
    except BgCamError as exc:
        errors.append(exc)
    try:
        source = source or create_source(cfg.source)
        native = source.open(cancelled)
    except OpenCancelled:
        raise
    except BgCamError as exc:
        errors.append(exc)
    if errors:
        raise combine(errors)
    assert source is not None and sink is not None
    size = output_size(cfg.output, native)
    source.target_size = size  # also after a reconnect at another resolution
    if size != native:
        log.info("processing and output at %dx%d (source %dx%d)", *size, *native)
    return source, sink, size


def close_sink(sink: Sink) -> None:
    """Close ``sink``; a failure is logged, never raised (the rest must still be released)."""
    try:
        sink.close()
    except Exception as exc:
        log.warning("closing the %s sink failed: %s", sink.name, exc)


def first_frame(source: Source, cancelled: Callable[[], bool], seconds: float = 2.0) -> None:
    """Wait for the started source's first frame, so the output starts with it (log if late)."""
    for _ in range(round(seconds / 0.1)):
        if source.wait_newer(-1, 0.1) is not None or cancelled():
            return
    log.warning("no frame from %s within %g s of starting", source.uri, seconds)


def replace_source(old: Source | None, cfg: Config, size: tuple[int, int], start: bool) -> Source:
    """A new source for ``cfg.source``, opened and scaled to ``size``, then ``old`` stopped and
    the new one started if ``start``. An open error is raised with ``old`` still running."""
    new = create_source(cfg.source)
    new.open()
    new.target_size = size
    if old is not None:
        old.stop()
    if start:
        new.start()
    log.info("source now %s", new.uri)
    return new


def source_status(source: Source | None, cfg: Config) -> SourceStatus:
    if source is None:
        return SourceStatus(cfg.source.uri, None, None)
    return SourceStatus(source.uri, source.kind, source.state.value)


class Camera:
    """Opens and releases the source as the pipeline's state moves into and out of RUNNING
    (pause, on-demand), driving the :class:`~bgcam.live.state.Lifecycle` from those events."""

    def __init__(self, lifecycle: Lifecycle, source: Callable[[], Source | None]) -> None:
        self._lifecycle = lifecycle
        self._source = source
        self.demand: DemandWatcher | None = None

    def watch_readers(self, cfg: OutputConfig, sink: Sink, path: str | None) -> None:
        """With ``output.on_demand``: follow the readers of ``sink`` (or of the device ``path``)."""
        if not cfg.on_demand:
            return
        demand_watcher = getattr(sink, "demand_watcher", None)
        if demand_watcher is not None and path is None:
            # The sink knows its readers (PipeWire links; several sinks: any of theirs).
            self.demand = demand_watcher()
            if self.demand is not None:
                log.info("on-demand: watching for readers through the %s", self.demand.method)
        else:
            self.demand = watch_for(path or sink.device or (cfg.device or None), cfg.sink)

    def close(self) -> None:
        if self.demand is not None:
            self.demand.close()
            self.demand = None

    def pause(self, paused: bool) -> None:
        if self._follow(*self._lifecycle.pause(paused)):
            log.info("paused: camera released; sending a still" if paused else "resumed")

    def idle(self) -> bool:
        """Poll the on-demand watcher (the camera follows readers); True while nobody reads."""
        demand = self.demand
        if demand is None:
            return False
        was = self._lifecycle.state
        old, new = self._lifecycle.reader(demand.poll(0.2 if was.idle else 0))
        if self._follow(old, new):
            src = self._source()
            what = "no reader: releasing" if new.idle else "a reader appeared: starting"
            log.info("on-demand: %s %s", what, src.uri if src else "the source")
        return new.idle

    def _follow(self, old: PipelineState, new: PipelineState) -> bool:
        """Start or stop the source when RUNNING is entered or left; True if the state changed."""
        source = self._source()
        running = PipelineState.RUNNING
        if source is not None and (old is running) != (new is running):
            if new is running:
                source.start()
            else:
                source.stop()
        return old is not new
