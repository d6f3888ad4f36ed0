"""The panel's gate (ASGI middleware): the access token on every request, CSRF and Origin rules
for a POST, and the security headers on every response (see :mod:`bgcam.web.app` for the order).
"""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bgcam.web.access import csrf_token

COOKIE = "bgcam_token"
ALLOWED_HOSTS = ("127.0.0.1", "localhost")

SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        b"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


def _same(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


class TokenGuard:
    """ASGI middleware: token on every request, stricter rules for POST, security headers."""

    def __init__(self, app: ASGIApp, token: str, port: int) -> None:
        self.app = app
        self.token = token
        self.csrf = csrf_token(token)
        self.origins = {f"http://{h}:{port}" for h in ALLOWED_HOSTS}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        denial = self._check(Request(scope))
        if denial is not None:
            await denial(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    def _check(self, request: Request) -> Response | None:
        headers = request.headers
        auth = headers.get("authorization", "")
        bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else None
        header_ok = _same(bearer, self.token) or _same(headers.get("x-bgcam-token"), self.token)
        cookie_ok = _same(request.cookies.get(COOKIE), self.token)
        if request.method in ("GET", "HEAD"):
            query = request.query_params.get("token")
            if query is not None and _same(query, self.token):
                if request.url.path == "/":
                    # Move the token from the address bar into an HttpOnly cookie.
                    resp = RedirectResponse("/", status_code=303)
                    resp.set_cookie(COOKIE, self.token, httponly=True, samesite="strict", path="/")
                    return resp
                return None
            if header_ok or cookie_ok:
                return None
            return _unauthorized()
        origin = headers.get("origin")
        if origin is not None and origin not in self.origins:
            return PlainTextResponse(f"forbidden: requests from {origin} are refused", 403)
        if header_ok or (cookie_ok and _same(headers.get("x-bgcam-csrf"), self.csrf)):
            return None
        if cookie_ok:
            return PlainTextResponse("forbidden: a POST needs the X-BgCam-CSRF header", 403)
        return _unauthorized()


def _unauthorized() -> Response:
    return PlainTextResponse(
        "401 unauthorized: the access token is missing or wrong.\n"
        "Open the panel with `bgcam open` (it adds the token to the address).\n",
        401,
        headers={"www-authenticate": 'Bearer realm="bgcam"'},
    )
