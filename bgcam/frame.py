"""The unit of work that flows through the pipeline."""

from __future__ import annotations

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


def check_image(image: object, name: str = "image") -> Image:
    """Return ``image`` if it is a BGR uint8 (H, W, 3) array, else raise ``ValueError``."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"{name}: expected numpy array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{name}: expected shape (H, W, 3), got {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"{name}: expected dtype uint8, got {image.dtype}")
    return image


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
