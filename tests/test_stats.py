"""Stats: percentiles from the histogram, the summary's keys, windows independent of the run."""

from __future__ import annotations

import numpy as np
import pytest

from bgcam.stats import BIN_MS, LatencyHistogram, Stats, format_line


def test_percentiles_match_numpy() -> None:
    rng = np.random.default_rng(1)
    values = rng.gamma(4.0, 5.0, 5000)
    h = LatencyHistogram()
    for v in values:
        h.add(float(v))
    for q in (50, 90, 99):
        assert h.percentile(q) == pytest.approx(np.percentile(values, q), abs=2 * BIN_MS)
    assert h.max_ms == pytest.approx(values.max())


def test_empty_histogram_is_zero() -> None:
    assert LatencyHistogram().percentile(99) == 0.0


def test_summary_has_the_stats_json_keys() -> None:
    s = Stats()
    s.frame_out(new=True, latency_ms=20.0)
    s.frame_out(new=False)
    s.frame_out(new=True, latency_ms=30.0, dropped=2, unmasked=True)
    s.frame_out(new=False, placeholder=True)
    s.stage("compose", 4.0)
    out = s.summary()
    for key in (
        "fps_out",
        "latency_ms_p50",
        "latency_ms_p99",
        "cpu_percent",
        "frames_out",
        "frames_repeated",
        "frames_dropped",
    ):
        assert key in out
    assert out["frames_out"] == 4
    assert out["frames_repeated"] == 1
    assert out["frames_placeholder"] == 1
    assert out["frames_dropped"] == 2
    assert out["frames_unmasked"] == 1
    assert out["stage_ms"]["compose"] == 4.0
    assert "latency p50" in format_line(out)


def test_windows_restart_independently() -> None:
    s = Stats()
    s.frame_out(new=True, latency_ms=5.0)
    assert s.take_window("log")["frames_out"] == 1
    assert s.take_window("log")["frames_out"] == 0
    assert s.take_window("gov")["frames_out"] == 1
    assert s.summary()["frames_out"] == 1


def test_stats_count_keyframes_and_propagated_frames() -> None:
    stats = Stats()
    for key in (True, False, False, True):
        stats.segmented(keyframe=key)
    stats.segmented(error=True)
    s = stats.summary()
    assert (s["segmentations"], s["keyframes"], s["propagated"]) == (4, 2, 2)
    assert s["segment_errors"] == 1
