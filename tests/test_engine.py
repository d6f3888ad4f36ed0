"""The engine builds and swaps every stage: a new config becomes a StageSwap with one call;
the studio effects work on what the compositor reads."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

import bgcam
from bgcam.compose import Compositor, create_compositor
from bgcam.compose.cpu import CpuCompositor
from bgcam.config import Config
from bgcam.engine import Engine, builds_models
from bgcam.errors import BackendError
from bgcam.frame import ShrunkFrame

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


@pytest.mark.parametrize("mode", ["blur", "remove", "off"])
def test_the_studio_frames_only_what_the_compositor_reads_and_the_output_is_the_same(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The studio effects frame and relight only the person's part when the compositor reads
    no more (blur from the shrunk frame, remove); the output is exactly the one of framing the
    whole picture, and nearly so for a frame composed with an older matte and no shrunk copy
    (live: the studio then shrinks the frame with the crop, where the compositor shrank the
    framed picture)."""
    size = (640, 360)
    photo = cv2.imread(str(Path(bgcam.__file__).parent / "data" / "astronaut.jpg"))
    person = cv2.resize(photo, (200, 200), interpolation=cv2.INTER_AREA)
    cfg = Config().replace(
        **{"compose.mode": mode, "effects.autoframe": True, "effects.light": "auto"}
    )
    with Engine(cfg, size) as part, Engine(cfg, size) as whole:
        monkeypatch.setattr(whole.compositor, "reads_background", lambda small_size: True)
        assert part.compositor.reads_background(part.refiner.work_size) is (mode == "off")
        drawn: list[int] = []  # the CPU compositor frames the picture unless it reads all of it
        assert isinstance(part.compositor, CpuCompositor)
        framed = part.compositor.compose_framed
        monkeypatch.setattr(
            part.compositor, "compose_framed", lambda *a: drawn.append(1) or framed(*a)
        )
        older: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for i in range(24):
            frame = np.full((size[1], size[0], 3), 70, np.uint8)
            x = 60 + 4 * i  # the person walks right: the crop pans
            frame[160:360, x : x + 200] = person
            dim = cv2.convertScaleAbs(frame, alpha=0.4)
            if i % 3 == 2:  # live: the last matte, made from the previous frame
                outs = [
                    e.compose(ShrunkFrame(dim), a8, t=i / 30, fresh=False, matte_small=small)
                    for e, (a8, small) in ((e, older[k]) for k, e in enumerate((part, whole)))
                ]
            else:
                outs = [e.process(dim, t=i / 30) for e in (part, whole)]
                for k, e in enumerate((part, whole)):
                    a8, small = e.matte()
                    older[k] = (a8.copy(), small.copy())
            if i % 3 == 2:  # the blur starts from the frame shrunk with the crop, not from
                # the framed picture shrunk again: a slightly different sample of the room
                diff = np.abs(outs[0].astype(np.int16) - outs[1])
                assert diff.mean() < 0.25 and np.percentile(diff, 99.9) <= 6, (i, diff.mean())
            else:
                assert np.array_equal(outs[0], outs[1]), i
        assert part.studio.crop == whole.studio.crop and not part.studio.crop.is_full
        assert part.studio.light.gain > 1.5
        assert (len(drawn) > 0) is (mode != "off")


class Delegate:
    """A compositor that is not the CPU one (as the OpenCL and CUDA ones are not), doing what
    the CPU one does: it must be handed the framed picture itself."""

    def __init__(self, inner: Compositor) -> None:
        self.inner, self.name, self.pictures = inner, "delegate", 0

    def compose(self, image: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
        return self.inner.compose(image, alpha)

    def compose_matte(self, frame: ShrunkFrame, alpha8_small: np.ndarray) -> np.ndarray:
        assert isinstance(frame.image, np.ndarray) and frame.image.shape == (360, 640, 3)
        self.pictures += 1
        return self.inner.compose_matte(frame, alpha8_small)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def test_other_compositors_are_handed_the_framed_picture_and_compose_the_same() -> None:
    size = (640, 360)
    photo = cv2.imread(str(Path(bgcam.__file__).parent / "data" / "astronaut.jpg"))
    cfg = Config().replace(**{"compose.backend": "cpu", "effects.autoframe": True})
    other = Delegate(create_compositor(cfg.compose, size))
    with Engine(cfg, size) as cpu, Engine(cfg, size, compositor=other) as eng:
        for i in range(12):
            frame = np.full((size[1], size[0], 3), 90, np.uint8)
            frame[140:360, 80 + 6 * i : 300 + 6 * i] = cv2.resize(photo, (220, 220))
            want = cpu.process(frame, t=i / 30).copy()
            assert np.array_equal(eng.process(frame, t=i / 30), want), i
        assert other.pictures == 12 and not eng.studio.crop.is_full
