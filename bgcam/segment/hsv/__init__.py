"""The no-model fallback segmenter for weak hardware: scene-calibrated colour segmentation.

The classic fallback (:func:`classic_threshold`, HSV saturation ≥ 75 and value ≥ 40) picks
colourful things, not people: white shirts are lost and red walls are kept. :class:`HsvSegmenter`
keeps the cheapness (no model file, one thread) but decides per pixel from four cues, combined as
log-odds at a low working resolution: a body prior anchored by a face (:mod:`.prior`,
:mod:`.face`), a colour model of the scene (:mod:`.colour`), a background model of a still camera
(:mod:`.background`), and a shape clean-up that keeps the regions touching the face or the last
mask. State is carried across frames, so feed one sequence in order; :meth:`HsvSegmenter.reset`
forgets it (also called by itself when the scene changes a lot).
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from bgcam.config import SegmentConfig
from bgcam.frame import Image, Mask, ShrunkFrame
from bgcam.segment import register
from bgcam.segment.hsv.background import BackgroundModel
from bgcam.segment.hsv.colour import ColourModel
from bgcam.segment.hsv.face import (
    CASCADE_NAME,
    CASCADE_PIP_ARGS,
    CASCADE_SHA256,
    FaceTracker,
    fetch_face_cascade,
    find_face_cascade,
    load_face_cascade,
)
from bgcam.segment.hsv.prior import BodyPrior
from bgcam.shrink import Shrinker

__all__ = [
    "CASCADE_NAME",
    "CASCADE_PIP_ARGS",
    "CASCADE_SHA256",
    "WORK_WIDTH",
    "HsvSegmenter",
    "classic_threshold",
    "fetch_face_cascade",
    "find_face_cascade",
]

log = logging.getLogger(__name__)

F32 = npt.NDArray[np.float32]

WORK_WIDTH = 256
"""Width of the working resolution (the height keeps the frame's aspect ratio)."""

_LEARN_COLOUR = 0.25  # share of a new colour histogram blended in per frame
_SCENE_CUT = 28.0  # mean |Δ| (0–255) of a 32x18 thumbnail that means a new scene
_MAX_AREA_NO_FACE = 0.75  # without a face, a mask covering more than this is a runaway


def classic_threshold(image: Image) -> npt.NDArray[np.bool_]:
    """The classic fixed HSV rule: person where saturation ≥ 75 and value ≥ 40 (full size)."""
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
    out: npt.NDArray[np.bool_] = (hsv[..., 1] >= 75) & (hsv[..., 2] >= 40)
    return out


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
        classifier, self.cascade_path = load_face_cascade(cascade)
        self._faces = FaceTracker(classifier, self.work_size)
        self._prior = BodyPrior(self.work_size)
        self._colours = ColourModel(self.work_size)
        self._background = BackgroundModel(self.work_size)
        # Working buffers, all owned and reused.
        self._shrinker = Shrinker((w, h))
        self._small = np.empty((h, w, 3), np.uint8)
        self._ycc = np.empty((h, w, 3), np.uint8)
        self._gray = np.empty((h, w), np.uint8)
        self._thumb = np.empty((18, 32), np.uint8)
        self._prev_thumb = np.empty((18, 32), np.uint8)
        self._logit = np.empty((h, w), np.float32)
        self._tmp = np.empty((h, w), np.float32)
        self._weight = np.empty((h, w), np.float32)
        self._binary = np.empty((h, w), np.uint8)
        self._keep = np.empty((h, w), np.uint8)
        self._labels = np.empty((h, w), np.int32)
        self._fg_sel = np.empty((h, w), np.uint8)
        self._bg_sel = np.empty((h, w), np.uint8)
        self._prev_mask = np.zeros((h, w), np.float32)
        self._out = np.empty((h, w), np.float32)
        self._centre_seed = np.maximum(self._prior.centre - 0.2, 0.0).astype(np.float32)
        border = np.zeros((h, w), np.uint8)
        bw = max(2, w // 14)
        border[:bw] = 1
        border[:, :bw] = 1
        border[:, -bw:] = 1
        self._border = border
        self._border_seed = (border + 0.15).astype(np.float32)  # edges + the whole frame
        self._k3 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
        self._k5 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
        self._k9 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))
        self.reset()
        log.info(
            "segmenter hsv: %dx%d, face cascade %s", w, h, self.cascade_path or "not available"
        )

    def reset(self) -> None:
        """Forget everything learned about the scene (colours, background, face, last mask)."""
        self._frames = 0
        self._colours.learned = False
        self._background.forget()
        self._prev_mask.fill(0.0)
        self._have_mask = False
        self._faces.reset()
        self._have_prev = False

    def segment(self, frame: ShrunkFrame) -> Mask:
        w, h = self.work_size
        np.copyto(self._small, self._shrinker.shrink(frame))
        cv2.cvtColor(self._small, cv2.COLOR_BGR2YCrCb, dst=self._ycc)
        cv2.cvtColor(self._small, cv2.COLOR_BGR2GRAY, dst=self._gray)
        self._colours.bin(self._ycc)
        cv2.resize(self._gray, (32, 18), dst=self._thumb, interpolation=cv2.INTER_AREA)
        self._background.observe(self._small, self._gray)

        if self._have_prev:
            cut = float(cv2.norm(self._thumb, self._prev_thumb, cv2.NORM_L1)) / self._thumb.size
            if cut > _SCENE_CUT:
                log.debug("hsv: scene change (%.1f), resetting", cut)
                self.reset()
        if self._have_prev:
            self._background.follow_camera()

        if self._faces.update(self._gray, self._frames):
            # a newly found face seeds the colour model again from the body shape under it,
            # and what was learned as background without it is not trusted
            self._colours.learned = False
            self._background.forget()
        face = self._faces.face
        prior = self._prior.build(face, self._prev_mask if self._have_mask else None)

        if not self._colours.learned:
            # seed: the person where the prior is high (the face's body shape, else the middle
            # of the frame), the background where it is low and along the top and side edges
            if face is not None:
                np.greater(prior, 0.7, out=self._fg_sel)
                np.less(prior, 0.3, out=self._bg_sel)
                self._bg_sel |= self._border
                self._colours.learn(self._fg_sel, self._bg_sel, 1.0)
            else:
                self._colours.learn(self._centre_seed, self._border_seed, 1.0)

        lg = _logit(prior, self._logit)
        colour = self._colours.evidence()
        if colour is not None:
            _logit(colour, self._tmp, eps=0.02)
            cv2.scaleAdd(self._tmp, 1.2, lg, dst=lg)
        if self._have_prev:
            self._background.add_evidence(lg)

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
        self._background.learn(self._bg_sel)
        np.copyto(self._prev_mask, self._out)
        area = cv2.countNonZero(self._keep) / float(w * h)
        self._have_mask = area > 0.002
        if face is None and (area < 0.002 or area > _MAX_AREA_NO_FACE):
            self._colours.learned = False  # lost (or flooded): seed again from the next frame
        else:
            if face is None:
                # without a face nothing vouches for the kept region's colours: the more of
                # the frame they cover, the more they count as background (keeps a wrong
                # region from feeding itself)
                np.maximum(self._bg_sel, self._keep // 4, out=self._bg_sel)
            self._colours.learn(self._fg_sel, self._bg_sel, _LEARN_COLOUR)
        np.copyto(self._prev_thumb, self._thumb)
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
        face = self._faces.face
        if face is not None:
            fx, fy, fw, fh = face
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
        self._faces.close()


@register("hsv")
def _create(cfg: SegmentConfig, frame_size: tuple[int, int]) -> HsvSegmenter:
    return HsvSegmenter(cfg, frame_size)
