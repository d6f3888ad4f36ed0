"""The unit of work that flows through the pipeline."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]
"""A BGR uint8 image of shape (H, W, 3)."""

Mask = npt.NDArray[np.float32]
"""A float32 person probability / alpha map of shape (H, W), values in [0, 1]."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One captured frame: BGR uint8 pixels, its sequence number and capture time.

    ``t_capture`` is ``time.monotonic()`` at capture; latency is measured from it.
    """

    image: Image
    index: int
    t_capture: float

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the image."""
        h, w = self.image.shape[:2]
        return w, h


@dataclass(frozen=True, slots=True)
class ShrunkFrame:
    """A frame and, when made, the same frame shrunk (bilinear) to the refiner's working size.

    The :class:`~bgcam.engine.Engine` shrinks each frame once; the segmenter (which shrinks on to
    its model's input from it), the refiner (its edge guide) and the compositor (where its blur
    starts) all read this one copy. ``small`` is None when nobody made it (a stage then shrinks
    ``image`` itself). Neither array may be written by a stage.
    """

    image: Image
    small: Image | None = None


def resize_bilinear(src: Image, dst: Image) -> Image:
    """``src`` resized into ``dst`` (its size), bilinear, with ``cv2.resize``'s pixel-centre
    geometry and replicated borders, through ``cv2.warpAffine``: within 1 level of
    ``cv2.resize(..., INTER_LINEAR)`` and, in the OpenCV these wheels ship, cheaper at every
    factor (1 thread, BGR: 160x90 → 1280x720 0.38 ms against 1.17 ms; 120x68 → 1920x1080 0.74
    against 2.31 ms; 1280x720 → 320x180 0.11 against 0.16 ms; a 640x640 crop → 512x512 0.37
    against 0.60 ms). Like ``INTER_LINEAR`` it does not average when shrinking: shrink by at
    most 2x with it (:class:`~bgcam.shrink.Shrinker` does the rest by area)."""
    sh, sw = src.shape[:2]
    dh, dw = dst.shape[:2]
    return warp_linear(src, resize_map(sw, sh, dw, dh), dst)


def warp_linear(src: Image, m: npt.NDArray[np.float64], dst: Image) -> Image:
    """``dst`` (its own size) = ``src`` read through ``m``, the 2x3 map from an output pixel to
    its source position: bilinear, replicated borders (the other border modes are ~7x slower
    in this OpenCV)."""
    dh, dw = dst.shape[:2]
    cv2.warpAffine(
        src,
        m,
        (dw, dh),
        dst=dst,
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return dst


@functools.lru_cache(maxsize=16)
def resize_map(sw: int, sh: int, dw: int, dh: int) -> npt.NDArray[np.float64]:
    """The inverse map of :func:`resize_bilinear`: output pixel centre → source position."""
    kx, ky = sw / dw, sh / dh
    m = np.array([[kx, 0.0, 0.5 * kx - 0.5], [0.0, ky, 0.5 * ky - 0.5]], np.float64)
    m.flags.writeable = False
    return m


def upsample_alpha8(
    alpha8_small: npt.NDArray[np.uint8],
    size: tuple[int, int],
    dst: npt.NDArray[np.uint8] | None = None,
) -> npt.NDArray[np.uint8]:
    """The frame-size 8-bit alpha of a working-size one: bilinear (OpenCV ``INTER_LINEAR``).

    This is *the* definition of a matte's full-size alpha: the refiner reports it, every
    compositor blends with it (the CPU one computes only the tiles it needs, bit-exactly).
    """
    w, h = size
    if alpha8_small.shape == (h, w):
        if dst is None:
            return alpha8_small
        np.copyto(dst, alpha8_small)
        return dst
    if dst is None:
        dst = np.empty((h, w), np.uint8)
    cv2.resize(alpha8_small, (w, h), dst=dst, interpolation=cv2.INTER_LINEAR)
    return dst
