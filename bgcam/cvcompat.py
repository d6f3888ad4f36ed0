"""Typed wrappers for the OpenCV calls whose stubs change between OpenCV releases.

OpenCV's bundled type stubs disagree across versions about optional arguments (``map2=None`` in
``remap``) and scalar operands (``compare``/``absdiff`` with a number). Calling through these
helpers keeps ``mypy --strict`` green under the locked OpenCV and the newest one alike, without a
``type: ignore`` whose need depends on the stub version.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

_cv: Any = cv2  # untyped view: the wrappers below carry the types


def remap(
    src: npt.NDArray[Any],
    xy: npt.NDArray[np.float32],
    dst: npt.NDArray[Any],
    interpolation: int,
    *,
    y: npt.NDArray[np.float32] | None = None,
) -> None:
    """In place: ``dst(p) = src(xy(p))`` from one two-channel map, edges replicated; with
    ``y``, from two one-channel maps (``xy`` then holds x only). ``interpolation`` may carry
    ``cv2.WARP_RELATIVE_MAP``: then ``dst(p) = src(p + xy(p))``."""
    _cv.remap(src, xy, y, interpolation, dst, cv2.BORDER_REPLICATE)


def compare_scalar(
    src: npt.NDArray[Any], value: float, op: int, dst: npt.NDArray[np.uint8]
) -> None:
    """In place: ``dst = 255 where (src op value) else 0``."""
    _cv.compare(src, value, op, dst=dst)


def absdiff_scalar(src: npt.NDArray[Any], value: float, dst: npt.NDArray[Any]) -> None:
    """In place: ``dst = |src - value|``."""
    _cv.absdiff(src, value, dst=dst)
