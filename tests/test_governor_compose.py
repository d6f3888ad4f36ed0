"""The governor's compositor side: over budget, a cheaper path of the same look; back later."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from bgcam.config import SegmentConfig
from bgcam.governor import Governor
from bgcam.governor_compose import UP_AFTER, ComposeGovernor


def window(compose_ms: float, frames_new: int = 60) -> dict[str, Any]:
    return {"frames_new": frames_new, "stage_ms": {"compose": compose_ms, "send": 0.1}}


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_the_budget_is_half_the_frame_interval_unless_configured() -> None:
    assert ComposeGovernor(30.0).budget_ms == pytest.approx(1000 / 30 / 2)
    assert ComposeGovernor(30.0, 4.0).budget_ms == 4.0
    assert Governor(SegmentConfig(), 25.0, compose_budget_ms=3.0).compose.budget_ms == 3.0


def test_over_budget_steps_to_a_cheaper_path_each_window_until_none_is_left(
    caplog: pytest.LogCaptureFixture,
) -> None:
    g = ComposeGovernor(30.0, 5.0)
    assert g.observe(window(4.0)) is None  # within budget: nothing to do
    assert g.observe(window(9.0)) == 1
    with caplog.at_level(logging.WARNING, "bgcam.governor_compose"):
        g.stepped(1, "gaussian blur computed at 1/16 size (80x45)", 9.0)
    assert "9.0 ms per frame, over its 5 ms budget: same look, cheaper: gaussian blur " in (
        caplog.text
    )
    assert g.observe(window(7.0)) == 2
    caplog.clear()
    with caplog.at_level(logging.WARNING, "bgcam.governor_compose"):
        g.stepped(2, None, 7.0)  # the compositor has no smaller working size
    assert "already as small as it gets" in caplog.text and g.level == 1
    assert g.observe(window(7.0)) is None  # the ceiling is remembered: no retry every window
    assert g.observe(window(7.0)) is None


def test_back_up_only_after_headroom_that_the_finer_path_would_fit() -> None:
    clock = Clock()
    g = ComposeGovernor(30.0, 10.0, clock=clock)
    assert g.observe(window(12.0)) == 1
    assert g.observe(window(6.0)) is None  # the step saved 2x: 6 ms now, 12 ms at the plan
    clock.t += 2 * UP_AFTER
    assert g.observe(window(6.0)) is None  # 12 ms would not fit: stay
    assert g.observe(window(3.0)) is None  # 6 ms would fit (< 70 %), but only from now on
    clock.t += UP_AFTER / 2
    assert g.observe(window(3.0)) is None
    clock.t += UP_AFTER / 2
    assert g.observe(window(3.0)) == 0


def test_a_disabled_governor_and_empty_windows_change_nothing() -> None:
    assert ComposeGovernor(30.0, 1.0, enabled=False).observe(window(50.0)) is None
    assert ComposeGovernor(30.0, 1.0).observe(window(50.0, frames_new=0)) is None


def test_a_new_backend_starts_from_its_plan() -> None:
    g = ComposeGovernor(30.0, 1.0)
    g.observe(window(5.0))
    g.stepped(1, None, 5.0)
    g.reset()
    assert g.level == 0 and g.observe(window(5.0)) == 1
