"""``bgcam bench``: real frames, the naive reference, and the JSON the targets are checked from.

Only shapes and keys are asserted here, never timings (the machine is shared and noisy).
"""

from __future__ import annotations

import io
import itertools
import json
import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from rich.console import Console

from bgcam import compose, segment
from bgcam.bench import NaivePipeline, bench_frames, parse_sizes, run_bench
from bgcam.cli.bench import print_table
from bgcam.config import Config
from bgcam.effects import blur_sigma
from bgcam.frame import ShrunkFrame

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("640x480", [(640, 480)]),
        ("640x480, 1280X720,1920x1080", [(640, 480), (1280, 720), (1920, 1080)]),
        ("640*480", ValueError),
        ("640x", ValueError),
        ("8x8", ValueError),
        ("1280x99999", ValueError),
    ],
)
def test_parse_sizes(text: str, expected: list[tuple[int, int]] | type[Exception]) -> None:
    if isinstance(expected, list):
        assert parse_sizes(text) == expected
    else:
        with pytest.raises(expected):
            parse_sizes(text)


@pytest.mark.parametrize("size", [(640, 480), (1920, 1080)])
def test_bench_frames_are_shifted_crops_of_a_real_photo(size: tuple[int, int]) -> None:
    frames = bench_frames(size)
    assert len(frames) == 8
    assert all(f.shape == (size[1], size[0], 3) and f.dtype == np.uint8 for f in frames)
    assert all(f.flags["C_CONTIGUOUS"] for f in frames)
    # Consecutive frames differ (a moving camera)...
    assert all(np.abs(a.astype(int) - b).mean() > 2 for a, b in itertools.pairwise(frames))
    # ...and are photographs, not noise: neighbouring pixels are strongly correlated.
    g = cv2.cvtColor(frames[0], cv2.COLOR_BGR2GRAY).astype(np.float32)
    corr = np.corrcoef(g[:, :-1].ravel(), g[:, 1:].ravel())[0, 1]
    assert corr > 0.9


def test_naive_pipeline_blurs_the_background(model_dir: Path) -> None:
    size = (640, 480)
    frame = bench_frames(size)[0]
    sigma = blur_sigma(60, size)
    seg = segment.create_segmenter(Config().segment, size)
    try:
        naive = NaivePipeline(seg, size, sigma)
        out = naive.process(frame)
        mask = cv2.resize(seg.segment(ShrunkFrame(frame)), size)
    finally:
        seg.close()
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert set(naive.times) == {"segment", "blur", "blend", "compose"}
    person, background = mask > 0.95, mask < 0.05
    assert person.any() and background.any()
    diff = np.abs(out.astype(int) - frame).mean(axis=2)
    assert diff[person].mean() < 3 < diff[background].mean()


def _check_stage_keys(row: dict[str, float]) -> None:
    for stage in ("", "segment_", "refine_", "compose_"):
        for q in ("p50", "p99"):
            value = row[f"{stage}ms_{q}"]
            assert isinstance(value, float) and math.isfinite(value) and value >= 0


def test_run_bench_reports_every_segmenter_and_backend(model_dir: Path) -> None:
    threads = cv2.getNumThreads()
    result = run_bench([(320, 240)], frames=4, warmup=1)
    assert cv2.getNumThreads() == threads  # one thread only while measuring
    assert set(result) == {"320x240", "meta"}
    res = result["320x240"]
    _check_stage_keys(res)
    assert res["segmenter"] == "onnx"
    assert res["naive_ms_p50"] > 0 and res["ratio"] > 0
    assert res["naive_sigma_px"] == pytest.approx(blur_sigma(60, (320, 240)), abs=0.01)
    assert set(res["segmenters"]) == set(segment.available())
    for backends in res["segmenters"].values():
        assert set(backends) == set(compose.available())
        for row in backends.values():
            if "skipped" in row:
                assert row["skipped"]  # a reason is given
            else:
                _check_stage_keys(row)
    assert result["meta"]["frames"] == 4 and result["meta"]["threads"] == 1
    keyframes = res["keyframes"]
    assert set(keyframes) == {"moving", "still"}
    for rows in keyframes.values():
        assert (rows["on"]["max_skip"], rows["off"]["max_skip"]) == (Config().segment.max_skip, 0)
        assert rows["off"]["propagated"] == 0.0 and 0.0 <= rows["on"]["propagated"] <= 0.5
        _check_stage_keys(rows["on"])
        assert rows["on"]["ms_mean"] > 0
    studio = res["studio"]
    for name in ("off", "autoframe", "light", "both"):
        assert studio[f"{name}_ms_p50"] >= 0 and studio[f"{name}_ms_p99"] >= 0
        assert studio[f"{name}_compose_ms_p50"] >= studio[f"{name}_ms_p50"]
        assert studio[f"{name}_cpu_ms_p50"] >= 0
    assert studio["off_zoom"] == 1.0 and studio["off_gain"] == 1.0
    assert studio["autoframe_zoom"] > 1.0  # timed zoomed in: the crop runs
    assert studio["light_gain"] > 1.0  # timed brightening: the scale pass runs

    text = io.StringIO()
    print_table(result, Console(file=text, width=140))
    table = text.getvalue()
    assert "320x240 studio effects" in table
    assert "320x240 effects + compositing (ms p50): off" in table
    assert "320x240 studio effects (thread CPU ms p50): off" in table
    assert "320x240" in table and "onnx/cpu (default)" in table
    assert "naive reference" in table and f"{res['ratio']:.1f}x" in table
    assert "keyframes on, still" in table and "keyframes off, moving" in table
    assert "320x240 keyframes (frames propagated, mean ms over all frames): on moving " in table
    assert ", off moving 0% " in table


