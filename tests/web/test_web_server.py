"""The token files, `bgcam open`, and the server's life (bind, stop with a viewer attached)."""

from __future__ import annotations

import socket
import stat
import threading
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from bgcam.cli import main
from bgcam.config import WebConfig
from bgcam.control.client import NotRunningError
from bgcam.errors import ConfigError
from bgcam.pipeline import Pipeline
from bgcam.web.access import (
    TOKEN_NAME,
    URL_NAME,
    panel_url,
    read_access,
    remove_access,
    write_access,
)
from bgcam.web.server import WebHandle, start_web
from tests.live_media import pipeline_config, wait_for
from tests.web.web_support import photo_pipeline


def test_write_access_makes_private_files(tmp_path: Path) -> None:
    where = tmp_path / "run"
    token = write_access("http://127.0.0.1:8765/", where)
    assert stat.S_IMODE(where.stat().st_mode) == 0o700
    for name in (TOKEN_NAME, URL_NAME):
        assert stat.S_IMODE((where / name).stat().st_mode) == 0o600
    assert read_access(where) == ("http://127.0.0.1:8765/", token)
    assert token != write_access("http://127.0.0.1:8765/", where)  # a new token each start


def test_remove_access_leaves_a_newer_daemons_token(tmp_path: Path) -> None:
    old = write_access("http://127.0.0.1:1/", tmp_path)
    new = write_access("http://127.0.0.1:2/", tmp_path)
    remove_access(old, tmp_path)
    assert read_access(tmp_path)[1] == new
    remove_access(new, tmp_path)
    assert not (tmp_path / TOKEN_NAME).exists() and not (tmp_path / URL_NAME).exists()


def test_read_access_without_a_panel_says_how_to_start_one(tmp_path: Path) -> None:
    with pytest.raises(NotRunningError) as err:
        read_access(tmp_path)
    assert "web.enabled=true" in (err.value.hint or "")


def test_panel_url_quotes_the_token() -> None:
    assert panel_url("http://127.0.0.1:8765/", "a+b/c") == "http://127.0.0.1:8765/?token=a%2Bb%2Fc"


def test_bgcam_open_prints_the_address_with_the_token(web: WebHandle, rundir: Path) -> None:
    result = CliRunner().invoke(main, ["open", "--print"], env={"BGCAM_RUNTIME_DIR": str(rundir)})
    assert result.exit_code == 0, result.output
    url = result.output.strip()
    assert url == web.panel_url
    r = httpx.get(url)  # the printed address really opens the panel
    assert r.status_code == 303 and "bgcam_token=" in r.headers["set-cookie"]


def test_bgcam_open_without_a_daemon(tmp_path: Path) -> None:
    env = {"BGCAM_RUNTIME_DIR": str(tmp_path)}
    result = CliRunner().invoke(main, ["open", "--print"], env=env)
    assert result.exit_code == NotRunningError.exit_code
    assert "no web panel is running" in result.output and "Traceback" not in result.output
    # A crashed daemon left its files: the address does not answer.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    write_access(f"http://127.0.0.1:{dead}/", tmp_path)
    result = CliRunner().invoke(main, ["open", "--print"], env=env)
    assert result.exit_code == NotRunningError.exit_code
    assert "does not answer" in result.output


def test_a_taken_port_is_a_clear_error(rundir: Path, tmp_path: Path) -> None:
    p = Pipeline(pipeline_config())  # not started: the panel needs only its interface here
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(ConfigError) as err:
            start_web(p, WebConfig(port=port), runtime_dir=rundir, upload_dir=tmp_path)
    assert f"127.0.0.1:{port}" in err.value.message and "web.port" in (err.value.hint or "")
    assert not (rundir / TOKEN_NAME).exists()


def test_listens_on_loopback_only(web: WebHandle) -> None:
    sock = web._server.servers[0].sockets[0]
    assert sock.getsockname()[0] == "127.0.0.1"


def test_stop_ends_open_previews_and_removes_the_token(rundir: Path, tmp_path: Path) -> None:
    running = photo_pipeline(tmp_path, **{"compose.mode": "off"}).start()
    p = running.pipeline
    try:
        handle = start_web(p, WebConfig(), port=0, runtime_dir=rundir, upload_dir=tmp_path)
        got: list[int] = []

        def watch() -> None:
            headers = {"X-BgCam-Token": handle.token}
            try:
                with httpx.stream("GET", handle.url + "preview.mjpg", headers=headers) as r:
                    for chunk in r.iter_bytes():
                        got.append(len(chunk))
            except httpx.HTTPError:
                pass

        viewer = threading.Thread(target=watch, daemon=True)
        viewer.start()
        wait_for(lambda: got and handle.panel.viewers == 1, what="a preview viewer")
        handle.stop(timeout=2.0)
        assert not handle._thread.is_alive()
        viewer.join(5)
        assert not viewer.is_alive()  # the stream ended with the server
        assert not (rundir / TOKEN_NAME).exists()
        handle.stop()  # idempotent
        with pytest.raises(httpx.ConnectError):
            httpx.get(handle.url)
    finally:
        running.stop()
