"""A real browser picks the PipeWire camera: Debian's chromium, headless, through the portal.

The recipe of ../shared/DESIGN.md: a private PipeWire session (dbus, pipewire, wireplumber), the
daemon publishing the camera, the camera permission stored in the portal's permission store, an
Access backend *declared* (the portal offers the Camera interface only then), then
xdg-desktop-portal and chromium with ``--enable-features=WebRtcPipeWireCamera``. A page served on
127.0.0.1 lists the cameras, opens the one labelled "BgCam", draws frames to a canvas and posts
small grey copies back. Every step runs under a timeout: a misconfigured portal makes
``enumerateDevices()`` hang instead of failing.
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from tests.sinks.pipewire_support import SMALL, PipeWireSession, require_pipewire, wait_for
from tests.sinks.test_pipewire_e2e import (
    SIZE,
    Clip,
    background_difference,
    finish,
    start_daemon,
)

CHROMIUM = "/usr/lib/chromium/chromium"
PORTAL = "/usr/libexec/xdg-desktop-portal"
FAKE_PORTAL = """[portal]
DBusName=org.freedesktop.impl.portal.desktop.fake
Interfaces=org.freedesktop.impl.portal.Access;
UseIn=fake
"""

PAGE = """<!doctype html><meta charset="utf-8"><title>camera</title>
<video id="v" autoplay muted playsinline></video>
<canvas id="big"></canvas><canvas id="small" width="SMALL_W" height="SMALL_H"></canvas>
<script>
const post = (what) => fetch('/result', {method: 'POST', body: JSON.stringify(what)});
const sleep = (ms) => new Promise(r => setTimeout(r, ms));
(async () => {
  try {
    // Chromium learns the PipeWire cameras from the portal asynchronously: right after start-up
    // the list can still be empty and getUserMedia then fails with NotFoundError. A web app
    // retries; so does this page, for up to 30 s, and reports how many tries it took.
    let cams = [], cam = undefined, tries = 0, last = '';
    for (const start = Date.now(); !cam && Date.now() - start < 30000; tries++) {
      try {
        const first = await navigator.mediaDevices.getUserMedia({video: true});
        first.getTracks().forEach(t => t.stop());
        const devices = await navigator.mediaDevices.enumerateDevices();
        cams = devices.filter(d => d.kind === 'videoinput');
        cam = cams.find(d => d.label.includes('BgCam'));
        if (!cam) last = 'no BgCam among ' + JSON.stringify(cams.map(c => c.label));
      } catch (e) { last = String(e); }
      if (!cam) await sleep(500);
    }
    if (!cam) { post({error: last, tries, labels: cams.map(c => c.label)}); return; }
    const stream = await navigator.mediaDevices.getUserMedia(
        {video: {deviceId: {exact: cam.deviceId}, width: 1280, height: 720}});
    const v = document.getElementById('v');
    v.srcObject = stream;
    await v.play();
    const big = document.getElementById('big'), small = document.getElementById('small');
    const frames = [];
    for (let i = 0; i < 6; i++) {
      await sleep(500);
      big.width = v.videoWidth; big.height = v.videoHeight;
      big.getContext('2d').drawImage(v, 0, 0);
      const sc = small.getContext('2d', {willReadFrequently: true});
      sc.drawImage(big, 0, 0, small.width, small.height);
      const px = sc.getImageData(0, 0, small.width, small.height).data;
      const grey = new Uint8Array(small.width * small.height);
      for (let j = 0; j < grey.length; j++)
        grey[j] = Math.round(0.299 * px[4*j] + 0.587 * px[4*j+1] + 0.114 * px[4*j+2]);
      let s = ''; for (let j = 0; j < grey.length; j++) s += String.fromCharCode(grey[j]);
      frames.push({w: v.videoWidth, h: v.videoHeight, grey: btoa(s)});
    }
    stream.getTracks().forEach(t => t.stop());
    post({labels: cams.map(c => c.label), tries, frames});
  } catch (e) { post({error: String(e)}); }
})();
</script>
""".replace("SMALL_W", str(SMALL[0])).replace("SMALL_H", str(SMALL[1]))


class PageServer:
    """Serves the page on 127.0.0.1 (a secure context) and keeps what it posts."""

    def __init__(self) -> None:
        self.result: dict[str, Any] | None = None
        self.got = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = PAGE.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length", "0"))
                owner.result = json.loads(self.rfile.read(n))
                owner.got.set()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(5)


def gdbus(session: PipeWireSession, *args: str) -> str:
    res = subprocess.run(
        ["gdbus", "call", "--session", *args],
        env=session.env,
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    return res.stdout.strip()


@pytest.fixture
def portal_session(tmp_path: Path) -> Iterator[PipeWireSession]:
    require_pipewire()
    for exe, pkg in ((CHROMIUM, "chromium"), (PORTAL, "xdg-desktop-portal"), ("gdbus", "")):
        if shutil.which(exe) is None:
            pytest.skip(f"{exe} is not installed (Debian package {pkg or 'libglib2.0-bin'})")
    portals = tmp_path / "portals"
    portals.mkdir()
    (portals / "fake.portal").write_text(FAKE_PORTAL)
    with PipeWireSession() as s:
        s.env["XDG_DESKTOP_PORTAL_DIR"] = str(portals)
        s.env["XDG_CURRENT_DESKTOP"] = "fake"
        yield s


def test_chromium_lists_opens_and_shows_the_blurred_camera(
    portal_session: PipeWireSession, davis_dir: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    session = portal_session
    clip = Clip(davis_dir, tmp_path / "clip720.avi")
    proc = start_daemon(session, request, clip.path, "--sink", "pipewire", "--seconds", "400")
    server = PageServer()
    problem: str | None = "not started"
    frames: dict[str, Any] = {}
    try:
        wait_for(lambda: session.has_node("bgcam") or proc.poll() is not None, 90, "the node")
        assert proc.poll() is None, finish(proc)
        gdbus(
            session,
            "--dest",
            "org.freedesktop.impl.portal.PermissionStore",
            "--object-path",
            "/org/freedesktop/impl/portal/PermissionStore",
            "--method",
            "org.freedesktop.impl.portal.PermissionStore.SetPermission",
            "devices",
            "true",
            "camera",
            "",
            "['yes']",
        )
        session.spawn([PORTAL, "-r"], "portal.log")

        def camera_present() -> bool:
            try:
                out = gdbus(
                    session,
                    "--dest",
                    "org.freedesktop.portal.Desktop",
                    "--object-path",
                    "/org/freedesktop/portal/desktop",
                    "--method",
                    "org.freedesktop.DBus.Properties.Get",
                    "org.freedesktop.portal.Camera",
                    "IsCameraPresent",
                )
            except subprocess.CalledProcessError:
                return False
            return "true" in out

        wait_for(camera_present, 30, "the portal's IsCameraPresent", step=0.5)
        # Chromium's PipeWire camera is still behind a feature flag, and about one start in
        # twenty on this machine fails inside the browser (the portal hands over no camera, or
        # "Could not start video source"), while the node and its frames are fine. A user
        # reloads; the test starts a fresh browser, at most ATTEMPTS times, and says so.
        for attempt in range(1, ATTEMPTS + 1):
            frames = open_in_chromium(session, server, tmp_path / f"profile{attempt}", attempt)
            problem = judge(frames)
            print(f"chromium attempt {attempt}: {problem or 'ok'}")
            if problem is None:
                break
        if problem is not None and capture_crashed(session):
            proc.terminate()
            finish(proc, 30)
            reference = reference_camera_problem(session, server, tmp_path)
            if reference is not None:
                pytest.skip(
                    f"{chromium_version()} cannot show any PipeWire camera here: its video "
                    "capture service crashes on BgCam's node and on GStreamer's own test source "
                    f"alike ({reference}); BgCam's node itself is read by pipewiresrc in "
                    "test_pipewire_e2e"
                )
    finally:
        server.close()
        proc.terminate()
        out = finish(proc, 30)
    assert problem is None, (problem, out)
    greys = grey_frames(frames)
    diffs = [background_difference(clip, g) for g in greys]
    print(f"background difference to the raw clip: {[round(d, 1) for d in diffs]}")
    assert min(diffs) > 4.0, out


ATTEMPTS = 3

CAPTURE_CRASH = "Detected crash of video capture service"
"""What chromium logs when its video capture service dies. Debian's chromium 150 did so on
this machine in some runs for every PipeWire camera, GStreamer's own ``videotestsrc`` too
(checked by :func:`reference_camera_problem` before the test gives up on the browser)."""


def capture_crashed(session: PipeWireSession) -> bool:
    """Whether any chromium of this session logged that its video capture service crashed."""
    return any(
        CAPTURE_CRASH in log.read_text(errors="replace")
        for log in session.root.glob("chromium*.log")
    )


def reference_camera_problem(
    session: PipeWireSession, server: PageServer, tmp_path: Path
) -> str | None:
    """What is wrong when chromium opens a camera that GStreamer makes the way DESIGN.md
    verified (``videotestsrc ! pipewiresink`` with the camera properties, BgCam's node gone):
    None when chromium shows it, which would make BgCam's node the culprit."""
    caps = f"video/x-raw,format=I420,width={SIZE[0]},height={SIZE[1]},framerate=30/1"
    props = (
        "props,media.class=Video/Source,media.type=Video,media.role=Camera,"
        "node.name=bgcam-reference,node.description=BgCam-reference"
    )
    session.spawn(
        ["gst-launch-1.0", "videotestsrc", "is-live=true", "pattern=ball", "!", caps, "!",
         "pipewiresink", "mode=provide", "client-name=bgcam-reference",
         f"stream-properties={props}"],
        "reference.log",
    )  # fmt: skip
    wait_for(lambda: session.has_node("bgcam-reference"), 30, "the reference camera's node")
    return judge(open_in_chromium(session, server, tmp_path / "profile-reference", 0))


def chromium_version() -> str:
    done = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip() or "chromium"


def open_in_chromium(
    session: PipeWireSession, server: PageServer, profile: Path, attempt: int
) -> dict[str, Any]:
    """One headless chromium on the page; what the page posted (or an error with the logs)."""
    server.result = None
    server.got.clear()
    log = f"chromium{attempt}.log"
    browser = session.spawn(
        [
            CHROMIUM,
            "--headless=new",
            "--no-sandbox",
            "--use-fake-ui-for-media-stream",
            "--enable-features=WebRtcPipeWireCamera",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            server.url,
        ],
        log,
    )
    try:
        got = server.got.wait(120)
    finally:
        browser.terminate()
        try:
            browser.wait(10)
        except subprocess.TimeoutExpired:
            browser.kill()
            browser.wait(10)
    result = server.result if got else None
    if result is not None and "error" not in result:
        return result
    error = result["error"] if result is not None else "the page posted nothing in 120 s"
    return {"error": error, "log": (session.root / log).read_text(errors="replace")[-2500:]}


def grey_frames(result: dict[str, Any]) -> list[npt.NDArray[np.uint8]]:
    return [
        np.frombuffer(base64.b64decode(f["grey"]), np.uint8).reshape(SMALL[1], SMALL[0])
        for f in result["frames"]
    ]


def judge(result: dict[str, Any]) -> str | None:
    """What is wrong with what the page saw, or None: BgCam listed, at its size, moving."""
    if "error" in result:
        return f"{result['error']}\n{result['log']}"
    if not any("BgCam" in label for label in result["labels"]):
        return f"no BgCam among {result['labels']}"
    sizes = [(f["w"], f["h"]) for f in result["frames"]]
    if any(size != SIZE for size in sizes):
        return f"frame sizes {sizes}, not {SIZE}"
    greys = grey_frames(result)
    changes = [float(np.mean(cv2.absdiff(a, b))) for a, b in itertools.pairwise(greys)]
    print(f"labels {result['labels']} after {result['tries']} tries; frame change {changes}")
    if max(changes) <= 1.0:
        return f"the picture does not move: frame-to-frame change {changes}"
    return None
