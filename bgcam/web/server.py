"""Run the web panel with uvicorn in a background thread of the daemon.

``bgcam run`` calls :func:`start_web` when ``web.enabled`` is true and :meth:`WebHandle.stop` on
the way out::

    web = start_web(pipeline, cfg.web) if cfg.web.enabled else None
    try:
        pipeline.run()
    finally:
        if web is not None:
            web.stop()

The socket is bound here, on 127.0.0.1 only, before the thread starts, so a port in use is an
error the caller sees at once. The token and the address go to the runtime directory (see
:mod:`bgcam.web.access`) for ``bgcam open``; they are removed again by :meth:`WebHandle.stop`.
uvicorn runs without its own logging configuration and without an access log (request lines would
carry the ``?token=`` of the first page load), and with the connection limits of
:mod:`bgcam.web.limits` (a cap on open connections, a deadline for each request).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from pathlib import Path

import platformdirs
import uvicorn

from bgcam.config import WebConfig
from bgcam.errors import BackendError, ConfigError
from bgcam.web.access import panel_url, remove_access, write_access
from bgcam.web.app import Panel, PanelPipeline, PanelSettings, create_app
from bgcam.web.limits import (
    ACCEPT_BATCH,
    LISTEN_BACKLOG,
    MAX_HEADER_BYTES,
    REQUEST_TIMEOUT,
    GuardedH11Protocol,
)

log = logging.getLogger(__name__)

__all__ = ["HOST", "WebHandle", "default_upload_dir", "start_web"]

HOST = "127.0.0.1"
START_TIMEOUT = 10.0


def default_upload_dir() -> Path:
    """Where uploaded background images are kept: the user data dir's ``backgrounds/``."""
    return Path(platformdirs.user_data_dir("bgcam", appauthor=False)) / "backgrounds"


class WebHandle:
    """The running panel: its address, and :meth:`stop`."""

    def __init__(
        self,
        server: uvicorn.Server,
        thread: threading.Thread,
        panel: Panel,
        stopping: threading.Event,
        url: str,
        runtime_dir: Path | None,
    ) -> None:
        self._server = server
        self._thread = thread
        self.panel = panel
        self._stopping = stopping
        self.url = url
        self._runtime_dir = runtime_dir
        self._stopped = False

    @property
    def token(self) -> str:
        return self.panel.settings.token

    @property
    def port(self) -> int:
        return self.panel.settings.port

    @property
    def panel_url(self) -> str:
        """The address to open in a browser (with the token)."""
        return panel_url(self.url, self.token)

    def stop(self, timeout: float = 2.0) -> None:
        """End open previews, stop the server, join its thread; remove the token file."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("web panel: the server thread did not stop within %.1f s", 2 * timeout)
        remove_access(self.token, self._runtime_dir)
        log.info("web panel stopped")

    def __enter__(self) -> WebHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"web panel: cannot listen on {HOST}:{port}: {exc.strerror}",
            hint=f"choose a free port, e.g. --set web.port={port + 1 if port else 8765}, "
            "or turn the panel off: --set web.enabled=false",
        ) from None
    sock.listen(ACCEPT_BATCH)
    sock.setblocking(False)
    return sock


def start_web(
    pipeline: PanelPipeline,
    cfg: WebConfig,
    *,
    port: int | None = None,
    runtime_dir: Path | None = None,
    upload_dir: Path | None = None,
) -> WebHandle:
    """Serve the panel for ``pipeline`` on 127.0.0.1 until :meth:`WebHandle.stop`.

    ``port`` overrides ``cfg.port`` (0 = any free port, for tests); ``runtime_dir`` where the
    token goes (default: the control socket's directory); ``upload_dir`` where uploaded
    backgrounds are kept (default :func:`default_upload_dir`). Raises ConfigError when the port
    is taken, BackendError when the server does not come up.
    """
    sock = _bind(cfg.port if port is None else port)
    bound = int(sock.getsockname()[1])
    url = f"http://{HOST}:{bound}/"
    try:
        token = write_access(url, runtime_dir)
    except BaseException:
        sock.close()
        raise
    settings = PanelSettings(
        token=token,
        port=bound,
        upload_dir=upload_dir if upload_dir is not None else default_upload_dir(),
        preview_fps=cfg.preview_fps,
    )
    stopping = threading.Event()
    app, panel = create_app(pipeline, settings, stopping)
    config = uvicorn.Config(
        app,
        log_config=None,  # the daemon's logging configuration stays in charge
        log_level="warning",  # uvicorn's own loggers: no "Started server process" lines
        access_log=False,
        lifespan="off",
        ws="none",
        server_header=False,
        timeout_graceful_shutdown=1,
        # Limits (see bgcam.web.limits): a local process must not exhaust the daemon.
        http=GuardedH11Protocol,
        timeout_keep_alive=int(REQUEST_TIMEOUT),
        # asyncio accepts up to `backlog` connections in a row before any of them is handled
        # (and refused past the cap): a small batch keeps descriptors from running out.
        backlog=ACCEPT_BATCH,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="bgcam-web", daemon=True
    )
    handle = WebHandle(server, thread, panel, stopping, url, runtime_dir)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            handle.stop()
            sock.close()
            raise BackendError(
                f"web panel: the server on {url} did not start (see the log above)",
                hint="run with -v for details, or turn the panel off: --set web.enabled=false",
            )
        time.sleep(0.02)
    # The kernel's queue of waiting connections costs no descriptors: make it long again (the
    # server's start set it to ACCEPT_BATCH), so a legitimate client is not dropped while a
    # flood of connections is being refused.
    sock.listen(LISTEN_BACKLOG)
    log.info("web panel on %s; open it with `bgcam open`", url)
    return handle
