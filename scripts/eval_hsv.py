#!/usr/bin/env python3
"""Compare the classic HSV threshold with BgCam's ``hsv`` segmenter on the same frames.

Prints J (mean IoU of the mask thresholded at 0.5, scored at frame size as
``../shared/tools/maskeval.py`` does) per sequence and the mean, for both methods, on:

1. ``davis``: the DAVIS person sequences in ``../shared/evaldata/davis-dev`` (real ground truth;
   full-body, small people, outdoor, moving camera: far from webcam framing).
2. ``davis-crop``: the same frames cropped around the upper body of the labelled person to a 4:3
   webcam-like framing (head and torso filling the frame; the crop follows the person smoothly,
   like a framing camera), scored against the same crop of the real ground truth.
3. ``astronaut``: scikit-image's astronaut portrait as a still webcam clip (sensor noise σ = 3
   and a slow ±4 % exposure drift), scored against **pseudo ground truth**: the mediapipe
   segmenter's mask of the clean image (needs the selfie models; skipped without them).
4. ``astronaut-composite``: the astronaut cut out with that pseudo mask and pasted, moving side to
   side, over another scikit-image photo (a still camera with a moving person): the ground truth
   is the pasted mask itself (synthetic, exact by construction).

Usage: ``python scripts/eval_hsv.py [--davis DIR] [--frames N] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from bgcam.config import SegmentConfig
from bgcam.frame import ShrunkFrame
from bgcam.segment.hsv import HsvSegmenter, classic_threshold, find_face_cascade

ROOT = Path(__file__).resolve().parents[1]
DAVIS = ROOT / ".." / "shared" / "evaldata" / "davis-dev"

Bool = npt.NDArray[np.bool_]
U8 = npt.NDArray[np.uint8]
Clip = list[tuple[U8, Bool]]


def iou(pred: Bool, gt: Bool) -> float:
    union = int((pred | gt).sum())
    return 1.0 if union == 0 else int((pred & gt).sum()) / union


def davis_sequences(root: Path, limit: int = 0) -> Iterator[tuple[str, Clip]]:
    for seq_dir in sorted((root / "JPEGImages").iterdir()):
        clip: Clip = []
        for f in sorted(seq_dir.glob("*.jpg"))[: limit or None]:
            img = cv2.imread(str(f))
            gt = cv2.imread(str(root / "Annotations" / seq_dir.name / f"{f.stem}.png"), 0)
            clip.append((img, gt > 127))
        yield seq_dir.name, clip


def webcam_crop(clip: Clip, size: tuple[int, int] = (640, 480)) -> Clip:
    """Crop every frame around the labelled person's head and torso, 4:3, following smoothly."""
    out: Clip = []
    box: np.ndarray | None = None
    aspect = size[0] / size[1]
    for img, gt in clip:
        ys, xs = np.nonzero(gt)
        if len(ys) == 0:
            continue
        y0, y1, x0, x1 = ys.min(), ys.max(), xs.min(), xs.max()
        top_h = 0.55 * (y1 - y0)  # head + torso of a standing person
        ch = max(top_h * 1.25, 40.0)
        cw = max(ch * aspect, (x1 - x0) * 1.1)
        ch = cw / aspect
        cx = (x0 + x1) / 2
        cy = y0 - 0.12 * ch + ch / 2
        cur = np.array([cx, cy, cw], np.float64)
        box = cur if box is None else 0.7 * box + 0.3 * cur
        bx, by, bw = box
        bh = bw / aspect
        m = np.array(
            [[size[0] / bw, 0, -(bx - bw / 2) * size[0] / bw],
             [0, size[1] / bh, -(by - bh / 2) * size[1] / bh]],
            np.float32,
        )  # fmt: skip
        crop = cv2.warpAffine(img, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        g = cv2.warpAffine(gt.astype(np.uint8) * 255, m, size, flags=cv2.INTER_LINEAR)
        out.append((crop, g > 127))
    return out


def astronaut_pseudo_truth() -> tuple[U8, Bool] | None:
    """The astronaut (BGR) and the mediapipe segmenter's mask of it, or None without models."""
    from skimage import data

    img = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    try:
        from bgcam.segment.mediapipe import MediaPipeSegmenter

        seg = MediaPipeSegmenter(SegmentConfig(model="general"), (img.shape[1], img.shape[0]))
    except Exception as exc:  # no models here: the caller skips this part
        logging.getLogger(__name__).warning("astronaut pseudo truth unavailable: %s", exc)
        return None
    try:
        prob = seg.segment(ShrunkFrame(img)).copy()
    finally:
        seg.close()
    prob = cv2.resize(prob, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_LINEAR)
    return img, prob >= 0.5


def noisy_still(img: U8, gt: Bool, n: int, seed: int = 0) -> Clip:
    """A still clip: Gaussian sensor noise σ = 3 and a slow ±4 % exposure drift per frame."""
    rng = np.random.default_rng(seed)
    out: Clip = []
    base = img.astype(np.float32)
    for i in range(n):
        gain = 1.0 + 0.04 * np.sin(2 * np.pi * i / max(n, 2))
        f = base * gain + rng.normal(0.0, 3.0, base.shape)
        out.append((np.clip(f, 0, 255).astype(np.uint8), gt))
    return out


def composite_clip(img: U8, gt: Bool, n: int, size: tuple[int, int] = (640, 480)) -> Clip:
    """The person from ``img`` (mask ``gt``) moving side to side over another photo."""
    from skimage import data

    w, h = size
    bg = cv2.resize(cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR), size)
    scale = h / img.shape[0]
    person = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    alpha = cv2.resize(gt.astype(np.float32), None, fx=scale, fy=scale)
    pw = person.shape[1]
    out: Clip = []
    for i in range(n):
        x = int((w - pw) / 2 + 0.25 * (w - pw) * np.sin(2 * np.pi * i / 40))
        frame = bg.copy()
        a = alpha[..., None]
        roi = frame[:, x : x + pw]
        roi[:] = (a * person + (1 - a) * roi).astype(np.uint8)
        g = np.zeros((h, w), bool)
        g[:, x : x + pw] = alpha >= 0.5
        out.append((frame, g))
    return out


