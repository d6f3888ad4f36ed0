"""The person box: where everyone in the picture is, from the matte.

:class:`BoxFinder` reads an 8-bit matte at the refiner's working size (320x180 for 720p; the
whole frame, or whatever the segment stage tracked) and returns the union box of all person
pixels (alpha ≥ 128) in coordinates normalised to the frame (0–1 in x and y), or ``None`` when
too few pixels are person to trust (nobody in view).

Cheap and robust: two row/column sums into owned buffers (a few µs at the working size), then
the box's edges are where the cumulative person mass passes :data:`TRIM` of the total on each
side, so a speck of false positive far from the person does not stretch the box.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

MIN_AREA = 0.002
"""Share of the matte that must be person (alpha ≥ 128) for the box to count."""
TRIM = 0.005
"""Share of the person mass ignored at each side of the box (specks, stray pixels)."""
BOTTOM_EDGE = 0.97
"""A box reaching this far down is cut by the frame's bottom edge (a seated, webcam shot)."""


@dataclass(frozen=True, slots=True)
class Box:
    """A box in frame-normalised coordinates: x as a share of the width, y of the height."""

    x0: float
    y0: float
    x1: float
    y1: float
    area: float
    """Share of the frame that is person."""

    @property
    def cx(self) -> float:
        return 0.5 * (self.x0 + self.x1)

    @property
    def cy(self) -> float:
        return 0.5 * (self.y0 + self.y1)

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def cut_at_bottom(self) -> bool:
        """The person continues below the frame (only head and shoulders are in view)."""
        return self.y1 >= BOTTOM_EDGE


class BoxFinder:
    """Finds the :class:`Box` of a matte; reuses its buffers while the matte's size stays."""

    def __init__(self) -> None:
        self._bits = np.empty((1, 1), np.uint8)
        self._sums = np.empty(2, np.int32)
        self._cum = np.empty(2, np.float64)
        self._find = np.empty(4, np.float64)

    def find(self, alpha8: npt.NDArray[np.uint8]) -> Box | None:
        """The union box of every person pixel of ``alpha8`` (uint8, (h, w)), or None."""
        if alpha8.ndim != 2 or alpha8.dtype != np.uint8 or alpha8.size == 0:
            raise ValueError(
                f"alpha8: expected a uint8 (h, w) matte, got {alpha8.dtype} {alpha8.shape}"
            )
        h, w = alpha8.shape
        if self._bits.shape != (h, w):
            self._bits = np.empty((h, w), np.uint8)
            self._sums = np.empty(w + h, np.int32)
            self._cum = np.empty(w + h, np.float64)
        sums = self._sums  # the person pixels per column, then per row
        cv2.threshold(alpha8, 127, 1, cv2.THRESH_BINARY, dst=self._bits)
        cv2.reduce(self._bits, 0, cv2.REDUCE_SUM, dst=sums[:w].reshape(1, w), dtype=cv2.CV_32S)
        cv2.reduce(self._bits, 1, cv2.REDUCE_SUM, dst=sums[w:].reshape(h, 1), dtype=cv2.CV_32S)
        # One running count over both: the rows' part continues from the columns' total, so
        # the whole is non-decreasing and the four edges are found in one search.
        cum = np.cumsum(sums, out=self._cum)
        total = int(cum[w - 1])
        if total < MIN_AREA * h * w or total == 0:
            return None
        cut = TRIM * total
        q = self._find
        q[0] = math.floor(cut) + 1  # first column with more than ``cut`` before and in it
        q[1] = total - cut  # last column with less than ``total - cut`` before it
        q[2] = total + q[0]
        q[3] = total + q[1]
        x0, x1, y0, y1 = np.searchsorted(cum, q).tolist()
        return Box(
            x0 / w, (y0 - w) / h, min(w, x1 + 1) / w, min(h, y1 - w + 1) / h, total / (h * w)
        )


def reach(alpha8: npt.NDArray[np.uint8], frame_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1): the frame pixels (of ``frame_size``, width and height) on which the
    bilinear upsample of ``alpha8`` (:func:`bgcam.frame.upsample_alpha8`) can be above 0, with
    a margin; empty (x0 = x1) when the matte is 0 everywhere.

    Any frame pixel's upsampled alpha mixes the two matte pixels on each side of it, so the box
    of the matte's non-zero pixels grown by one matte pixel, scaled, holds them all.
    """
    h, w = alpha8.shape
    fw, fh = frame_size
    x, y, bw, bh = cv2.boundingRect(alpha8)
    if bw == 0 or bh == 0:
        return 0, 0, 0, 0
    sx, sy = fw / w, fh / h
    return (
        max(0, math.floor((x - 1) * sx)),
        max(0, math.floor((y - 1) * sy)),
        min(fw, math.ceil((x + bw + 1) * sx)),
        min(fh, math.ceil((y + bh + 1) * sy)),
    )
