"""The ``hsv`` segmenter's background model: a running background image of a still camera.

Where the mask says background, each pixel's colour is learned over frames; a pixel far from it is
foreground, one that matches it is background. A small global shift (a hand-held or panning
camera) is compensated by phase correlation; a large one forgets the model.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]

_LEARN_BG = 0.08  # share of a new frame blended into the background image per frame
_BG_KNOWN_FRAMES = 4.0  # background observations before a pixel's model is fully trusted
_MAX_SHIFT = 0.08  # a global shift above this share of the width resets the background model


class BackgroundModel:
    """Per-pixel background colours, how well each is known, and the camera's drift."""

    def __init__(self, work_size: tuple[int, int]) -> None:
        w, h = work_size
        self.work_size = work_size
        self._smallf = np.empty((h, w, 3), np.float32)
        self._grayf = np.empty((h, w), np.float32)
        self._prev_grayf = np.empty((h, w), np.float32)
        self._window = cv2.createHanningWindow((w, h), cv2.CV_32F)
        self._bg = np.zeros((h, w, 3), np.float32)
        self._known = np.zeros((h, w), np.float32)
        self._tmp = np.empty((h, w), np.float32)
        self._tmp3 = np.empty((h, w, 3), np.float32)
        self._weight = np.empty((h, w), np.float32)

    def forget(self) -> None:
        """Trust no learned pixel any more."""
        self._known.fill(0.0)

    def knows_something(self) -> bool:
        return float(self._known.max()) > 0.0

    def observe(self, small: U8, gray: U8) -> None:
        """Take this frame's working image (BGR) and its grey version."""
        np.copyto(self._grayf, gray, casting="unsafe")
        np.copyto(self._smallf, small, casting="unsafe")

    def follow_camera(self) -> None:
        """Shift the model by the camera's move since the last frame, or forget it if large."""
        if not self.knows_something():
            return
        w, h = self.work_size
        (dx, dy), _ = cv2.phaseCorrelate(self._prev_grayf, self._grayf, self._window)
        dx, dy = float(dx), float(dy)
        if abs(dx) > _MAX_SHIFT * w or abs(dy) > _MAX_SHIFT * h:
            self._known.fill(0.0)
        elif abs(dx) > 0.3 or abs(dy) > 0.3:
            m = np.array([[1, 0, dx], [0, 1, dy]], np.float32)
            # warpAffine cannot work in place: through the scratch buffers
            cv2.warpAffine(self._bg, m, (w, h), dst=self._tmp3, borderMode=cv2.BORDER_REPLICATE)
            np.copyto(self._bg, self._tmp3)
            cv2.warpAffine(self._known, m, (w, h), dst=self._tmp, borderValue=0.0)
            np.copyto(self._known, self._tmp)
            # a moving camera's background is less certain (parallax, zoom)
            self._known *= 0.7

    def add_evidence(self, out: F32) -> bool:
        """Add the background model's log-odds to ``out``; False if the model knows nothing."""
        known = self._known
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

    def learn(self, bg_sel: U8) -> None:
        """Blend this frame into the model where ``bg_sel`` (0–255) says background."""
        # new pixels take the frame as it is; known ones blend towards it
        np.less_equal(self._known, 0.0, out=self._weight)  # bool → 0/1 float
        self._weight *= 1.0 - _LEARN_BG
        self._weight += _LEARN_BG
        np.multiply(self._weight, bg_sel, out=self._weight)
        self._weight *= 1.0 / 255.0
        np.subtract(self._smallf, self._bg, out=self._tmp3)
        self._tmp3 *= self._weight[..., None]
        self._bg += self._tmp3
        np.multiply(bg_sel, 1.0 / (255.0 * _BG_KNOWN_FRAMES), out=self._tmp, casting="unsafe")
        self._known += self._tmp
        np.copyto(self._prev_grayf, self._grayf)
