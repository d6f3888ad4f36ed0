"""``compose.backend = "auto"``: choose the compositor by a short measurement at start-up.

Every registered backend that can be created here composes a few frames of a real photograph
(the check image shipped with the package, scaled to the frame size, under a soft person-shaped
alpha) with the configured mode and blur. The fastest by median wall time wins, with one
exception: an accelerator within :data:`NEAR` of the CPU's time that costs this process less CPU
time is preferred, since the point of a GPU is to leave the CPU to the video call. The decision
and every backend's milliseconds (or why it could not run) are logged in one line.

Nothing is cached across runs: the measurement takes well under a second, and a cache keyed by
a machine fingerprint would go stale when drivers, the load or the settings change. Within one
process a decision is remembered per frame size and setting (the live daemon rebuilds its stages
on reload). The governor may call :func:`measure` and :func:`decide` again later, with
``fresh=True``.
"""

from __future__ import annotations

import logging
import statistics
import time
from dataclasses import dataclass, field
from typing import cast

import cv2
import numpy as np

from bgcam import compose
from bgcam.config import ComposeConfig
from bgcam.errors import BackendError, BgCamError
from bgcam.frame import Image, Mask

log = logging.getLogger(__name__)

FRAMES = 6
WARMUP = 2
NEAR = 1.10
"""An accelerator this close to the CPU's wall time wins when it uses less CPU time."""


@dataclass(frozen=True, slots=True)
class Trial:
    """One backend's measurement, or why it could not run."""

    backend: str
    ms: float | None = None
    """Median wall milliseconds per frame."""
    cpu_ms: float | None = None
    """Median process CPU milliseconds per frame (all threads)."""
    setup_ms: float = 0.0
    """Creation and warm-up (kernel compilation, session building)."""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.ms is not None


@dataclass(frozen=True, slots=True)
class Decision:
    chosen: str
    reason: str
    frame_size: tuple[int, int]
    trials: tuple[Trial, ...] = field(default_factory=tuple)

    def summary(self) -> str:
        parts = []
        for t in self.trials:
            if t.ok:
                parts.append(f"{t.backend} {t.ms:.2f} ms (cpu time {t.cpu_ms:.2f} ms)")
            else:
                parts.append(f"{t.backend} unavailable: {t.error}")
        w, h = self.frame_size
        return f"compositor {self.chosen} ({self.reason}) at {w}x{h}; " + "; ".join(parts)

    def brief(self) -> str:
        """One line for the default log: the choice and the timings, without the reasons why
        other backends do not run (those are in :meth:`summary`, at debug level)."""
        w, h = self.frame_size
        timed = [f"{t.backend} {t.ms:.2f} ms" for t in self.trials if t.ok]
        tail = f"; {', '.join(timed)}" if len(timed) > 1 else ""
        return f"compositor {self.chosen} at {w}x{h} ({self.reason}){tail}"


def test_frame(frame_size: tuple[int, int]) -> tuple[Image, Mask]:
    """A real photo at ``frame_size`` and a soft, person-shaped alpha for it."""
    from bgcam.models.check import check_image

    w, h = frame_size
    image = cast(Image, np.ascontiguousarray(cv2.cvtColor(check_image((w, h)), cv2.COLOR_RGB2BGR)))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = np.hypot((xx - w / 2) / (0.22 * w), (yy - 0.62 * h) / (0.5 * h))
    alpha = np.clip((1.15 - d) * 4.0, 0.0, 1.0).astype(np.float32)
    return image, alpha


def _time(comp: compose.Compositor, image: Image, alpha: Mask, frames: int) -> tuple[float, float]:
    wall, cpu = [], []
    for _ in range(frames):
        t0, c0 = time.perf_counter(), time.process_time()
        comp.compose(image, alpha)
        wall.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    return statistics.median(wall), statistics.median(cpu)