def run(clip: Clip, method: Callable[[U8], Bool]) -> float:
    return float(np.mean([iou(method(img), gt) for img, gt in clip])) if clip else float("nan")


def hsv_method(size: tuple[int, int], **kw: object) -> Callable[[U8], Bool]:
    seg = HsvSegmenter(SegmentConfig(segmenter="hsv"), size, **kw)

    def method(img: U8) -> Bool:
        prob = seg.segment(ShrunkFrame(img))
        full = cv2.resize(prob, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_LINEAR)
        return full >= 0.5

    return method


def evaluate(clip: Clip, cascade: Path | bool = True) -> dict[str, float]:
    """J of both methods on one clip; ``cascade``: find one (True), none (False) or this file."""
    if not clip:
        return {"baseline": float("nan"), "hsv": float("nan")}
    size = (clip[0][0].shape[1], clip[0][0].shape[0])
    ours = hsv_method(size, cascade=cascade)
    return {"baseline": run(clip, classic_threshold), "hsv": run(clip, ours)}


def time_hsv(cascade: Path | bool, n: int = 150) -> dict[str, float]:
    """ms per 1280x720 frame of the hsv segmenter on one thread (real frames, a moving person).

    Wall time (``time.monotonic``) and this thread's CPU time (``time.thread_time``: on a shared
    machine the wall time also counts other processes' turns).
    """
    cv2.setNumThreads(1)
    from skimage import data

    src = astronaut_pseudo_truth()
    base = src[0] if src else cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    gt = src[1] if src else np.zeros(base.shape[:2], bool)
    frames = [f for f, _ in composite_clip(base, gt, 40, size=(1280, 720))]
    seg = HsvSegmenter(SegmentConfig(segmenter="hsv"), (1280, 720), cascade=cascade)
    wall, cpu = [], []
    for i in range(n):
        t, c = time.monotonic(), time.thread_time()
        seg.segment(ShrunkFrame(frames[i % len(frames)]))
        cpu.append(time.thread_time() - c)
        wall.append(time.monotonic() - t)
    w, c_ = np.array(wall[10:]) * 1000, np.array(cpu[10:]) * 1000
    return {
        "wall_p50": float(np.median(w)),
        "wall_p99": float(np.percentile(w, 99)),
        "cpu_p50": float(np.median(c_)),
        "cpu_p99": float(np.percentile(c_, 99)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--davis", type=Path, default=DAVIS, help="DAVIS root (JPEGImages/, ...)")
    ap.add_argument("--frames", type=int, default=0, help="frames per sequence (0 = all)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()

    results: dict[str, dict[str, dict[str, float]]] = {}
    if (args.davis / "JPEGImages").is_dir():
        results["davis"], results["davis-crop"] = {}, {}
        for name, clip in davis_sequences(args.davis, args.frames):
            results["davis"][name] = evaluate(clip)
            results["davis-crop"][name] = evaluate(webcam_crop(clip))
    pseudo = astronaut_pseudo_truth()
    if pseudo is not None:
        img, gt = pseudo
        results["astronaut (pseudo truth: mediapipe)"] = {
            "still": evaluate(noisy_still(img, gt, 30))
        }
        results["astronaut-composite (synthetic)"] = {
            "moving": evaluate(composite_clip(img, gt, 80))
        }
    cascade = find_face_cascade()
    timing = {"no face cascade": time_hsv(False)}
    if cascade is not None:
        timing["with face cascade"] = time_hsv(cascade)

    if args.json:
        out = {"results": results, "face_cascade": str(cascade), "ms_1280x720": timing}
        print(json.dumps(out, indent=1))
        return
    for group, seqs in results.items():
        print(f"\n{group}")
        print(f"  {'sequence':<20} {'baseline J':>10} {'hsv J':>8}")
        for name, r in seqs.items():
            print(f"  {name:<20} {r['baseline']:>10.3f} {r['hsv']:>8.3f}")
        if len(seqs) > 1:
            mb = float(np.mean([r["baseline"] for r in seqs.values()]))
            mh = float(np.mean([r["hsv"] for r in seqs.values()]))
            print(f"  {'mean':<20} {mb:>10.3f} {mh:>8.3f}")
    print(f"\nface cascade: {cascade or 'none found (faces not used)'}")
    for mode, t in timing.items():
        print(
            f"hsv segmenter, {mode}, 1280x720, one thread: wall p50 {t['wall_p50']:.2f} ms "
            f"p99 {t['wall_p99']:.2f} ms; CPU p50 {t['cpu_p50']:.2f} ms p99 {t['cpu_p99']:.2f} ms"
        )


if __name__ == "__main__":
    main()
