#!/usr/bin/env python3
"""Measure the studio effects (auto-framing, low-light correction) against issue 18's targets.

Auto-framing, on every davis-dev sequence (one engine per sequence, frames in order at 30 fps,
``effects.autoframe = true``): the crop the engine chose for each frame, and the ground-truth
person box mapped into the output picture.

- **centring**: the distance from the box's centre in the output to its target position, as a
  share of the output width; the target is where the composition rule puts the box centre in
  a crop of the same size (horizontally the middle; vertically the head at the headroom line),
  inside the frame. Target: ≤ 0.12 on ≥ 90 % of frames. The distance to the plain middle of the
  picture (x only) is shown as well.
- **acceleration**: the largest |Δ²| of any crop edge between consecutive frames, in pixels,
  against the stated bound (``edge_accel_bound(zoom) / fps²`` of the frame).
- **oracle**: the same framer fed the ground-truth box instead of the matte's, to tell the
  framing's own error from the segmentation's (raised limbs the model misses, for instance).
- **stillness**: on a static scene made by ``noisy_still.py`` (sensor noise, ±4 % exposure
  drift) the largest move of any crop edge between frames (target < 1 px).

Low light, on every davis-dev sequence darkened to 35 % (pixel values x 0.35) with
sensor-like noise (Gaussian, variance ``0.5·level + 2`` in 8-bit levels: shot plus read noise,
a fixed seed), ``effects.light = auto``, mode off:

- the person's (ground-truth mask) median luminance against the undarkened clip's (target:
  within 15 %), and without correction for comparison;
- the hue shift against the undarkened clip: the circular mean of the per-pixel hue changes
  over the person's coloured pixels (target: ≤ 3 degrees), and without correction;
- on the darkened static scene: the largest frame-to-frame change of the person's mean
  luminance (target ≤ 1 level); the person region is the engine's matte of the first
  undarkened frame.

Usage (from the repository root)::

    .venv/bin/python scripts/studio_eval.py [--data ../shared/evaldata/davis-dev]
        [--tools ../shared/tools] [--still IMAGE] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bgcam.config import Config
from bgcam.engine import Engine
from bgcam.studio.autoframe import Crop, Framer, compose_crop, edge_accel_bound
from bgcam.studio.box import Box, BoxFinder

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared"
FPS = 30.0
DARK = 0.35
SEED = 18


def frames_of(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".png"})


def edges(crop: Crop, size: tuple[int, int]) -> np.ndarray:
    x, y, w, h = crop.rect(size)
    return np.array([x, y, x + w, y + h])


def centring(box: Box, crop: Crop, zoom: float, aspect: float) -> tuple[float, float, float]:
    """(distance to the target, |x − target x|, |y − target y|) of ``box``'s centre in the
    output of ``crop``, as shares of the output width."""
    ox = (box.cx - (crop.cx - crop.scale / 2)) / crop.scale
    oy = (box.cy - (crop.cy - crop.scale / 2)) / crop.scale
    ideal = compose_crop(box, zoom, scale=crop.scale)
    tx = (box.cx - (ideal.cx - ideal.scale / 2)) / ideal.scale
    ty = (box.cy - (ideal.cy - ideal.scale / 2)) / ideal.scale
    dx, dy = abs(ox - tx), abs(oy - ty) / aspect
    return math.hypot(dx, dy), dx, dy


def framing(cfg: Config, seqs: list[tuple[str, list[Path], list[Path]]]) -> dict[str, Any]:
    finder = BoxFinder()
    zoom = cfg.effects.autoframe_zoom
    per: dict[str, Any] = {}
    all_err: list[float] = []
    all_oracle: list[float] = []
    all_mid: list[float] = []
    max_acc = 0.0
    size = (0, 0)
    for name, images, masks in seqs:
        first = cv2.imread(str(images[0]))
        h, w = first.shape[:2]
        size = (w, h)
        oracle = Framer(
            max_zoom=zoom,
            settle=cfg.effects.autoframe_settle,
            dead_zone=cfg.effects.autoframe_dead_zone,
        )
        errs, oerrs, mids, path, errx, erry = [], [], [], [], [], []
        with Engine(cfg, size) as engine:
            for i, (ip, mp) in enumerate(zip(images, masks, strict=True)):
                engine.process(cv2.imread(str(ip)), t=i / FPS)
                crop = engine.studio.crop
                path.append(edges(crop, size))
                gt = cv2.imread(str(mp), cv2.IMREAD_GRAYSCALE)
                box = finder.find(gt)
                ocrop = oracle.update(box, 1 / FPS)
                if box is None:
                    continue
                err, dx, dy = centring(box, crop, zoom, w / h)
                errs.append(err)
                errx.append(dx)
                erry.append(dy)
                oerrs.append(centring(box, ocrop, zoom, w / h)[0])
                mids.append(abs((box.cx - (crop.cx - crop.scale / 2)) / crop.scale - 0.5))
        p = np.array(path)
        acc = float(np.abs(np.diff(p, 2, axis=0)).max()) if len(p) > 2 else 0.0
        max_acc = max(max_acc, acc)
        e = np.array(errs)
        per[name] = {
            "frames": len(images),
            "within_12pct": float(np.mean(e <= 0.12)),
            "oracle_within_12pct": float(np.mean(np.array(oerrs) <= 0.12)),
            "err_median": float(np.median(e)),
            "err_p90": float(np.percentile(e, 90)),
            "errx_p90": float(np.percentile(errx, 90)),
            "erry_p90": float(np.percentile(erry, 90)),
            "mid_within_12pct": float(np.mean(np.array(mids) <= 0.12)),
            "max_edge_accel_px": acc,
            "mean_zoom": float(np.mean([size[0] / (q[2] - q[0]) for q in p])),
        }
        all_err += errs
        all_oracle += oerrs
        all_mid += mids
    bound = edge_accel_bound(zoom) / FPS**2 * max(size)
    return {
        "sequences": per,
        "within_12pct": float(np.mean(np.array(all_err) <= 0.12)),
        "oracle_within_12pct": float(np.mean(np.array(all_oracle) <= 0.12)),
        "mid_within_12pct": float(np.mean(np.array(all_mid) <= 0.12)),
        "max_edge_accel_px": max_acc,
        "accel_bound_px": bound,
    }


def still_framing(cfg: Config, frames: list[Path]) -> dict[str, Any]:
    img = cv2.imread(str(frames[0]))
    size = (img.shape[1], img.shape[0])
    path = []
    with Engine(cfg, size) as engine:
        for i, f in enumerate(frames):
            engine.process(cv2.imread(str(f)), t=i / FPS)
            path.append(edges(engine.studio.crop, size))
    p = np.array(path)
    settle = int(FPS * 3)  # the first seconds zoom in from the full view
    moves = np.abs(np.diff(p[settle:], axis=0)).max() if len(p) > settle + 1 else float("nan")
    return {
        "frames": len(frames),
        "max_move_px_after_3s": float(moves),
        "max_move_px_all": float(np.abs(np.diff(p, axis=0)).max()),
        "zoom_end": float(size[0] / (p[-1][2] - p[-1][0])),
    }


def darken(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    dark = img.astype(np.float32) * DARK
    noise = rng.normal(0.0, 1.0, dark.shape).astype(np.float32) * np.sqrt(0.5 * dark + 2.0)
    return np.clip(np.rint(dark + noise), 0, 255).astype(np.uint8)


def hue_shift(out: np.ndarray, orig: np.ndarray, person: np.ndarray) -> float:
    """The systematic hue change, in degrees, from ``orig`` to ``out`` over the person's
    coloured pixels (saturation ≥ 25 % and value ≥ 20 % in ``orig``; grey has no hue): the
    circular mean of the per-pixel hue differences. Noise moves single pixels' hues both ways
    and averages out; a colour shift moves them all one way and stays."""
    hsv_o = cv2.cvtColor(orig, cv2.COLOR_BGR2HSV_FULL)
    sel = person & (hsv_o[..., 1] >= 64) & (hsv_o[..., 2] >= 51)
    if sel.sum() < 50:
        return 0.0
    hsv_x = cv2.cvtColor(out, cv2.COLOR_BGR2HSV_FULL)
    diff = (hsv_x[..., 0][sel].astype(np.float64) - hsv_o[..., 0][sel]) * (2 * np.pi / 256)
    return abs(math.degrees(math.atan2(np.sin(diff).mean(), np.cos(diff).mean())))


def luma(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)


def low_light(cfg: Config, seqs: list[tuple[str, list[Path], list[Path]]]) -> dict[str, Any]:
    per: dict[str, Any] = {}
    rng = np.random.default_rng(SEED)
    ratios, raw_ratios, hues = [], [], []
    for name, images, masks in seqs:
        first = cv2.imread(str(images[0]))
        size = (first.shape[1], first.shape[0])
        r_seq, raw_seq, hue_seq, gains, raw_hue = [], [], [], [], []
        with Engine(cfg, size) as engine:
            for i, (ip, mp) in enumerate(zip(images, masks, strict=True)):
                orig = cv2.imread(str(ip))
                gt = cv2.imread(str(mp), cv2.IMREAD_GRAYSCALE) > 127
                dark = darken(orig, rng)
                out = engine.process(dark, t=i / FPS)
                m0 = float(np.median(luma(orig)[gt]))
                r_seq.append(float(np.median(luma(out)[gt])) / m0)
                raw_seq.append(float(np.median(luma(dark)[gt])) / m0)
                hue_seq.append(hue_shift(out, orig, gt))
                raw_hue.append(hue_shift(dark, orig, gt))
                gains.append(engine.studio.light.gain)
        per[name] = {
            "median_ratio": float(np.median(r_seq)),
            "frames_within_15pct": float(np.mean(np.abs(np.array(r_seq) - 1) <= 0.15)),
            "uncorrected_ratio": float(np.median(raw_seq)),
            "hue_shift_deg_max": float(np.max(hue_seq)),
            "hue_shift_deg_median": float(np.median(hue_seq)),
            "uncorrected_hue_shift_deg_max": float(np.max(raw_hue)),
            "gain_median": float(np.median(gains)),
        }
        ratios += r_seq
        raw_ratios += raw_seq
        hues += hue_seq
    r = np.array(ratios)
    return {
        "sequences": per,
        "frames_within_15pct": float(np.mean(np.abs(r - 1) <= 0.15)),
        "sequences_within_15pct": int(
            sum(abs(v["median_ratio"] - 1) <= 0.15 for v in per.values())
        ),
        "hue_shift_deg_max": float(np.max(hues)),
        "hue_shift_deg_median": float(np.median(hues)),
    }


def still_light(cfg: Config, frames: list[Path]) -> dict[str, Any]:
    rng = np.random.default_rng(SEED + 1)
    first = cv2.imread(str(frames[0]))
    size = (first.shape[1], first.shape[0])
    with Engine(cfg.replace(**{"effects.light": "off"}), size) as engine:
        engine.process(first)
        alpha = engine.alpha
        assert alpha is not None
        region = alpha > 0.5
    means, raw, gains = [], [], []
    with Engine(cfg, size) as engine:
        for i, f in enumerate(frames):
            img = cv2.imread(str(f))
            dark = darken(img, rng)
            out = engine.process(dark, t=i / FPS)
            means.append(float(luma(out)[region].mean()))
            raw.append(float(luma(img)[region].mean()))
            gains.append(engine.studio.light.gain)
    d = np.abs(np.diff(means))
    return {
        "frames": len(frames),
        "max_step_levels": float(d.max()),
        "mean_step_levels": float(d.mean()),
        "mean_level": float(np.mean(means)),
        "undarkened_max_step_levels": float(np.abs(np.diff(raw)).max()),
        "gain_range": [float(min(gains)), float(max(gains))],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=SHARED / "evaldata" / "davis-dev")
    ap.add_argument("--tools", type=Path, default=SHARED / "tools")
    ap.add_argument("--still", type=Path, default=ROOT / "bgcam" / "data" / "astronaut.jpg")
    ap.add_argument("--frames", type=int, default=150, help="length of the static scene")
    ap.add_argument(
        "--only", choices=("framing", "light"), help="measure one effect (default: both)"
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if not (args.data / "JPEGImages").is_dir() or not (args.tools / "noisy_still.py").is_file():
        print(f"needs {args.data}/JPEGImages and {args.tools}/noisy_still.py", file=sys.stderr)
        return 2
    seqs = []
    for d in sorted((args.data / "JPEGImages").iterdir()):
        images = frames_of(d)
        masks = [args.data / "Annotations" / d.name / f"{p.stem}.png" for p in images]
        seqs.append((d.name, images, masks))
    base = Config().replace(**{"compose.mode": "blur"})
    frame_cfg = base.replace(**{"effects.autoframe": True})
    light_cfg = base.replace(**{"effects.light": "auto", "compose.mode": "off"})
    # A second still with a small, whole person: the crop zooms in and must then hold still.
    small_person = seqs[0][1][0] if seqs else args.still
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        stills = {}
        for key, photo in (("photo", args.still), ("small_person", small_person)):
            out = Path(tmp) / key
            cmd = [sys.executable, str(args.tools / "noisy_still.py"), str(photo), str(out)]
            subprocess.run([*cmd, str(args.frames), "1280"], check=True)
            stills[key] = frames_of(out)
        if args.only in (None, "framing"):
            result["framing"] = framing(frame_cfg, seqs)
            result["framing_still"] = {k: still_framing(frame_cfg, v) for k, v in stills.items()}
        if args.only in (None, "light"):
            result["light"] = low_light(light_cfg, seqs)
            result["light_still"] = still_light(light_cfg, stills["photo"])
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    if "framing" in result:
        report_framing(result["framing"], result["framing_still"])
    if "light" in result:
        report_light(result["light"], result["light_still"])
    return 0


def report_framing(fr: dict[str, Any], stills: dict[str, Any]) -> None:
    print(
        "auto-framing (davis-dev)    within 12 %  oracle  median  p90 (x, y)            "
        "mid±12 %  zoom  max|Δ²edge| px"
    )
    for name, v in fr["sequences"].items():
        print(
            f"  {name:25s} {v['within_12pct']:9.1%}  {v['oracle_within_12pct']:6.1%}"
            f"  {v['err_median']:.3f}  {v['err_p90']:.3f}"
            f" ({v['errx_p90']:.3f}, {v['erry_p90']:.3f})"
            f"  {v['mid_within_12pct']:7.1%}  {v['mean_zoom']:4.2f}  {v['max_edge_accel_px']:.2f}"
        )
    print(
        f"  all frames: {fr['within_12pct']:.1%} within 12 % (target ≥ 90 %), oracle "
        f"{fr['oracle_within_12pct']:.1%}, centre within 12 % of the middle "
        f"{fr['mid_within_12pct']:.1%}; max |Δ²edge| {fr['max_edge_accel_px']:.2f} px, "
        f"bound {fr['accel_bound_px']:.2f} px"
    )
    for key, fs in stills.items():
        print(
            f"still scene ({key}): largest crop move {fs['max_move_px_after_3s']:.3f} px after "
            f"3 s (target < 1), {fs['max_move_px_all']:.2f} px over all frames; "
            f"zoom {fs['zoom_end']:.2f}"
        )


def report_light(li: dict[str, Any], ls: dict[str, Any]) -> None:
    print("low light (35 % + noise)     median/orig  uncorrected  within 15 %  hue max  gain")
    for name, v in li["sequences"].items():
        print(
            f"  {name:25s} {v['median_ratio']:10.3f}  {v['uncorrected_ratio']:10.3f}"
            f"  {v['frames_within_15pct']:10.1%}  {v['hue_shift_deg_max']:6.2f}"
            f"  {v['gain_median']:.2f}"
        )
    print(
        f"  sequences within 15 %: {li['sequences_within_15pct']}/{len(li['sequences'])}; "
        f"frames {li['frames_within_15pct']:.1%}; hue shift max {li['hue_shift_deg_max']:.2f}°, "
        f"median {li['hue_shift_deg_median']:.2f}° (target ≤ 3)"
    )
    print(
        f"still scene: person mean luminance step max {ls['max_step_levels']:.3f} "
        f"(target ≤ 1), mean {ls['mean_step_levels']:.3f}, level {ls['mean_level']:.1f}; "
        f"undarkened input max step {ls['undarkened_max_step_levels']:.3f}; "
        f"gain {ls['gain_range'][0]:.3f}–{ls['gain_range'][1]:.3f}"
    )


if __name__ == "__main__":
    sys.exit(main())
