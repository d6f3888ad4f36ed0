"""Background effects: blur kernels and the backgrounds shown in replace and remove modes.

Blur strength is a number 0–100 that looks the same at any resolution: it maps to a Gaussian
sigma of ``strength / 100 * BLUR_SCALE * min(width, height)`` pixels (60 → 3 % of the frame
height, 21.6 px at 720p). The other kernels (box, median, bilateral, lens) are sized to spread
light over a similar distance. Blurs run at a reduced working resolution (``blur_factor``): a
blurred background has no detail to lose, and the work drops with the square of the factor.
No blur works at more than the resolution of :func:`min_factor`, so that every strength costs
about the same; a blur too weak for it gets its fine detail back from the sharp frame
(:func:`sharp_weight`). :class:`bgcam.compose.plan.BlurPlan` gathers these into one plan.

Backgrounds for replace mode: :class:`ImageBackground` (one picture) and
:class:`VideoBackground` (a clip, looped), both resized to the frame with a cover-crop (the
picture fills the frame; what overflows is cut off evenly on both sides).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt

from bgcam.config import ComposeConfig
from bgcam.errors import InputError
from bgcam.frame import Image
from bgcam.imageload import fitted_image

log = logging.getLogger(__name__)

BLUR_SCALE = 0.05
"""Gaussian sigma at strength 100, as a fraction of the frame's shorter side."""

MIN_WORK_SIGMA = 2.0
"""The blur's working resolution is lowered while sigma there stays at least this many pixels."""

COARSE_WORK_SIGMA = 1.0
"""The same for bilateral and lens, whose cost grows with the square of their aperture: they
work at half that resolution again (apertures of 3–9 pixels there)."""

MIN_WORK_ROWS = 90
"""Every blur works at most at the largest reduction of :data:`WORK_FACTORS` keeping this many
rows (720p: 1/8, 90 rows; 1080p: 1/12, 90 rows; 960x540: 1/6; 480p: 1/4, 120 rows), so that
no strength costs more than that working size and weak blurs look alike at every frame size.
Blurs too weak for it are finished with the sharp frame (:func:`sharp_weight`). 1/4 at 720p
looked better (PSNR +5 dB at strength 5) but cost ~1.6x; at 1080p, 1/8 (135 rows) made the weak
blurs cost up to 1.3–1.4x the default (gaussian 60, which works at 1/16)."""

WORK_FACTORS: tuple[int, ...] = (1, 2, 3, 4, 6, 8, 12, 16)
"""The reductions :func:`min_factor` chooses from: powers of two and 1.5 times them, so that the
least working height lands within 90–135 rows at any frame size."""

SHARP_SCALE = 0.28
SHARP_POWER = 1.5
""":func:`sharp_weight` is ``exp(-(sigma / (SHARP_SCALE · factor)) ** SHARP_POWER)``: the weight
that best matched the full-resolution blur (least squares over real frames at 720p and 1080p,
working at 1/4 and 1/8)."""

SHARP_MIN = 0.05
"""A sharp weight below this is dropped (0): the sharp frame's share would move the picture by
at most 0.4 dB PSNR against the full-resolution blur (measured at 1080p strength 10, weight
0.024, on the astronaut and three DAVIS clips), yet cost a full-frame blend (1.75 ms at 1080p)."""

LINEAR_SHARP_MIN = 0.15
"""The same for the linear blurs (gaussian, box, lens). At strength 10 (weight 0.13 at 720p
and 1080p) the frame without the share is as close to the full-resolution blur (gaussian, box,
lens at 720p: PSNR −0.7 to +0.4 dB, SSIM +0.006 to +0.04 on the four test frames), and the blend
cost 2–3 ms at 1080p. The edge-preserving blurs (median, bilateral) lose up to 0.13 SSIM
without it: they work one size finer instead (:meth:`bgcam.compose.plan.BlurPlan.of`)."""

MAX_FACTOR = 16

