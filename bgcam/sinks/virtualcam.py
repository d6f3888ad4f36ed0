"""``virtualcam``: the "BgCam" virtual camera that Zoom, Teams, Meet and OBS list.

Linux: a v4l2loopback device. ``scripts/setup-v4l2loopback.sh`` loads the module with
``card_label=BgCam exclusive_caps=1`` (Chrome lists only devices that advertise capture alone).
The device is found by its V4L2 card name, read from ``/sys/class/video4linux/video*/name``
(pyvirtualcam itself cannot pick a device by name), or taken from ``output.device``. Frames go
to the device in I420 (YU12, see **Pixel format**), a 4:2:0 format Chrome, Firefox, Zoom and OBS
all accept, which is why widths (and heights) must be even.

Windows / macOS: pyvirtualcam's own backends (OBS Virtual Camera; on Windows Unity Capture, which
can be registered under the name BgCam and then chosen with ``output.device = "BgCam"``).

pyvirtualcam prints write errors instead of raising them, so this sink checks what it can itself:
frame size and type before each send, and about once a second that the device node still exists.

**Finding the device**: by driver *and* card label, never by number (numbers change with boot
order and other cameras): a node whose V4L2 driver is v4l2loopback (``VIDIOC_QUERYCAP`` reports
``v4l2 loopback``; without access to the node, the sysfs attributes only v4l2loopback creates)
and whose card label is ``output.device_name``.

**A stuck device**: a v4l2loopback device left behind by a crashed writer (or by a reader that
keeps it streaming) can advertise no output side or refuse a new writer's format. Like OBS, the
sink then resets the device (its current format written back, streaming started and stopped
once, closed) and tries once more after a short pause before giving up with the fix (close what
uses it, or reload the module).

**Pixel format** (``output.pixel_format``): I420 (default: 4:2:0, 1.5 bytes a pixel, what Chrome,
Firefox and Zoom read natively) or YUYV (4:2:2 packed, 2 bytes a pixel, what OBS's virtual camera
writes; a few apps list only packed formats). YUYV frames are converted here into an owned
buffer. In I420 the device is opened in pyvirtualcam's ``PixelFormat.I420``, which takes the
buffer as it is: the sink takes I420 frames (``send_i420``, composed straight into I420 by the CPU
compositor) and converts a BGR frame itself (OpenCV, into an owned buffer).

**One reader at a time** (v4l2loopback ≥ 0.14 with ``exclusive_caps=1``): a second app that opens
the camera while one streams may fail; make a second device for it (README).
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from bgcam.errors import ConfigError, DeviceError
from bgcam.frame import Image
from bgcam.v4l2 import querycap

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


VIDIOC_STREAMOFF = (1 << 30) | (4 << 16) | (ord("V") << 8) | 19
V4L2_BUF_TYPE_VIDEO_OUTPUT = 2
LOOPBACK_DRIVER = "v4l2 loopback"


def query_driver(path: str) -> str | None:
    """The V4L2 driver name of ``path`` (VIDIOC_QUERYCAP), or None when it cannot be asked."""
    cap = querycap(path)
    if cap is None:
        return None
    driver: bytes = cap.driver
    return driver.decode(errors="replace")


def is_loopback(device: VideoDevice) -> bool:
    """v4l2loopback by its driver name when the node answers, else by its sysfs attributes."""
    driver = query_driver(device.path)
    return driver == LOOPBACK_DRIVER if driver is not None else device.loopback


def find_bgcam_device(
    sysfs: Path = SYSFS_V4L, dev: Path = Path("/dev"), *, card_name: str = CARD_NAME
) -> str:
    """The node of the v4l2loopback device labelled ``card_name``; DeviceError when none is."""
    devices = list_video_devices(sysfs, dev)
    loopbacks = [d for d in devices if is_loopback(d)]
    named = [d for d in loopbacks if d.card == card_name]
    if named:
        return named[0].path
    if loopbacks:
        others = ", ".join(f"{d.path} ({d.card!r})" for d in loopbacks)
        raise DeviceError(
            f"no virtual camera named {card_name!r}; v4l2loopback devices here: {others}",
            hint=f"pass one with --device {loopbacks[0].path}, or reload the module named "
            f"{card_name}: sudo scripts/setup-v4l2loopback.sh",
        )
    raise DeviceError(
        f"no virtual camera: v4l2loopback is not loaded (no v4l2loopback device named "
        f"{card_name!r})",
        hint=SETUP_HINT,
    )


V4L2_CAP_VIDEO_OUTPUT = 0x00000002
_FORMAT_SIZE = 208  # struct v4l2_format on 64-bit Linux: u32 type + a 200-byte union, 8-aligned
VIDIOC_G_FMT = (3 << 30) | (_FORMAT_SIZE << 16) | (ord("V") << 8) | 4
VIDIOC_S_FMT = (3 << 30) | (_FORMAT_SIZE << 16) | (ord("V") << 8) | 5
VIDIOC_STREAMON = (1 << 30) | (4 << 16) | (ord("V") << 8) | 18


def advertises_output(path: str) -> bool | None:
    """Whether ``path`` currently offers a video *output* (writer) side; None if unknown."""
    cap = querycap(path)
    return None if cap is None else bool(cap.device_caps & V4L2_CAP_VIDEO_OUTPUT)


def reset_device(path: str) -> bool:
    """Put a stuck v4l2loopback device back into a state a new writer can take.

    With ``exclusive_caps=1`` a device whose last writer died without closing cleanly can be
    left advertising capture only, and a new writer's format is refused. The reset writes the
    device's current output format back, starts and stops streaming once, closes it, and checks
    that it offers an output again (the approach OBS's virtual camera takes).
    """
    try:
        import fcntl

        fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
    except (ImportError, OSError):
        return False
    buf_type = ctypes.c_int(V4L2_BUF_TYPE_VIDEO_OUTPUT)
    fmt = (ctypes.c_uint8 * _FORMAT_SIZE)()
    ctypes.c_uint32.from_buffer(fmt).value = V4L2_BUF_TYPE_VIDEO_OUTPUT
    try:
        fcntl.ioctl(fd, VIDIOC_G_FMT, fmt)
        fcntl.ioctl(fd, VIDIOC_S_FMT, fmt)
        fcntl.ioctl(fd, VIDIOC_STREAMON, buf_type)
        fcntl.ioctl(fd, VIDIOC_STREAMOFF, buf_type)
    except OSError as exc:
        log.debug("resetting %s failed: %s", path, exc)
        return False
    finally:
        os.close(fd)
    return advertises_output(path) is not False


def bgr_to_yuyv(
    image: npt.NDArray[np.uint8], i420: npt.NDArray[np.uint8], out: npt.NDArray[np.uint8]
) -> None:
    """BGR (H, W, 3) → packed YUYV (H, W*2) into ``out``; ``i420`` is an (H*3/2, W) scratch.

    Through OpenCV's I420 conversion (BT.601, video range, what V4L2 readers expect); each
    chroma row serves two picture rows (4:2:0 chroma shown as 4:2:2).
    """
    cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420, dst=i420)
    h, w = image.shape[:2]
    q = h * w // 4
    y = i420[:h]
    u = i420[h:].reshape(-1)[:q].reshape(h // 2, w // 2)
    v = i420[h:].reshape(-1)[q:].reshape(h // 2, w // 2)
    quads = out.reshape(h, w // 2, 4)
    quads[:, :, 0] = y[:, 0::2]
    quads[:, :, 2] = y[:, 1::2]
    for row in (0, 1):
        quads[row::2, :, 1] = u
        quads[row::2, :, 3] = v


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

    def __init__(
        self,
        device: str = "",
        *,
        sysfs: Path = SYSFS_V4L,
        card_name: str = CARD_NAME,
        pixel_format: str = "I420",
    ) -> None:
        self._requested = device
        self._sysfs = sysfs
        self.card_name = card_name
        self.pixel_format = pixel_format
        self._yuv: npt.NDArray[np.uint8] | None = None
        self._packed: npt.NDArray[np.uint8] | None = None
        self.device: str | None = None
        self._cam: object | None = None
        self._size = (0, 0)
        self._next_check = 0.0
        self._i420 = False
        """Opened in pyvirtualcam's I420 (v4l2loopback, pixel format I420)."""

    def locate(self) -> str | None:
        """The device to open (Linux: found or checked now, so errors come before the camera)."""
        if sys.platform.startswith("linux"):
            path = self._requested or find_bgcam_device(self._sysfs, card_name=self.card_name)
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
        linux = sys.platform.startswith("linux")
        backend = "v4l2loopback" if linux else None
        yuyv = self.pixel_format == "YUYV"
        self._i420 = linux and not yuyv  # the other backends: BGR, converted by pyvirtualcam
        fmt = (
            pyvirtualcam.PixelFormat.YUYV
            if yuyv
            else pyvirtualcam.PixelFormat.I420
            if self._i420
            else pyvirtualcam.PixelFormat.BGR
        )
        if linux and device and advertises_output(device) is False:
            log.warning("%s offers no output side (a writer died?); resetting it", device)
            reset_device(device)
        for attempt in (1, 2):
            try:
                self._cam = pyvirtualcam.Camera(w, h, fps, fmt=fmt, device=device, backend=backend)
                break
            except (RuntimeError, ValueError, OSError) as exc:
                if attempt == 2 or not (linux and device):
                    raise DeviceError(
                        f"cannot open the virtual camera {device or ''}: {exc}",
                        hint=f"close the apps using it (fuser -v {device}) or reload the "
                        "module: sudo modprobe -r v4l2loopback && sudo "
                        "scripts/setup-v4l2loopback.sh"
                        if device
                        else SETUP_HINT,
                    ) from None
                log.warning(
                    "%s refused the format (%s); resetting it and trying again", device, exc
                )
                reset_device(device)
                time.sleep(0.5)
        self._yuv = np.empty((h * 3 // 2, w), np.uint8)
        if yuyv:
            self._packed = np.empty((h, w * 2), np.uint8)
        self._size = size
        log.info(
            "virtual camera: %s, %dx%d %s at %.3g fps",
            device or "default",
            w,
            h,
            self.pixel_format,
            fps,
        )

    def send(self, image: Image) -> None:
        cam = self._cam
        if cam is None:
            raise DeviceError("virtual camera is not open")
        h, w = image.shape[:2]
        if (w, h) != self._size or image.ndim != 3:
            raise ValueError(f"virtual camera frame: expected {self._size}, got {(w, h)}")
        self._check_device()
        assert self._yuv is not None
        if self._packed is not None:
            bgr_to_yuyv(image, self._yuv, self._packed)
            cam.send(self._packed)  # type: ignore[attr-defined]
            return
        if not self._i420:
            cam.send(image)  # type: ignore[attr-defined]
            return
        cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420, dst=self._yuv)
        cam.send(self._yuv)  # type: ignore[attr-defined]

    @property
    def accepts_i420(self) -> bool:
        """I420 frames go to the device as they are (:func:`bgcam.sinks.takes_i420`)."""
        return self.pixel_format == "I420" and sys.platform.startswith("linux")

    def send_i420(self, frame: Image) -> None:
        """Send an I420 frame (H * 3/2, W): handed to the device as is (only with pixel format
        I420)."""
        cam = self._cam
        if cam is None:
            raise DeviceError("virtual camera is not open")
        w, h = self._size
        if frame.shape != (h * 3 // 2, w) or not self._i420:
            raise ValueError(
                f"virtual camera I420 frame: expected {(h * 3 // 2, w)} in pixel format I420, "
                f"got {frame.shape} in {self.pixel_format}"
            )
        self._check_device()
        cam.send(frame)  # type: ignore[attr-defined]

    def _check_device(self) -> None:
        """Once a second: the device node still exists (v4l2loopback was not unloaded)."""
        now = time.monotonic()
        if self.device and now >= self._next_check:
            self._next_check = now + 1.0
            if not os.path.exists(self.device):
                raise DeviceError(
                    f"the virtual camera {self.device} disappeared (v4l2loopback unloaded?)",
                    hint=SETUP_HINT,
                )

    def close(self) -> None:
        cam, self._cam = self._cam, None
        if cam is not None:
            cam.close()  # type: ignore[attr-defined]
