"""Decompression bombs and huge legal images (finding 3 of issue 13), on the real daemon."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import cv2
import httpx
import numpy as np
import pytest

from bgcam.control.client import ControlClient
from bgcam.errors import BgCamError
from tests.adversarial.adversary import bomb_png, panel, spawn, status
from tests.live_media import DaemonProcess

pytestmark = pytest.mark.slow


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


class Running(NamedTuple):
    daemon: DaemonProcess
    url: str
    token: str
    rundir: Path


@pytest.fixture
def running(tmp_path: Path, rundir: Path) -> Iterator[Running]:
    d = spawn(rundir, tmp_path, web=True, verbose=True)
    url, token = panel(rundir)
    yield Running(d, url, token, rundir)
    d.finish()


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2.6 MB PNG that declares 30000x30000 pixels (2.7 GB decoded)."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.png"
    path.write_bytes(bomb_png(30000, 30000))
    return path


def test_a_bomb_upload_is_refused_from_its_header(running: Running, bomb: Path) -> None:
    d = running.daemon
    rss0 = peak_rss_mb(d.proc.pid)
    with httpx.Client(headers={"X-BgCam-Token": running.token}, timeout=30) as client:
        client.get(running.url + "api/session")  # the client's own set-up out of the timing
        t0 = time.monotonic()
        r = client.post(
            running.url + "api/background",
            files={"image": ("bomb.png", bomb.read_bytes(), "image/png")},
        )
        took = time.monotonic() - t0
    assert r.status_code == 413, r.text
    assert "too large" in r.json()["error"] and "900,000,000 pixels" in r.text
    growth = peak_rss_mb(d.proc.pid) - rss0
    assert growth <= 50, f"peak RSS grew by {growth:.0f} MB"
    assert status(running.rundir) is not None
    print(f"bomb upload: refused in {took * 1000:.0f} ms, peak RSS +{growth:.1f} MB")


def test_a_bomb_background_is_refused_by_ctl(running: Running, bomb: Path) -> None:
    d = running.daemon
    rss0 = peak_rss_mb(d.proc.pid)
    with ControlClient(running.rundir / "control.sock", timeout=30) as c:
        with pytest.raises(BgCamError, match="too large"):
            c.call("background", str(bomb))
        assert c.call("status")["mode"] == "blur"  # nothing changed
    growth = peak_rss_mb(d.proc.pid) - rss0
    assert growth <= 50, f"peak RSS grew by {growth:.0f} MB"


def test_a_legal_8192_background_does_not_stall_the_output(
    running: Running, tmp_path: Path
) -> None:
    """The decode happens on the control socket's thread; the output thread only picks up the
    prepared picture (the debug log says when it has to decode one itself)."""
    xs = np.linspace(0, 255, 8192, dtype=np.float32)
    big = np.empty((8192, 8192, 3), np.uint8)
    big[..., 0] = xs[None, :].astype(np.uint8)
    big[..., 1] = xs[:, None].astype(np.uint8)
    big[..., 2] = 90
    path = tmp_path / "huge.jpg"
    assert cv2.imwrite(str(path), big)
    del big
    small = tmp_path / "small.jpg"
    assert cv2.imwrite(str(small), np.full((360, 640, 3), 80, np.uint8))
    with ControlClient(running.rundir / "control.sock", timeout=30) as c:
        c.call("background", str(small))  # replace mode's first use costs a little: not measured
        time.sleep(1.0)
        c.call("mode", "blur")
        time.sleep(1.0)
        s0 = c.call("status")
        c.call("mode", "replace")  # the baseline: a switch with nothing to decode
        time.sleep(2.0)
        s1 = c.call("status")
        c.call("mode", "blur")
        time.sleep(1.0)
        s2 = c.call("status")
        c.call("background", str(path))
        time.sleep(2.0)
        s3 = c.call("status")
    baseline = s1["frames_repeated"] - s0["frames_repeated"]
    during = s3["frames_repeated"] - s2["frames_repeated"]
    assert s3["mode"] == "replace"
    print(f"8192² background: {during} repeated frames (plain mode switch: {baseline})")
    assert "8192x8192 decoded at 1/8" in running.daemon.output  # on the socket's thread
    assert "decoding it on this thread" not in running.daemon.output
