"""Config changes that need new stages: built off the output thread, put to use between frames.

A change that loads a model (segmenter, refiner, compositor backend) or changes the compositor's
settings (a new blur plan, a background file; :func:`~bgcam.engine.builds_off_thread`) is built
by the engine's builder thread while the output keeps its rate; the output thread polls
:meth:`StageChanges.finish` each tick and then swaps the compose side in, hands the segment side
to the :class:`~bgcam.live.worker.SegmentationWorker`, and adopts the config. One build at a time;
commands wait for it (:attr:`StageChanges.settling`). The governor's level changes take the same
path; a level whose stages fail to build is marked unavailable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from bgcam.config import Config
from bgcam.engine import Engine, StageSwap, builds_off_thread
from bgcam.errors import BgCamError, DeviceError
from bgcam.governor import Governor
from bgcam.live.worker import SegmentationWorker
from bgcam.stats import RunStats

log = logging.getLogger(__name__)

__all__ = ["StageChanges"]


@dataclass(slots=True)
class _Build:
    """A build under way: for a command (``cfg``) or for the governor's level ``level``."""

    swap: Future[StageSwap]
    cfg: Config | None
    level: int
    settled: Future[None] = field(default_factory=Future)


class StageChanges:
    """Applies configs to ``engine`` (output thread only).

    ``config()`` is the user's config in force (the governor's overlay goes on top of it);
    ``adopt(cfg)`` takes a command's config once its stages are in use (it may raise: the error
    reaches the command's reply).
    """

    def __init__(
        self,
        engine: Engine,
        worker: SegmentationWorker,
        governor: Governor,
        *,
        config: Callable[[], Config],
        adopt: Callable[[Config], None],
    ) -> None:
        self._engine, self._worker, self._governor = engine, worker, governor
        self._config, self._adopt = config, adopt
        self._build: _Build | None = None

    @property
    def building(self) -> bool:
        return self._build is not None

    @property
    def settling(self) -> Future[None] | None:
        """While a build is under way: resolved once its stages are in use (or it failed)."""
        return self._build.settled if self._build is not None else None

    def request(self, cfg: Config) -> None:
        """Move to the user's config ``cfg`` (a command): now, or once its stages are built."""
        old = self._config()
        target = cfg if cfg.segment != old.segment else self._governor.overlay(cfg)
        if self._build is not None:
            raise DeviceError("busy: a stage is still being built; try again")
        if builds_off_thread(self._engine.cfg, target):
            self._build = _Build(self._engine.plan_async(target), cfg, self._governor.level)
        else:
            self._commit(self._engine.plan(target), cfg)

    def govern(self) -> None:
        """The governor changed level: build its stages when they differ."""
        target = self._governor.overlay(self._config())
        if self._build is None and target.segment != self._engine.cfg.segment:
            self._build = _Build(self._engine.plan_async(target), None, self._governor.level)

    def govern_compose(self, window: RunStats) -> None:
        """Judge the compositor's cost in ``window``; over budget, a cheaper blur of the same
        look (:mod:`bgcam.governor_compose`), put in place now (a small image's buffers)."""
        judge = self._governor.compose
        level = judge.observe(window)
        if level is not None:
            what = self._engine.compositor.economise(level)
            judge.stepped(level, what, float(window["stage_ms"]["compose"]))

    def finish(self) -> None:
        """Put a finished build's stages to use (called every tick)."""
        build = self._build
        if build is None or not build.swap.done():
            return
        self._build = None
        try:
            self._commit(build.swap.result(), build.cfg)
        except Exception as exc:
            if build.cfg is not None:
                build.settled.set_exception(exc)
                return
            reason = exc.message if isinstance(exc, BgCamError) else str(exc)
            self._governor.unavailable(build.level, reason)
            self.govern()
        build.settled.set_result(None)

    def close(self) -> None:
        """Drop a build under way (after :meth:`Engine.close` has joined the builder)."""
        build, self._build = self._build, None
        if build is not None and build.swap.done() and build.swap.exception() is None:
            build.swap.result().discard()

    def _commit(self, swap: StageSwap, cfg: Config | None) -> None:
        if swap.compositor is not None:  # another backend starts from its plan
            self._governor.compose.reset()
        try:
            self._engine.swap_compose_side(swap)
        except BaseException:
            swap.discard()
            raise
        if swap.segment_side:
            self._worker.hand_over(swap)
        if cfg is not None:
            self._adopt(cfg)