def test_bench_json_cli(model_dir: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bgcam",
            "bench",
            "--json",
            "--frames",
            "3",
            "--warmup",
            "1",
            "--sizes",
            "320x180",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)  # exactly one JSON object on stdout
    res = result["320x180"]
    for key in (
        "ms_p50",
        "ms_p99",
        "naive_ms_p50",
        "ratio",
        "segment_ms_p50",
        "refine_ms_p99",
        "compose_ms_p50",
        "segmenters",
    ):
        assert key in res
    assert res["ratio"] == pytest.approx(res["naive_ms_p50"] / res["ms_p50"], rel=0.02)


def test_bench_rejects_bad_sizes() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bgcam", "bench", "--sizes", "big"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "--sizes: expected WIDTHxHEIGHT" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_sweep_json_has_every_cell_the_slowest_and_its_ratio(model_dir: Path) -> None:
    from bgcam.cli.bench import print_sweep
    from bgcam.sweep import BLUR_TYPES, MODES, STRENGTHS, run_sweep

    threads = cv2.getNumThreads()
    result = run_sweep([(160, 90)], frames=2, warmup=1)
    assert cv2.getNumThreads() == threads
    assert set(result) == {"160x90", "meta"}
    res = result["160x90"]
    cells = {(c["mode"], c["blur_type"], c["blur"]) for c in res["cells"]}
    grid = {("blur", t, s) for t in BLUR_TYPES for s in STRENGTHS}
    assert grid <= cells and {m for m, _, _ in cells} == {"blur", *MODES}
    assert len(res["cells"]) == len(BLUR_TYPES) * len(STRENGTHS) + len(MODES)
    for c in res["cells"]:
        for key in ("ms_p50", "ms_p99", "cpu_ms_p50", "compose_ms_p50", "compose_ms_p99", "ratio"):
            assert isinstance(c[key], float) and math.isfinite(c[key]) and c[key] >= 0
    assert (res["default"]["blur_type"], res["default"]["blur"]) == ("gaussian", 60)
    assert res["default"]["ratio"] == 1.0  # paired with itself in every round
    # The slowest cell: the highest ratio to the default in the same rounds (processor time).
    assert res["slowest"]["ratio"] == max(c["ratio"] for c in res["cells"])
    assert res["slowest_ratio"] == res["slowest"]["ratio"]
    assert res["slowest_cpu"]["cpu_ms_p50"] == max(c["cpu_ms_p50"] for c in res["cells"])
    assert res["slowest_cpu_ratio"] == pytest.approx(
        res["slowest_cpu"]["cpu_ms_p50"] / res["default"]["cpu_ms_p50"], rel=0.01
    )
    assert res["slowest_wall"]["ms_p50"] == max(c["ms_p50"] for c in res["cells"])
    assert res["slowest_wall_ratio"] == pytest.approx(
        res["slowest_wall"]["ms_p50"] / res["default"]["ms_p50"], rel=0.01
    )
    assert res["naive_ms_p50"] > 0 and res["naive_cpu_ms_p50"] > 0
    assert res["naive_ratio"] == pytest.approx(
        res["naive_cpu_ms_p50"] / res["slowest"]["cpu_ms_p50"], rel=0.01
    )
    meta = result["meta"]
    assert (meta["rounds"], meta["frames_per_round"]) == (2, 1)  # one round per frame asked
    assert "target_ms_p50" not in res  # targets exist for 720p and 1080p only
    json.dumps(result, allow_nan=False)  # what --json prints
    text = io.StringIO()
    print_sweep(result, Console(file=text, width=160))
    assert "slowest" in text.getvalue() and "lens" in text.getvalue()
    assert "processor time" in text.getvalue() and "naive reference" in text.getvalue()
