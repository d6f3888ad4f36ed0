"""The web panel's access token and address, kept in the runtime directory.

The daemon writes two files (each mode 0600, in the 0700 runtime directory the control socket
uses, see :func:`bgcam.control.socket.runtime_dir`) when the panel starts and removes them when
it stops::

    web-token   a random token (``secrets.token_urlsafe(32)``) required by every request
    web-url     the panel's base address, e.g. ``http://127.0.0.1:8765/``

``bgcam open`` reads both and opens ``<url>?token=<token>``. This module imports no web
framework, so the CLI stays quick.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path
from urllib.parse import urlencode

from bgcam.control.client import NotRunningError, runtime_dir
from bgcam.control.socket import ensure_private_dir

__all__ = [
    "TOKEN_NAME",
    "URL_NAME",
    "csrf_token",
    "panel_url",
    "read_access",
    "remove_access",
    "write_access",
]

TOKEN_NAME = "web-token"
URL_NAME = "web-url"


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically; the file is born 0600 (no window for others)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(tmp, flags, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_access(url: str, directory: Path | None = None) -> str:
    """Create a new token, store it and ``url`` in ``directory``; return the token."""
    where = directory if directory is not None else runtime_dir()
    ensure_private_dir(where)
    token = secrets.token_urlsafe(32)
    _write_private(where / TOKEN_NAME, token)
    _write_private(where / URL_NAME, url)
    return token


def read_access(directory: Path | None = None) -> tuple[str, str]:
    """(base url, token) of the running panel; NotRunningError when there is none."""
    where = directory if directory is not None else runtime_dir()
    try:
        token = (where / TOKEN_NAME).read_text(encoding="utf-8").strip()
        url = (where / URL_NAME).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise NotRunningError(
            f"no web panel is running (no {TOKEN_NAME} in {where})",
            hint="start the daemon with the panel on: `bgcam run --set web.enabled=true` "
            "(or set `enabled = true` under [web] in your config); if it runs with "
            "BGCAM_RUNTIME_DIR, set the same here",
        ) from None
    if not token or not url:
        raise NotRunningError(f"the web panel's files in {where} are empty or damaged")
    return url, token


def remove_access(token: str, directory: Path | None = None) -> None:
    """Remove the files, but only if they still hold ``token`` (not a newer daemon's)."""
    where = directory if directory is not None else runtime_dir()
    try:
        current = (where / TOKEN_NAME).read_text(encoding="utf-8").strip()
    except OSError:
        return
    if hmac.compare_digest(current, token):
        for name in (TOKEN_NAME, URL_NAME):
            with contextlib.suppress(OSError):
                (where / name).unlink()


def panel_url(url: str, token: str) -> str:
    """The address to open: the base URL with the token as a query parameter."""
    return f"{url}?{urlencode({'token': token})}"


def csrf_token(token: str) -> str:
    """The value the page's script sends in ``X-BgCam-CSRF`` with each POST.

    Derived from the token (HMAC), so the page never needs the token itself (its cookie is
    HttpOnly); a script elsewhere cannot read it (no CORS), so it cannot forge a POST.
    """
    return hmac.new(token.encode(), b"bgcam-web-csrf", hashlib.sha256).hexdigest()
