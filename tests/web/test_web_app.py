"""The panel over real HTTP: a real uvicorn server on 127.0.0.1, a real engine behind it.

Security (token, Host, Origin, POST-only changes, no CORS, uploads) and the API (status,
commands, uploads, MJPEG preview); changes are read back over the real control socket.
"""

from __future__ import annotations

import io
import json
import re
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from bgcam import web
from bgcam.config import Config
from bgcam.control.client import ControlClient
from bgcam.pipeline import Pipeline
from bgcam.web.access import TOKEN_NAME, URL_NAME, csrf_token, read_access
from bgcam.web.app import COOKIE, DRAIN_BYTES, MAX_UPLOAD_BYTES
from bgcam.web.server import WebHandle
from tests.live_media import wait_for
from tests.web.web_support import photo, photo_pipeline


@pytest.fixture
def anon(web: WebHandle) -> Iterator[httpx.Client]:
    """A client without any credential."""
    with httpx.Client(base_url=web.url, timeout=20) as c:
        yield c


@pytest.fixture
def api(web: WebHandle) -> Iterator[httpx.Client]:
    """A script-style client: the token in the Authorization header."""
    headers = {"Authorization": f"Bearer {web.token}"}
    with httpx.Client(base_url=web.url, headers=headers, timeout=20) as c:
        yield c


@pytest.fixture
def page(web: WebHandle) -> Iterator[httpx.Client]:
    """A browser-style client: opened the ?token= address, now holds the cookie."""
    with httpx.Client(base_url=web.url, timeout=20) as c:
        r = c.get("/", params={"token": web.token})
        assert r.status_code == 303 and r.headers["location"] == "/"
        yield c


def png_bytes(size: tuple[int, int] = (320, 180)) -> bytes:
    ok, buf = cv2.imencode(".png", photo(size))
    assert ok
    return buf.tobytes()


# -- the token ---------------------------------------------------------------------------------


def test_token_file_is_private_and_matches(web: WebHandle, rundir: Path) -> None:
    assert stat.S_IMODE(rundir.stat().st_mode) == 0o700
    for name in (TOKEN_NAME, URL_NAME):
        assert stat.S_IMODE((rundir / name).stat().st_mode) == 0o600
    url, token = read_access(rundir)
    assert (url, token) == (web.url, web.token)
    assert url.startswith("http://127.0.0.1:") and len(token) >= 40


@pytest.mark.parametrize(
    "path", ["/", "/api/status", "/api/session", "/preview.mjpg", "/static/app.js"]
)
def test_missing_token_is_401(anon: httpx.Client, path: str) -> None:
    r = anon.get(path)
    assert r.status_code == 401
    assert "bgcam open" in r.text


@pytest.mark.parametrize(
    "how",
    [
        {"params": {"token": "wrong"}},
        {"headers": {"Authorization": "Bearer wrong"}},
        {"headers": {"X-BgCam-Token": "wrong"}},
        {"cookies": {COOKIE: "wrong"}},
    ],
)
def test_wrong_token_is_401(web: WebHandle, how: dict[str, dict[str, str]]) -> None:
    with httpx.Client(base_url=web.url, cookies=how.get("cookies")) as c:
        r = c.get("/api/status", params=how.get("params"), headers=how.get("headers"))
    assert r.status_code == 401


def test_query_token_becomes_an_httponly_strict_cookie(web: WebHandle, page: httpx.Client) -> None:
    cookie = page.get("/", params={"token": web.token}).headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    r = page.get("/")  # the cookie alone now opens the page
    assert r.status_code == 200 and "<h1>BgCam</h1>" in r.text
    assert page.get("/api/status").json()["ok"] is True


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "127.0.0.1.nip.io", "[::1]"])
def test_foreign_host_header_is_refused(api: httpx.Client, host: str) -> None:
    """DNS rebinding: a page on evil.example resolving to 127.0.0.1 sends Host: evil.example."""
    r = api.get("/api/status", headers={"Host": host})
    assert r.status_code in (400, 403)
    r = api.post("/api/command", json={"name": "blur", "arg": 5}, headers={"Host": host})
    assert r.status_code in (400, 403)


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_local_host_names_are_served(web: WebHandle, api: httpx.Client, host: str) -> None:
    r = api.get("/api/status", headers={"Host": f"{host}:{web.port}"})
    assert r.status_code == 200


