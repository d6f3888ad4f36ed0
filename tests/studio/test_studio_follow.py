"""``bgcam.studio.follow``: the critically damped follow and its guards."""

from __future__ import annotations

import numpy as np
import pytest

from bgcam.studio.follow import Follower

DT = 1 / 30


def run(f: Follower, steps: int) -> np.ndarray:
    return np.array([f.step(DT) for _ in range(steps)])


@pytest.mark.parametrize(
    ("settle", "accel", "snap", "speed", "error"),
    [
        (0.0, 1.0, 0.0, 1.0, ValueError),
        (1.0, 0.0, 0.0, 1.0, ValueError),
        (1.0, 1.0, -1.0, 1.0, ValueError),
        (1.0, 1.0, 0.0, 0.0, ValueError),
    ],
)
def test_rejects_bad_settings(
    settle: float, accel: float, snap: float, speed: float, error: type[Exception]
) -> None:
    with pytest.raises(error, match="follower: expected"):
        Follower(0.0, settle=settle, accel=accel, snap=snap, speed=speed)


def test_step_to_a_goal_settles_without_overshoot() -> None:
    f = Follower(0.0, settle=1.0, accel=100.0, snap=1e-5)
    f.goal = 1.0
    xs = run(f, 90)
    assert xs.max() <= 1.0 + 100.0 * DT**2
    assert abs(xs[int(30 * 1.2)] - 1.0) < 0.05  # settled (2 %) after about a second
    assert np.all(np.diff(xs) >= -1e-12)  # never comes back: no overshoot
    assert xs[-1] == 1.0  # snapped: exactly still


@pytest.mark.parametrize("accel", [0.5, 2.0, 8.0])
def test_acceleration_and_speed_are_bounded(accel: float) -> None:
    f = Follower(0.0, settle=0.3, accel=accel, snap=1e-6, speed=0.4)
    f.goal = 1.0
    xs = run(f, 30)
    f.goal = -0.5  # a goal jump backwards while moving fast
    xs = np.concatenate([xs, run(f, 150)])
    d2 = np.abs(np.diff(xs, 2))
    assert d2.max() <= accel * DT**2 * (1 + 1e-9)
    assert np.abs(np.diff(xs)).max() <= 0.4 * DT + accel * DT**2
    assert xs.min() >= -0.5 - accel * DT**2  # arrives without passing the goal


def test_still_goal_means_still_value() -> None:
    f = Follower(0.3, settle=1.0, accel=1.0, snap=1e-4)
    assert np.all(run(f, 60) == 0.3)
    assert f.step(0.0) == 0.3 and f.step(-1.0) == 0.3
