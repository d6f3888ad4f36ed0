"""A rendered ``out.mp4`` plays in a real browser: Debian's chromium (headless, Playwright)
loads it in a ``<video>``, plays it, and draws a decoded frame to a canvas.

The page and the video are served over HTTP on 127.0.0.1 (a ``file://`` video taints the canvas,
so its pixels could not be read back).
"""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bgcam.config import Config
from bgcam.render import render
from tests.live_media import debian_chromium
from tests.video.video_clips import make_talk

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required"]

PAGE = """<!doctype html><meta charset="utf-8"><title>play</title>
<video id="v" src="out.mp4" muted playsinline></video>
<canvas id="c" width="320" height="240"></canvas>
<script>
window.result = new Promise((resolve) => {
  const v = document.getElementById("v");
  setTimeout(() => resolve({error: "timeout", readyState: v.readyState}), 20000);
  v.addEventListener("error", () => resolve({error: "media error " + v.error.code}));
  v.addEventListener("timeupdate", function once() {
    if (v.currentTime < 0.3) return;
    v.removeEventListener("timeupdate", once);
    v.pause();
    const ctx = document.getElementById("c").getContext("2d");
    ctx.drawImage(v, 0, 0, 320, 240);
    let px;
    try {
      px = ctx.getImageData(0, 0, 320, 240).data;
    } catch (e) {
      resolve({error: String(e)});
      return;
    }
    let sum = 0, sq = 0, n = 0;
    for (let i = 0; i < px.length; i += 4) { const g = px[i + 1]; sum += g; sq += g * g; n++; }
    const mean = sum / n;
    resolve({readyState: v.readyState, duration: v.duration, width: v.videoWidth,
             height: v.videoHeight, mean: mean, std: Math.sqrt(sq / n - mean * mean)});
  });
  v.play().catch((e) => resolve({error: String(e)}));
});
</script>"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with debian_chromium(ARGS) as browser:
        yield browser


@pytest.mark.usefixtures("model_dir")
def test_rendered_mp4_plays_in_chromium(tmp_path: Path, chromium: Any) -> None:
    talk = tmp_path / "talk.mp4"
    make_talk(talk, n=48, fps=24)
    render(Config(), talk, tmp_path / "out.mp4")
    (tmp_path / "play.html").write_text(PAGE, encoding="utf-8")
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    thread.start()
    page = chromium.new_page()
    try:
        page.goto(f"http://127.0.0.1:{server.server_port}/play.html")
        result = page.evaluate("window.result")
    finally:
        page.close()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert "error" not in result, result
    assert result["readyState"] >= 2  # HAVE_CURRENT_DATA: a frame is decoded
    assert result["duration"] == pytest.approx(2.0, abs=0.05)
    assert (result["width"], result["height"]) == (320, 240)
    # A real picture was drawn, not a black or blank canvas.
    assert 20 < result["mean"] < 235 and result["std"] > 10