def test_no_cors_and_strict_headers(api: httpx.Client, web: WebHandle) -> None:
    r = api.get("/api/status", headers={"Origin": "http://evil.example"})
    assert not any(k.lower().startswith("access-control-") for k in r.headers)
    r = api.options(
        "/api/command",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert r.status_code in (401, 403, 405)
    assert not any(k.lower().startswith("access-control-") for k in r.headers)
    r = api.get("/")
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-store"


# -- state changes: POST only, token in a header ---------------------------------------------


def test_get_cannot_change_state(api: httpx.Client, web: WebHandle, pipeline: Pipeline) -> None:
    before = pipeline.config
    for path in ("/api/command?name=blur&arg=5", "/api/background"):
        r = api.get(path, params={"token": web.token})
        assert r.status_code == 405
    assert pipeline.config == before


def test_post_with_cookie_needs_the_csrf_header(page: httpx.Client, web: WebHandle) -> None:
    r = page.post("/api/command", json={"name": "blur", "arg": 5})
    assert r.status_code == 403 and "X-BgCam-CSRF" in r.text
    r = page.post(
        "/api/command", json={"name": "blur", "arg": 5}, headers={"X-BgCam-CSRF": "0" * 64}
    )
    assert r.status_code == 403
    csrf = page.get("/api/session").json()["csrf"]
    assert csrf == csrf_token(web.token)
    r = page.post("/api/command", json={"name": "blur", "arg": 5}, headers={"X-BgCam-CSRF": csrf})
    assert r.status_code == 200 and r.json()["settings"]["blur"] == 5


def test_post_with_query_token_only_is_refused(anon: httpx.Client, web: WebHandle) -> None:
    r = anon.post("/api/command", params={"token": web.token}, json={"name": "blur", "arg": 5})
    assert r.status_code == 401


def test_post_from_a_foreign_origin_is_refused(api: httpx.Client) -> None:
    r = api.post(
        "/api/command", json={"name": "blur", "arg": 5}, headers={"Origin": "http://evil.example"}
    )
    assert r.status_code == 403


def test_a_form_post_is_not_a_command(api: httpx.Client) -> None:
    """A cross-site HTML form can only send form encodings: commands must be JSON."""
    r = api.post("/api/command", data={"name": "blur", "arg": "5"})
    assert r.status_code == 415


# -- commands ----------------------------------------------------------------------------------


def test_blur_change_is_read_back_over_the_control_socket(
    api: httpx.Client, control: Path, pipeline: Pipeline
) -> None:
    r = api.post("/api/command", json={"name": "blur", "arg": 23})
    assert r.status_code == 200, r.text
    assert r.json()["settings"]["blur"] == 23
    with ControlClient(control) as client:
        assert client.call("status")["blur"] == 23
    assert pipeline.config.compose.blur == 23


@pytest.mark.parametrize(
    ("name", "arg", "key", "expected"),
    [
        ("mode", "remove", "mode", "remove"),
        ("blur_type", "box", "blur_type", "box"),
        ("blur-up", None, "blur", 70),
        ("toggle", None, "mode", "off"),
        ("pause", None, "paused", True),
        ("segmenter", "hsv", "segmenter", "hsv"),
        ("roi", "off", "roi", False),
        ("roi_margin", "0.3", "roi_margin", 0.3),
        ("roi_full_every", "10", "roi_full_every", 10),
        ("max_skip", "0", "max_skip", 0),
        ("autoframe", "on", "autoframe", True),
        ("autoframe", None, "autoframe", True),
        ("light", "auto", "light", "auto"),
    ],
)
def test_commands_take_effect(
    api: httpx.Client, name: str, arg: object, key: str, expected: object
) -> None:
    r = api.post("/api/command", json={"name": name, "arg": arg})
    assert r.status_code == 200, r.text
    assert r.json()["settings"][key] == expected


def test_pause_stops_frames_and_resume_restarts_them(api: httpx.Client, pipeline: Pipeline) -> None:
    assert api.post("/api/command", json={"name": "pause"}).status_code == 200
    # The reply comes after the pipeline applied the pause between frames: from then on it
    # sends the paused card, no new frame.
    frozen = pipeline.stats.summary()["frames_new"]
    wait_for(lambda: pipeline.stats.summary()["frames_placeholder"] > 2, 20, "paused cards")
    status = api.get("/api/status").json()["stats"]
    assert status["frames_new"] == frozen and status["paused"] is True
    assert api.post("/api/command", json={"name": "resume"}).json()["settings"]["paused"] is False


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"name": "explode"}, 400, "not available"),
        ({"name": "quit"}, 400, "not available"),
        ({"name": "background", "arg": "/etc/passwd"}, 400, "upload a file instead"),
        ({"name": "blur", "arg": 101}, 400, "0–100"),
        ({"name": "blur", "arg": "x"}, 400, "integer"),
        ({"name": "mode", "arg": "sepia"}, 400, "mode"),
        ({"name": "roi_margin", "arg": "2"}, 400, "segment.roi_margin"),
        ({"name": "max_skip", "arg": "9"}, 400, "segment.max_skip"),
        ({"name": "autoframe", "arg": "sideways"}, 400, "expected one of on, off, toggle"),
        ({"name": "blur", "arg": 5, "extra": 1}, 400, "expected"),
        (["blur", 5], 400, "expected"),
    ],
)
def test_bad_commands_get_clear_errors(
    api: httpx.Client, pipeline: Pipeline, body: object, status: int, words: str
) -> None:
    before = pipeline.config
    r = api.post("/api/command", json=body)
    assert r.status_code == status
    assert words in r.json()["error"]
    assert pipeline.config == before


