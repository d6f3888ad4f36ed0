"""``preview``: the output in a window (OpenCV HighGUI). Closing it or pressing q/Esc stops."""

from __future__ import annotations

import os
import sys

import cv2

from bgcam.errors import DeviceError
from bgcam.frame import Image
from bgcam.sinks import SinkClosed

WINDOW = "BgCam preview"


class PreviewSink:
    name = "preview"
    device: str | None = None

    def __init__(self) -> None:
        self._open = False

    def open(self, size: tuple[int, int], fps: float) -> None:
        if sys.platform.startswith("linux") and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
        ):
            raise DeviceError(
                "the preview sink needs a display, and neither DISPLAY nor WAYLAND_DISPLAY is set",
                hint="run it in a desktop session, or use --sink file:out.mp4 / --sink null",
            )
        try:
            cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL)
            cv2.resizeWindow(WINDOW, *size)
        except cv2.error as exc:
            raise DeviceError(
                f"cannot open a preview window: {exc}",
                hint="use --sink file:out.mp4 or --sink null",
            ) from None
        self._open = True

    def locate(self) -> str | None:
        return None

    def send(self, image: Image) -> None:
        cv2.imshow(WINDOW, image)
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), 27) or cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) < 1:
            raise SinkClosed("preview window closed")

    def close(self) -> None:
        if self._open:
            self._open = False
            cv2.destroyWindow(WINDOW)
            cv2.waitKey(1)
