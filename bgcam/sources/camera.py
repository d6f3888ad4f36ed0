"""A local camera: an index (``0``) or a device node (``/dev/video0``).

On Linux the V4L2 backend is used with the configured FOURCC (MJPG by default: USB cameras give
720p/1080p at 30 fps only compressed), size and rate; elsewhere OpenCV's default backend. The
size and rate the driver really chose are read back and logged when they differ. A read timeout
(:data:`READ_TIMEOUT_MS`) bounds a blocked read, so ``stop()`` releases the camera (LED off) within
about a second even when the camera hangs.
"""

from __future__ import annotations

import ctypes
import logging
import os
import re
import sys
from dataclasses import dataclass

import cv2

from bgcam.config import SourceConfig
from bgcam.errors import DeviceError
from bgcam.frame import Image
from bgcam.media import quiet_decoders
from bgcam.sources import Source, as_image
from bgcam.v4l2 import VIDIOC_QUERYCAP, Capability

log = logging.getLogger(__name__)

READ_TIMEOUT_MS = 1000


def _bgcam() -> str:
    """How the user started BgCam, to repeat in suggested commands: ``bgcam`` when that is on
    PATH, else the path they typed (``.venv/bin/bgcam`` under ``make run``)."""
    import os
    import shutil
    import sys

    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else "bgcam"
    if os.path.basename(argv0) != "bgcam":  # python -m bgcam
        return "bgcam"
    on_path = shutil.which("bgcam")
    if on_path and os.path.realpath(on_path) == os.path.realpath(argv0):
        return "bgcam"
    return argv0


_CMD = _bgcam()
TRY_WITHOUT_CAMERA = (
    f"plug in a camera, pick another one with --source /dev/videoN (`{_CMD} devices` lists "
    f"them), or try BgCam without one: `make demo` (in the source folder) renders a before/after "
    f"clip from a bundled photo, and `{_CMD} run --source clip.mp4 --sink null` runs the live "
    "engine on any video of yours"
)


def camera_path(uri: str) -> str:
    """``0`` → ``/dev/video0`` (Linux); device paths unchanged."""
    return f"/dev/video{uri}" if re.fullmatch(r"\d+", uri) else uri


def check_camera_node(uri: str) -> None:
    """Raise DeviceError naming the problem when the camera device node is missing or locked."""
    if not sys.platform.startswith("linux"):
        return
    path = camera_path(uri)
    if not os.path.exists(path):
        present = sorted(p for p in os.listdir("/dev") if re.fullmatch(r"video\d+", p))
        raise DeviceError(
            f"no camera at {path}: "
            + (
                "this machine has no video devices at all"
                if not present
                else f"video devices here: {', '.join('/dev/' + p for p in present)}"
            ),
            hint=TRY_WITHOUT_CAMERA,
        )
    if not os.access(path, os.R_OK | os.W_OK):
        raise DeviceError(
            f"no permission to open {path}",
            hint="add yourself to the video group: sudo usermod -aG video $USER (then log in "
            "again)",
        )