def test_oversized_or_malformed_json_is_refused(api: httpx.Client) -> None:
    r = api.post(
        "/api/command",
        content=json.dumps({"name": "blur", "arg": "1" * 10000}),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 413
    r = api.post("/api/command", content=b"{nope", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "not JSON" in r.json()["error"]


def test_status_carries_stats_and_settings(api: httpx.Client) -> None:
    body = api.get("/api/status").json()
    assert body["ok"] is True
    assert body["stats"]["frames_out"] >= 0 and "fps_out" in body["stats"]
    assert body["settings"]["mode"] == "blur" and body["settings"]["blur"] == 60


# -- uploads -----------------------------------------------------------------------------------


def test_image_upload_is_saved_and_becomes_the_background(
    api: httpx.Client, upload_dir: Path, control: Path
) -> None:
    data = png_bytes()
    r = api.post("/api/background", files={"image": ("beach.png", data, "image/png")})
    assert r.status_code == 200, r.text
    settings = r.json()["settings"]
    assert settings["mode"] == "replace"
    saved = Path(settings["background"])
    assert saved.parent == upload_dir and saved.suffix == ".png"
    back = cv2.imread(str(saved))
    assert back is not None and back.shape == (180, 320, 3)
    with ControlClient(control) as client:
        assert client.call("status")["mode"] == "replace"


def test_jpeg_upload_is_kept_as_jpeg(api: httpx.Client, upload_dir: Path) -> None:
    ok, buf = cv2.imencode(".jpg", photo((200, 100)))
    assert ok
    r = api.post("/api/background", files={"image": ("me.jpg", buf.tobytes(), "image/jpeg")})
    assert r.status_code == 200, r.text
    assert [p.suffix for p in upload_dir.iterdir()] == [".jpg"]


@pytest.mark.parametrize(
    "data",
    [
        b"#!/bin/sh\necho not an image\n",
        b"\x89PNG\r\n\x1a\n" + b"\0" * 200,  # a PNG signature with nothing behind it
        b"",
    ],
)
def test_non_image_upload_is_refused_and_nothing_saved(
    api: httpx.Client, upload_dir: Path, pipeline: Pipeline, data: bytes
) -> None:
    before = pipeline.config
    r = api.post("/api/background", files={"image": ("photo.png", data, "image/png")})
    assert r.status_code == 415
    assert "not an image" in r.json()["error"] and "nothing was saved" in r.json()["error"]
    assert not upload_dir.exists() or not any(upload_dir.iterdir())
    assert pipeline.config == before


def test_oversized_upload_is_refused_and_nothing_saved(api: httpx.Client, upload_dir: Path) -> None:
    big = png_bytes() + b"\0" * (MAX_UPLOAD_BYTES + 1)  # decodes fine, but too large
    try:
        r = api.post("/api/background", files={"image": ("big.png", big, "image/png")})
    except httpx.TransportError:
        pass  # refused before the client finished sending: the connection closed under it
    else:
        assert r.status_code == 413 and "10 MB" in r.json()["error"]
    assert not upload_dir.exists() or not any(upload_dir.iterdir())


def test_declared_oversize_is_refused_before_reading(web: WebHandle, upload_dir: Path) -> None:
    """Content-Length over the limit: 413 at once, without waiting for (or reading) the body."""
    with socket.create_connection(("127.0.0.1", web.port), timeout=20) as s:
        s.sendall(
            b"POST /api/background HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"X-BgCam-Token: " + web.token.encode() + b"\r\n"
            b"Content-Type: multipart/form-data; boundary=x\r\n"
            b"Content-Length: 50000000\r\n\r\n"
        )
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert b"connection: close" in head.lower()
    assert "larger than 10 MB" in json.loads(body)["error"]
    assert not upload_dir.exists() or not any(upload_dir.iterdir())


def test_oversized_chunked_upload_stops_while_streaming(
    api: httpx.Client, upload_dir: Path
) -> None:
    """No Content-Length to trust: the server counts while reading, refuses past the limit,
    and reads the rest (up to DRAIN_BYTES) so the client gets the 413, not a reset."""
    boundary = "bgcamtest"
    sent = 0

    def body() -> Iterator[bytes]:
        nonlocal sent
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; '
            f'filename="x.png"\r\nContent-Type: image/png\r\n\r\n'
        ).encode()
        chunk = b"\0" * (1024 * 1024)
        for _ in range(64):  # 64 MB offered
            sent += len(chunk)
            yield chunk
        yield f"\r\n--{boundary}--\r\n".encode()

    r = api.post(
        "/api/background",
        content=body(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert r.status_code == 413
    assert sent == 64 * 1024 * 1024 <= DRAIN_BYTES
    assert not upload_dir.exists() or not any(upload_dir.iterdir())


def test_upload_without_a_file_field(api: httpx.Client) -> None:
    r = api.post("/api/background", data={"image": "just text"}, files={"other": ("a", b"b")})
    assert r.status_code == 400
    r = api.post("/api/background", content=png_bytes(), headers={"Content-Type": "image/png"})
    assert r.status_code == 415 and "multipart" in r.json()["error"]


# -- preview -----------------------------------------------------------------------------------


def read_mjpeg_frames(client: httpx.Client, n: int) -> list[np.ndarray]:
    frames = []
    with client.stream("GET", "/preview.mjpg") as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("multipart/x-mixed-replace")
        buf = b""
        for chunk in r.iter_bytes():
            buf += chunk
            while True:
                start = buf.find(b"\xff\xd8")
                end = buf.find(b"\xff\xd9", start + 2)
                if start < 0 or end < 0:
                    break
                jpeg, buf = buf[start : end + 2], buf[end + 2 :]
                img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
                assert img is not None
                frames.append(img)
            if len(frames) >= n:
                return frames
    return frames


def test_preview_streams_jpeg_frames_of_the_output(
    api: httpx.Client, web: WebHandle, pipeline: Pipeline
) -> None:
    assert web.panel.encoder.encoded == 0  # nobody watched yet: nothing was encoded
    frames = read_mjpeg_frames(api, 5)
    assert len(frames) == 5
    assert frames[0].shape == (360, 640, 3)
    # It shows the composited output, not the raw camera frame.
    out, _ = pipeline.latest_output()
    assert out is not None
    assert cv2.PSNR(frames[-1], out) > 25
    assert cv2.PSNR(frames[-1], photo()) < cv2.PSNR(frames[-1], out)


def test_preview_is_downscaled_to_640_wide(web_models: Path, rundir: Path, tmp_path: Path) -> None:
    from bgcam.config import WebConfig
    from bgcam.web.server import start_web

    running = photo_pipeline(tmp_path, (1280, 720), **{"compose.mode": "off"}).start()
    p = running.pipeline
    try:
        with start_web(p, WebConfig(), port=0, runtime_dir=rundir, upload_dir=tmp_path) as w:
            c = httpx.Client(base_url=w.url, headers={"X-BgCam-Token": w.token}, timeout=20)
            with c:
                frames = read_mjpeg_frames(c, 2)
            assert frames[0].shape == (360, 640, 3)
    finally:
        running.stop()


def test_upload_form_keeps_image_bytes_off_the_json_route(api: httpx.Client) -> None:
    r = api.post("/api/command", files={"image": ("a.png", io.BytesIO(png_bytes()))})
    assert r.status_code == 415


@pytest.mark.parametrize(
    ("field", "key"),
    [
        ("blur", "compose.blur"),
        ("roi-margin", "segment.roi_margin"),
        ("roi-full-every", "segment.roi_full_every"),
        ("max-skip", "segment.max_skip"),
    ],
)
def test_panel_fields_start_at_the_defaults(field: str, key: str) -> None:
    """Before the first status arrives, each number field shows the setting's default."""
    html = (Path(web.__file__).parent / "static" / "index.html").read_text(encoding="utf-8")
    found = re.search(rf'<input[^>]*\bid="{field}"[^>]*\bvalue="([^"]+)"', html)
    assert found, field
    section, name = key.split(".")
    assert float(found.group(1)) == getattr(getattr(Config(), section), name)
