"""End to end: `bgcam run` as a subprocess with the panel on, driven by a real browser.

A real video clip through the real pipeline to the null sink; chromium moves the blur slider and
the new level is read back over the control socket, by `bgcam status --json` and the socket
client; the daemon then stops on SIGTERM and removes its token file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from bgcam.control.client import ControlClient, NotRunningError
from bgcam.errors import BgCamError
from bgcam.web.access import TOKEN_NAME, panel_url, read_access
from tests.live_media import DaemonProcess, free_port, wait_for
from tests.web.web_support import photo

pytestmark = pytest.mark.slow


def make_clip(path: Path, frames: int = 60) -> Path:
    """A real 640x360 30 fps clip: a photo of a person, panning."""
    image = photo((640, 360))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 30.0, (640, 360))
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.roll(image, 2 * i, axis=1))
    writer.release()
    return path


@pytest.fixture
def daemon(
    tmp_path: Path, rundir: Path, web_models: Path
) -> Iterator[tuple[DaemonProcess, dict[str, str]]]:
    clip = make_clip(tmp_path / "clip.mp4")
    env = {
        **os.environ,
        "BGCAM_RUNTIME_DIR": str(rundir),
        "BGCAM_MODEL_DIR": str(web_models),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),  # no saved user settings
        "XDG_DATA_HOME": str(tmp_path / "data"),  # uploads land here
    }
    env.pop("DISPLAY", None)  # no hotkeys needed
    argv = [
        sys.executable, "-m", "bgcam", "run",
        "--source", str(clip),
        "--sink", "null",
        "--set", "web.enabled=true",
        "--set", f"web.port={free_port()}",
    ]  # fmt: skip
    d = DaemonProcess(argv, env, rundir / "control.sock")

    def ready() -> bool:
        if d.proc.poll() is not None:
            return True
        if not (rundir / TOKEN_NAME).exists():
            return False
        try:
            with ControlClient(rundir / "control.sock", timeout=5) as c:
                return int(c.call("status").get("frames_out", 0)) > 0
        except (NotRunningError, BgCamError):  # not up yet, or too busy to answer in time
            return False

    try:  # the daemon is stopped even when it never became ready (no stray processes)
        wait_for(ready, 120, what="the daemon to serve its panel and send frames")
        assert d.proc.poll() is None, d.output
        yield d, env
    finally:
        d.finish()


def test_bgcam_run_panel_in_a_browser(
    daemon: tuple[DaemonProcess, dict[str, str]], rundir: Path, browser: Any, artifacts: Path
) -> None:
    proc, env = daemon
    url, token = read_access(rundir)
    context = browser.new_context(viewport={"width": 1100, "height": 850})
    page = context.new_page()
    try:
        page.goto(panel_url(url, token))
        page.wait_for_function(
            "() => document.getElementById('connection').textContent === 'Connected'"
        )
        slider = page.get_by_label("Blur strength")
        slider.focus()
        page.keyboard.press("Home")
        page.keyboard.press("PageUp")
        page.keyboard.press("PageUp")
        page.keyboard.press("ArrowRight")
        assert slider.input_value() == "21"

        def blur_over_socket() -> int:
            with ControlClient(rundir / "control.sock") as c:
                return int(c.call("status")["blur"])

        wait_for(lambda: blur_over_socket() == 21, what="blur 21 over the control socket")
        out = subprocess.run(
            [sys.executable, "-m", "bgcam", "status", "--json"],
            env=env, capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        assert json.loads(out.stdout)["blur"] == 21

        page.wait_for_function("() => document.getElementById('preview').naturalWidth > 0")
        page.wait_for_function(
            "() => /frames per second/.test(document.getElementById('stat-fps').textContent)"
        )
        page.screenshot(path=str(artifacts / "web-panel-e2e.png"), full_page=True)
    finally:
        context.close()
    output = proc.finish()
    assert proc.returncode == 0, output
    assert not (rundir / TOKEN_NAME).exists()
