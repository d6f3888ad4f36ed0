"""The pipeline's state machine: every transition, allowed or not, and the events' outcomes."""

from __future__ import annotations

import itertools

import pytest

from bgcam.live.state import TRANSITIONS, Lifecycle, PipelineState, PipelineStateError

S = PipelineState
ALLOWED = {
    (S.STARTING, S.RUNNING),
    (S.STARTING, S.STOPPING),
    (S.RUNNING, S.PAUSED),
    (S.RUNNING, S.IDLE),
    (S.RUNNING, S.STOPPING),
    (S.PAUSED, S.RUNNING),
    (S.PAUSED, S.IDLE_PAUSED),
    (S.PAUSED, S.STOPPING),
    (S.IDLE, S.RUNNING),
    (S.IDLE, S.IDLE_PAUSED),
    (S.IDLE, S.STOPPING),
    (S.IDLE_PAUSED, S.IDLE),
    (S.IDLE_PAUSED, S.PAUSED),
    (S.IDLE_PAUSED, S.STOPPING),
    (S.STOPPING, S.STOPPED),
    (S.STOPPED, S.STARTING),
    (S.STOPPED, S.STOPPING),
}


def test_the_table_is_the_documented_one() -> None:
    assert {(a, b) for a, targets in TRANSITIONS.items() for b in targets} == ALLOWED


@pytest.mark.parametrize(("old", "new"), list(itertools.permutations(list(S), 2)))
def test_each_transition_is_allowed_or_raises(old: PipelineState, new: PipelineState) -> None:
    life = Lifecycle(old)
    if (old, new) in ALLOWED:
        assert life.to(new) is old
        assert life.state is new
    else:
        with pytest.raises(PipelineStateError, match=f"from {old.value} to {new.value}"):
            life.to(new)
        assert life.state is old


@pytest.mark.parametrize(
    ("start", "paused", "expected"),
    [
        (S.RUNNING, True, S.PAUSED),
        (S.PAUSED, False, S.RUNNING),
        (S.IDLE, True, S.IDLE_PAUSED),
        (S.IDLE_PAUSED, False, S.IDLE),
        (S.RUNNING, False, S.RUNNING),  # already so: no change
        (S.PAUSED, True, S.PAUSED),
        (S.STOPPING, True, S.STOPPING),  # too late to pause: ignored, not an error
        (S.STOPPED, False, S.STOPPED),
    ],
)
def test_pause_and_resume(start: PipelineState, paused: bool, expected: PipelineState) -> None:
    life = Lifecycle(start)
    assert life.pause(paused) == (start, expected)
    assert life.state is expected


@pytest.mark.parametrize(
    ("start", "present", "expected"),
    [
        (S.RUNNING, False, S.IDLE),
        (S.IDLE, True, S.RUNNING),
        (S.PAUSED, False, S.IDLE_PAUSED),  # a paused camera stays paused for the next reader
        (S.IDLE_PAUSED, True, S.PAUSED),
        (S.RUNNING, True, S.RUNNING),
        (S.IDLE, False, S.IDLE),
        (S.STARTING, False, S.STARTING),  # on-demand is only polled once running
        (S.STOPPING, True, S.STOPPING),
    ],
)
def test_readers_coming_and_going(
    start: PipelineState, present: bool, expected: PipelineState
) -> None:
    life = Lifecycle(start)
    assert life.reader(present) == (start, expected)


@pytest.mark.parametrize(
    ("state", "label", "paused", "idle"),
    [
        (S.STARTING, "starting", False, False),
        (S.RUNNING, "running", False, False),
        (S.PAUSED, "running", True, False),
        (S.IDLE, "idle", False, True),
        (S.IDLE_PAUSED, "idle", True, True),
        (S.STOPPING, "stopping", False, False),
        (S.STOPPED, "stopped", False, False),
    ],
)
def test_what_status_reports(state: PipelineState, label: str, paused: bool, idle: bool) -> None:
    assert (state.label, state.paused, state.idle) == (label, paused, idle)
