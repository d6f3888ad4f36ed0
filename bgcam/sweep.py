"""``bgcam bench --sweep``: the whole engine timed at every compositor setting.

The grid is every blur strength 0, 10, …, 100 for each of the five blur types, plus the modes
replace, remove and off (blur mode is the grid itself). Each cell is the whole frame (segment,
refine, compose: what ``bgcam run`` does per frame), one thread, segmenting every frame, on the
same real frames as :mod:`bgcam.bench`.

One engine per size is built once; each cell is applied with ``Engine.update`` (the compositor's
own ``update``, as a hotkey or ``bgcam ctl`` does). To keep the machine's drift out of the
comparison, the grid is walked :data:`ROUNDS` times, each time in another (seeded) random order,
each cell getting a share of its frames per round after a short warm-up, so that load from other
processes hits all cells alike. (A fixed order was measured to bias it: on a loaded machine the
pass-through cells, identical work, rose steadily from the first blur type to the last.)

The result names the slowest cell and its ratio to the default setting's time in the same run;
the targets (issue 12) are :data:`TARGET_MS` for every cell and :data:`TARGET_RATIO` for that ratio.

Each cell also carries ``cpu_ms_p50``, the processor time the frame took (``time.process_time``,
one thread): other processes on a shared machine stretch the wall time of whichever frames they
interrupt, but not this, so ``slowest_cpu_ratio`` compares the settings' own costs. The naive
reference of ``bgcam bench`` (raw model, full-resolution Gaussian blur at the default strength,
float blend) is timed in the same rounds; ``naive_ratio`` is its time over the slowest cell's.
"""

from __future__ import annotations

import logging
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import cv2

from bgcam import segment
from bgcam.bench import NaivePipeline, Samples, bench_frames, bench_photo, one_thread, size_key
from bgcam.config import Config
from bgcam.effects import blur_sigma
from bgcam.engine import Engine
from bgcam.frame import Image

log = logging.getLogger(__name__)

STRENGTHS: tuple[int, ...] = tuple(range(0, 101, 10))
BLUR_TYPES: tuple[str, ...] = ("gaussian", "box", "median", "bilateral", "lens")
MODES: tuple[str, ...] = ("replace", "remove", "off")
"""Modes besides blur (which is the strength × type grid)."""
ROUNDS = 6
CELL_WARMUP = 4
"""Untimed frames after each switch of setting (the new blur's buffers, caches)."""

TARGET_MS: dict[str, float] = {"1280x720": 6.0, "1920x1080": 10.0}
"""Every cell's median whole frame, one thread (issue 12)."""
TARGET_RATIO = 1.3
"""The slowest cell over the default setting, in the same run."""


def cells() -> list[dict[str, Any]]:
    """The grid: ``{"mode", "blur_type", "blur"}`` per cell, blur mode first."""
    grid = [
        {"mode": "blur", "blur_type": kind, "blur": s} for kind in BLUR_TYPES for s in STRENGTHS
    ]
    grid += [{"mode": m, "blur_type": "gaussian", "blur": 60} for m in MODES]
    return grid


def cell_label(cell: dict[str, Any]) -> str:
    if cell["mode"] != "blur":
        return str(cell["mode"])
    return f"{cell['blur_type']} {cell['blur']}"


def _cell_config(base: Config, cell: dict[str, Any], background: str) -> Config:
    over: dict[str, Any] = {f"compose.{k}": v for k, v in cell.items()}
    if cell["mode"] == "replace" and not base.compose.background:
        over["compose.background"] = background
    return base.replace(**over)


def _default_cell(base: Config) -> dict[str, Any]:
    c = base.compose
    if c.mode != "blur":
        return {"mode": c.mode, "blur_type": "gaussian", "blur": 60}
    return {"mode": "blur", "blur_type": c.blur_type, "blur": c.blur}


class _Cell:
    """One cell's samples: wall time, processor time, compositor time (ms per frame)."""

    def __init__(self) -> None:
        self.wall, self.cpu, self.compose = Samples(), Samples(), Samples()

    def time(
        self,
        run: Callable[[Image], object],
        views: Sequence[Image],
        n: int,
        compose_ms: Callable[[], float],
    ) -> None:
        for i in range(n):
            frame = views[i % len(views)]
            t0, c0 = time.perf_counter(), time.process_time()
            run(frame)
            t1, c1 = time.perf_counter(), time.process_time()
            self.wall.add((t1 - t0) * 1e3)
            self.cpu.add((c1 - c0) * 1e3)
            self.compose.add(compose_ms())

    def row(self) -> dict[str, float]:
        return {
            "ms_p50": round(self.wall.p(50), 3),
            "ms_p99": round(self.wall.p(99), 3),
            "cpu_ms_p50": round(self.cpu.p(50), 3),
            "compose_ms_p50": round(self.compose.p(50), 3),
            "compose_ms_p99": round(self.compose.p(99), 3),
        }


