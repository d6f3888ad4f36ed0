"""What composing straight into I420 costs against composing BGR and converting it, per frame.

Reads a clip, makes each frame's matte with BgCam's own stages (the default segmenter and
refiner), then composes it both ways in turn, frame by frame, on one thread: the CPU compositor's
BGR output plus OpenCV's ``COLOR_BGR2YUV_I420`` (what a PipeWire or v4l2loopback sink did
before), and :class:`~bgcam.compose.i420.I420Composer` (what they get now). Times are this
thread's CPU time (``time.thread_time``), so other processes on a shared machine disturb them
less than wall time; the two variants alternate, so a change in load touches both alike.

    .venv/bin/python scripts/i420_compose_cost.py /tmp/rt/c1280x720.mp4 --frames 150
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from bgcam.compose.i420 import I420Composer  # noqa: E402
from bgcam.config import Config  # noqa: E402
from bgcam.engine import Engine  # noqa: E402
from bgcam.frame import ShrunkFrame  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clip")
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--set", action="append", default=[], help="compose.KEY=VALUE")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    compose = {k.removeprefix("compose."): v for k, v in (s.split("=", 1) for s in args.set)}
    cfg = Config.model_validate({"compose": {"backend": "cpu", **compose}})
    cap = cv2.VideoCapture(args.clip)
    ok, first = cap.read()
    if not ok:
        raise SystemExit(f"cannot read {args.clip}")
    h, w = first.shape[:2]
    engine = Engine(cfg, (w, h))
    composer = engine.i420_composer()
    assert isinstance(composer, I420Composer)
    cpu = composer.cpu
    buf = np.empty((h * 3 // 2, w), np.uint8)
    bgr_ms: list[float] = []
    i420_ms: list[float] = []
    image = first
    for i in range(args.frames):
        if i:
            ok, image = cap.read()
            if not ok:
                cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                ok, image = cap.read()
        engine.mask(image)
        a8s, small = engine.matte()
        frame = ShrunkFrame(image, small)
        order = (0, 1) if i % 2 else (1, 0)
        for which in order:
            t0 = time.thread_time()
            if which == 0:
                cv2.cvtColor(cpu.compose_matte(frame, a8s), cv2.COLOR_BGR2YUV_I420, dst=buf)
            else:
                composer.compose_matte(frame, a8s)
            (bgr_ms if which == 0 else i420_ms).append((time.thread_time() - t0) * 1e3)
    engine.close()
    skip = min(10, args.frames // 5)  # warm-up
    b, y = statistics.median(bgr_ms[skip:]), statistics.median(i420_ms[skip:])
    print(
        f"{w}x{h} {args.frames} frames, thread CPU ms median: BGR compose + convert {b:.2f}, "
        f"I420 compose {y:.2f} ({y - b:+.2f} ms, {(y - b) * 3:+.1f} points of one core at 30 fps)"
    )


if __name__ == "__main__":
    main()
