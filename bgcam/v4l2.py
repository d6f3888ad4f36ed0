"""The V4L2 capability query, shared by the camera listing and the v4l2loopback sink.

Linux only at run time (``fcntl`` and ``/dev/video*``); importable everywhere.
"""

from __future__ import annotations

import ctypes
import os

__all__ = ["VIDIOC_QUERYCAP", "Capability", "querycap"]


class Capability(ctypes.Structure):
    """``struct v4l2_capability``."""

    _fields_ = [
        ("driver", ctypes.c_char * 16),
        ("card", ctypes.c_char * 32),
        ("bus_info", ctypes.c_char * 32),
        ("version", ctypes.c_uint32),
        ("capabilities", ctypes.c_uint32),
        ("device_caps", ctypes.c_uint32),
        ("reserved", ctypes.c_uint32 * 3),
    ]


VIDIOC_QUERYCAP = (2 << 30) | (ctypes.sizeof(Capability) << 16) | (ord("V") << 8) | 0


def querycap(path: str) -> Capability | None:
    """``VIDIOC_QUERYCAP`` on ``path`` (read-only, non-blocking); None if it cannot be asked."""
    try:
        import fcntl

        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except (ImportError, OSError):
        return None
    try:
        cap = Capability()
        fcntl.ioctl(fd, VIDIOC_QUERYCAP, cap)
        return cap
    except OSError:
        return None
    finally:
        os.close(fd)