def sweep_size(
    base: Config, size: tuple[int, int], frames: int, warmup: int, background: str
) -> dict[str, Any]:
    """Every cell at one frame size (see the module docstring)."""
    views = bench_frames(size)
    grid = cells()
    default = _default_cell(base)
    if default not in grid:
        grid.append(default)
    samples = [_Cell() for _ in grid]
    naive_cell = _Cell()
    per_round = max(1, -(-frames // ROUNDS))
    key = size_key(size)
    naive_seg = "onnx" if base.segment.segmenter == "hsv" else base.segment.segmenter
    naive_cfg = base.replace(**{"segment.segmenter": naive_seg, "segment.roi": False}).segment
    with (
        Engine(_cell_config(base, grid[0], background), size) as engine,
        closing(segment.create_segmenter(naive_cfg, size)) as seg,
    ):
        naive = NaivePipeline(seg, size, blur_sigma(base.compose.blur, size))

        def process(frame: Image) -> None:
            engine.process(frame, segment=True)

        for frame in [views[i % len(views)] for i in range(warmup)]:  # models, caches, once
            process(frame)
            naive.process(frame)
        order = list(range(len(grid) + 1))  # the last: the naive reference
        shuffle = random.Random(12)
        for r in range(ROUNDS):
            log.info("%s: sweep round %d of %d, %d cells", key, r + 1, ROUNDS, len(grid))
            shuffle.shuffle(order)
            for i in order:
                if i == len(grid):
                    naive_cell.time(naive.process, views, per_round, lambda: naive.times["compose"])
                    continue
                engine.update(_cell_config(base, grid[i], background))
                for frame in views[:CELL_WARMUP]:
                    process(frame)
                samples[i].time(process, views, per_round, lambda: engine.times.compose)
    rows = [{**cell, **s.row()} for cell, s in zip(grid, samples, strict=True)]
    default_row = next(r for r in rows if {k: r[k] for k in default} == default)
    slowest = max(rows, key=lambda r: r["ms_p50"])
    slowest_cpu = max(rows, key=lambda r: r["cpu_ms_p50"])
    naive_ms = round(naive_cell.wall.p(50), 3)
    result: dict[str, Any] = {
        "cells": rows,
        "default": default_row,
        "slowest": slowest,
        "slowest_ratio": round(slowest["ms_p50"] / default_row["ms_p50"], 3),
        "slowest_cpu": slowest_cpu,
        "slowest_cpu_ratio": round(slowest_cpu["cpu_ms_p50"] / default_row["cpu_ms_p50"], 3),
        "naive_ms_p50": naive_ms,
        "naive_cpu_ms_p50": round(naive_cell.cpu.p(50), 3),
        "naive_ratio": round(naive_ms / slowest["ms_p50"], 3),
        "backend": engine.compositor.name,
    }
    if key in TARGET_MS:
        result["target_ms_p50"] = TARGET_MS[key]
        result["target_ratio"] = TARGET_RATIO
        result["meets_target"] = bool(
            slowest["ms_p50"] <= TARGET_MS[key] and result["slowest_ratio"] <= TARGET_RATIO
        )
    return result


def run_sweep(
    sizes: Sequence[tuple[int, int]],
    frames: int = 60,
    warmup: int = 20,
    base: Config | None = None,
) -> dict[str, Any]:
    """The sweep at each size; one JSON-ready dict keyed by ``"WxH"`` plus ``"meta"``."""
    from bgcam.bench import machine_notes

    base = (base or Config()).replace(**{"segment.threads": 1, "segment.every": 1})
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bgcam-sweep-") as tmp:
        background = str(Path(tmp) / "background.png")
        # A real picture for replace mode: the bench photo, mirrored.
        cv2.imwrite(background, cv2.flip(bench_photo(), 1))
        with one_thread():
            for size in sizes:
                out[size_key(size)] = sweep_size(base, size, frames, warmup, background)
    out["meta"] = {
        **machine_notes(),
        "frames": frames,
        "warmup": warmup,
        "rounds": ROUNDS,
        "cell_warmup": CELL_WARMUP,
        "threads": 1,
        "strengths": list(STRENGTHS),
        "blur_types": list(BLUR_TYPES),
        "modes": ["blur", *MODES],
    }
    return out
