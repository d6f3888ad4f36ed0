"""Low-light correction: brighten an underexposed person with one lookup-table pass.

**What is measured.** Only the person (matte ≥ 128), on the refiner's working-size copy of the
frame (320x180 at 720p; shrinking averages sensor noise away): the grey level below which
:data:`PERCENTILE` (99 %) of the person's pixels lie, the person's *highlights*. A properly
exposed person's highlights sit near white whatever they wear (on the davis-dev clips the
99th percentile is 204–254 while the median is 53–146), so this is the exposure cue: a person
whose highlights are at 80 is underexposed by about :data:`TARGET_LEVEL` / 80. A bright window
or lamp behind them is not part of the person and does not dim them.

**The curve.** ``gain`` = ``TARGET_LEVEL / highlights``, at least 1 (never darker) and at most
``effects.light_max_gain``, raised to ``effects.light_strength`` (0 = off, 1 = full). The curve
multiplies every channel by that gain up to a knee, then rolls off smoothly towards white
(:func:`tone_curve`): below the knee (where an underexposed person is) R, G and B are scaled
alike, so hue and saturation are unchanged and only luminance moves; the shoulder only keeps
highlights from clipping. A straight gain also keeps noise in proportion to the picture (a
gamma curve would raise the noise of the darkest pixels most, into blotches).

**No pumping.** The measured gain moves the goal only when it differs from it by more than
:data:`DEAD_BAND` (6 %), and the applied gain follows the goal in log space with a critically
damped :class:`~bgcam.studio.follow.Follower` that settles in :data:`SETTLE` (2 s) and
accelerates gently: noise, a person moving or a window brightening do not make it breathe.
While nobody is in view the gain is held. The first measurement is taken at once (the
picture starts right rather than brightening over two seconds).

**Cost.** Off: nothing runs. On: a histogram at the working size (µs) and one ``cv2.LUT`` pass
over the frame; the 256-entry table is rebuilt only when the gain has moved by 0.1 %.
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
KNEE = 0.8
"""Lowest knee of the curve, as a share of white. Channels are scaled alike below it, so hue is
kept exactly; above it each channel rolls off on its own, which bends the hue of saturated
highlights a little (a red jacket on davis-dev at gain 2.8: up to 3.2° with a knee at 0.5,
3.3° at 0.75 on some frames, 2.0° at 0.8) in exchange for detail in the brightest fifth."""
REBUILD = 1e-3
"""Change of the log-gain at which the lookup table is rebuilt."""

_LEVELS = np.arange(256, dtype=np.float64) / 255.0


def tone_curve(gain: float) -> npt.NDArray[np.uint8]:
    """The 256-entry table: ``x · gain`` up to a knee, then a smooth shoulder towards white.

    The knee is at 1.5 − gain / 2 of full scale, between :data:`KNEE` and 1 (no shoulder at
    gain 1, so gain 1 is the identity); above it ``k + (1 − k)(1 − e^{−(u − k)/(1 − k)})``,
    which has the same value and slope at the knee and never reaches white.
    """
    u = _LEVELS * max(1.0, gain)
    k = min(1.0, max(KNEE, 1.5 - 0.5 * gain))
    if k < 1.0:
        over = u > k
        u[over] = k + (1.0 - k) * (1.0 - np.exp(-(u[over] - k) / (1.0 - k)))
    lut: npt.NDArray[np.uint8] = np.clip(np.rint(u * 255.0), 0, 255).astype(np.uint8)
    return lut


class LightCorrector:
    """Measures the person's exposure and brightens frames by the smoothed gain."""

    def __init__(self, *, strength: float = 1.0, max_gain: float = 4.0) -> None:
        self.strength = strength
        self.max_gain = max_gain
        self._log_gain = Follower(0.0, settle=SETTLE, accel=ACCEL, snap=1e-4)
        self._lut = tone_curve(1.0)
        self._lut_at = 0.0
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

    @property
    def lut(self) -> npt.NDArray[np.uint8]:
        """The table for the current gain (rebuilt only when the gain moved)."""
        g = self._log_gain.value
        if abs(g - self._lut_at) > REBUILD or (g == 0.0 and self._lut_at != 0.0):
            self._lut = tone_curve(math.exp(g))
            self._lut_at = g
        return self._lut

    def apply(self, image: Image, dst: Image) -> Image:
        """``dst`` = ``image`` through the curve (one ``cv2.LUT`` pass; may be in place)."""
        cv2.LUT(image, self.lut, dst=dst)
        return dst
