"""``virtualcam``: the "BgCam" virtual camera that Zoom, Teams, Meet and OBS list.

Linux: a v4l2loopback device. ``scripts/setup-v4l2loopback.sh`` loads the module with
``card_label=BgCam exclusive_caps=1`` (Chrome lists only devices that advertise capture alone).
The device is found by its V4L2 card name, read from ``/sys/class/video4linux/video*/name``
(pyvirtualcam itself cannot pick a device by name), or taken from ``output.device``. Frames go
through pyvirtualcam as BGR; its v4l2loopback backend converts them to I420 (YU12), a 4:2:0
format Chrome, Firefox, Zoom and OBS all accept, which is why widths (and heights) must be even.

Windows / macOS: pyvirtualcam's own backends (OBS Virtual Camera; on Windows Unity Capture, which
can be registered under the name BgCam and then chosen with ``output.device = "BgCam"``).

pyvirtualcam prints write errors instead of raising them, so this sink checks what it can itself:
frame size and type before each send, and about once a second that the device node still exists.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bgcam.errors import ConfigError, DeviceError
from bgcam.frame import Image

log = logging.getLogger(__name__)

CARD_NAME = "BgCam"
SYSFS_V4L = Path("/sys/class/video4linux")
SETUP_HINT = (
    "load v4l2loopback with the setup script: sudo scripts/setup-v4l2loopback.sh "
    "(or pass --device /dev/videoN); to try BgCam without a virtual camera use --sink null, "
    "--sink preview or --sink file:out.mp4"
)


@dataclass(frozen=True, slots=True)
class VideoDevice:
    """A /dev/videoN node as sysfs describes it."""

    path: str
    card: str
    loopback: bool


def list_video_devices(sysfs: Path = SYSFS_V4L, dev: Path = Path("/dev")) -> list[VideoDevice]:
    """Every V4L2 device node with its card name; ``loopback`` for v4l2loopback devices.

    A v4l2loopback device is recognised by the attributes only it exposes in sysfs
    (``max_openers``/``buffers``) or by living under ``/sys/devices/virtual``.
    """
    out: list[VideoDevice] = []
    try:
        entries = sorted(sysfs.iterdir(), key=lambda p: (len(p.name), p.name))
    except OSError:
        return out
    for entry in entries:
        if not entry.name.startswith("video"):
            continue
        try:
            card = (entry / "name").read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            card = ""
        loopback = (
            (entry / "max_openers").exists()
            or (entry / "buffers").exists()
            or "/virtual/" in str(entry.resolve())
        )
        out.append(VideoDevice(str(dev / entry.name), card, loopback))
    return out


def find_bgcam_device(sysfs: Path = SYSFS_V4L, dev: Path = Path("/dev")) -> str:
    """The device node of the v4l2loopback device named "BgCam"; DeviceError when there is none."""
    devices = list_video_devices(sysfs, dev)
    named = [d for d in devices if d.card == CARD_NAME]
    if named:
        return named[0].path
    loopbacks = [d for d in devices if d.loopback]
    if loopbacks:
        others = ", ".join(f"{d.path} ({d.card!r})" for d in loopbacks)
        raise DeviceError(
            f"no virtual camera named {CARD_NAME!r}; v4l2loopback devices here: {others}",
            hint=f"pass one with --device {loopbacks[0].path}, or reload the module named "
            f"BgCam: sudo scripts/setup-v4l2loopback.sh",
        )
    raise DeviceError(
        f"no virtual camera: v4l2loopback is not loaded (no V4L2 device named {CARD_NAME!r})",
        hint=SETUP_HINT,
    )


def check_device_node(path: str) -> None:
    if not os.path.exists(path):
        raise DeviceError(f"virtual camera device {path} does not exist", hint=SETUP_HINT)
    if not os.access(path, os.W_OK):
        raise DeviceError(
            f"no permission to write to {path}",
            hint="add yourself to the video group: sudo usermod -aG video $USER (then log in "
            "again)",
        )


class VirtualCamSink:
    name = "virtualcam"

    def __init__(self, device: str = "", *, sysfs: Path = SYSFS_V4L) -> None:
        self._requested = device
        self._sysfs = sysfs
        self.device: str | None = None
        self._cam: object | None = None
        self._size = (0, 0)
        self._next_check = 0.0

    def locate(self) -> str | None:
        """The device to open (Linux: found or checked now, so errors come before the camera)."""
        if sys.platform.startswith("linux"):
            path = self._requested or find_bgcam_device(self._sysfs)
            check_device_node(path)
            self.device = path
            return path
        self.device = self._requested or None
        return self.device

    def open(self, size: tuple[int, int], fps: float) -> None:
        w, h = size
        if w % 2 or h % 2:
            raise ConfigError(
                f"virtual camera frames must have an even size, got {w}x{h}",
                hint="set output.width/output.height to even numbers",
            )
        device = self.device if self.device is not None else self.locate()
        try:
            import pyvirtualcam
        except ImportError as exc:  # pragma: no cover - a dependency
            raise DeviceError(
                f"pyvirtualcam cannot be imported: {exc}", hint="pip install pyvirtualcam"
            ) from None
        backend = "v4l2loopback" if sys.platform.startswith("linux") else None
        try:
            self._cam = pyvirtualcam.Camera(
                w, h, fps, fmt=pyvirtualcam.PixelFormat.BGR, device=device, backend=backend
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise DeviceError(
                f"cannot open the virtual camera {device or ''}: {exc}", hint=SETUP_HINT
            ) from None
        self._size = size
        log.info("virtual camera: %s, %dx%d at %.3g fps", device or "default", w, h, fps)

    def send(self, image: Image) -> None:
        cam = self._cam
        if cam is None:
            raise DeviceError("virtual camera is not open")
        h, w = image.shape[:2]
        if (w, h) != self._size or image.ndim != 3:
            raise ValueError(f"virtual camera frame: expected {self._size}, got {(w, h)}")
        now = time.monotonic()
        if self.device and now >= self._next_check:
            self._next_check = now + 1.0
            if not os.path.exists(self.device):
                raise DeviceError(
                    f"the virtual camera {self.device} disappeared (v4l2loopback unloaded?)",
                    hint=SETUP_HINT,
                )
        cam.send(image)  # type: ignore[attr-defined]

    def close(self) -> None:
        cam, self._cam = self._cam, None
        if cam is not None:
            cam.close()  # type: ignore[attr-defined]
