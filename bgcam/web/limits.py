"""Connection limits for the panel's HTTP server (a local process must not exhaust the daemon).

uvicorn's own settings cover part of it (``bgcam.web.server`` sets them): ``timeout_keep_alive``
closes idle kept-alive connections, ``h11_max_incomplete_event_size`` bounds the header bytes.
(``limit_concurrency`` is not needed: it answers 503 past a number of connections or requests,
and the cap below is lower, with one request at a time per connection.) What they leave open
is a client that connects and then sends nothing, or one header byte at a time (slow-loris):
uvicorn keeps such a connection, and its descriptor, forever. :class:`GuardedH11Protocol`
(passed as uvicorn's ``http`` protocol class) adds:

- at most :data:`MAX_CONNECTIONS` open connections: one more is closed as soon as it is
  accepted, so the daemon's descriptors never run out (the control socket, the camera, the model
  files keep theirs);
- :data:`REQUEST_TIMEOUT`: a request's head and body must have arrived that many seconds after
  the connection opened (or after the previous response); a slow or silent client is cut then.
  A preview stream's long response is not a slow request: its request arrived at once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = [
    "ACCEPT_BATCH",
    "LISTEN_BACKLOG",
    "MAX_CONNECTIONS",
    "MAX_HEADER_BYTES",
    "REQUEST_TIMEOUT",
    "GuardedH11Protocol",
]

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 48
"""Open connections at once (a browser uses about 6; preview viewers hold one each)."""
REQUEST_TIMEOUT = 5.0
"""Seconds for a whole request (head and body) to arrive."""
MAX_HEADER_BYTES = 16 * 1024
"""Bytes of request line plus headers."""
ACCEPT_BATCH = 16
"""How many connections asyncio accepts in a row (it uses the listen backlog for that)."""
LISTEN_BACKLOG = 128
"""The kernel's queue of connections waiting to be accepted (no descriptors of ours)."""


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a connection cap and a request deadline."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= MAX_CONNECTIONS:
            self._refused = True
            log.warning("web panel: %d connections open already; closing new ones", MAX_CONNECTIONS)
            transport.abort()
            return
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._refused:
            return
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        super().data_received(data)
        if self.conn.their_state in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR):
            self._disarm()  # the whole request is in: the answer may take its time

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request on this connection gets its own deadline

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(REQUEST_TIMEOUT, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.conn.their_state in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED):
            return  # raced with the end of the request: it is being answered
        log.info("web panel: closed a connection that sent no complete request within %.0f s",
                 REQUEST_TIMEOUT)  # fmt: skip
        self.transport.abort()
