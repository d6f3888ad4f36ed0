"""The quality governor: its ladder, stepping down under overload, back up with headroom."""

from __future__ import annotations

from typing import Any

import pytest

import bgcam.governor as gov_mod
from bgcam.config import SegmentConfig
from bgcam.governor import Governor, build_levels


def window(**over: Any) -> dict[str, Any]:
    w: dict[str, Any] = {
        "fps_out": 30.0, "frames_out": 60, "frames_new": 60, "frames_dropped": 0,
        "frames_unmasked": 0, "late_ticks": 0, "segmentations": 60,
        "stage_ms": {"segment": 3.0, "refine": 2.0, "compose": 5.0, "send": 0.1},
    }  # fmt: skip
    w.update(over)
    return w


def test_ladder_auto_rate_then_cheaper_model_then_hsv() -> None:
    levels = build_levels(SegmentConfig(every=0, segmenter="mediapipe"))
    assert [lv.every for lv in levels] == [1, 2, 3, 3, 3]
    assert levels[3].segment.segmenter == "onnx"
    assert levels[4].segment.segmenter == "hsv"


def test_default_ladder_goes_from_onnx_to_hsv() -> None:
    levels = build_levels(SegmentConfig(every=0))
    assert [lv.segment.segmenter for lv in levels] == ["onnx", "onnx", "onnx", "onnx", "hsv"]
    assert [lv.every for lv in levels] == [1, 2, 3, 3, 3]
    # ROI (square crops on the general model) is dropped before the segmenter changes.
    assert [lv.segment.roi for lv in levels[:4]] == [True, True, True, False]
    assert "no ROI" in levels[3].label


def test_ladder_without_roi_has_no_roi_step() -> None:
    levels = build_levels(SegmentConfig(every=0, roi=False))
    assert [lv.segment.segmenter for lv in levels] == ["onnx", "onnx", "onnx", "hsv"]


def test_fixed_rate_is_kept() -> None:
    levels = build_levels(SegmentConfig(every=2, model="general"))
    assert {lv.every for lv in levels} == {2}
    assert levels[1].segment.model == "landscape"


def test_steps_down_after_two_bad_windows_and_up_after_headroom(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    g = Governor(SegmentConfig(every=0), 30.0)
    bad = window(fps_out=24.0, late_ticks=12)
    assert g.observe(bad, 30.0, 2.0) is None  # one bad window is not enough (hysteresis)
    level = g.observe(bad, 30.0, 2.0)
    assert level is not None and level.every == 2
    assert g.observe(window(), 30.0, 2.0) is None  # good, but not for long enough yet
    monkeypatch.setattr(gov_mod, "UP_AFTER", 0.0)
    level = g.observe(window(), 30.0, 2.0)
    assert level is not None and level.every == 1


def test_dropped_frames_count_only_when_the_source_is_not_faster() -> None:
    g = Governor(SegmentConfig(), 30.0)
    w = window(frames_dropped=60)
    assert g.overload_reasons(w, 30.0, 2.0)
    assert not g.overload_reasons(w, 60.0, 2.0)  # a 60 fps camera into 30 fps output


def test_unavailable_level_is_skipped() -> None:
    g = Governor(SegmentConfig(segmenter="mediapipe"), 30.0)
    g.level = 1  # the onnx level
    assert g.unavailable(1, "onnxruntime missing").segment.segmenter == "hsv"


def test_disabled_governor_never_changes() -> None:
    g = Governor(SegmentConfig(every=0), 30.0, enabled=False)
    bad = window(fps_out=10.0)
    assert g.observe(bad, 30.0, 2.0) is None and g.observe(bad, 30.0, 2.0) is None


def test_output_thread_overload_is_explained_not_answered_with_a_cheaper_model(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Segmentation idle, output behind: the governor names the compositor's cost (once) and
    keeps the model, which could not help."""
    gov = Governor(SegmentConfig(), 30.0)
    slow_out = window(
        fps_out=20.0,
        late_ticks=30,
        stage_ms={"segment": 2.0, "refine": 1.5, "compose": 45.0, "send": 0.1},
    )
    with caplog.at_level("WARNING", logger="bgcam.governor"):
        for _ in range(4):
            assert gov.observe(slow_out, 30.0, 2.0) is None
    assert gov.level == 0
    told = [r.getMessage() for r in caplog.records if "cannot fix" in r.getMessage()]
    assert len(told) == 1 and "compose 45.0 ms" in told[0] and "33.3 ms budget" in told[0]
