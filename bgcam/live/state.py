"""The live pipeline's life, as one explicit state machine::

    STARTING ──▶ RUNNING ◀──pause/resume──▶ PAUSED
                  ▲  │                        ▲  │
       reader came│  │reader left  reader came│  │reader left
                  │  ▼                        │  ▼
                  IDLE ◀──────pause/resume──▶ IDLE_PAUSED
    any state but STOPPED ──▶ STOPPING ──▶ STOPPED ──▶ STARTING

The camera is open only while RUNNING: pausing releases it (LED off), and so does on-demand when
no application reads the virtual camera (IDLE). A wrong transition raises
:class:`PipelineStateError`, as :class:`~bgcam.sources.SourceStateError` does for sources.
"""

from __future__ import annotations

import enum
import threading

__all__ = ["TRANSITIONS", "Lifecycle", "PipelineState", "PipelineStateError"]


class PipelineState(enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    PAUSED = "paused"
    IDLE = "idle"
    IDLE_PAUSED = "idle_paused"
    STOPPING = "stopping"
    STOPPED = "stopped"

    @property
    def paused(self) -> bool:
        return self in (PipelineState.PAUSED, PipelineState.IDLE_PAUSED)

    @property
    def idle(self) -> bool:
        """On-demand has released the camera: nobody reads the output."""
        return self in (PipelineState.IDLE, PipelineState.IDLE_PAUSED)

    @property
    def label(self) -> str:
        """What ``status`` reports as ``state`` (``paused`` is reported on its own)."""
        if self is PipelineState.PAUSED:
            return "running"
        return "idle" if self.idle else self.value


_S = PipelineState
TRANSITIONS: dict[PipelineState, frozenset[PipelineState]] = {
    _S.STARTING: frozenset({_S.RUNNING, _S.STOPPING}),
    _S.RUNNING: frozenset({_S.PAUSED, _S.IDLE, _S.STOPPING}),
    _S.PAUSED: frozenset({_S.RUNNING, _S.IDLE_PAUSED, _S.STOPPING}),
    _S.IDLE: frozenset({_S.RUNNING, _S.IDLE_PAUSED, _S.STOPPING}),
    _S.IDLE_PAUSED: frozenset({_S.IDLE, _S.PAUSED, _S.STOPPING}),
    _S.STOPPING: frozenset({_S.STOPPED}),
    _S.STOPPED: frozenset({_S.STARTING, _S.STOPPING}),
}
"""Every allowed transition; anything else raises :class:`PipelineStateError`."""


class PipelineStateError(RuntimeError):
    """A transition the state machine does not allow (a bug in the caller)."""

    def __init__(self, old: PipelineState, new: PipelineState) -> None:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[old]))
        super().__init__(
            f"pipeline state: cannot go from {old.value} to {new.value}; expected one of {allowed}"
        )
        self.old, self.new = old, new


class Lifecycle:
    """The current :class:`PipelineState`, changed only along :data:`TRANSITIONS` (thread-safe).

    The events (:meth:`pause`, :meth:`resume`, :meth:`reader`) name what happened and work out the
    next state; :meth:`to` is the raw, checked transition.
    """

    def __init__(self, initial: PipelineState = PipelineState.STOPPED) -> None:
        self._state = initial
        self._lock = threading.Lock()

    @property
    def state(self) -> PipelineState:
        return self._state

    def to(self, new: PipelineState) -> PipelineState:
        """Go to ``new``; return the old state. Raise PipelineStateError if not allowed."""
        with self._lock:
            old = self._state
            if new is not old and new not in TRANSITIONS[old]:
                raise PipelineStateError(old, new)
            self._state = new
            return old

    def pause(self, paused: bool) -> tuple[PipelineState, PipelineState]:
        """The user paused or resumed: (old, new). A no-op when it already is so."""
        old = self._state
        if old.paused == paused or old in (_S.STOPPING, _S.STOPPED):
            return old, old
        if paused:
            new = _S.IDLE_PAUSED if old.idle else _S.PAUSED
        else:
            new = _S.IDLE if old.idle else _S.RUNNING
        self.to(new)
        return old, new

    def reader(self, present: bool) -> tuple[PipelineState, PipelineState]:
        """On-demand saw a reader appear (``present``) or leave: (old, new)."""
        old = self._state
        if old.idle != present or old not in (_S.RUNNING, _S.PAUSED, _S.IDLE, _S.IDLE_PAUSED):
            return old, old
        if present:
            new = _S.PAUSED if old.paused else _S.RUNNING
        else:
            new = _S.IDLE_PAUSED if old.paused else _S.IDLE
        self.to(new)
        return old, new
