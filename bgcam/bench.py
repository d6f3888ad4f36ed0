"""How fast the engine is: per-stage and whole-frame timings on real frames, one thread.

For each frame size, :func:`run_bench` times

* the **default pipeline** (default config: the segmenter, refiner and compositor that
  ``bgcam run`` uses), segmenting every frame (``segment.max_skip = 0``: the cost of every
  frame of a moving picture);
* **keyframes** on and off (:func:`_bench_keyframes`: ``segment.max_skip`` as configured, else
  :data:`KEYFRAMES_ON`, against 0), with the share of frames propagated without the model, on
  the bench frames (``moving``: the crop jumps around an ellipse, far more than the flow's
  residual gate allows, so nothing is propagated, as on davis-dev) and on the first of them held
  still with sensor noise (``still``: a webcam user sitting still);
* every other available segmenter × compositor backend (those that cannot be created here are
  listed as skipped, with the reason);
* the **studio effects** (:func:`bench_studio`: auto-framing, low-light correction, both,
  and off, taking turns frame by frame), alone and with the compositor after them, on the
  default pipeline's mattes;
* a **naive reference**: what typical tools do — the raw model (default segmenter and runtime),
  its output resized to the frame, a full-resolution ``cv2.GaussianBlur`` of the same strength
  (:func:`bgcam.effects.blur_sigma`, the compositor's own scale) and a float32 alpha blend in numpy.

The default pipeline and the naive reference alternate in blocks of :data:`ALTERNATE_BLOCK`
frames, so that load from other processes on a shared machine hits both alike and their ratio
stays meaningful. Each switch costs the engine a cache warm-up that the daemon never pays; long
blocks keep it to a few samples (docs/BENCHMARKS.md, "Figures behind design choices").

Frames are crops of a real photograph (NASA's astronaut portrait, bundled as
``bgcam/data/astronaut.jpg``; the same picture as ``skimage.data.astronaut()``), scaled to cover
the frame, at a few shifted offsets, so consecutive frames differ as in a video. Warm-up frames
are excluded.
Whole-frame and naive timings use :func:`time.perf_counter`; the engine's own per-stage times use
:func:`time.monotonic`. Both are the same nanosecond clock on Linux; on Windows before Python 3.13
``monotonic`` ticks in ~16 ms steps, so whole-frame figures come from ``perf_counter``, which is
sub-microsecond everywhere.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import platform
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from importlib import metadata, resources
from typing import Any, cast

import cv2
import numpy as np
import numpy.typing as npt

from bgcam import compose, segment
from bgcam.compose.cpu import CpuCompositor
from bgcam.config import Config
from bgcam.effects import blur_sigma
from bgcam.engine import Engine, composite
from bgcam.errors import BgCamError
from bgcam.frame import Image, Mask, ShrunkFrame

log = logging.getLogger(__name__)

DEFAULT_SIZES: tuple[tuple[int, int], ...] = ((640, 480), (1280, 720), (1920, 1080))
TARGET_MS: dict[str, float] = {"1280x720": 6.0, "1920x1080": 12.0}
"""Median whole-frame targets (issue 2), one thread, segmenting every frame."""
TARGET_RATIO = 6.0
"""The default pipeline must be at least this many times faster than the naive reference."""

STAGES = ("segment", "refine", "compose")
NAIVE_STAGES = ("segment", "blur", "blend", "compose")  # compose = blur + blend
_N_VIEWS = 8  # distinct crops cycled through


def size_key(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """``"640x480,1280x720"`` → ``[(640, 480), (1280, 720)]``; raises ValueError when malformed."""
    sizes = []
    for part in text.split(","):
        w, sep, h = part.strip().lower().partition("x")
        if not sep or not w.isdigit() or not h.isdigit() or not (16 <= int(w) <= 7680):
            raise ValueError(f"expected WIDTHxHEIGHT such as 1280x720, got {part.strip()!r}")
        if not 16 <= int(h) <= 4320:
            raise ValueError(f"height out of range 16–4320 in {part.strip()!r}")
        sizes.append((int(w), int(h)))
    return sizes


def bench_photo() -> Image:
    """The bundled photograph (NASA's astronaut portrait, as ``skimage.data.astronaut()``), BGR."""
    raw = resources.files("bgcam").joinpath("data", "astronaut.jpg").read_bytes()
    photo = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
    if photo is None:  # pragma: no cover - a broken installation
        raise BgCamError("bgcam/data/astronaut.jpg is missing or corrupt", hint="reinstall bgcam")
    return cast(Image, photo)


def bench_frames(size: tuple[int, int], count: int = _N_VIEWS) -> list[Image]:
    """``count`` BGR frames of ``size``: shifted crops of a real photo scaled to cover it."""
    photo = bench_photo()
    w, h = size
    margin = 1.08
    scale = max(w * margin / photo.shape[1], h * margin / photo.shape[0])
    big = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    room_x, room_y = big.shape[1] - w, big.shape[0] - h
    frames = []
    for i in range(count):
        # Walk the crop window over a small ellipse: a gently moving camera. Vertically stay in
        # the upper part, where the face and shoulders are.
        phase = 2 * np.pi * i / count
        x = int(room_x * (0.5 + 0.45 * np.cos(phase)))
        y = int(min(room_y, room_y * 0.15 + 0.02 * h * (1 + np.sin(phase))))
        frames.append(cast(Image, np.ascontiguousarray(big[y : y + h, x : x + w])))
    return frames


@dataclass
class Samples:
    """Millisecond samples of one quantity."""

    values: list[float] = field(default_factory=list)

    def add(self, ms: float) -> None:
        self.values.append(ms)

    def p(self, q: float) -> float:
        return float(np.percentile(self.values, q)) if self.values else float("nan")


def _summary(prefix: str, total: Samples, stages: dict[str, Samples]) -> dict[str, float]:
    out = {f"{prefix}ms_p50": total.p(50), f"{prefix}ms_p99": total.p(99)}
    for name, s in stages.items():
        out[f"{prefix}{name}_ms_p50"] = s.p(50)
        out[f"{prefix}{name}_ms_p99"] = s.p(99)
    return {k: round(v, 3) for k, v in out.items()}


class NaivePipeline:
    """The reference: raw model, full-resolution Gaussian blur, float32 alpha blend."""

    def __init__(self, segmenter: segment.Segmenter, size: tuple[int, int], sigma: float) -> None:
        self.segmenter = segmenter
        self.size = size
        self.sigma = sigma
        self.times: dict[str, float] = dict.fromkeys(NAIVE_STAGES, 0.0)

    def process(self, image: Image) -> Image:
        t0 = time.perf_counter()
        low = self.segmenter.segment(ShrunkFrame(image))
        mask = cast(Mask, cv2.resize(low, self.size, interpolation=cv2.INTER_LINEAR))
        t1 = time.perf_counter()
        blurred = cv2.GaussianBlur(image, (0, 0), self.sigma)
        t2 = time.perf_counter()
        a = mask[..., None]
        out: Image = (image.astype(np.float32) * a + blurred.astype(np.float32) * (1.0 - a)).astype(
            np.uint8
        )
        t3 = time.perf_counter()
        self.times["segment"] = (t1 - t0) * 1e3
        self.times["blur"] = (t2 - t1) * 1e3
        self.times["blend"] = (t3 - t2) * 1e3
        self.times["compose"] = (t3 - t1) * 1e3
        return out


ALTERNATE_BLOCK = 40
"""Frames of one pipeline timed before switching to the other (see the module docstring)."""


def time_engine(
    engine: Engine,
    frames: Sequence[Image],
    n: int,
    warmup: int,
    *,
    alongside: Callable[[Image], None] | None = None,
) -> tuple[Samples, dict[str, Samples]]:
    total = Samples()
    stages = {name: Samples() for name in STAGES}
    pending: list[Image] = []
    for i in range(warmup + n):
        frame = frames[i % len(frames)]
        t0 = time.perf_counter()
        engine.process(frame, segment=True)
        t1 = time.perf_counter()
        if alongside is not None:
            pending.append(frame)
            if len(pending) == ALTERNATE_BLOCK or i == warmup + n - 1:
                for done in pending:
                    alongside(done)
                pending.clear()
        if i < warmup:
            continue
        total.add((t1 - t0) * 1e3)
        t = engine.times
        stages["segment"].add(t.segment)
        stages["refine"].add(t.refine)
        stages["compose"].add(t.compose)
    return total, stages


@contextmanager
def one_thread() -> Iterator[None]:
    old = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(old)


_SKIPPABLE = (BgCamError, ImportError, OSError, RuntimeError, ValueError)


def bench_size(base: Config, size: tuple[int, int], frames: int, warmup: int) -> dict[str, Any]:
    """All measurements at one frame size (see the module docstring)."""
    views = bench_frames(size)
    key = size_key(size)
    result: dict[str, Any] = {}

    # 1. The default pipeline, interleaved with the naive reference.
    naive_total = Samples()
    naive_stages = {name: Samples() for name in NAIVE_STAGES}
    sigma = blur_sigma(base.compose.blur, size)
    # The same raw model and runtime as ours (a model, even when benchmarking hsv).
    naive_seg_name = "onnx" if base.segment.segmenter == "hsv" else base.segment.segmenter
    naive_cfg = base.replace(**{"segment.segmenter": naive_seg_name, "segment.roi": False}).segment
    every_frame = base.replace(**{"segment.max_skip": 0})
    with (
        Engine(every_frame, size) as engine,
        _closing(segment.create_segmenter(naive_cfg, size)) as naive_seg,
    ):
        naive = NaivePipeline(naive_seg, size, sigma)
        seen = [0]

        def run_naive(frame: Image) -> None:
            t0 = time.perf_counter()
            naive.process(frame)
            t1 = time.perf_counter()
            seen[0] += 1
            if seen[0] > warmup:
                naive_total.add((t1 - t0) * 1e3)
                for name in NAIVE_STAGES:
                    naive_stages[name].add(naive.times[name])

        log.info("%s: default pipeline and naive reference, %d frames each", key, frames)
        total, stages = time_engine(engine, views, frames, warmup, alongside=run_naive)
        default_seg, default_backend = engine.segmenter.name, engine.compositor.name

    ours = _summary("", total, stages)
    result.update(ours)
    result["segmenter"] = default_seg
    result["backend"] = default_backend
    result.update(_summary("naive_", naive_total, naive_stages))
    result["naive_sigma_px"] = round(sigma, 2)
    result["ratio"] = round(result["naive_ms_p50"] / result["ms_p50"], 2)
    if key in TARGET_MS:
        result["target_ms_p50"] = TARGET_MS[key]
        result["meets_target"] = bool(
            result["ms_p50"] <= TARGET_MS[key] and result["ratio"] >= TARGET_RATIO
        )

    # 2. Every segmenter × compositor backend. A stage that cannot start here is tried once and
    #    its reason reported for every combination it is part of.
    seg_skip = {n: _cannot_start(partial(_segmenter, base, n, size)) for n in segment.available()}
    back_skip = {b: _cannot_start(partial(_compositor, base, b, size)) for b in compose.available()}
    per: dict[str, dict[str, Any]] = {}
    for seg_name, seg_reason in seg_skip.items():
        per[seg_name] = {}
        for backend, back_reason in back_skip.items():
            reason = seg_reason or back_reason
            if (seg_name, backend) == (default_seg, default_backend):
                per[seg_name][backend] = ours
                continue
            if reason:
                per[seg_name][backend] = {"skipped": reason}
                continue
            cfg = every_frame.replace(**{"segment.segmenter": seg_name, "compose.backend": backend})
            with Engine(cfg, size) as eng:
                log.info("%s: %s + %s, %d frames", key, seg_name, backend, frames)
                t, s = time_engine(eng, views, frames, warmup)
            per[seg_name][backend] = _summary("", t, s)
    result["segmenters"] = per
    result["roi"] = _bench_roi(every_frame, size, views, frames, warmup)
    result["keyframes"] = _bench_keyframes(base, size, views, frames, warmup)

    # The studio effects alone, on the default pipeline's mattes.
    result["studio"] = bench_studio(every_frame, size, views, frames, warmup)
    return result


def _bench_roi(
    base: Config, size: tuple[int, int], views: Sequence[Image], frames: int, warmup: int
) -> dict[str, dict[str, dict[str, float]]]:
    """The default pipeline with ``segment.roi`` on and off, for the bench frames (the person
    fills the frame: ROI segments whole frames) and for a person further away (ROI crops)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for framing, frames_of in (("close", views), ("far", bench_frames_far(size))):
        out[framing] = {}
        for roi in (True, False):
            cfg = base.replace(**{"segment.roi": roi})
            with Engine(cfg, size) as eng:
                log.info("%s: roi %s, %s person, %d frames", size_key(size), roi, framing, frames)
                t, s = time_engine(eng, frames_of, frames, warmup)
            out[framing]["on" if roi else "off"] = _summary("", t, s)
    return out


KEYFRAMES_ON = 2
"""``segment.max_skip`` of the bench's keyframes-on row when the config's is 0."""


def _bench_keyframes(
    base: Config, size: tuple[int, int], views: Sequence[Image], frames: int, warmup: int
) -> dict[str, dict[str, dict[str, float]]]:
    """The default pipeline with keyframes (``segment.max_skip``) on and off, on the bench
    frames (``moving``) and on one of them held still with sensor noise (``still``), each row
    with the share of its frames propagated (``propagated``, 0–1)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    on = base.segment.max_skip or KEYFRAMES_ON
    key = size_key(size)
    for scene, frames_of in (("moving", views), ("still", bench_frames_still(views[0]))):
        out[scene] = {}
        for name, skip in (("on", on), ("off", 0)):
            with Engine(base.replace(**{"segment.max_skip": skip}), size) as eng:
                log.info("%s: keyframes %s, %s, %d frames", key, name, scene, frames)
                t, s = time_engine(eng, frames_of, frames, warmup)
                row = _summary("", t, s)
                row["max_skip"] = skip
                row["ms_mean"] = round(float(np.mean(t.values)), 3)  # (p50 sits between kinds)
                done = max(1, eng.propagated + eng.keyframes)
                row["propagated"] = round(eng.propagated / done, 3)
            out[scene][name] = row
    return out


def bench_frames_still(image: Image, count: int = _N_VIEWS) -> list[Image]:
    """``count`` copies of ``image`` with sensor noise (sigma 2, fixed seed): a still webcam."""
    rng = np.random.default_rng(7)
    noisy = [image + rng.normal(0.0, 2.0, image.shape) for _ in range(count)]
    return [cast(Image, np.clip(f, 0, 255).astype(np.uint8)) for f in noisy]


def bench_frames_far(size: tuple[int, int], count: int = _N_VIEWS) -> list[Image]:
    """``count`` frames of ``size`` with the bench photo at 55 % of the height, bottom, moving
    sideways across a plain grey-gradient room: a person who does not fill the frame."""
    photo = bench_photo()
    w, h = size
    side = max(16, round(0.55 * h))
    person = cv2.resize(photo, (side, side), interpolation=cv2.INTER_AREA)
    ramp = np.linspace(90, 170, w, dtype=np.float32).astype(np.uint8)
    frames = []
    for i in range(count):
        frame = np.empty((h, w, 3), np.uint8)
        frame[:] = ramp[None, :, None]
        x = int((w - side) * (0.3 + 0.4 * i / max(1, count - 1)))
        frame[h - side :, x : x + side] = person
        frames.append(cast(Image, frame))
    return frames


STUDIO_VARIANTS: dict[str, dict[str, object]] = {
    "off": {},
    "autoframe": {"effects.autoframe": True},
    "light": {"effects.light": "auto"},
    "both": {"effects.autoframe": True, "effects.light": "auto"},
}
"""The studio settings timed by :func:`bench_studio` (``off``: both off, the default)."""


def bench_studio(
    base: Config, size: tuple[int, int], views: Sequence[Image], n: int, warmup: int
) -> dict[str, Any]:
    """Milliseconds per frame of :meth:`bgcam.studio.Studio.process` (between refining and
    compositing), per :data:`STUDIO_VARIANTS`, and of the whole compose side (the effects plus
    the default compositor on what they return, handed over as the engine does: auto-framing
    also changes what the compositor is given, and the CPU compositor draws the framed picture
    itself, so with it the crop's warp counts in the compose side, not in the effects alone).
    The person's matte is shrunk into the middle of the frame, so auto-framing works
    zoomed in (its costly case: a crop of every frame); the light correction's gain is above 1
    (a dim picture: its pass runs). The variants take turns frame by frame, so load from other
    processes hits them alike and their differences stay meaningful; the effects alone are
    also timed in the thread's CPU time (``*_cpu_ms_p50``), which time slicing on a loaded
    machine does not inflate."""
    from bgcam.studio import Studio

    w, h = size
    inputs: list[tuple[Image, npt.NDArray[np.uint8], Image]] = []
    with Engine(base, size) as engine:
        for view in views:
            engine.process(view)
            a8 = engine.refiner.alpha8_small
            mh, mw = a8.shape
            far = np.zeros_like(a8)
            far[mh // 4 : mh // 4 + mh // 2, mw // 4 : mw // 4 + mw // 2] = cv2.resize(
                a8, (mw // 2, mh // 2), interpolation=cv2.INTER_AREA
            )
            dim = cast(Image, cv2.convertScaleAbs(view, alpha=0.4))
            inputs.append((dim, far, cast(Image, cv2.resize(dim, (mw, mh)))))
    studios = {k: Studio(base.replace(**o).effects, size) for k, o in STUDIO_VARIANTS.items()}
    compositors = {k: compose.create_compositor(base.compose, size) for k in studios}
    alone = {k: Samples() for k in studios}
    cpu = {k: Samples() for k in studios}
    side = {k: Samples() for k in studios}
    try:
        for i in range(warmup + n):
            image, a8, small = inputs[i % len(inputs)]
            for label, studio in studios.items():
                whole = compositors[label].reads_background(small.shape[1::-1])
                c0, t0 = time.thread_time(), time.perf_counter()
                defer = not whole and isinstance(compositors[label], CpuCompositor)
                framed, matte, hint = studio.process(
                    image, a8, small, i / 30.0, whole=whole, defer=defer
                )
                t1, c1 = time.perf_counter(), time.thread_time()
                composite(compositors[label], framed, matte, hint)
                t2 = time.perf_counter()
                if i >= warmup:
                    alone[label].add((t1 - t0) * 1e3)
                    cpu[label].add((c1 - c0) * 1e3)
                    side[label].add((t2 - t0) * 1e3)
    finally:
        for c in compositors.values():
            c.close()
    out: dict[str, Any] = {}
    for label, studio in studios.items():
        out[f"{label}_ms_p50"] = round(alone[label].p(50), 3)
        out[f"{label}_ms_p99"] = round(alone[label].p(99), 3)
        out[f"{label}_cpu_ms_p50"] = round(cpu[label].p(50), 3)
        out[f"{label}_compose_ms_p50"] = round(side[label].p(50), 3)
        out[f"{label}_zoom"] = round(studio.crop.zoom, 2)
        out[f"{label}_gain"] = round(studio.light.gain, 2)
    log.debug("%s: studio effects %s (%dx%d)", size_key(size), out, w, h)
    return out


def _segmenter(base: Config, name: str, size: tuple[int, int]) -> None:
    segment.create_segmenter(base.replace(**{"segment.segmenter": name}).segment, size).close()


def _compositor(base: Config, backend: str, size: tuple[int, int]) -> None:
    compose.create_compositor(base.replace(**{"compose.backend": backend}).compose, size).close()


def _cannot_start(create: Callable[[], None]) -> str | None:
    """None when ``create`` works here, else the reason (logged once)."""
    try:
        create()
    except _SKIPPABLE as exc:
        reason = exc.message if isinstance(exc, BgCamError) else str(exc)
        log.warning("skipping: %s", reason)
        return reason
    return None


@contextmanager
def _closing(seg: segment.Segmenter) -> Iterator[segment.Segmenter]:
    try:
        yield seg
    finally:
        seg.close()


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine_notes() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    notes: dict[str, Any] = {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "opencv": cv2.__version__,
        "numpy": np.__version__,
        "mediapipe": _version("mediapipe"),
        "onnxruntime": _version("onnxruntime") or _version("onnxruntime-gpu"),
    }
    if hasattr(os, "getloadavg"):
        notes["loadavg_1m"] = round(os.getloadavg()[0], 2)
    return notes


def run_bench(
    sizes: Sequence[tuple[int, int]] = DEFAULT_SIZES,
    frames: int = 200,
    warmup: int = 20,
    base: Config | None = None,
) -> dict[str, Any]:
    """Run the whole benchmark; one JSON-ready dict keyed by ``"WxH"`` plus ``"meta"``."""
    base = (base or Config()).replace(**{"segment.threads": 1, "segment.every": 1})
    out: dict[str, Any] = {}
    with one_thread():
        for size in sizes:
            out[size_key(size)] = bench_size(base, size, frames, warmup)
    out["meta"] = {
        **machine_notes(),
        "frames": frames,
        "warmup": warmup,
        "threads": 1,
        "mode": base.compose.mode,
        "blur": base.compose.blur,
        "blur_type": base.compose.blur_type,
        "timer": "time.perf_counter (whole frame, naive); time.monotonic (engine stages)",
    }
    return out
