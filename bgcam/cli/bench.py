"""``bgcam bench``: how fast each stage is on this machine, against a naive reference."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import click
from rich import box
from rich.console import Console
from rich.table import Table

from bgcam.cli import config_options
from bgcam.config import load_config
from bgcam.errors import ConfigError


def _fmt(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.1f}"
    return "–"


def _pair(row: dict[str, Any], prefix: str) -> str:
    return f"{_fmt(row.get(prefix + '_p50'))}/{_fmt(row.get(prefix + '_p99'))}"


def _engine_row(table: Table, name: str, row: dict[str, Any], naive_ms: float) -> None:
    """One engine variant's row: its stage times and its speed-up over the naive reference."""
    table.add_row(
        "",
        name,
        _pair(row, "ms"),
        _pair(row, "segment_ms"),
        _pair(row, "refine_ms"),
        _pair(row, "compose_ms"),
        f"{naive_ms / row['ms_p50']:.1f}x",
    )


def print_table(result: dict[str, Any], console: Console) -> None:
    """The benchmark result as a rich table (milliseconds, median/p99)."""
    table = Table(
        title="bgcam bench: ms per frame, median/p99, one thread",
        caption="naive = raw model + full-resolution GaussianBlur + float32 blend "
        "(its compose column = blur + blend)",
        box=box.SIMPLE_HEAD,
    )
    for col in ("size", "pipeline", "frame", "segment", "refine", "compose", "speed-up"):
        left = col in ("size", "pipeline")
        table.add_column(col, justify="left" if left else "right", no_wrap=True)
    for key, res in result.items():
        if key == "meta":
            continue
        table.add_row(
            key,
            f"[bold]{res['segmenter']}/{res['backend']}[/] (default)",
            _pair(res, "ms"),
            _pair(res, "segment_ms"),
            _pair(res, "refine_ms"),
            _pair(res, "compose_ms"),
            f"[bold]{res['ratio']:.1f}x[/]",
        )
        naive = res["naive_ms_p50"]
        for seg, backends in res["segmenters"].items():
            for backend, row in backends.items():
                if (seg, backend) == (res["segmenter"], res["backend"]) or "skipped" in row:
                    continue  # the default above; a skipped one is listed under the table
                _engine_row(table, f"{seg}/{backend}", row, naive)
        for framing, rows in res.get("roi", {}).items():
            for onoff, row in rows.items():
                _engine_row(table, f"roi {onoff}, {framing} person", row, naive)
        for scene, rows in res.get("keyframes", {}).items():
            for onoff, row in rows.items():
                _engine_row(table, f"keyframes {onoff}, {scene}", row, naive)
        table.add_row(
            "",
            "naive reference",
            _pair(res, "naive_ms"),
            _pair(res, "naive_segment_ms"),
            "",
            _pair(res, "naive_compose_ms"),
            "1.0x",
        )
        table.add_section()
    console.print(table)
    skipped: dict[str, set[str]] = {}
    for res in result.values():
        for seg, backends in res.get("segmenters", {}).items():
            for backend, row in backends.items():
                if "skipped" in row:
                    skipped.setdefault(row["skipped"], set()).add(f"{seg}/{backend}")
    for reason, names in sorted(skipped.items()):
        console.print(f"[dim]skipped {', '.join(sorted(names))}: {reason}[/]")
    from bgcam.bench import TARGET_MS, TARGET_RATIO

    for key, target in TARGET_MS.items():
        if key in result:
            res = result[key]
            ok = res["ms_p50"] <= target and res["ratio"] >= TARGET_RATIO
            mark = "[green]meets[/]" if ok else "[red]misses[/]"
            console.print(
                f"{key}: {res['ms_p50']:.2f} ms (target ≤ {target:g}), "
                f"{res['ratio']:.1f}x naive (target ≥ {TARGET_RATIO:g}x): {mark} the target"
            )
    for key, res in result.items():
        st = res.get("studio") if isinstance(res, dict) else None
        if st:
            variants = ("off", "autoframe", "light", "both")
            console.print(
                f"{key} studio effects (ms p50/p99): "
                + ", ".join(
                    f"{name} {st[f'{name}_ms_p50']:.2f}/{st[f'{name}_ms_p99']:.2f}"
                    for name in variants
                )
            )
            if "off_cpu_ms_p50" in st:
                console.print(
                    f"{key} studio effects (thread CPU ms p50): "
                    + ", ".join(f"{name} {st[f'{name}_cpu_ms_p50']:.2f}" for name in variants)
                )
            if "off_compose_ms_p50" in st:
                off = st["off_compose_ms_p50"]
                console.print(
                    f"{key} effects + compositing (ms p50): off {off:.2f}, "
                    + ", ".join(
                        f"{name} {st[f'{name}_compose_ms_p50']:.2f} "
                        f"({st[f'{name}_compose_ms_p50'] - off:+.2f})"
                        for name in variants[1:]
                    )
                )
        kf = res.get("keyframes") if isinstance(res, dict) else None
        if kf:
            console.print(
                f"{key} keyframes (frames propagated, mean ms over all frames): "
                + ", ".join(
                    f"{onoff} {scene} {row['propagated']:.0%} {row['ms_mean']:.1f}"
                    for scene, rows in kf.items()
                    for onoff, row in rows.items()
                )
            )
    meta = result["meta"]
    console.print(
        f"[dim]{meta['frames']} frames after {meta['warmup']} warm-up, {meta['cpu']} "
        f"({meta['cpus']} cpus, load {meta.get('loadavg_1m', '?')}), opencv {meta['opencv']}, "
        f"mediapipe {meta['mediapipe']}, {meta['date']}[/]"
    )


