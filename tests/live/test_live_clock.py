"""The output clock's arithmetic, on given times (no sleeping, no timing assertions)."""

from __future__ import annotations

import pytest

from bgcam.live.clock import CATCH_UP_LIMIT, PHASE_STEP, PHASE_TARGET, OutputClock, Periodic


def test_ticks_advance_by_one_period_and_late_ones_are_counted() -> None:
    clock = OutputClock(30.0, now=100.0)
    assert clock.advance(100.0) is False
    assert clock.next_t == pytest.approx(100.0 + 1 / 30)
    # This tick ended 0.6 periods after the next one was due: late, and made up at once.
    assert clock.advance(100.0 + 2.6 / 30) is True
    assert clock.next_t == pytest.approx(100.0 + 2 / 30)


def test_hopelessly_late_restarts_the_clock() -> None:
    clock = OutputClock(30.0, now=0.0)
    assert clock.advance(CATCH_UP_LIMIT + 5.0) is True
    assert clock.next_t == CATCH_UP_LIMIT + 5.0


@pytest.mark.parametrize(
    ("source_fps", "offset", "nudge"),
    [
        (30.0, PHASE_TARGET / 30, 0.0),  # on target: no nudge
        (30.0, PHASE_TARGET / 30 + 0.005, PHASE_STEP / 2),  # a bit late: a small nudge earlier
        (30.0, 1.5 / 30, PHASE_STEP),  # far off: at most PHASE_STEP
        (30.0, -0.5 / 30, -PHASE_STEP),  # the tick came before the frame: later
        (30.0, 3.0 / 30, 0.0),  # outside the window: not the same frame period, left alone
        (25.0, 0.02, 0.0),  # another rate: no phase lock
    ],
)
def test_phase_lock(source_fps: float, offset: float, nudge: float) -> None:
    clock = OutputClock(30.0, now=10.0)
    clock.phase_lock(sched=10.0, t_capture=10.0 - offset, source_fps=source_fps)
    assert clock.next_t == pytest.approx(10.0 - nudge, abs=1e-9)


def test_periodic() -> None:
    p = Periodic(5.0, now=0.0)
    assert p.due(4.9) == 0.0
    assert p.due(5.5) == pytest.approx(5.5)  # the time since it last ran
    assert p.due(10.0) == 0.0
    assert p.due(10.6) == pytest.approx(5.1)
    assert Periodic(0.0, now=0.0).due(1e9) == 0.0  # 0: never
