"""Measure what watching the web preview costs the daemon, in % of one core.

    .venv/bin/python tests/web/measure_preview_cpu.py [--seconds 10] [--size 1280x720] [--fps 10]

A pipeline stand-in publishes a new 1280x720 frame 30 times a second (no video work, so what is
measured is the panel), the panel serves it, and the process's CPU time is read twice: for
``--seconds`` with nobody watching, then for ``--seconds`` while a viewer in *another process*
reads /preview.mjpg. The difference is the preview's cost. Not a test (no timing assertions on
a shared machine); the result is printed as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bgcam.config import WebConfig
from bgcam.web.server import start_web
from tests.web.web_support import photo_pipeline

VIEWER = """
import sys, time, httpx
url, token, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
frames = 0
end = time.monotonic() + seconds
with httpx.stream("GET", url + "preview.mjpg", headers={"X-BgCam-Token": token}, timeout=30) as r:
    for chunk in r.iter_bytes():
        frames += chunk.count(b"--frame\\r\\n")
        if time.monotonic() >= end:
            break
print(frames)
"""


def cpu_seconds(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return float(t.user + t.system)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--fps", type=float, default=10.0, help="web.preview_fps")
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    me = psutil.Process(os.getpid())
    run = Path(tempfile.mkdtemp(prefix="bgw-cpu-"))
    # The real pipeline passing the photo through (mode off): the idle figure includes it.
    running = photo_pipeline(run, (w, h), **{"compose.mode": "off", "output.fps": 30.0}).start()
    pipeline = running.pipeline
    web = start_web(
        pipeline,
        WebConfig(preview_fps=args.fps),
        port=0,
        runtime_dir=run / "run",
        upload_dir=run / "up",
    )
    try:
        time.sleep(1.0)
        c0, t0 = cpu_seconds(me), time.monotonic()
        time.sleep(args.seconds)
        idle = (cpu_seconds(me) - c0) / (time.monotonic() - t0)

        viewer = subprocess.Popen(
            [sys.executable, "-c", VIEWER, web.url, web.token, str(args.seconds + 1.0)],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.0)  # connected and streaming
        c0, t0 = cpu_seconds(me), time.monotonic()
        e0 = web.panel.encoder.encoded
        time.sleep(args.seconds)
        watched = (cpu_seconds(me) - c0) / (time.monotonic() - t0)
        encoded = web.panel.encoder.encoded - e0
        out, _ = viewer.communicate(timeout=30)
    finally:
        web.stop()
        running.stop()
    result = {
        "frame": f"{w}x{h}",
        "preview_fps": args.fps,
        "seconds": args.seconds,
        "cpu_percent_idle": round(100 * idle, 2),
        "cpu_percent_watched": round(100 * watched, 2),
        "preview_cost_percent_of_a_core": round(100 * (watched - idle), 2),
        "jpeg_encoded_per_s": round(encoded / args.seconds, 2),
        "frames_received_by_viewer": int(out.strip() or 0),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
