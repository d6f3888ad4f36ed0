"""Cheap, anti-aliased downscaling of whole frames into preallocated buffers.

A bilinear resize (:func:`~bgcam.frame.resize_bilinear`) to twice the target (each output pixel
then averages a 2x2 sample of its block) followed by an exact 2:1 ``INTER_AREA`` gives nearly the
box average that ``INTER_AREA`` straight from a full frame gives, for a tenth of its cost.
"""

from __future__ import annotations

import cv2
import numpy as np

from bgcam.frame import Image, ShrunkFrame, resize_bilinear


class Shrinker:
    """Shrinks BGR uint8 frames to ``size`` (width, height), reusing its buffers.

    ``shrink(frame)`` returns the shrunk image in a buffer the Shrinker owns (overwritten by the
    next call).
    """

    def __init__(self, size: tuple[int, int]) -> None:
        w, h = self.size = (int(size[0]), int(size[1]))
        self._dst: Image = np.empty((h, w, 3), np.uint8)
        self._mid: Image = np.empty((2 * h, 2 * w, 3), np.uint8)

    def shrink(self, frame: ShrunkFrame) -> Image:
        """``frame.image`` shrunk to :attr:`size`. When ``frame.small`` (the same frame already
        shrunk, bilinear) is at least :attr:`size`, it is shrunk instead of the full frame: by
        one bilinear pass when it is at most twice the size (each output pixel then reads the
        2x2 block it covers), else as a frame is."""
        w, h = self.size
        image, hint = frame.image, frame.small
        if hint is not None:
            hint_h, hint_w = hint.shape[:2]
            if hint_w >= w and hint_h >= h:
                if hint_w <= 2 * w and hint_h <= 2 * h and (hint_w, hint_h) != (w, h):
                    return resize_bilinear(hint, self._dst)
                image = hint
        src_h, src_w = image.shape[:2]
        if (src_w, src_h) == (w, h):
            np.copyto(self._dst, image)
        elif src_w > 2 * w and src_h > 2 * h:
            resize_bilinear(image, self._mid)
            cv2.resize(self._mid, (w, h), dst=self._dst, interpolation=cv2.INTER_AREA)
        else:
            cv2.resize(image, (w, h), dst=self._dst, interpolation=cv2.INTER_AREA)
        return self._dst