VIDEO_SUFFIXES = frozenset({".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".gif", ".mpg"})


# --------------------------------------------------------------------------------------------
# Blur geometry


def blur_sigma(strength: float, frame_size: tuple[int, int]) -> float:
    """The Gaussian sigma in full-resolution pixels for a strength 0–100."""
    w, h = frame_size
    return max(0.0, float(strength)) / 100.0 * BLUR_SCALE * min(w, h)


def blur_factor(
    sigma: float, frame_size: tuple[int, int], min_sigma: float = MIN_WORK_SIGMA
) -> int:
    """The largest power-of-two downscale keeping a blur of ``sigma`` (full-res pixels) at
    ``min_sigma`` working pixels or more."""
    w, h = frame_size
    f = 1
    while f < MAX_FACTOR and sigma / (f * 2) >= min_sigma and min(w, h) // (f * 2) >= 16:
        f *= 2
    return f


def min_factor(frame_size: tuple[int, int]) -> int:
    """The downscale every blur at ``frame_size`` works at, at least: the largest of
    :data:`WORK_FACTORS` keeping :data:`MIN_WORK_ROWS` rows."""
    w, h = frame_size
    best = 1
    for f in WORK_FACTORS:
        if min(w, h) // f >= MIN_WORK_ROWS:
            best = f
    return best


def finer_factor(factor: int) -> int:
    """The next smaller reduction of :data:`WORK_FACTORS` (1 for 1)."""
    return max((f for f in WORK_FACTORS if f < factor), default=1)


def sharp_weight(sigma: float, factor: int, least: float = SHARP_MIN) -> float:
    """How much of the sharp frame a weak blur computed at 1/``factor`` is blended with.

    Detail finer than the working resolution cannot come from the small image, and a weak
    blur keeps part of it. Blending the sharp frame with this weight gives that part back: 1 at
    sigma 0 (the frame itself), falling to 0 once the working resolution holds the whole blur
    (fitted, see :data:`SHARP_SCALE`); a weight below ``least`` is dropped (0).
    """
    if sigma <= 0:
        return 1.0
    c = math.exp(-((sigma / (SHARP_SCALE * factor)) ** SHARP_POWER))
    return c if c >= least else 0.0


def box_size(sigma: float) -> int:
    """Box width (odd) whose variance matches a Gaussian of ``sigma``: w^2 / 12 = sigma^2."""
    return max(1, 2 * round(sigma * math.sqrt(12.0) / 2.0) + 1)


def median_size(sigma: float) -> int:
    """An odd median aperture spreading over about the same distance as the Gaussian."""
    return max(3, 2 * round(sigma * 1.5) + 1)


def disc_kernel(radius: float) -> npt.NDArray[np.float32]:
    """A normalised anti-aliased disc (lens bokeh) of ``radius`` pixels, float32 (2r+1)^2."""
    r = max(0.5, float(radius))
    n = math.ceil(r)
    y, x = np.mgrid[-n : n + 1, -n : n + 1].astype(np.float32)
    d = np.sqrt(x * x + y * y)
    k: npt.NDArray[np.float32] = np.clip(r + 0.5 - d, 0.0, 1.0).astype(np.float32)
    k /= np.float32(k.sum())
    return k


def disc_radius(sigma: float) -> float:
    """Disc radius with the Gaussian's variance (a disc of radius r has variance r^2 / 4)."""
    return 2.0 * sigma


# --------------------------------------------------------------------------------------------
# Colours and fitting


def parse_color(value: str) -> tuple[int, int, int]:
    """``#rrggbb`` → a BGR tuple (OpenCV's channel order)."""
    s = value.removeprefix("#")
    if len(s) != 6:
        raise ValueError(f"colour: expected #rrggbb, got {value!r}")
    r, g, b = (int(s[i : i + 2], 16) for i in (0, 2, 4))
    return b, g, r


def fill_color(dst: Image, color: tuple[int, int, int]) -> Image:
    """Fill the BGR image ``dst`` with ``color`` at memory speed (one row, then whole rows).

    ``dst[...] = color`` broadcasts the 3-tuple element by element: 60–100 ms at 720p.
    """
    h, w = dst.shape[:2]
    dst.reshape(h, w * 3)[...] = np.tile(np.array(color, np.uint8), w)
    return dst


def cover_resize(src: Image, size: tuple[int, int], dst: Image | None = None) -> Image:
    """``src`` scaled to fill ``size`` (width, height), the overflow cut evenly (cover-crop)."""
    w, h = size
    sh, sw = src.shape[:2]
    scale = max(w / sw, h / sh)
    cw = min(sw, max(1, round(w / scale)))
    ch = min(sh, max(1, round(h / scale)))
    x0 = (sw - cw) // 2
    y0 = (sh - ch) // 2
    crop = src[y0 : y0 + ch, x0 : x0 + cw]
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    if dst is None:
        dst = np.empty((h, w, 3), np.uint8)
    cv2.resize(crop, (w, h), dst=dst, interpolation=interp)
    return dst


# --------------------------------------------------------------------------------------------
# Backgrounds


class Background(Protocol):
    """Something drawn behind the person in replace mode."""

    def frame(self) -> Image:
        """The background for the next output frame, at frame size (may be reused)."""
        ...

    def close(self) -> None: ...


class ImageBackground:
    """One picture, fitted to the frame once."""

    def __init__(self, path: str | Path, size: tuple[int, int]) -> None:
        self.path = Path(path).expanduser()
        # Prepared by the control surface that asked for it (bgcam.control.commands.prepare).
        self._img = fitted_image(self.path, size, what=f"background {self.path}")

    def frame(self) -> Image:
        return self._img

    def close(self) -> None:
        pass


class VideoBackground:
    """A video clip fitted to the frame, one clip frame per output frame, looped at its end."""

    def __init__(self, path: str | Path, size: tuple[int, int]) -> None:
        self.path = Path(path).expanduser()
        self.size = size
        w, h = size
        self._buf = np.zeros((h, w, 3), np.uint8)
        self._cap = cv2.VideoCapture(str(self.path))
        ok, first = self._cap.read() if self._cap.isOpened() else (False, None)
        if not ok or first is None:
            self._cap.release()
            raise InputError(
                f"background {self.path}: cannot be read as a video",
                hint="set compose.background to a playable video (mp4, webm, …) or an image",
            )
        cover_resize(np.asarray(first, np.uint8), size, self._buf)
        self._pending = True  # the first frame is already in _buf

    def frame(self) -> Image:
        if self._pending:
            self._pending = False
            return self._buf
        ok, img = self._cap.read()
        if not ok:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, img = self._cap.read()
            if not ok:  # a stream that cannot seek: reopen it
                self._cap.release()
                self._cap = cv2.VideoCapture(str(self.path))
                ok, img = self._cap.read()
        if ok and img is not None:
            cover_resize(np.asarray(img, np.uint8), self.size, self._buf)
        else:
            log.warning("background video %s stopped; holding its last frame", self.path)
        return self._buf

    def close(self) -> None:
        self._cap.release()


def open_background(path: str | Path, size: tuple[int, int]) -> Background:
    """An :class:`ImageBackground` or :class:`VideoBackground` for ``path``, by its suffix."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise InputError(
            f"background {p}: no such file",
            hint="set compose.background (or --background) to an existing image or video",
        )
    if p.suffix.lower() in VIDEO_SUFFIXES:
        return VideoBackground(p, size)
    return ImageBackground(p, size)


class BackgroundSlot:
    """The replace-mode background of one compositor, reopened only when its path changes.

    ``current`` is the open :class:`Background` (None until replace mode names a file).
    """

    def __init__(self, frame_size: tuple[int, int]) -> None:
        self.frame_size = frame_size
        self.current: Background | None = None
        self.path = ""

    def update(self, cfg: ComposeConfig) -> bool:
        """Open ``cfg.background`` if replace mode asks for a new one; True when it changed.

        The new file is opened before the old one is closed, so a bad path keeps the old one.
        """
        return self.adopt(cfg, self.opened(cfg))

    def opened(self, cfg: ComposeConfig) -> Background | None:
        """The background ``cfg`` asks for, newly opened, or None when the current one stays.

        Reads nothing but the current path: it may run on a builder thread while the slot is in
        use (the caller owns the result until :meth:`adopt`, and closes it if it drops it).
        """
        if cfg.mode != "replace" or not cfg.background:
            return None
        if self.current is not None and cfg.background == self.path:
            return None
        return open_background(cfg.background, self.frame_size)

    def adopt(self, cfg: ComposeConfig, new: Background | None) -> bool:
        """Put ``new`` (from :meth:`opened` for ``cfg``) in place of the current background."""
        if new is None:
            return False
        self.close()
        self.current, self.path = new, cfg.background
        return True

    def close(self) -> None:
        if self.current is not None:
            self.current.close()
            self.current = None
