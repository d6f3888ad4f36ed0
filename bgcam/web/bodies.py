"""Request bodies the panel reads with bounds: a size limit while reading, a bounded drain of a
refused body (so the client reads the 413), in-memory uploads, and where an upload is stored.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
from pathlib import Path

import cv2
from starlette.formparsers import MultiPartParser
from starlette.requests import Request
from starlette.types import Message, Receive

from bgcam.frame import Image

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
DRAIN_BYTES = 64 * 1024 * 1024  # a refused body read and dropped before the 413, at most…
DRAIN_SECONDS = 3.0  # …for at most this long…
DRAIN_IDLE = 0.3  # …and while it keeps coming


class TooLarge(Exception):
    pass


class InMemoryForm(MultiPartParser):
    """Starlette's form parser, keeping an upload (at most MAX_UPLOAD_BYTES) in memory: spooled
    to disk past 1 MB, every chunk would make a round trip through the thread pool."""

    spool_max_size = MAX_UPLOAD_BYTES + 64 * 1024


def limited(receive: Receive, limit: int) -> Receive:
    """``receive`` that raises TooLarge once more than ``limit`` body bytes have arrived."""
    total = 0

    async def wrapped() -> Message:
        nonlocal total
        message = await receive()
        if message["type"] == "http.request":
            total += len(message.get("body", b""))
            if total > limit:
                raise TooLarge
        return message

    return wrapped


async def drain(receive: Receive) -> None:
    """Read and drop the rest of a refused body, so the client reads our 413 instead of a reset.

    Bounded: at most :data:`DRAIN_BYTES` and :data:`DRAIN_SECONDS`, and only while the body
    keeps coming; past that the connection is closed with the body unread (a client that sends
    that much after a refusal gets a reset).
    """
    total = 0
    loop = asyncio.get_running_loop()
    end = loop.time() + DRAIN_SECONDS
    while total <= DRAIN_BYTES and loop.time() < end:
        try:
            # A client that stops sending (waiting for our answer) gets it at once.
            message = await asyncio.wait_for(receive(), min(DRAIN_IDLE, end - loop.time()))
        except asyncio.TimeoutError:
            return
        if message["type"] != "http.request":
            return
        total += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


def declared_length(request: Request) -> int | None:
    try:
        return int(request.headers["content-length"])
    except (KeyError, ValueError):
        return None


def save_upload(data: bytes, image: Image, directory: Path) -> Path:
    """Store a decoded upload (re-encoded: PNG stays PNG, the rest becomes JPEG).

    The folder is private (0700) and so is each file (0600): backgrounds are often personal.
    """
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if stat.S_IMODE(directory.stat().st_mode) != 0o700:
        os.chmod(directory, 0o700)
    ext = ".png" if data.startswith(b"\x89PNG") else ".jpg"
    params = [] if ext == ".png" else [cv2.IMWRITE_JPEG_QUALITY, 95]
    ok, buf = cv2.imencode(ext, image, params)
    if not ok:  # pragma: no cover - a decoded BGR image always encodes
        raise OSError(f"could not encode the background as {ext}")
    path = directory / f"background-{hashlib.sha256(data).hexdigest()[:16]}{ext}"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(buf.tobytes())
    os.replace(tmp, path)
    return path
