#!/usr/bin/env python3
"""Make the README's before/after pictures of the studio effects with ``bgcam render``.

BgCam ships no video, so the clips are made from the bundled photograph
(``bgcam/data/astronaut.jpg``, NASA, public domain):

- **auto-framing**: a 854x480 clip, 3 s at 30 fps, of the photo at 360x360 at the bottom left
  of a wider room (the photo's edge rows and columns stretched and blurred), drifting right
  over 1.5 s as if the person shifted in their seat, then still;
- **low light**: the same clip darkened to 35 % with sensor-like noise (as in
  ``scripts/studio_eval.py``).

Each clip is rendered twice by the real command line (``python -m bgcam render``, blur mode):
effects off ("before") and on ("after"); the last frame of each is saved 480 px wide as JPEG
(quality 80) in ``docs/images/``.

Usage (from the repository root): ``.venv/bin/python scripts/studio_demo.py [OUT_DIR]``
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SIZE = (854, 480)
FRAMES = 90


def room_clip(path: Path, *, dark: bool) -> None:
    photo = cv2.imread(str(ROOT / "bgcam" / "data" / "astronaut.jpg"))
    side = 360
    person = cv2.resize(photo, (side, side), interpolation=cv2.INTER_AREA)
    top = SIZE[1] - side
    rng = np.random.default_rng(18)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 30.0, SIZE)
    if not writer.isOpened():
        raise SystemExit(f"cannot write {path}")
    for i in range(FRAMES):
        x = 40 + round(200 * min(1.0, i / 45))  # shifts right over 1.5 s, then sits still
        frame = cv2.copyMakeBorder(person, top, 0, x, SIZE[0] - side - x, cv2.BORDER_REPLICATE)
        room = cv2.GaussianBlur(frame, (0, 0), 12)
        room[top:, x : x + side] = person
        if dark:
            noisy = room.astype(np.float32) * 0.35
            noisy += rng.normal(0, 1, noisy.shape).astype(np.float32) * np.sqrt(0.5 * noisy + 2)
            room = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
        writer.write(room)
    writer.release()


def render(src: Path, out: Path, *sets: str) -> np.ndarray:
    args = [sys.executable, "-m", "bgcam", "render", str(src), "-o", str(out)]
    for s in sets:
        args += ["--set", s]
    subprocess.run(args, check=True, cwd=ROOT)
    cap = cv2.VideoCapture(str(out))
    last = None
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        last = frame
    cap.release()
    if last is None:
        raise SystemExit(f"{out}: no frames")
    return last


def save(image: np.ndarray, path: Path) -> None:
    h, w = image.shape[:2]
    small = cv2.resize(image, (480, round(h * 480 / w)), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(path), small, [cv2.IMWRITE_JPEG_QUALITY, 80])
    print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")


def main() -> int:
    out_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "images"
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        room_clip(t / "room.mp4", dark=False)
        room_clip(t / "dim.mp4", dark=True)
        save(render(t / "room.mp4", t / "a0.mp4"), out_dir / "autoframe-before.jpg")
        save(
            render(t / "room.mp4", t / "a1.mp4", "effects.autoframe=true"),
            out_dir / "autoframe-after.jpg",
        )
        save(render(t / "dim.mp4", t / "l0.mp4"), out_dir / "light-before.jpg")
        save(render(t / "dim.mp4", t / "l1.mp4", "effects.light=auto"), out_dir / "light-after.jpg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
