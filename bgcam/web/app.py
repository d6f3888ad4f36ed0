"""The web control panel as a Starlette application.

Routes (every one needs the access token, see :class:`~bgcam.web.guard.TokenGuard`)::

    GET  /                  the page (static/index.html); ?token=… sets the cookie and redirects
    GET  /static/…          its script and style sheet
    GET  /api/session       what the page needs to start: CSRF value, choices, limits
    GET  /api/status        the pipeline's stats and current settings (JSON)
    GET  /preview.mjpg      live preview, MJPEG, at most ``web.preview_fps``
    POST /api/command       {"name": "blur", "arg": 40} → the same command set as `bgcam ctl`
    POST /api/background    multipart upload (field ``image``) → saved, then ``background PATH``

Every change goes through the pipeline's :class:`~bgcam.control.commands.CommandQueue`, exactly
like the control socket, and the reply waits until the pipeline has applied it between frames.

Security, in the order a request meets it: the Host header must name 127.0.0.1 or localhost
(Starlette's TrustedHostMiddleware, 400 otherwise: defeats DNS rebinding); the token must come
with the request (401 otherwise); a POST must carry it in a header (``Authorization: Bearer``,
``X-BgCam-Token``) or send the cookie plus the ``X-BgCam-CSRF`` value the page got from
``/api/session``, and a foreign ``Origin`` is refused (403). No CORS headers are ever sent.
Uploads stop being read past :data:`MAX_UPLOAD_BYTES`; the image header is checked
(:mod:`bgcam.imageload`: at most 8192 pixels a side) before anything is decoded, off the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, get_args

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from bgcam import __version__
from bgcam.config import MODES, BlurType, Config, SegmenterName
from bgcam.control import wire
from bgcam.control.commands import CommandQueue, frame_size, prepare
from bgcam.control.grammar import COMMANDS, Command, CommandError, CommandTimeout
from bgcam.errors import InputError
from bgcam.frame import Image
from bgcam.imageload import ImageTooLarge, image_size, read_image
from bgcam.status import DaemonStatus
from bgcam.web.access import csrf_token
from bgcam.web.bodies import (
    DRAIN_BYTES,
    MAX_UPLOAD_BYTES,
    InMemoryForm,
    TooLarge,
    declared_length,
    drain,
    limited,
    save_upload,
)
from bgcam.web.guard import ALLOWED_HOSTS, COOKIE, TokenGuard
from bgcam.web.preview import PreviewEncoder

log = logging.getLogger(__name__)

__all__ = [
    "COOKIE",
    "DRAIN_BYTES",
    "MAX_UPLOAD_BYTES",
    "PanelPipeline",
    "PanelSettings",
    "create_app",
]

STATIC_DIR = Path(__file__).with_name("static")
MAX_JSON_BYTES = 4096
UPLOADS_AT_ONCE = 2
COMMAND_TIMEOUT = 5.0  # seconds for the pipeline to apply a command
STATUS_TIMEOUT = 2.0
# Commands the page may send. `background` takes a path: the page uploads instead. `quit` stops
# the daemon, which a browser tab should not do by accident: `bgcam ctl quit` does.
WEB_COMMANDS = frozenset(COMMANDS) - {"background", "quit"}


class PanelPipeline(Protocol):
    """What the panel needs from the running pipeline (``bgcam.pipeline`` provides it)."""

    @property
    def commands(self) -> CommandQueue: ...

    @property
    def config(self) -> Config: ...

    def latest_output(self) -> tuple[Image | None, int]:
        """The newest output frame (BGR uint8, not written again after it is returned) and its
        frame index; ``(None, -1)`` before the first one. Called from the web server's threads."""
        ...


@dataclass(frozen=True)
class PanelSettings:
    token: str
    port: int
    upload_dir: Path
    preview_fps: float = 10.0
    max_upload_bytes: int = MAX_UPLOAD_BYTES


class _Json(JSONResponse):
    def render(self, content: Any) -> bytes:
        return json.dumps(content, default=str, ensure_ascii=False).encode()


def _error(status: int, message: str) -> Response:
    # After a refused body (413) the connection is not reused: the body may not be all read.
    headers = {"connection": "close"} if status == 413 else None
    return _Json({"ok": False, "error": message}, status, headers=headers)