class CameraSource(Source):
    kind = "camera"

    def __init__(self, cfg: SourceConfig) -> None:
        super().__init__(cfg.uri, mirror=cfg.mirror)
        self.cfg = cfg
        self.fps = cfg.fps
        self._cap: cv2.VideoCapture | None = None
        self._first: Image | None = None

    def _connect(self) -> None:
        cfg = self.cfg
        check_camera_node(cfg.uri)
        target: int | str = int(cfg.uri) if cfg.uri.isdigit() else cfg.uri
        api = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
        params = [cv2.CAP_PROP_READ_TIMEOUT_MSEC, READ_TIMEOUT_MS]
        if cfg.fourcc:
            params += [cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*cfg.fourcc)]
        params += [
            cv2.CAP_PROP_FRAME_WIDTH, cfg.width,
            cv2.CAP_PROP_FRAME_HEIGHT, cfg.height,
            cv2.CAP_PROP_FPS, round(cfg.fps),
            cv2.CAP_PROP_BUFFERSIZE, 1,
        ]  # fmt: skip
        with quiet_decoders():
            cap = cv2.VideoCapture(target, api, params)
            if not cap.isOpened():
                cap = cv2.VideoCapture(target, api)
        if not cap.isOpened():
            raise DeviceError(
                f"cannot open camera {cfg.uri}: busy or not a capture device",
                hint="close other programs using it (fuser -v "
                + camera_path(cfg.uri)
                + "), "
                + TRY_WITHOUT_CAMERA,
            )
        self._cap = cap
        ok, first = cap.read()
        if not ok or first is None:
            self._disconnect()
            raise DeviceError(
                f"camera {cfg.uri} opened but delivers no frames", hint=TRY_WITHOUT_CAMERA
            )
        h, w = first.shape[:2]
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        if 1.0 <= fps <= 240.0:
            self.fps = fps
        if (w, h) != (cfg.width, cfg.height) or abs(self.fps - cfg.fps) > 0.5:
            log.info(
                "camera %s gives %dx%d at %.3g fps (asked for %dx%d at %.3g fps)",
                cfg.uri,
                w,
                h,
                self.fps,
                cfg.width,
                cfg.height,
                cfg.fps,
            )
        else:
            log.info("camera %s: %dx%d at %.3g fps", cfg.uri, w, h, self.fps)
        self.native_size = (w, h)
        self._first = as_image(first)

    def _read(self) -> Image | None:
        first, self._first = self._first, None
        if first is not None:
            return first
        cap = self._cap
        if cap is None:
            self._lost_reason = "not open"
            return None
        ok, image = cap.read()
        if not ok:
            self._lost_reason = "the camera stopped delivering frames (unplugged?)"
            return None
        return as_image(image)

    def _disconnect(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()


# ------------------------------------------------------------------------------------------
# Listing cameras and their modes (``bgcam devices``), through the V4L2 ioctls.


class _FmtDesc(ctypes.Structure):
    _fields_ = [
        ("index", ctypes.c_uint32),
        ("type", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("description", ctypes.c_char * 32),
        ("pixelformat", ctypes.c_uint32),
        ("mbus_code", ctypes.c_uint32),
        ("reserved", ctypes.c_uint32 * 3),
    ]


class _FrmSize(ctypes.Structure):
    _fields_ = [
        ("index", ctypes.c_uint32),
        ("pixel_format", ctypes.c_uint32),
        ("type", ctypes.c_uint32),
        ("u", ctypes.c_uint32 * 6),  # discrete: width, height; stepwise: min/max/step w, h
        ("reserved", ctypes.c_uint32 * 2),
    ]


def _iowr(direction: int, nr: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (ord("V") << 8) | nr


VIDIOC_ENUM_FMT = _iowr(3, 2, ctypes.sizeof(_FmtDesc))
VIDIOC_ENUM_FRAMESIZES = _iowr(3, 74, ctypes.sizeof(_FrmSize))
V4L2_CAP_VIDEO_CAPTURE = 0x1
V4L2_CAP_DEVICE_CAPS = 0x80000000
V4L2_BUF_TYPE_VIDEO_CAPTURE = 1


@dataclass(frozen=True, slots=True)
class CameraInfo:
    path: str
    card: str
    driver: str
    modes: tuple[str, ...]
    """One entry per pixel format: ``MJPG: 1280x720, 1920x1080`` (sizes the driver lists)."""


def _fourcc(code: int) -> str:
    return "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4)).strip()


def describe_camera(path: str) -> CameraInfo | None:
    """What V4L2 says about ``path``; None when it is not a capture device (or cannot open)."""
    import fcntl  # V4L2 is Linux only; this module is imported on every platform

    try:
        fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        cap = Capability()
        fcntl.ioctl(fd, VIDIOC_QUERYCAP, cap)
        caps = cap.device_caps if cap.capabilities & V4L2_CAP_DEVICE_CAPS else cap.capabilities
        if not caps & V4L2_CAP_VIDEO_CAPTURE:
            return None
        modes = []
        for i in range(64):
            fmt = _FmtDesc(index=i, type=V4L2_BUF_TYPE_VIDEO_CAPTURE)
            try:
                fcntl.ioctl(fd, VIDIOC_ENUM_FMT, fmt)
            except OSError:
                break
            sizes = []
            for j in range(64):
                fs = _FrmSize(index=j, pixel_format=fmt.pixelformat)
                try:
                    fcntl.ioctl(fd, VIDIOC_ENUM_FRAMESIZES, fs)
                except OSError:
                    break
                if fs.type == 1:  # discrete
                    sizes.append(f"{fs.u[0]}x{fs.u[1]}")
                else:
                    sizes.append(f"{fs.u[0]}x{fs.u[2]}…{fs.u[1]}x{fs.u[3]}")
                    break
            modes.append(f"{_fourcc(fmt.pixelformat)}: {', '.join(sizes) or '?'}")
        return CameraInfo(
            path,
            cap.card.decode(errors="replace"),
            cap.driver.decode(errors="replace"),
            tuple(modes),
        )
    except OSError:
        return None
    finally:
        os.close(fd)


def list_cameras(dev: str = "/dev") -> list[CameraInfo]:
    """Capture devices under ``dev`` (v4l2loopback outputs included when they capture)."""
    try:
        names = sorted(
            (n for n in os.listdir(dev) if re.fullmatch(r"video\d+", n)), key=lambda n: int(n[5:])
        )
    except OSError:
        return []
    found = (describe_camera(f"{dev}/{n}") for n in names)
    return [c for c in found if c is not None]
