"""The engine builds and swaps every stage: a new config becomes a StageSwap with one call."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from bgcam.config import Config
from bgcam.engine import Engine, builds_models
from bgcam.errors import BackendError

SIZE = (320, 180)


def base() -> Config:
    return Config().replace(**{"segment.segmenter": "hsv", "compose.backend": "cpu"})


@pytest.mark.parametrize(
    ("change", "segmenter", "refiner", "compositor", "compose", "models"),
    [
        ({"compose.blur": 30}, False, False, False, True, False),
        ({"compose.mode": "remove"}, False, False, False, True, False),
        ({"refine.work_height": 64}, False, True, False, False, True),
        ({"segment.every": 2}, True, False, False, False, True),
        ({"log.level": "debug"}, False, False, False, False, False),
    ],
)
def test_plan_builds_only_what_changed(
    change: dict[str, object],
    segmenter: bool,
    refiner: bool,
    compositor: bool,
    compose: bool,
    models: bool,
) -> None:
    cfg = base()
    new = cfg.replace(**change)
    assert builds_models(cfg, new) is models
    with Engine(cfg, SIZE) as engine:
        before = (engine.segmenter, engine.refiner, engine.compositor)
        swap = engine.plan(new)
        assert (swap.segmenter is not None, swap.refiner is not None) == (segmenter, refiner)
        assert (swap.compositor is not None, swap.compose is not None) == (compositor, compose)
        assert (engine.segmenter, engine.refiner, engine.compositor) == before  # untouched
        assert engine.cfg == cfg
        engine.swap_compose_side(swap)
        engine.swap_segment_side(swap)
        assert engine.cfg == new
        assert (engine.segmenter is not before[0]) == segmenter
        assert (engine.refiner is not before[1]) == refiner


def test_update_keeps_processing_frames() -> None:
    frame = np.full((SIZE[1], SIZE[0], 3), 90, np.uint8)
    with Engine(base(), SIZE) as engine:
        engine.process(frame)
        engine.update(base().replace(**{"refine.work_height": 64, "compose.blur": 80}))
        out = engine.process(frame)
        assert out.shape == frame.shape and engine.alpha is not None


def test_a_failed_plan_changes_nothing() -> None:
    cfg = base()

    def build(seg_cfg: object, size: tuple[int, int]) -> object:
        raise BackendError("no such model here")

    with Engine(cfg, SIZE) as engine:
        engine._build_segmenter = build
        with pytest.raises(BackendError, match="no such model"):
            engine.plan(cfg.replace(**{"segment.every": 3}))
        assert engine.cfg == cfg


def test_plan_async_builds_off_the_calling_thread() -> None:
    seen: list[str] = []
    cfg = base()
    with Engine(cfg, SIZE) as engine:
        real = engine._build_segmenter

        def build(seg_cfg, size):
            seen.append(threading.current_thread().name)
            return real(seg_cfg, size)

        engine._build_segmenter = build
        fut = engine.plan_async(cfg.replace(**{"segment.every": 2}))
        swap = fut.result(30)
        assert seen == ["bgcam-build"] and swap.segmenter is not None
        swap.discard()
