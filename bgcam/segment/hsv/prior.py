"""The ``hsv`` segmenter's person prior: where a person probably is before looking at colours.

A tracked face anchors a head-and-torso shape below it. Without a face, the previous frame's mask
(widened) and a weak centre prior stand in: that follows a moving person, not a still portrait.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from bgcam.segment.hsv.face import Box

F32 = npt.NDArray[np.float32]


def centre_prior(w: int, h: int) -> F32:
    """A weak person prior (0.12–0.35) centred low in the frame, where a webcam user sits."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    d = ((xs - w / 2) / (0.3 * w)) ** 2 + ((ys - 0.6 * h) / (0.5 * h)) ** 2
    out: F32 = (0.12 + 0.23 * np.exp(-0.5 * d)).astype(np.float32)
    return out


class BodyPrior:
    """Builds the person prior in [0, 1] into an owned buffer."""

    def __init__(self, work_size: tuple[int, int]) -> None:
        w, h = work_size
        self.height = h
        self.centre = centre_prior(w, h)
        self.prior = np.empty((h, w), np.float32)
        self._shape = np.empty((h, w), np.uint8)
        self._blurred = np.empty((h, w), np.uint8)
        self._tmp = np.empty((h, w), np.float32)
        self._k9 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))

    def build(self, face: Box | None, last_mask: F32 | None) -> F32:
        """Body shape under the face, else the last mask and the centre."""
        prior, shape = self.prior, self._shape
        h = self.height
        if face is not None:
            fx, fy, fw, fh = face
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
            cv2.GaussianBlur(shape, (0, 0), sigma, dst=self._blurred)
            # 0.1 far away, 0.9 deep inside
            np.multiply(self._blurred, 0.8 / 255.0, out=prior, casting="unsafe")
            prior += 0.1
            if last_mask is not None:
                # the last mask also counts (arms, hands, hair beyond the template)
                np.multiply(last_mask, 0.75, out=self._tmp)
                np.maximum(prior, self._tmp, out=prior)
        elif last_mask is not None:
            cv2.dilate(last_mask, self._k9, dst=self._tmp)
            cv2.GaussianBlur(self._tmp, (0, 0), 3.0, dst=prior)
            np.multiply(prior, 0.6, out=prior)
            prior += 0.15
            np.maximum(prior, self.centre, out=prior)
        else:
            np.copyto(prior, self.centre)
        return prior
