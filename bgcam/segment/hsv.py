"""The no-model fallback segmenter for weak hardware: scene-calibrated colour segmentation.

The classic fallback keeps every pixel whose HSV saturation is at least 75 and value at least 40
(:func:`classic_threshold`). That picks colourful things, not people: white shirts are lost and red
walls are kept. This segmenter keeps the cheapness (a few ms per 720p frame on one thread, no model
file) but decides per pixel from four cues, combined as log-odds at a low working resolution:

* **Body prior.** A frontal face found by OpenCV's Haar cascade anchors a head-and-torso shape
  below it. OpenCV 5 wheels no longer bundle the cascade files: :func:`find_face_cascade` looks in
  the model dir, ``cv2.data`` (OpenCV 4) and the system folders, and :func:`fetch_face_cascade`
  copies it out of a pinned OpenCV 4 wheel. Without a face, the previous frame's mask (carried
  forward, widened) and a weak centre prior stand in; that works for a moving person, not for a
  still portrait.
* **Colour model of the scene.** Person and background colour histograms (YCrCb) learned from the
  confident parts of previous masks, blended over frames. Seeded by the face region (skin, hair)
  and the frame itself: colours that are common in the frame are background, rare ones are not.
* **Background model.** While the camera stands still, a per-pixel running background image is
  learned where the mask says background; a pixel far from it is foreground, a pixel that matches
  it is background. A small global shift (a hand-held or panning camera) is compensated by phase
  correlation; a large change of the whole picture resets every learned model (new scene).
* **Shape clean-up.** Morphological close/open, then only the connected regions touching the
  face (or the previous mask) are kept, and the result is softened at the edges.

The state is carried across frames, so feed one sequence in order; :meth:`HsvSegmenter.reset`
forgets it (it is also called by itself when the scene changes a lot).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from bgcam.config import SegmentConfig
from bgcam.errors import ModelError
from bgcam.frame import Image, Mask, ShrunkFrame
from bgcam.models import fixed_wheel_args
from bgcam.segment import register
from bgcam.shrink import Shrinker

log = logging.getLogger(__name__)

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]

WORK_WIDTH = 256
"""Width of the working resolution (the height keeps the frame's aspect ratio)."""

CASCADE_NAME = "haarcascade_frontalface_default.xml"
CASCADE_SHA256 = "0f7d4527844eb514d4a4948e822da90fbb16a34a0bbbbc6adc6498747a5aafb0"
# OpenCV 4 wheels bundle the cascades in cv2/data (OpenCV 5 wheels do not): one fixed wheel.
CASCADE_PIP_ARGS = fixed_wheel_args("opencv-python-headless==4.14.0.94")
_SYSTEM_CASCADE_DIRS = (
    "/usr/share/opencv4/haarcascades",  # Debian/Ubuntu package opencv-data
    "/usr/share/opencv/haarcascades",
    "/usr/local/share/opencv4/haarcascades",
    "/opt/homebrew/share/opencv4/haarcascades",
    "/usr/local/share/opencv/haarcascades",
)

# Histogram of YCrCb colours: coarse in luma (lighting changes), finer in chroma. Binned by
# hand (bit shifts): cv2.calcBackProject returns zeros for 3-D histograms of YCrCb images in
# OpenCV 5.0.
_SHIFTS = np.array([5, 4, 4], np.uint8)  # Y: 8 bins, Cr: 16, Cb: 16
_NBINS = 8 * 16 * 16

_LEARN_COLOUR = 0.25  # share of a new colour histogram blended in per frame
_LEARN_BG = 0.08  # share of a new frame blended into the background image per frame
_BG_KNOWN_FRAMES = 4.0  # background observations before a pixel's model is fully trusted
_SCENE_CUT = 28.0  # mean |Δ| (0–255) of a 32x18 thumbnail that means a new scene
_MAX_SHIFT = 0.08  # a global shift above this share of the width resets the background model
_FACE_MISSES = 12  # frames without a detection before the tracked face is dropped
_MAX_AREA_NO_FACE = 0.75  # without a face, a mask covering more than this is a runaway


def classic_threshold(image: Image) -> npt.NDArray[np.bool_]:
    """The classic fixed HSV rule: person where saturation ≥ 75 and value ≥ 40 (full size)."""
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
    out: npt.NDArray[np.bool_] = (hsv[..., 1] >= 75) & (hsv[..., 2] >= 40)
    return out


def find_face_cascade() -> Path | None:
    """The frontal-face Haar cascade file, or None when none is installed.

    Looked up in ``$BGCAM_FACE_CASCADE`` (a file), the model dir (``BGCAM_MODEL_DIR`` or the user
    data dir; :func:`fetch_face_cascade` puts it there), ``cv2.data`` (OpenCV 4 wheels bundle it;
    OpenCV 5 wheels do not), and the usual system folders (the Debian/Ubuntu package
    ``opencv-data``).
    """
    candidates: list[Path] = []
    try:
        from bgcam.models import model_dir

        candidates.append(model_dir() / CASCADE_NAME)
    except Exception:  # pragma: no cover - model_dir only fails on a broken platform
        pass
    data = getattr(cv2, "data", None)
    folder = getattr(data, "haarcascades", None)
    if isinstance(folder, str) and folder:
        candidates.append(Path(folder) / CASCADE_NAME)
    extra = os.environ.get("BGCAM_FACE_CASCADE")
    if extra:
        candidates.insert(0, Path(extra))
    candidates.extend(Path(d) / CASCADE_NAME for d in _SYSTEM_CASCADE_DIRS)
    for path in candidates:
        if path.is_file():
            return path
    return None


def fetch_face_cascade(dest_dir: Path | None = None) -> Path:
    """Put the frontal-face Haar cascade into ``dest_dir`` (default: the model dir).

    Downloads one fixed OpenCV 4 wheel with pip (not installed), takes
    ``cv2/data/haarcascade_frontalface_default.xml`` out of it and checks its sha256.
    """
    from bgcam.models import model_dir
    from bgcam.models.fetch import write_atomic

    dest = (dest_dir or model_dir()) / CASCADE_NAME
    command = "python -m pip " + " ".join(CASCADE_PIP_ARGS) + " -d DIR"
    with tempfile.TemporaryDirectory(prefix="bgcam-cascade-") as tmp:
        cmd = [sys.executable, "-m", "pip", *CASCADE_PIP_ARGS, "-d", tmp, "--no-input", "-q"]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wheels = sorted(Path(tmp).glob("opencv_python_headless-*.whl"))
        if proc.returncode != 0 or not wheels:
            reason = (proc.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
            raise ModelError(
                f"could not download the face cascade (an OpenCV 4 wheel) with pip: {reason}",
                hint=f"check the network, or run `{command}` and copy "
                f"cv2/data/{CASCADE_NAME} from the wheel (a zip) to {dest}",
            )
        with zipfile.ZipFile(wheels[0]) as zf:
            data = zf.read(f"cv2/data/{CASCADE_NAME}")
    if hashlib.sha256(data).hexdigest() != CASCADE_SHA256:
        raise ModelError(f"the face cascade in {wheels[0].name} has an unexpected sha256")
    dest.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(dest, data)
    log.info("face cascade written to %s", dest)
    return dest


def _logit(p: F32, out: F32, eps: float = 1e-3) -> F32:
    np.clip(p, eps, 1.0 - eps, out=out)
    np.divide(out, 1.0 - out, out=out)
    np.log(out, out=out)
    return out


class HsvSegmenter:
    """Scene-calibrated colour segmenter; see the module docstring."""

    name = "hsv"

    def __init__(
        self,
        cfg: SegmentConfig | None = None,
        frame_size: tuple[int, int] = (1280, 720),
        *,
        cascade: Path | bool | None = True,
    ) -> None:
        """``cascade``: True finds the face cascade, False disables faces, or a path to one."""
        fw, fh = frame_size
        self.work_size = (WORK_WIDTH, max(16, round(WORK_WIDTH * fh / max(fw, 1))))
        w, h = self.work_size
        path: Path | None
        if cascade is True:
            path = find_face_cascade()
        elif cascade is False or cascade is None:
            path = None
        else:
            path = Path(cascade)
        self._cascade: cv2.CascadeClassifier | None = None
        if path is not None:
            c = cv2.CascadeClassifier(str(path))
            if c.empty():
                log.warning("hsv: cannot load face cascade %s; running without faces", path)
            else:
                self._cascade = c
        if self._cascade is None and cascade is True:
            log.warning(
                "hsv: no face cascade (%s) found; segmenting without a face anchor. Get it "
                "with `bgcam models fetch` (or install the OS package opencv-data)",
                CASCADE_NAME,
            )
        self.cascade_path = path if self._cascade is not None else None
        # Working buffers, all owned and reused.
        self._shrinker = Shrinker((w, h))
        self._small = np.empty((h, w, 3), np.uint8)
        self._ycc = np.empty((h, w, 3), np.uint8)
        self._gray = np.empty((h, w), np.uint8)
        self._grayf = np.empty((h, w), np.float32)
        self._prev_grayf = np.empty((h, w), np.float32)
        self._window = cv2.createHanningWindow((w, h), cv2.CV_32F)
        self._thumb = np.empty((18, 32), np.uint8)
        self._prev_thumb = np.empty((18, 32), np.uint8)
        self._prior = np.empty((h, w), np.float32)
        self._q = np.empty((h, w, 3), np.uint8)
        self._bins = np.empty((h, w), np.intp)
        self._bins_tmp = np.empty((h, w), np.intp)
        self._colour = np.empty((h, w), np.float32)
        self._logit = np.empty((h, w), np.float32)
        self._tmp = np.empty((h, w), np.float32)
        self._tmp3 = np.empty((h, w, 3), np.float32)
        self._smallf = np.empty((h, w, 3), np.float32)
        self._weight = np.empty((h, w), np.float32)
        self._bg = np.zeros((h, w, 3), np.float32)
        self._bg_known = np.zeros((h, w), np.float32)
        self._shape = np.empty((h, w), np.uint8)
        self._binary = np.empty((h, w), np.uint8)
        self._keep = np.empty((h, w), np.uint8)
        self._labels = np.empty((h, w), np.int32)
        self._fg_sel = np.empty((h, w), np.uint8)
        self._bg_sel = np.empty((h, w), np.uint8)
        self._prev_mask = np.zeros((h, w), np.float32)
        self._out = np.empty((h, w), np.float32)
        self._centre = self._centre_prior(w, h)
        sizes = [20.0]
        while sizes[-1] < 0.8 * h:
            sizes.append(sizes[-1] * 1.35)
        self._face_bands = [(round(a), round(b) + 1) for a, b in itertools.pairwise(sizes)]
        if not self._face_bands:
            self._face_bands = [(20, 21)]
        # most likely webcam face sizes (about a third of the height) first
        self._face_bands.sort(key=lambda band: abs(np.log(band[0] / (0.3 * h))))
        self._centre_seed = np.maximum(self._centre - 0.2, 0.0).astype(np.float32)
        self._border = np.zeros((h, w), np.uint8)
        bw = max(2, w // 14)
        self._border[:bw] = 1
        self._border[:, :bw] = 1
        self._border[:, -bw:] = 1
        self._border_seed = (self._border + 0.15).astype(np.float32)  # edges + the whole frame
        self._k3 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
        self._k5 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
        self._k9 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))
        self._hist_fg = np.zeros(_NBINS, np.float64)
        self._hist_bg = np.zeros(_NBINS, np.float64)
        self._ratio = np.empty(_NBINS, np.float32)
        self.reset()
        log.info(
            "segmenter hsv: %dx%d, face cascade %s", w, h, self.cascade_path or "not available"
        )

    # ------------------------------------------------------------------ state

    def reset(self) -> None:
        """Forget everything learned about the scene (colours, background, face, last mask)."""
        self._frames = 0
        self._have_colour = False
        self._bg_known.fill(0.0)
        self._prev_mask.fill(0.0)
        self._have_mask = False
        self._face: tuple[float, float, float, float] | None = None
        self._face_misses = 0
        self._have_prev = False

    @staticmethod
    def _centre_prior(w: int, h: int) -> F32:
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        d = ((xs - w / 2) / (0.3 * w)) ** 2 + ((ys - 0.6 * h) / (0.5 * h)) ** 2
        out: F32 = (0.12 + 0.23 * np.exp(-0.5 * d)).astype(np.float32)
        return out

    # ------------------------------------------------------------------ cues

    def _detect_face(self) -> None:
        """Update the tracked face box (x, y, w, h in working pixels) from the cascade."""
        if self._cascade is None:
            return
        if self._face is not None and self._face_misses == 0 and self._frames % 2:
            return  # a tracked face moves little between two frames: look every other frame
        w, h = self.work_size
        gray = self._gray
        found: tuple[float, float, float, float] | None = None
        if self._face is not None:
            fx, fy, fw, fh = self._face
            x0, y0 = max(0, int(fx - 0.6 * fw)), max(0, int(fy - 0.6 * fh))
            x1, y1 = min(w, int(fx + 1.6 * fw)), min(h, int(fy + 1.6 * fh))
            roi = gray[y0:y1, x0:x1]
            lo, hi = max(20, int(fw * 0.75)), int(fw * 1.35) + 1
            if roi.shape[0] >= lo and roi.shape[1] >= lo:
                faces = self._cascade.detectMultiScale(
                    roi, scaleFactor=1.12, minNeighbors=3, minSize=(lo, lo), maxSize=(hi, hi)
                )
                if len(faces):
                    best = max(faces, key=lambda r: int(r[2]))
                    found = (
                        float(best[0] + x0),
                        float(best[1] + y0),
                        float(best[2]),
                        float(best[3]),
                    )
        if found is None and self._face is None:
            # A whole-frame search costs ~15 ms here: spread it over frames, one band of face
            # sizes per frame (a full sweep every len(bands) frames, ~2–4 ms each).
            lo, hi = self._face_bands[self._frames % len(self._face_bands)]
            faces = self._cascade.detectMultiScale(
                gray, scaleFactor=1.1, minNeighbors=3, minSize=(lo, lo), maxSize=(hi, hi)
            )
            if len(faces):
                best = max(faces, key=lambda r: int(r[2]))
                found = tuple(float(v) for v in best)  # type: ignore[assignment]
        if found is not None:
            if self._face is not None:
                a = 0.5  # smooth the box: Haar boxes jitter by a few pixels
                self._face = tuple(  # type: ignore[assignment]
                    a * n + (1 - a) * o for n, o in zip(found, self._face, strict=True)
                )
            else:
                self._face = found
                # a newly found face seeds the colour model again from the body shape under it,
                # and what was learned as background without it is not trusted
                self._have_colour = False
                self._bg_known.fill(0.0)
            self._face_misses = 0
        elif self._face is not None:
            self._face_misses += 1
            if self._face_misses > _FACE_MISSES:
                self._face = None

    def _build_prior(self) -> None:
        """Person prior in [0, 1]: body shape under the face, else last mask and the centre."""
        prior, shape = self._prior, self._shape
        h = self.work_size[1]
        if self._face is not None:
            fx, fy, fw, fh = self._face
            cx = fx + fw / 2
            shape.fill(0)
            # head with hair, neck, shoulders and torso down to the bottom edge
            cv2.ellipse(
                shape,
                (round(cx), round(fy + 0.45 * fh)),
                (round(0.62 * fw), round(0.78 * fh)),
                0,
                0,
                360,
                255,
                -1,
            )
            cv2.rectangle(
                shape,
                (round(cx - 0.35 * fw), round(fy + 0.8 * fh)),
                (round(cx + 0.35 * fw), round(fy + 1.6 * fh)),
                255,
                -1,
            )
            sh_y = fy + 2.1 * fh
            cv2.ellipse(
                shape,
                (round(cx), round(sh_y)),
                (round(1.55 * fw), round(0.75 * fh)),
                0,
                180,
                360,
                255,
                -1,
            )
            pts = np.array(
                [
                    [cx - 1.55 * fw, sh_y],
                    [cx + 1.55 * fw, sh_y],
                    [cx + 1.85 * fw, h + 4.0 * fh],
                    [cx - 1.85 * fw, h + 4.0 * fh],
                ],
                np.int32,
            )
            cv2.fillConvexPoly(shape, pts, 255)
            sigma = max(1.0, 0.22 * fw)
            cv2.GaussianBlur(shape, (0, 0), sigma, dst=self._binary)
            # 0.1 far away, 0.9 deep inside
            np.multiply(self._binary, 0.8 / 255.0, out=prior, casting="unsafe")
            prior += 0.1
            if self._have_mask:
                # the last mask also counts (arms, hands, hair beyond the template)
                np.multiply(self._prev_mask, 0.75, out=self._tmp)
                np.maximum(prior, self._tmp, out=prior)
        elif self._have_mask:
            cv2.dilate(self._prev_mask, self._k9, dst=self._tmp)
            cv2.GaussianBlur(self._tmp, (0, 0), 3.0, dst=prior)
            np.multiply(prior, 0.6, out=prior)
            prior += 0.15
            np.maximum(prior, self._centre, out=prior)
        else:
            np.copyto(prior, self._centre)

    def _colour_bins(self) -> None:
        """Histogram bin of every working pixel into ``self._bins``."""
        np.right_shift(self._ycc, _SHIFTS, out=self._q)
        b, t = self._bins, self._bins_tmp
        np.copyto(b, self._q[..., 0], casting="unsafe")
        np.left_shift(b, 8, out=b)
        np.copyto(t, self._q[..., 1], casting="unsafe")
        np.left_shift(t, 4, out=t)
        b |= t
        np.copyto(t, self._q[..., 2], casting="unsafe")
        b |= t

    def _learn_colour(self, fg_sel: U8 | F32, bg_sel: U8 | F32, rate: float) -> None:
        """Blend the colour histograms of the weighted pixels (weights ≥ 0) into the model."""
        bins = self._bins.ravel()
        hf = np.bincount(bins, weights=fg_sel.ravel(), minlength=_NBINS).astype(np.float64)
        hb = np.bincount(bins, weights=bg_sel.ravel(), minlength=_NBINS).astype(np.float64)
        nf, nb = float(hf.sum()), float(hb.sum())
        if nf >= 30 * float(fg_sel.max(initial=1)):
            hf /= nf
            if self._have_colour:
                self._hist_fg *= 1 - rate
                self._hist_fg += rate * hf
            else:
                np.copyto(self._hist_fg, hf)
        if nb >= 30 * float(bg_sel.max(initial=1)):
            hb /= nb
            if self._have_colour:
                self._hist_bg *= 1 - rate
                self._hist_bg += rate * hb
            else:
                np.copyto(self._hist_bg, hb)
        if nf > 0 and nb > 0:
            self._have_colour = True

    def _colour_evidence(self) -> bool:
        """P(person | colour) per pixel into ``self._colour``; False if nothing is learned."""
        if not self._have_colour:
            return False
        # A share of uniform mass keeps unseen colours neutral-to-foreground (rare colours in a
        # scene dominated by background are more likely the person).
        u = 1.0 / _NBINS
        fg = 0.7 * self._hist_fg + 0.3 * u
        np.divide(fg, self._hist_bg + fg + 1e-9, out=self._ratio, casting="unsafe")
        np.take(self._ratio, self._bins, out=self._colour)
        return True

    def _global_shift(self) -> tuple[float, float]:
        (dx, dy), _ = cv2.phaseCorrelate(self._prev_grayf, self._grayf, self._window)
        return float(dx), float(dy)

    def _background_evidence(self, out: F32) -> bool:
        """Add the background model's log-odds to ``out``; False if the model knows nothing."""
        if not self._have_prev:
            return False
        known = self._bg_known
        if float(known.max()) <= 0.0:
            return False
        tmp3 = self._tmp3
        cv2.absdiff(self._smallf, self._bg, dst=tmp3)
        d = self._tmp
        cv2.transform(tmp3, np.ones((1, 3), np.float32) / 3.0, dst=d)  # mean |Δ| over channels
        # |Δ| ≤ 6 → strong background, ≥ 30 → strong foreground
        np.subtract(d, 18.0, out=d)
        np.multiply(d, 0.25, out=d)
        np.clip(d, -2.5, 3.0, out=d)
        np.minimum(known, 1.0, out=self._weight)
        np.multiply(d, self._weight, out=d)
        out += d
        return True

    def _update_background(self, bg_sel: U8) -> None:
        # new pixels take the frame as it is; known ones blend towards it
        np.less_equal(self._bg_known, 0.0, out=self._weight)  # bool → 0/1 float
        self._weight *= 1.0 - _LEARN_BG
        self._weight += _LEARN_BG
        np.multiply(self._weight, bg_sel, out=self._weight)
        self._weight *= 1.0 / 255.0
        np.subtract(self._smallf, self._bg, out=self._tmp3)
        self._tmp3 *= self._weight[..., None]
        self._bg += self._tmp3
        np.multiply(bg_sel, 1.0 / (255.0 * _BG_KNOWN_FRAMES), out=self._tmp, casting="unsafe")
        self._bg_known += self._tmp

    # ------------------------------------------------------------------ main

    def segment(self, frame: ShrunkFrame) -> Mask:
        w, h = self.work_size
        np.copyto(self._small, self._shrinker.shrink(frame))
        cv2.cvtColor(self._small, cv2.COLOR_BGR2YCrCb, dst=self._ycc)
        cv2.cvtColor(self._small, cv2.COLOR_BGR2GRAY, dst=self._gray)
        self._colour_bins()
        cv2.resize(self._gray, (32, 18), dst=self._thumb, interpolation=cv2.INTER_AREA)
        np.copyto(self._grayf, self._gray, casting="unsafe")
        np.copyto(self._smallf, self._small, casting="unsafe")

        if self._have_prev:
            cut = float(cv2.norm(self._thumb, self._prev_thumb, cv2.NORM_L1)) / self._thumb.size
            if cut > _SCENE_CUT:
                log.debug("hsv: scene change (%.1f), resetting", cut)
                self.reset()
        if self._have_prev and float(self._bg_known.max()) > 0.0:
            dx, dy = self._global_shift()
            if abs(dx) > _MAX_SHIFT * w or abs(dy) > _MAX_SHIFT * h:
                self._bg_known.fill(0.0)
            elif abs(dx) > 0.3 or abs(dy) > 0.3:
                m = np.array([[1, 0, dx], [0, 1, dy]], np.float32)
                # warpAffine cannot work in place: through the scratch buffers
                cv2.warpAffine(self._bg, m, (w, h), dst=self._tmp3, borderMode=cv2.BORDER_REPLICATE)
                np.copyto(self._bg, self._tmp3)
                cv2.warpAffine(self._bg_known, m, (w, h), dst=self._tmp, borderValue=0.0)
                np.copyto(self._bg_known, self._tmp)
                # a moving camera's background is less certain (parallax, zoom)
                self._bg_known *= 0.7

        self._detect_face()
        self._build_prior()

        if not self._have_colour:
            # seed: the person where the prior is high (the face's body shape, else the middle
            # of the frame), the background where it is low and along the top and side edges
            if self._face is not None:
                np.greater(self._prior, 0.7, out=self._fg_sel)
                np.less(self._prior, 0.3, out=self._bg_sel)
                self._bg_sel |= self._border
                self._learn_colour(self._fg_sel, self._bg_sel, 1.0)
            else:
                self._learn_colour(self._centre_seed, self._border_seed, 1.0)

        lg = _logit(self._prior, self._logit)
        if self._colour_evidence():
            _logit(self._colour, self._tmp, eps=0.02)
            cv2.scaleAdd(self._tmp, 1.2, lg, dst=lg)
        self._background_evidence(lg)

        # posterior, then shape clean-up on the decision
        np.greater(lg, 0.0, out=self._binary)
        self._binary *= 255
        cv2.morphologyEx(self._binary, cv2.MORPH_CLOSE, self._k5, dst=self._binary)
        cv2.morphologyEx(self._binary, cv2.MORPH_OPEN, self._k3, dst=self._binary)
        self._keep_anchored()

        # soft output: sigmoid of the log-odds inside the kept region, feathered
        np.clip(lg, -8.0, 8.0, out=lg)
        np.negative(lg, out=lg)
        np.exp(lg, out=lg)
        lg += 1.0
        np.reciprocal(lg, out=self._out)
        np.multiply(self._keep, 1.0 / 255.0, out=self._tmp, casting="unsafe")
        np.multiply(self._out, self._tmp, out=self._out)
        np.multiply(self._tmp, 0.6, out=self._weight)
        np.maximum(self._out, self._weight, out=self._out)
        cv2.GaussianBlur(self._out, (5, 5), 0, dst=self._out)
        np.clip(self._out, 0.0, 1.0, out=self._out)

        # learn from this frame's confident parts
        cv2.erode(self._keep, self._k5, dst=self._fg_sel)
        cv2.dilate(self._keep, self._k9, dst=self._bg_sel)
        cv2.bitwise_not(self._bg_sel, dst=self._bg_sel)
        self._update_background(self._bg_sel)
        np.copyto(self._prev_mask, self._out)
        area = cv2.countNonZero(self._keep) / float(w * h)
        self._have_mask = area > 0.002
        if self._face is None and (area < 0.002 or area > _MAX_AREA_NO_FACE):
            self._have_colour = False  # lost (or flooded): seed again from the next frame
        else:
            if self._face is None:
                # without a face nothing vouches for the kept region's colours: the more of
                # the frame they cover, the more they count as background (keeps a wrong
                # region from feeding itself)
                np.maximum(self._bg_sel, self._keep // 4, out=self._bg_sel)
            self._learn_colour(self._fg_sel, self._bg_sel, _LEARN_COLOUR)
        np.copyto(self._prev_thumb, self._thumb)
        np.copyto(self._prev_grayf, self._grayf)
        self._have_prev = True
        self._frames += 1
        return self._out

    def _keep_anchored(self) -> None:
        """Keep the connected regions of ``_binary`` that touch the face or the last mask."""
        n, _, stats, _ = cv2.connectedComponentsWithStats(
            self._binary, labels=self._labels, connectivity=8
        )
        labels = self._labels
        keep = self._keep
        keep.fill(0)
        if n <= 1:
            return
        areas = stats[1:, cv2.CC_STAT_AREA]
        anchor_ids: set[int] = set()
        if self._face is not None:
            fx, fy, fw, fh = self._face
            x0, y0 = max(0, int(fx + 0.25 * fw)), max(0, int(fy + 0.25 * fh))
            x1, y1 = int(fx + 0.75 * fw) + 1, int(fy + 0.75 * fh) + 1
            ids = np.unique(labels[y0:y1, x0:x1])
            anchor_ids.update(int(i) for i in ids if i > 0)
            # the torso just below the chin
            ty0, ty1 = int(fy + 1.8 * fh), int(fy + 2.6 * fh)
            if ty0 < labels.shape[0]:
                ids = np.unique(labels[ty0:ty1, x0:x1])
                anchor_ids.update(int(i) for i in ids if i > 0)
        elif self._have_mask:
            core = self._prev_mask > 0.6
            ids, counts = np.unique(labels[core], return_counts=True)
            anchor_ids.update(int(i) for i, c in zip(ids, counts, strict=True) if i > 0 and c > 3)
        if not anchor_ids:
            anchor_ids.add(int(np.argmax(areas)) + 1)
        lut = np.zeros(n, np.uint8)
        lut[list(anchor_ids)] = 255
        np.take(lut, labels, out=keep)

    def close(self) -> None:
        self._cascade = None


@register("hsv")
def _create(cfg: SegmentConfig, frame_size: tuple[int, int]) -> HsvSegmenter:
    return HsvSegmenter(cfg, frame_size)