def print_sweep(result: dict[str, Any], console: Console) -> None:
    """The ``--sweep`` result: per size, the processor time per frame (median) for every
    strength and type, the slowest cell and its ratio to the default (paired by round)."""
    from bgcam.sweep import BLUR_TYPES, MODES, STRENGTHS, cell_label

    for key, res in result.items():
        if key == "meta":
            continue
        table = Table(
            title=f"bgcam bench --sweep {key}: whole frame, ms median (thread processor time), "
            f"one thread ({res['backend']} compositor)",
            box=box.SIMPLE_HEAD,
        )
        table.add_column("blur type", no_wrap=True)
        for s in STRENGTHS:
            table.add_column(str(s), justify="right", no_wrap=True)
        by = {(c["mode"], c["blur_type"], c["blur"]): c for c in res["cells"]}
        for kind in BLUR_TYPES:
            table.add_row(kind, *(_fmt(by[("blur", kind, s)]["cpu_ms_p50"]) for s in STRENGTHS))
        modes = [c for c in res["cells"] if c["mode"] in MODES]
        table.add_section()
        table.add_row(
            "modes",
            *(f"{c['mode']} {_fmt(c['cpu_ms_p50'])}" for c in modes),
        )
        console.print(table)
        slow, default, most = res["slowest"], res["default"], res["slowest_cpu"]
        line = (
            f"{key}: slowest {cell_label(slow)} = {res['slowest_ratio']:.2f}x the default "
            f"({cell_label(default)}, {default['cpu_ms_p50']:.2f} ms) in the same rounds; "
            f"the most, {cell_label(most)} {most['cpu_ms_p50']:.2f} ms"
        )
        if "target_ms_p50" in res:
            mark = "[green]meets[/]" if res["meets_target"] else "[red]misses[/]"
            line += (
                f"; target every cell ≤ {res['target_ms_p50']:g} ms and ≤ "
                f"{res['target_ratio']:g}x: {mark}"
            )
        console.print(line)
        wall = res.get("slowest_wall", slow)
        console.print(
            f"{key}: wall time: slowest {cell_label(wall)} {wall['ms_p50']:.2f} ms = "
            f"{res.get('slowest_wall_ratio', 0.0):.2f}x the default ({default['ms_p50']:.2f} ms);"
            f" naive reference {res['naive_cpu_ms_p50']:.2f} ms = {res['naive_ratio']:.2f}x "
            "the slowest cell"
        )
    meta = result["meta"]
    console.print(
        f"[dim]{meta['frames']} frames per cell in {meta['rounds']} rounds, {meta['cpu']} "
        f"({meta['cpus']} cpus, load {meta.get('loadavg_1m', '?')}), opencv {meta['opencv']}, "
        f"{meta['date']}[/]"
    )


@click.command(
    "bench",
    epilog="""\b
Examples:
  bgcam bench
  bgcam bench --sizes 1280x720 --frames 500
  bgcam bench --json > bench.json
  bgcam bench --sweep --sizes 1280x720,1920x1080
""",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@click.option(
    "--sweep",
    is_flag=True,
    help="Time the whole frame at every blur strength (0–100 by 10) × blur type, and the "
    "modes replace/remove/off; name the slowest cell and its ratio to the default setting.",
)
@click.option(
    "--frames",
    type=click.IntRange(min=1, max=100_000),
    default=None,
    help="Timed frames per pipeline and size (after the warm-up) [default: 200; 60 per cell "
    "with --sweep].",
)
@click.option(
    "--warmup",
    type=click.IntRange(min=0, max=10_000),
    default=20,
    show_default=True,
    help="Untimed frames first (model load, caches, buffers).",
)
@click.option(
    "--sizes",
    default="640x480,1280x720,1920x1080",
    show_default=True,
    help="Frame sizes, comma-separated WIDTHxHEIGHT.",
)
@config_options("Benchmark this config instead of the defaults (threads are forced to 1).")
def bench(
    as_json: bool,
    sweep: bool,
    frames: int | None,
    warmup: int,
    sizes: str,
    config_path: Path | None,
    overrides: tuple[str, ...],
) -> None:
    """Time each stage (segment, refine, compose) and whole frames, one thread, on real frames.

    For each size: the default pipeline segmenting every frame, every available segmenter and
    compositor backend, and in the same run a naive reference (raw model, full-resolution
    Gaussian blur of the same strength, float32 blend), with the ratio naive / ours; ROI on and
    off, and keyframes (segment.max_skip) on and off with the share of frames propagated.
    With --sweep: the whole frame at every compositor setting instead (see docs/BENCHMARKS.md).
    """
    from bgcam.bench import parse_sizes, run_bench

    try:
        size_list = parse_sizes(sizes)
    except ValueError as exc:
        raise ConfigError(f"--sizes: {exc}") from None
    cfg = load_config(config_path, overrides)
    root = logging.getLogger()
    if root.level > logging.DEBUG:  # only the table (and warnings) unless -v
        root.setLevel(logging.WARNING)
    if sweep:
        from bgcam.sweep import run_sweep

        result = run_sweep(size_list, frames=frames or 60, warmup=warmup, base=cfg)
    else:
        result = run_bench(size_list, frames=frames or 200, warmup=warmup, base=cfg)
    if as_json:
        click.echo(json.dumps(result, indent=2, allow_nan=False))
        return
    console = Console()
    if not console.is_terminal:  # a pipe or file: do not squeeze the table into 80 columns
        console = Console(width=120)
    (print_sweep if sweep else print_table)(result, console)


COMMANDS = [bench]
