"""Network streams: MJPEG over HTTP (phones, IP cameras) and anything FFmpeg opens (RTSP, HLS…).

MJPEG over HTTP (``Content-Type: multipart/x-mixed-replace``) is read here with ``http.client``:
parts are split at the boundary (using ``Content-Length`` when a part has one) and each JPEG is
decoded with OpenCV. Stopping shuts the socket down from the stopping thread, so a read blocked
on a silent server returns at once. An HTTP answer that is not multipart goes to OpenCV's FFmpeg
backend on the same connection (:class:`_Relay` pipes it in: one request per connect, so a
server that serves one client works, and the same shut-down unblocks it). Other URLs (``rtsp://``…)
go to the FFmpeg backend with an open timeout and a read timeout of
:data:`FFMPEG_READ_TIMEOUT_MS`; such a read cannot be interrupted safely (releasing a capture
from another thread crashes FFmpeg), so ``stop()`` returns after its join timeout and the capture
thread releases the stream when the read times out, at most one read timeout later.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import logging
import os
import socket
import threading
import time
import urllib.parse

import cv2
import numpy as np

from bgcam.config import SourceConfig
from bgcam.errors import InputError
from bgcam.frame import Image
from bgcam.media import quiet_decoders
from bgcam.sources import Source, as_image

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 5.0
"""Seconds without a byte before an MJPEG stream counts as lost."""
FFMPEG_OPEN_TIMEOUT_MS = 5000
FFMPEG_READ_TIMEOUT_MS = 1000
MAX_PART = 32 * 1024 * 1024
"""Bytes without a complete JPEG after which the stream is not MJPEG (or broken)."""


def _redact(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


class StreamSource(Source):
    """``http(s)://`` MJPEG (own reader) or any URL FFmpeg opens (RTSP, HTTP video…)."""

    kind = "stream"

    def __init__(self, url: str, *, mirror: bool = False) -> None:
        super().__init__(_redact(url), mirror=mirror)
        self._url = url
        self._parts = urllib.parse.urlsplit(url)
        self._conn: http.client.HTTPConnection | None = None
        self._resp: http.client.HTTPResponse | None = None
        self._sock: socket.socket | None = None
        self._boundary = b""
        self._buf = bytearray()
        self._cap: cv2.VideoCapture | None = None
        self._relay: _Relay | None = None
        self._first: Image | None = None
        self._last_t = 0.0
        self._http = self._parts.scheme in ("http", "https")
        self.mode = "mjpeg" if self._http else "ffmpeg"
        """The reader in use: ``mjpeg`` (our own) or ``ffmpeg``."""

    # -- connect -------------------------------------------------------------------------

    def _connect(self) -> None:
        if self._http:
            try:
                multipart = self._connect_http()
            except (OSError, http.client.HTTPException) as exc:
                self._disconnect()
                raise InputError(
                    f"cannot connect to {self.uri}: {exc}",
                    hint="check the URL and that the camera/app is serving",
                ) from None
            self.mode = "mjpeg" if multipart else "ffmpeg"
            if not multipart:
                # FFmpeg reads the response already open: a server that takes one client
                # (`ffmpeg -listen 1`, some cameras) is not asked to connect twice.
                self._open_ffmpeg_on_response()
        else:
            self._connect_ffmpeg()
        first = self._read_backend()
        if first is None:
            self._disconnect()
            raise InputError(f"stream {self.uri} sent no frame: {self._lost_reason}")
        h, w = first.shape[:2]
        if self.native_size is None:
            log.info("stream source: %s (%s, %dx%d)", self.uri, self.mode, w, h)
        self.native_size = (w, h)
        self._first = first
        self._last_t = 0.0

    def _connect_http(self) -> bool:
        p = self._parts
        cls = http.client.HTTPSConnection if p.scheme == "https" else http.client.HTTPConnection
        conn = cls(p.hostname or "localhost", p.port, timeout=CONNECT_TIMEOUT)
        self._conn = conn
        headers = {"User-Agent": "bgcam", "Accept": "multipart/x-mixed-replace, */*"}
        if p.username is not None:
            cred = f"{urllib.parse.unquote(p.username)}:{urllib.parse.unquote(p.password or '')}"
            headers["Authorization"] = "Basic " + base64.b64encode(cred.encode()).decode()
        path = p.path or "/"
        if p.query:
            path += "?" + p.query
        conn.request("GET", path, headers=headers)
        self._sock = conn.sock
        resp = conn.getresponse()
        if resp.status != 200:
            raise http.client.HTTPException(f"HTTP {resp.status} {resp.reason}")
        ctype = resp.getheader("Content-Type", "") or ""
        if self._sock is not None:
            self._sock.settimeout(READ_TIMEOUT)
        self._resp = resp
        if not ctype.lower().startswith("multipart/"):
            return False
        boundary = ""
        for param in ctype.split(";")[1:]:
            key, _, value = param.strip().partition("=")
            if key.lower() == "boundary":
                boundary = value.strip().strip('"')
        if not boundary:
            raise http.client.HTTPException(f"multipart stream without a boundary ({ctype})")
        # Servers disagree on whether the declared boundary carries the leading "--": search
        # for the bare token, which matches both.
        self._boundary = boundary.lstrip("-").encode()
        self._buf.clear()
        return True

    def _open_ffmpeg_on_response(self) -> None:
        assert self._resp is not None
        ctype = self._resp.getheader("Content-Type", "") or "none"
        log.info("stream %s is not multipart MJPEG (%s): reading it with FFmpeg", self.uri, ctype)
        relay = _Relay(self._resp)
        self._relay = relay
        with quiet_decoders():
            cap = cv2.VideoCapture(relay.url, cv2.CAP_FFMPEG)
        if not cap.isOpened():
            self._disconnect()
            raise InputError(
                f"stream {self.uri} answers, but neither as MJPEG nor as a video FFmpeg reads "
                f"(Content-Type {ctype})",
                hint="check the URL with `ffprobe URL`",
            )
        self._cap = cap

    def _connect_ffmpeg(self) -> None:
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, FFMPEG_OPEN_TIMEOUT_MS,
            cv2.CAP_PROP_READ_TIMEOUT_MSEC, FFMPEG_READ_TIMEOUT_MS,
        ]  # fmt: skip
        with quiet_decoders():
            cap = cv2.VideoCapture(self._url, cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            raise InputError(
                f"cannot open stream {self.uri} (FFmpeg could not read it)",
                hint="check the URL with `ffprobe URL`",
            )
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        if 1.0 <= fps <= 240.0:
            self.fps = fps
        self._cap = cap

    def _disconnect(self) -> None:
        resp, self._resp = self._resp, None
        conn, self._conn = self._conn, None
        self._sock = None
        for closable in (resp, conn):
            if closable is not None:
                with contextlib.suppress(Exception):
                    closable.close()
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()
        relay, self._relay = self._relay, None
        if relay is not None:
            relay.close()  # after the release: FFmpeg no longer reads its pipe

    def _interrupt(self) -> None:
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    # -- read ----------------------------------------------------------------------------

    def _read(self) -> Image | None:
        first, self._first = self._first, None
        image = first if first is not None else self._read_backend()
        if image is not None:
            now = time.monotonic()
            if self._last_t:
                dt = now - self._last_t
                if 0.002 < dt < 1.0:
                    self.fps += 0.05 * (1.0 / dt - self.fps)  # measured rate, smoothed
            self._last_t = now
        return image

    def _read_backend(self) -> Image | None:
        if self._cap is not None:
            ok, image = self._cap.read()
            if not ok:
                self._lost_reason = "FFmpeg read failed or timed out"
                return None
            return as_image(image)
        return self._read_mjpeg()

    def _fill(self) -> bool:
        resp = self._resp
        if resp is None:
            self._lost_reason = "not connected"
            return False
        try:
            chunk = resp.read1(65536)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            self._lost_reason = f"read failed: {exc}" if str(exc) else "read timed out"
            return False
        if not chunk:
            self._lost_reason = "the server closed the stream"
            return False
        self._buf += chunk
        if len(self._buf) > MAX_PART:
            self._lost_reason = f"no complete JPEG in {MAX_PART} bytes: not an MJPEG stream?"
            return False
        return True

    def _read_mjpeg(self) -> Image | None:
        """The next decodable JPEG part, or None when the stream fails."""
        buf, token = self._buf, self._boundary
        while True:
            start = buf.find(token)
            if start < 0:
                if not self._fill():
                    return None
                continue
            head_end = buf.find(b"\r\n\r\n", start)
            if head_end < 0:
                if not self._fill():
                    return None
                continue
            body = head_end + 4
            length = _content_length(bytes(buf[start:head_end]))
            if length is not None:
                while len(buf) < body + length:
                    if not self._fill():
                        return None
                jpeg = bytes(buf[body : body + length])
                del buf[: body + length]
            else:
                end = buf.find(token, body)
                while end < 0:
                    if not self._fill():
                        return None
                    end = buf.find(token, body)
                jpeg = bytes(buf[body:end])
                del buf[:end]
            soi = jpeg.find(b"\xff\xd8")
            if soi < 0:
                continue
            image = cv2.imdecode(np.frombuffer(jpeg, np.uint8)[soi:], cv2.IMREAD_COLOR)
            if image is not None and image.ndim == 3:
                return as_image(image)
            log.debug("stream %s: skipped an undecodable part (%d bytes)", self.uri, len(jpeg))


class _Relay:
    """Copies an open HTTP response into a pipe that OpenCV's FFmpeg backend reads (``pipe:N``).

    FFmpeg then decodes the connection already made (one request per connect) instead of
    opening the URL a second time. The copy ends when the response ends or fails, when the
    socket is shut down (``_interrupt``: FFmpeg's blocked read then sees the end of the pipe at
    once) or when the reading side is closed; :meth:`close` stops it and frees both ends.
    """

    def __init__(self, resp: http.client.HTTPResponse) -> None:
        self._resp = resp
        self.read_fd, self._write_fd = os.pipe()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._copy, name="bgcam-stream-relay", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"pipe:{self.read_fd}"

    def _copy(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    chunk = self._resp.read1(65536)
                except Exception:  # closed under it, timed out, shut down: the end either way
                    return
                if not chunk:
                    return
                view = memoryview(chunk)
                while view and not self._stop.is_set():
                    view = view[os.write(self._write_fd, view) :]
        except OSError:  # the reading side was closed
            return
        finally:
            os.close(self._write_fd)  # FFmpeg sees the end of the stream

    def close(self, timeout: float = 1.0) -> None:
        """After the capture is released: stop copying, join, close the reading end."""
        self._stop.set()
        os.close(self.read_fd)  # a write blocked on a full pipe fails now
        self._thread.join(timeout)


def _content_length(headers: bytes) -> int | None:
    for line in headers.split(b"\r\n"):
        key, sep, value = line.partition(b":")
        if sep and key.strip().lower() == b"content-length":
            with contextlib.suppress(ValueError):
                n = int(value.strip())
                return n if 0 < n <= MAX_PART else None
    return None


def open_stream_source(cfg: SourceConfig) -> StreamSource:
    return StreamSource(cfg.uri, mirror=cfg.mirror)
