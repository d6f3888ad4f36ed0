"""Placeholder frames ("paused", "camera unavailable", "waiting for a viewer") and the last frame
sent, which they are made from (a blurred, darkened still of it with a short note)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import cv2
import numpy as np

from bgcam.compose.i420 import is_i420, to_bgr
from bgcam.frame import Image
from bgcam.sources import as_image

__all__ = ["Cards", "LastOutput", "make_card"]


class LastOutput:
    """The last frame sent and a sequence number that changes whenever its content does.

    Written by the output thread, read by any (the web preview, the cards).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._image: Image | None = None
        self._seq = 0

    @property
    def image(self) -> Image | None:
        return self._image

    @property
    def seq(self) -> int:
        return self._seq

    def update(self, produce: Callable[[], Image]) -> Image:
        """Store what ``produce()`` returns, holding the lock while it runs: a compositor
        writes its output into the buffer this holds, and a reader must not copy it half-done."""
        with self._lock:
            self._image = image = produce()
            self._seq += 1
            return image

    def bump(self) -> None:
        """The content changed without a new frame (a card was sent)."""
        with self._lock:
            self._seq += 1

    def get(self, copy: bool = True) -> tuple[Image | None, int]:
        """The last frame in BGR (a copy, unless ``copy=False``: the live buffer, which is I420
        when the output is: :func:`~bgcam.compose.i420.is_i420`) and its number."""
        with self._lock:
            out = self._image
            if out is not None and copy:
                out = out.copy() if not is_i420(out) else to_bgr(out)
            return out, self._seq


def make_card(text: str, size: tuple[int, int], base: Image | None) -> Image:
    """``base`` (BGR or I420) shrunk, blurred and darkened (or plain grey) at ``size``, with
    ``text`` centred."""
    w, h = size
    if base is None:
        card = np.full((h, w, 3), 40, np.uint8)
    else:
        small = cv2.resize(
            to_bgr(base), (max(1, w // 8), max(1, h // 8)), interpolation=cv2.INTER_AREA
        )
        small = cv2.GaussianBlur(small, (0, 0), max(1.0, h / 8 / 30))
        card = as_image(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR))
        cv2.convertScaleAbs(card, dst=card, alpha=0.6)
    scale = max(0.4, h / 720 * 1.2)
    thick = max(1, round(scale * 2))
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    org = ((w - tw) // 2, (h + th) // 2)
    cv2.putText(
        card, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA
    )
    return card


class Cards:
    """Cards made from the last output, cached per text and output (not one per tick)."""

    def __init__(self, size: tuple[int, int], last: LastOutput) -> None:
        self.size = size
        self._last = last
        self._card: Image | None = None
        self._key: tuple[str, int] | None = None

    def card(self, text: str) -> Image:
        key = (text, self._last.seq)
        if self._card is not None and self._key == key:
            return self._card
        card = make_card(text, self.size, self._last.image)
        self._last.bump()
        self._card, self._key = card, (text, self._last.seq)
        return card
