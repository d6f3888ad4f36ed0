"""What a running daemon reports about itself: one frozen, typed snapshot, and its JSON form.

:meth:`DaemonStatus.to_json` is the one place it becomes JSON (the control socket's and the web
page's replies, ``bgcam ctl status``). The run's figures (``fps_out``, ``frames_out``,
``latency_ms_p99``…) are :func:`bgcam.stats.summarize`'s, flattened into the same object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bgcam.config import Config

if TYPE_CHECKING:  # stats.py needs numpy, which bgcam ctl does not
    from bgcam.stats import RunStats

__all__ = ["DaemonStatus", "SourceStatus"]


@dataclass(frozen=True, slots=True)
class SourceStatus:
    uri: str
    kind: str | None
    """camera, file, folder, stream… (None before the source exists)."""
    state: str | None
    """The source's state machine (:class:`bgcam.sources.SourceState`), None before it exists."""


@dataclass(frozen=True, slots=True)
class DaemonStatus:
    state: str
    """starting, running, idle (on-demand: nobody reads), stopping, stopped."""
    paused: bool
    mode: str
    blur: int
    segmenter: str
    segment_every: int
    governor: str
    """The governor's level, e.g. "as configured"."""
    source: SourceStatus
    sink: str
    device: str | None
    size: tuple[int, int]
    on_demand: str | None
    """How on-demand watches for readers (None: off)."""
    stats: RunStats
    config: Config
    roi: dict[str, Any] | None = None
    """The ROI segmenter's crop (:meth:`bgcam.segment.roi.RoiSegmenter.status`); None: off."""
    studio: dict[str, Any] = field(default_factory=dict)
    """The studio effects' state (:meth:`bgcam.studio.Studio.status`): ``autoframe`` (on, zoom,
    crop, person) and ``light`` (mode, gain, highlights)."""
    saved: str | None = None
    """The file a ``save`` command wrote (only in its reply)."""

    def to_json(self) -> dict[str, Any]:
        src = self.source
        out: dict[str, Any] = {
            "state": self.state,
            "paused": self.paused,
            "mode": self.mode,
            "blur": self.blur,
            "segmenter": self.segmenter,
            "segment_every": self.segment_every,
            "governor": self.governor,
            "source": {"uri": src.uri, "kind": src.kind, "state": src.state},
            "sink": self.sink,
            "device": self.device,
            "size": list(self.size),
            "on_demand": self.on_demand,
            "roi": self.roi,
            **self.studio,
        }
        out.update(self.stats)
        out["config"] = self.config.model_dump(mode="json")
        if self.saved is not None:
            out["saved"] = self.saved
        return out