def _settings(cfg: Config, status: DaemonStatus) -> dict[str, Any]:
    c = cfg.compose
    return {
        "mode": c.mode,
        "blur": c.blur,
        "blur_type": c.blur_type,
        "background": c.background,
        "segmenter": cfg.segment.segmenter,
        "roi": cfg.segment.roi,
        "roi_margin": cfg.segment.roi_margin,
        "roi_full_every": cfg.segment.roi_full_every,
        "max_skip": cfg.segment.max_skip,
        "paused": status.paused,
        "autoframe": cfg.effects.autoframe,
        "light": cfg.effects.light,
    }


# --------------------------------------------------------------------------------------------
# The application


class Panel:
    """The endpoints, bound to one pipeline."""

    def __init__(
        self, pipeline: PanelPipeline, settings: PanelSettings, stopping: threading.Event
    ) -> None:
        self.pipeline = pipeline
        self.settings = settings
        self.stopping = stopping
        self.encoder = PreviewEncoder(pipeline.latest_output)
        self.viewers = 0
        self.uploads = asyncio.Semaphore(UPLOADS_AT_ONCE)

    def _answer(self, status: DaemonStatus) -> Response:
        settings = _settings(self.pipeline.config, status)
        return _Json({"ok": True, "stats": status.to_json(), "settings": settings})

    async def _reply(self, cmd: Command) -> Response:
        try:
            status = await self.pipeline.commands.acall(cmd, COMMAND_TIMEOUT)
        except CommandTimeout as exc:
            return _error(504, str(exc))
        except CommandError as exc:
            return _error(400, str(exc))
        return self._answer(status)

    # -- pages -------------------------------------------------------------------------------
    async def index(self, request: Request) -> Response:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8")

    async def session(self, request: Request) -> Response:
        return _Json(
            {
                "csrf": csrf_token(self.settings.token),
                "version": __version__,
                "preview_fps": self.settings.preview_fps,
                "max_upload_bytes": self.settings.max_upload_bytes,
                "choices": {
                    "mode": list(MODES),
                    "blur_type": list(get_args(BlurType)),
                    "segmenter": list(get_args(SegmenterName)),
                },
                "commands": sorted(WEB_COMMANDS),
            }
        )

    async def status(self, request: Request) -> Response:
        try:
            status = await self.pipeline.commands.acall(Command("status"), STATUS_TIMEOUT)
        except CommandError as exc:
            return _error(503, str(exc))
        return self._answer(status)

    # -- changes -----------------------------------------------------------------------------
    async def command(self, request: Request) -> Response:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return _error(415, "send the command as JSON (Content-Type: application/json)")
        declared = declared_length(request)
        if declared is not None and declared > MAX_JSON_BYTES:
            await drain(request.receive)
            return _error(413, f"request body over {MAX_JSON_BYTES} bytes")
        try:
            raw = await Request(request.scope, limited(request.receive, MAX_JSON_BYTES)).body()
            body = wire.loads(raw)
        except TooLarge:
            await drain(request.receive)
            return _error(413, f"request body over {MAX_JSON_BYTES} bytes")
        except ValueError as exc:
            return _error(400, f"malformed request: not JSON ({exc})")
        if not isinstance(body, dict) or set(body) - {"name", "arg"}:
            return _error(400, 'expected {"name": COMMAND, "arg": VALUE-or-null}')
        name = body.get("name")
        if isinstance(name, str):
            name = name.replace("-", "_")
        if name not in WEB_COMMANDS:
            hint = " (upload a file instead)" if name == "background" else ""
            return _error(
                400,
                f"command {name!r} is not available here{hint}; "
                f"expected one of {', '.join(sorted(WEB_COMMANDS))}",
            )
        try:
            cmd = Command.parse(name, body.get("arg"))
        except CommandError as exc:
            return _error(400, str(exc))
        return await self._reply(cmd)

    async def background(self, request: Request) -> Response:
        limit = self.settings.max_upload_bytes
        too_big = f"upload refused: larger than {limit // (1024 * 1024)} MB; nothing was saved"
        ctype = request.headers.get("content-type", "")
        if not ctype.startswith("multipart/form-data"):
            return _error(415, "send the image as multipart/form-data (field 'image')")
        declared = declared_length(request)
        if declared is not None and declared > limit + 64 * 1024:  # room for the form framing
            await drain(request.receive)
            return _error(413, too_big)
        bounded = Request(request.scope, limited(request.receive, limit + 64 * 1024))
        parser = InMemoryForm(bounded.headers, bounded.stream(), max_files=1, max_fields=1)
        try:
            async with self.uploads:  # a few at a time: each may hold MAX_UPLOAD_BYTES
                form = await parser.parse()
        except TooLarge:
            await drain(request.receive)
            return _error(413, too_big)
        except MultiPartException as exc:
            return _error(400, f"malformed upload: {exc.message}")
        try:
            upload = form.get("image")
            if not isinstance(upload, UploadFile):
                return _error(400, "expected a file in the form field 'image'")
            data = await upload.read(limit + 1)
            name = upload.filename or "upload"
        finally:
            await form.close()
        if len(data) > limit:
            return _error(413, too_big)
        try:
            if not data:
                raise InputError("empty upload")
            image_size(data, "the upload")  # the header only (microseconds): bombs end here
            image = await run_in_threadpool(read_image, data)
        except ImageTooLarge as exc:
            return _error(413, f"{name!r}: {exc.message.split(': ', 1)[-1]}; not saved")
        except InputError:
            return _error(
                415,
                f"{name!r} is not an image BgCam can read (PNG, JPEG, WebP, BMP, TIFF…); "
                "nothing was saved",
            )
        cmd = Command(
            "background",
            str(await run_in_threadpool(save_upload, data, image, self.settings.upload_dir)),
        )
        path = Path(str(cmd.arg))
        try:  # decoded and fitted here for the daemon's frame size, not on the output thread
            size = frame_size(await self.pipeline.commands.acall(Command("status"), STATUS_TIMEOUT))
            await run_in_threadpool(prepare, cmd, size)
        except CommandError as exc:
            path.unlink(missing_ok=True)
            return _error(400, str(exc) or "the daemon did not answer")
        response = await self._reply(cmd)
        if response.status_code != 200:
            path.unlink(missing_ok=True)
        return response

    # -- preview -----------------------------------------------------------------------------
    async def preview(self, request: Request) -> Response:
        return StreamingResponse(
            self._mjpeg(), media_type="multipart/x-mixed-replace; boundary=frame"
        )

    async def _mjpeg(self) -> AsyncIterator[bytes]:
        period = 1.0 / self.settings.preview_fps
        loop = asyncio.get_running_loop()
        last = -1
        due = loop.time()
        self.viewers += 1
        try:
            while not self.stopping.is_set():
                jpeg, index = await run_in_threadpool(self.encoder.encode)
                if jpeg is not None and index != last:
                    last = index
                    head = (
                        b"--frame\r\nContent-Type: image/jpeg\r\n"
                        b"Content-Length: %d\r\n\r\n" % len(jpeg)
                    )
                    yield head + jpeg + b"\r\n"
                due += period
                now = loop.time()
                if due < now:  # fell behind (slow client or busy machine): do not catch up
                    due = now
                while now < due and not self.stopping.is_set():  # wake up for a stop
                    await asyncio.sleep(min(due - now, 0.1))
                    now = loop.time()
        finally:
            self.viewers -= 1


def create_app(
    pipeline: PanelPipeline, settings: PanelSettings, stopping: threading.Event
) -> tuple[Starlette, Panel]:
    """The ASGI app for ``pipeline`` and the :class:`Panel` behind it (tests read its state)."""
    panel = Panel(pipeline, settings, stopping)
    routes = [
        Route("/", panel.index, methods=["GET", "HEAD"]),
        Route("/api/session", panel.session, methods=["GET"]),
        Route("/api/status", panel.status, methods=["GET"]),
        Route("/api/command", panel.command, methods=["POST"]),
        Route("/api/background", panel.background, methods=["POST"]),
        Route("/preview.mjpg", panel.preview, methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    middleware = [
        Middleware(TrustedHostMiddleware, allowed_hosts=list(ALLOWED_HOSTS)),
        Middleware(TokenGuard, token=settings.token, port=settings.port),
    ]
    return Starlette(routes=routes, middleware=middleware), panel
