#!/usr/bin/env python3
"""Quality and flicker evaluation of the BgCam engine against the raw model.

For every sequence of a DAVIS-style folder (``JPEGImages/<seq>/*.jpg`` and
``Annotations/<seq>/*.png``) the engine (``bgcam.engine.Engine``, one engine and one smoother
state per sequence, frames in name order) writes its final alpha as 8-bit PNGs at frame size,
named after the frame's stem -- exactly what ``bgcam render … --masks DIR`` writes -- and, for
comparison, the raw model output resized to the frame (bilinear). Both are scored with the
reference scorer ``maskeval.py`` (J, F, T, flicker).

Then a static scene with sensor noise and exposure drift is made from one photo with
``noisy_still.py`` (default: scikit-image's astronaut) and both mask sets are measured with
``flicker.py`` (mean per-frame alpha change, share of pixels that ever flip label).

Usage (from the repository root)::

    BGCAM_MODEL_DIR=/tmp/bgcam-models .venv/bin/python scripts/eval.py \
        [--data ../shared/evaldata/davis-dev] [--tools ../shared/tools] [--out DIR] \
        [--config FILE] [--set KEY=VALUE ...] [--still IMAGE] [--json]

Prints a table with the targets of issue 2 (J, F ≥ raw; T ≤ 0.8 x raw; still-scene flicker
≤ raw / 8; flipped pixels < 0.15 %).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bgcam.config import Config, load_config
from bgcam.engine import Engine
from bgcam.frame import Mask, ShrunkFrame
from bgcam.segment import Segmenter, create_segmenter

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}


def frames_of(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def to_png8(alpha: Mask, buf: np.ndarray | None = None) -> np.ndarray:
    """The same conversion as ``bgcam render --masks``: round(255 · alpha), saturated."""
    if buf is None or buf.shape != alpha.shape:
        buf = np.empty(alpha.shape, np.uint8)
    cv2.convertScaleAbs(alpha, dst=buf, alpha=255.0)
    return buf


def run_sequence(
    cfg: Config, frames: list[Path], out_dir: Path, raw_dir: Path
) -> Iterator[tuple[float, float, float, float]]:
    """Run one engine over ``frames``, writing engine and raw masks; yield stage times (ms) and
    1.0 for a keyframe (the model ran), 0.0 for a propagated frame (``segment.max_skip``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    raw_dir.mkdir(parents=True, exist_ok=True)
    first = cv2.imread(str(frames[0]), cv2.IMREAD_COLOR)
    if first is None:
        raise SystemExit(f"cannot read {frames[0]}")
    h, w = first.shape[:2]
    # The raw model as a user of it would run it: its own segmenter, on the frame itself.
    # (ROI off: the raw model sees the whole frame, as without BgCam.)
    raw_seg: Segmenter = create_segmenter(cfg.segment.model_copy(update={"roi": False}), (w, h))
    raw_full = np.empty((h, w), np.float32)
    try:
        with Engine(cfg, (w, h)) as engine:
            for path in frames:
                image = cv2.imread(str(path), cv2.IMREAD_COLOR)
                if image is None or image.shape[:2] != (h, w):
                    raise SystemExit(f"{path}: unreadable or not {w}x{h}")
                engine.process(image)
                assert engine.alpha is not None
                cv2.imwrite(str(out_dir / f"{path.stem}.png"), to_png8(engine.alpha))
                raw = raw_seg.segment(ShrunkFrame(image))
                cv2.resize(raw, (w, h), dst=raw_full, interpolation=cv2.INTER_LINEAR)
                cv2.imwrite(str(raw_dir / f"{path.stem}.png"), to_png8(raw_full))
                t = engine.times
                yield t.segment, t.refine, t.compose, float(engine.keyframe)
    finally:
        raw_seg.close()


def maskeval(tools: Path, gt: Path, pred: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, str(tools / "maskeval.py"), str(gt), str(pred), "--json"],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def flicker(tools: Path, masks: Path) -> tuple[float, float]:
    proc = subprocess.run(
        [sys.executable, str(tools / "flicker.py"), str(masks)],
        check=True,
        capture_output=True,
        text=True,
    )
    m = re.search(r"flicker=([\d.]+)e-3 flipped_px=([\d.]+)%", proc.stdout)
    if not m:
        raise SystemExit(f"unexpected flicker.py output: {proc.stdout!r}")
    return float(m.group(1)) * 1e-3, float(m.group(2)) / 100.0


def still_image(path: str | None, work: Path) -> Path:
    if path:
        return Path(path)
    from skimage import data  # test dependency; only needed without --still

    out = work / "astronaut.png"
    cv2.imwrite(str(out), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=SHARED / "evaldata" / "davis-dev")
    ap.add_argument("--tools", type=Path, default=SHARED / "tools")
    ap.add_argument("--out", type=Path, default=None, help="keep the masks here (default: temp)")
    ap.add_argument("--config", type=Path, default=None)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--still", default=None, help="photo for the static-scene flicker test")
    ap.add_argument("--still-frames", type=int, default=60)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()

    cv2.setNumThreads(1)
    cfg = load_config(args.config, args.set)
    if not (args.data / "JPEGImages").is_dir():
        raise SystemExit(f"no JPEGImages/ under {args.data}")
    tmp = tempfile.TemporaryDirectory(prefix="bgcam-eval-")
    out = args.out or Path(tmp.name)
    times: list[tuple[float, float, float, float]] = []

    t0 = time.monotonic()
    for seq in sorted(p for p in (args.data / "JPEGImages").iterdir() if p.is_dir()):
        frames = frames_of(seq)
        times += run_sequence(cfg, frames, out / "bgcam" / seq.name, out / "raw" / seq.name)
    gt = args.data / "Annotations"
    scores = {k: maskeval(args.tools, gt, out / k) for k in ("raw", "bgcam")}

    still_frames = out / "still" / "frames"
    subprocess.run(
        [
            sys.executable,
            str(args.tools / "noisy_still.py"),
            str(still_image(args.still, Path(tmp.name))),
            str(still_frames),
            str(args.still_frames),
        ],
        check=True,
    )
    still_times = list(
        run_sequence(cfg, frames_of(still_frames), out / "still" / "bgcam", out / "still" / "raw")
    )
    still = {k: flicker(args.tools, out / "still" / k) for k in ("raw", "bgcam")}
    elapsed = time.monotonic() - t0

    arr = np.array(times)
    ms = dict(zip(("segment", "refine", "compose"), np.median(arr, axis=0).tolist(), strict=False))
    keyframes = {"clips": float(arr[:, 3].mean()), "still": float(np.mean(still_times, axis=0)[3])}
    raw, ours = scores["raw"]["mean"], scores["bgcam"]["mean"]
    checks = {
        "J": ours["J"] >= raw["J"],
        "F": ours["F"] >= raw["F"],
        "T": ours["T"] <= 0.8 * raw["T"],
        "still_flicker": still["bgcam"][0] <= still["raw"][0] / 8,
        "still_flipped": still["bgcam"][1] < 0.0015,
    }
    result = {
        "scores": scores,
        "still": {k: {"flicker": v[0], "flipped": v[1]} for k, v in still.items()},
        "ms_median": ms,
        "keyframe_share": keyframes,
        "checks": checks,
        "masks": str(out) if args.out else None,
    }
    if args.json:
        print(json.dumps(result))
        return 0 if all(checks.values()) else 1

    print(f"{'':10s} {'J':>6s} {'F':>6s} {'T':>8s} {'flicker':>8s} {'still':>8s} {'flipped':>8s}")
    for k in ("raw", "bgcam"):
        m = scores[k]["mean"]
        fl, fp = still[k]
        print(
            f"{k:10s} {m['J']:6.3f} {m['F']:6.3f} {m['T']:8.4f} {m['flicker']:8.4f} "
            f"{fl:8.2e} {fp * 100:7.3f}%"
        )
    print()
    for name, row in scores["bgcam"]["seqs"].items():
        r = scores["raw"]["seqs"][name]
        print(
            f"  {name:18s} J {r['J']:.3f} → {row['J']:.3f}   F {r['F']:.3f} → {row['F']:.3f}"
            f"   T {r['T']:.4f} → {row['T']:.4f}"
        )
    print()
    print(
        "targets: "
        + "  ".join(f"{k} {'ok' if v else 'FAIL'}" for k, v in checks.items())
        + f"   (still: {still['raw'][0] / max(still['bgcam'][0], 1e-12):.1f}x less flicker)"
    )
    print(
        f"median ms per frame at the data's size: segment {ms['segment']:.2f}, "
        f"refine {ms['refine']:.2f}, compose {ms['compose']:.2f}; {elapsed:.0f} s in all"
    )
    print(
        f"keyframes (the model ran): {keyframes['clips']:.1%} of the clips' frames, "
        f"{keyframes['still']:.1%} of the still's"
    )
    if args.out:
        print(f"masks in {out}/bgcam, {out}/raw, {out}/still")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
