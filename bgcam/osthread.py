"""The operating system's name for the calling thread, so ``top -H``, ``ps -L`` and
``/proc/PID/task/*/comm`` show which of BgCam's threads uses the CPU (Python before 3.14 does
not pass ``threading.Thread.name`` on).

Linux only (``prctl(PR_SET_NAME)``, at most 15 bytes); elsewhere, or when libc cannot be
reached, it does nothing.
"""

from __future__ import annotations

import ctypes
import logging
import sys
import threading
from functools import cache
from typing import Any

log = logging.getLogger(__name__)

PR_SET_NAME = 15
MAX_BYTES = 15


@cache
def _prctl() -> Any:
    if sys.platform != "linux":
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.prctl
    except (OSError, AttributeError) as exc:
        log.debug("no prctl (%s): threads keep the process's name", exc)
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    fn.restype = ctypes.c_int
    return fn


def name_this_thread(name: str | None = None) -> None:
    """Give the calling thread ``name`` (default: its ``threading`` name) at the OS level."""
    prctl = _prctl()
    if prctl is None:
        return
    text = name if name is not None else threading.current_thread().name
    prctl(PR_SET_NAME, text.encode("utf-8", "replace")[:MAX_BYTES], 0, 0, 0)