def measure(
    cfg: ComposeConfig,
    frame_size: tuple[int, int],
    backends: list[str] | None = None,
    *,
    frames: int = FRAMES,
    warmup: int = WARMUP,
    keep_open: bool = False,
) -> tuple[list[Trial], dict[str, compose.Compositor]]:
    """Measure each of ``backends`` (default: all registered) with ``cfg``'s settings.

    Returns the trials and, with ``keep_open``, the compositors that ran (the caller closes them).
    """
    names = backends if backends is not None else compose.available()
    image, alpha = test_frame(frame_size)
    trials: list[Trial] = []
    kept: dict[str, compose.Compositor] = {}
    for name in names:
        t0 = time.perf_counter()
        try:
            comp = compose.create_compositor(cfg.model_copy(update={"backend": name}), frame_size)
        except (BgCamError, ImportError, OSError, RuntimeError) as exc:
            msg = exc.message if isinstance(exc, BgCamError) else str(exc)
            trials.append(Trial(name, error=msg))
            continue
        try:
            _time(comp, image, alpha, warmup)
            setup = (time.perf_counter() - t0) * 1e3
            ms, cpu_ms = _time(comp, image, alpha, frames)
        except (cv2.error, RuntimeError) as exc:  # a driver failing mid-way
            comp.close()
            trials.append(Trial(name, error=f"failed while composing: {exc}"))
            continue
        trials.append(Trial(name, ms=ms, cpu_ms=cpu_ms, setup_ms=setup))
        if keep_open:
            kept[name] = comp
        else:
            comp.close()
    return trials, kept


def decide(trials: list[Trial], frame_size: tuple[int, int]) -> Decision:
    """The backend to use given ``trials`` (cpu when nothing else ran)."""
    ok = [t for t in trials if t.ok]
    cpu = next((t for t in ok if t.backend == "cpu"), None)
    if not ok:
        return Decision("cpu", "nothing could be measured", frame_size, tuple(trials))
    if len(ok) == 1:
        only = ok[0].backend
        return Decision(only, "the only backend that runs here", frame_size, tuple(trials))
    fastest = min(ok, key=lambda t: t.ms or 0.0)
    if cpu is not None and fastest.backend == "cpu":
        assert cpu.ms is not None and cpu.cpu_ms is not None
        frugal = [
            t
            for t in ok
            if t.backend != "cpu"
            and (t.ms or 0.0) <= cpu.ms * NEAR
            and (t.cpu_ms or 0.0) < cpu.cpu_ms
        ]
        if frugal:
            best = min(frugal, key=lambda t: t.cpu_ms or 0.0)
            return Decision(
                best.backend,
                f"as fast as cpu within {round((NEAR - 1) * 100)} % and uses less CPU",
                frame_size,
                tuple(trials),
            )
    return Decision(fastest.backend, "fastest", frame_size, tuple(trials))


_decisions: dict[tuple[object, ...], Decision] = {}


def _key(cfg: ComposeConfig, frame_size: tuple[int, int]) -> tuple[object, ...]:
    return (frame_size, cfg.mode, cfg.blur, cfg.blur_type)


def choose(
    cfg: ComposeConfig, frame_size: tuple[int, int], *, fresh: bool = False
) -> tuple[compose.Compositor, Decision]:
    """Measure (or recall this process's decision), log it, and create the chosen compositor."""
    key = _key(cfg, frame_size)
    decision = None if fresh else _decisions.get(key)
    if decision is not None:
        try:
            comp = compose.create_compositor(
                cfg.model_copy(update={"backend": decision.chosen}), frame_size
            )
        except BgCamError:
            decision = None  # it worked before; measure again
        else:
            log.debug("compositor auto: %s (decided earlier in this process)", decision.chosen)
            return comp, decision
    names = compose.available()
    # Backends that cannot start are reported without building any buffers.
    trials: list[Trial] = []
    open_: dict[str, compose.Compositor] = {}
    runnable = []
    for name in names:
        reason = _unavailable(name)
        if reason is None:
            runnable.append(name)
        else:
            trials.append(Trial(name, error=reason))
    if runnable == ["cpu"]:
        decision = Decision("cpu", "the only backend that runs here", frame_size, tuple(trials))
    else:
        measured, open_ = measure(cfg, frame_size, runnable, keep_open=True)
        trials = measured + trials
        decision = decide(trials, frame_size)
    log.info("%s", decision.brief())
    log.debug("%s", decision.summary())
    _decisions[key] = decision
    chosen = open_.pop(decision.chosen) if decision.chosen in open_ else None
    for other in open_.values():
        other.close()
    if chosen is None:
        chosen = compose.create_compositor(
            cfg.model_copy(update={"backend": decision.chosen}), frame_size
        )
    return chosen, decision


def _unavailable(name: str) -> str | None:
    """Why backend ``name`` cannot run here (a cheap check, cached per process), or None."""
    try:
        if name == "opencl":
            from bgcam.compose.opencl import probe

            probe()
        elif name == "cuda":
            from bgcam.compose.cuda import probe_cuda

            probe_cuda()
    except BackendError as exc:
        return exc.message
    except (ImportError, OSError, RuntimeError) as exc:
        return str(exc)
    return None
