"""Low-light correction: brighten an underexposed person with one cheap pass.

**What is measured.** Only the person (matte ≥ 128), on the refiner's working-size copy of the
frame (320x180 at 720p; shrinking averages sensor noise away): the grey level below which
:data:`PERCENTILE` (99 %) of the person's pixels lie, the person's *highlights*. A properly
exposed person's highlights sit near white whatever they wear (on the davis-dev clips the 99th
percentile is 204–254 while the median is 53–146), so this is the exposure cue: a person whose
highlights are at 80 is underexposed by about :data:`TARGET_LEVEL` / 80. A bright window or
lamp behind them is not part of the person and does not dim them.

**The curve.** ``gain`` = ``TARGET_LEVEL / highlights``, at least 1 (never darker) and at most
``effects.light_max_gain``, raised to ``effects.light_strength`` (0 = off, 1 = full). Every
channel is multiplied by that gain, saturating at white (:func:`tone_curve`): R, G and B are
scaled alike, so hue and saturation are unchanged and only luminance moves, and noise stays in
proportion to the picture (a gamma curve would raise the noise of the darkest pixels most, into
blotches). Since the gain puts the person's 99th percentile at :data:`TARGET_LEVEL`, about 1 %
of the person reaches white. An earlier version rolled the brightest fifth off with a
shoulder instead of clipping; on davis-dev (35 % darkened) that bent the hue of saturated
highlights more (up to 2.8° against 2.0° for the straight gain) and needed a lookup-table pass
(``cv2.LUT``, 1.0–2.0 ms at 720p here) where the saturating scale (``cv2.convertScaleAbs``)
takes 0.5–0.6 ms.

**No pumping.** The measured gain moves the goal only when it differs from it by more than
:data:`DEAD_BAND` (6 %), and the applied gain follows the goal in log space with a critically
damped :class:`~bgcam.studio.follow.Follower` that settles in :data:`SETTLE` (2 s) and
accelerates gently: noise, a person moving or a window brightening do not make it breathe.
While nobody is in view the gain is held. The first measurement is taken at once (the
picture starts right rather than brightening over two seconds).

**Cost.** Off: nothing runs. On: a histogram at the working size (under 0.1 ms) and one
saturating scale pass over the frame, or only over the part the compositor reads (where the
matte reaches, when it blurs from the shrunk frame, replaces or removes; with auto-framing, the
part of the frame the crop reads there), and over the shrunk frame.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import numpy.typing as npt

from bgcam.frame import Image
from bgcam.studio.box import MIN_AREA
from bgcam.studio.follow import Follower

PERCENTILE = 0.99
"""Share of the person's pixels at or below the level the exposure is judged by."""
TARGET_LEVEL = 228.0
"""Grey level the person's highlights (the :data:`PERCENTILE` level) are brought up to."""
DEAD_BAND = 0.06
"""Relative change of the measured gain that moves the goal (smaller ones are ignored)."""
SETTLE = 2.0
"""Seconds the applied gain takes to settle on a new goal."""
ACCEL = 0.5
"""Bound on the log-gain's acceleration per s² (a change by e^0.5 takes at least 2 s)."""


def tone_curve(gain: float) -> npt.NDArray[np.uint8]:
    """The curve as a 256-entry table, for reference and tests: ``x · gain`` rounded, saturating
    at 255 (:meth:`LightCorrector.apply` computes exactly this with one scale pass)."""
    u = np.arange(256, dtype=np.float64) * max(1.0, gain)
    lut: npt.NDArray[np.uint8] = np.clip(np.rint(u), 0, 255).astype(np.uint8)
    return lut


class LightCorrector:
    """Measures the person's exposure and brightens frames by the smoothed gain."""

    def __init__(self, *, strength: float = 1.0, max_gain: float = 4.0) -> None:
        self.strength = strength
        self.max_gain = max_gain
        self._log_gain = Follower(0.0, settle=SETTLE, accel=ACCEL, snap=1e-4)
        self._grey = np.empty((1, 1), np.uint8)
        self._mask = np.empty((1, 1), np.uint8)
        self._hist = np.empty((256, 1), np.float32)
        self._cum = np.empty(256, np.float64)
        self.highlights: float | None = None
        """The last measured :data:`PERCENTILE` level of the person (None before any)."""

    def configure(self, *, strength: float, max_gain: float) -> None:
        self.strength, self.max_gain = strength, max_gain

    @property
    def gain(self) -> float:
        """The gain applied now (1 = unchanged)."""
        return math.exp(self._log_gain.value)

    def reset(self) -> None:
        self._log_gain.reset(0.0)
        self.highlights = None

    def measure(self, small: Image, alpha8: npt.NDArray[np.uint8]) -> None:
        """Take the person's exposure from ``small`` (the frame at the matte's size) and the
        matte; set the goal when it moved past the dead band. Nobody in view: keep it."""
        h, w = alpha8.shape
        if small.shape[:2] != (h, w):
            raise ValueError(f"small: expected shape ({h}, {w}, 3), got {small.shape}")
        if self._grey.shape != (h, w):
            self._grey = np.empty((h, w), np.uint8)
            self._mask = np.empty((h, w), np.uint8)
        cv2.cvtColor(small, cv2.COLOR_BGR2GRAY, dst=self._grey)
        cv2.threshold(alpha8, 127, 255, cv2.THRESH_BINARY, dst=self._mask)
        hist = cv2.calcHist([self._grey], [0], self._mask, [256], [0, 256], hist=self._hist)
        cum = np.cumsum(hist.reshape(-1), out=self._cum)
        total = float(cum[-1])
        if total < MIN_AREA * h * w:
            return
        level = float(np.searchsorted(cum, PERCENTILE * total)) + 0.5
        first = self.highlights is None
        self.highlights = level
        gain = min(self.max_gain, max(1.0, TARGET_LEVEL / level))
        want = self.strength * math.log(gain)
        if first:  # the picture starts right; only later changes are eased
            self._log_gain.reset(want)
        elif abs(want - self._log_gain.goal) > math.log1p(DEAD_BAND):
            self._log_gain.goal = want

    def step(self, dt: float) -> float:
        """Advance the smoothing by ``dt`` seconds; return the gain."""
        self._log_gain.step(min(max(dt, 0.0), 0.1))
        return self.gain

    def apply(self, image: Image, dst: Image) -> Image:
        """``dst`` = ``image`` times the gain, saturating (one ``cv2.convertScaleAbs`` pass;
        may be in place)."""
        cv2.convertScaleAbs(image, dst=dst, alpha=self.gain)
        return dst
