"""Synthetic scenes for the studio tests: a person-shaped matte and picture that move."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

WORK = (320, 180)
"""The refiner's working size at 1280x720."""


def person_matte(
    cx: float, size: tuple[int, int] = WORK, *, top: float = 0.3, scale: float = 1.0
) -> npt.NDArray[np.uint8]:
    """A seated person's silhouette (head and shoulders running off the bottom edge), centred at
    ``cx`` (share of the width), the head's top at ``top`` (share of the height)."""
    w, h = size
    a = np.zeros((h, w), np.uint8)
    x = round(cx * w)
    r = round(0.09 * h * scale)
    y0 = round(top * h)
    cv2.circle(a, (x, y0 + r), r, 255, -1, cv2.LINE_AA)
    cv2.ellipse(
        a,
        (x, y0 + 2 * r + round(0.45 * h)),
        (round(0.16 * w * scale), round(0.5 * h)),
        0,
        0,
        360,
        255,
        -1,
        cv2.LINE_AA,
    )
    cv2.rectangle(
        a, (x - round(0.04 * w * scale), y0 + r), (x + round(0.04 * w * scale), y0 + 3 * r), 255, -1
    )
    return a


def picture(
    matte: npt.NDArray[np.uint8], size: tuple[int, int], *, level: float = 1.0, seed: int = 0
) -> npt.NDArray[np.uint8]:
    """A frame of ``size`` for ``matte``: a skin-and-shirt coloured person on a grey-green
    room, every value times ``level`` (a dim room below 1), with mild noise."""
    w, h = size
    big = cv2.resize(matte, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255
    room = np.empty((h, w, 3), np.float32)
    room[:] = (110, 130, 120)
    person = np.empty((h, w, 3), np.float32)
    person[:] = (165, 195, 235)  # BGR: a warm skin tone, well exposed
    person[h // 2 :] = (150, 90, 60)  # a blue shirt
    img = room * (1 - big[..., None]) + person * big[..., None]
    rng = np.random.default_rng(seed)
    img = img * level + rng.normal(0, 1.5, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)
