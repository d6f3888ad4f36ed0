"""The ``hsv`` segmenter's colour model of the scene: P(person | colour) per pixel.

Person and background colour histograms (YCrCb) are learned from the confident parts of previous
masks and blended over frames. Coarse in luma (lighting changes), finer in chroma; binned by hand
with bit shifts, because ``cv2.calcBackProject`` returns zeros for 3-D histograms of YCrCb images
in OpenCV 5.0.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]

_SHIFTS = np.array([5, 4, 4], np.uint8)  # Y: 8 bins, Cr: 16, Cb: 16
NBINS = 8 * 16 * 16


class ColourModel:
    """Person and background colour histograms, and the per-pixel evidence they give."""

    def __init__(self, work_size: tuple[int, int]) -> None:
        w, h = work_size
        self._q = np.empty((h, w, 3), np.uint8)
        self._bins = np.empty((h, w), np.intp)
        self._bins_tmp = np.empty((h, w), np.intp)
        self._colour = np.empty((h, w), np.float32)
        self._hist_fg = np.zeros(NBINS, np.float64)
        self._hist_bg = np.zeros(NBINS, np.float64)
        self._ratio = np.empty(NBINS, np.float32)
        self.learned = False
        """True once both histograms hold something; set False to seed again."""

    def bin(self, ycc: U8) -> None:
        """Work out the histogram bin of every pixel of this frame's YCrCb working image."""
        np.right_shift(ycc, _SHIFTS, out=self._q)
        b, t = self._bins, self._bins_tmp
        np.copyto(b, self._q[..., 0], casting="unsafe")
        np.left_shift(b, 8, out=b)
        np.copyto(t, self._q[..., 1], casting="unsafe")
        np.left_shift(t, 4, out=t)
        b |= t
        np.copyto(t, self._q[..., 2], casting="unsafe")
        b |= t

    def learn(self, fg_sel: U8 | F32, bg_sel: U8 | F32, rate: float) -> None:
        """Blend the colour histograms of the weighted pixels (weights ≥ 0) into the model."""
        bins = self._bins.ravel()
        hf = np.bincount(bins, weights=fg_sel.ravel(), minlength=NBINS).astype(np.float64)
        hb = np.bincount(bins, weights=bg_sel.ravel(), minlength=NBINS).astype(np.float64)
        nf, nb = float(hf.sum()), float(hb.sum())
        self._blend(self._hist_fg, hf, nf, fg_sel, rate)
        self._blend(self._hist_bg, hb, nb, bg_sel, rate)
        if nf > 0 and nb > 0:
            self.learned = True

    def _blend(
        self,
        hist: npt.NDArray[np.float64],
        new: npt.NDArray[np.float64],
        n: float,
        sel: U8 | F32,
        rate: float,
    ) -> None:
        """Blend the histogram ``new`` of ``n`` weighted pixels into ``hist`` (if enough)."""
        if n < 30 * float(sel.max(initial=1)):
            return
        new /= n
        if self.learned:
            hist *= 1 - rate
            hist += rate * new
        else:
            np.copyto(hist, new)

    def evidence(self) -> F32 | None:
        """P(person | colour) per pixel (an owned buffer), or None when nothing is learned."""
        if not self.learned:
            return None
        # A share of uniform mass keeps unseen colours neutral-to-foreground (rare colours in a
        # scene dominated by background are more likely the person).
        u = 1.0 / NBINS
        fg = 0.7 * self._hist_fg + 0.3 * u
        np.divide(fg, self._hist_bg + fg + 1e-9, out=self._ratio, casting="unsafe")
        np.take(self._ratio, self._bins, out=self._colour)
        return self._colour
