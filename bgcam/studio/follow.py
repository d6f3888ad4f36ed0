"""A camera operator's follow: one value moves towards a goal, critically damped.

``Follower`` integrates ``a = ω²(goal − x) − 2ω·v`` (critical damping: the fastest approach that
does not oscillate), with three guards that make its promises hold in discrete time too:

- **acceleration bound**: ``|a| ≤ accel`` on every step (so ``|Δ²x| ≤ accel·dt²`` between
  consecutive frames), which keeps a sudden goal jump from starting the motion with a jolt;
- **speed bound**: ``|v| ≤ speed`` when moving towards the goal;
- **no overshoot**: the speed towards the goal never exceeds ``sqrt(accel·|goal − x|)``, the
  speed from which it can still stop in time braking at half the bound. Braking along that
  curve needs ``accel / 2``, so the value arrives without passing the goal (in discrete time by
  at most ``accel·dt²``).

Once the value is within ``snap`` of the goal and would move less than ``snap`` in the step, it
is set to the goal and stops: a still goal means a still value, exactly.
"""

from __future__ import annotations

import math

SETTLE_OMEGA_T = 5.83
"""ω·t at which a critically damped step response is within 2 % of the goal: ω = this / settle."""


class Follower:
    """A value that follows :attr:`goal` within ``settle`` seconds (small moves), critically
    damped, with ``|acceleration| ≤ accel`` units/s², speed towards the goal ≤ ``speed`` units/s
    and no overshoot."""

    __slots__ = ("accel", "goal", "omega", "snap", "speed", "value", "velocity")

    def __init__(
        self,
        value: float,
        *,
        settle: float,
        accel: float,
        snap: float,
        speed: float = math.inf,
    ) -> None:
        if settle <= 0 or accel <= 0 or snap < 0 or speed <= 0:
            raise ValueError(
                "follower: expected settle > 0, accel > 0, snap ≥ 0, speed > 0, "
                f"got {settle}, {accel}, {snap}, {speed}"
            )
        self.speed = float(speed)
        self.value = self.goal = float(value)
        self.velocity = 0.0
        self.omega = SETTLE_OMEGA_T / settle
        self.accel = float(accel)
        self.snap = float(snap)

    def reset(self, value: float) -> None:
        """Jump to ``value`` and stop there."""
        self.value = self.goal = float(value)
        self.velocity = 0.0

    def step(self, dt: float) -> float:
        """Advance by ``dt`` seconds; return the new value."""
        if dt <= 0:
            return self.value
        x, v, w, amax = self.value, self.velocity, self.omega, self.accel
        err = self.goal - x
        if abs(err) <= self.snap and abs(v) * dt <= self.snap:
            self.value, self.velocity = self.goal, 0.0
            return self.value
        a = max(-amax, min(amax, w * w * err - 2.0 * w * v))
        v_new = v + a * dt
        toward = math.copysign(1.0, err)
        cap = min(self.speed, math.sqrt(amax * abs(err)))
        if v_new * toward > cap:
            v_new = toward * cap
        dv = amax * dt
        v_new = max(v - dv, min(v + dv, v_new))  # the acceleration bound wins over the cap
        self.velocity = v_new
        self.value = x + v_new * dt
        return self.value
