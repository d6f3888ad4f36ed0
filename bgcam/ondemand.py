"""On demand: is any application reading the virtual camera right now?

With ``output.on_demand = true`` the pipeline releases the webcam (LED off) and idles while nobody
reads the virtual camera, and starts it again when an application does. Two ways to know, tried in
this order (Linux):

1. **v4l2loopback's client-usage event** (v4l2loopback 0.13 and later). We open the device,
   subscribe to ``V4L2_EVENT_PRI_CLIENT_USAGE`` (``VIDIOC_SUBSCRIBE_EVENT``, with
   ``SEND_INITIAL`` so a reader already present is seen at once) and wait for ``POLLPRI``; each
   event (``VIDIOC_DQEVENT``) carries ``count`` = 1 while a reader streams, 0 when none does. The
   driver sends it on a reader's STREAMON, STREAMOFF and close, so it reflects real use: an app
   that only lists devices does not wake the camera. Limits: older v4l2loopback versions (and
   0.12 used another event number) reject the subscription, and we fall back to 2.

2. **inotify open/close counting** on the device node (``inotify_simple``). Every open adds one,
   every close removes one; the count starts from the open file descriptors found in
   ``/proc/*/fd`` and is re-synchronised from there every :data:`RESYNC` seconds. Limits: it
   counts *opens*, not streaming, so a browser or ``v4l2-ctl`` that merely probes the device
   starts the camera for a moment (``linger`` keeps it from flapping); processes of other users
   cannot be seen in ``/proc`` (the re-sync then undercounts until their next open); a program
   that keeps the device open without reading keeps the camera on; our own process is excluded.

Either way a reader leaving is acted on only after ``linger`` seconds without readers, so an app
that re-opens the device while switching resolution does not cycle the webcam.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import select
import sys
import time
from typing import Protocol

log = logging.getLogger(__name__)

__all__ = ["DemandWatcher", "EventWatcher", "InotifyWatcher", "openers", "watch_readers"]

RESYNC = 10.0

# --- V4L2 event ioctls (linux/videodev2.h), built with ctypes so the sizes are the ABI's ----

V4L2_EVENT_PRIVATE_START = 0x08000000
V4L2_EVENT_PRI_CLIENT_USAGE = V4L2_EVENT_PRIVATE_START + 0x08E00000 + 1  # v4l2loopback ≥ 0.13
V4L2_EVENT_SUB_FL_SEND_INITIAL = 1


class _Subscription(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_uint32),
        ("id", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("reserved", ctypes.c_uint32 * 5),
    ]


class _EventUnion(ctypes.Union):
    _fields_ = [("data", ctypes.c_uint8 * 64), ("_align", ctypes.c_int64)]


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_uint32),
        ("u", _EventUnion),
        ("pending", ctypes.c_uint32),
        ("sequence", ctypes.c_uint32),
        ("timestamp", _Timespec),
        ("id", ctypes.c_uint32),
        ("reserved", ctypes.c_uint32 * 8),
    ]


def _ioc(direction: int, nr: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (ord("V") << 8) | nr


VIDIOC_SUBSCRIBE_EVENT = _ioc(1, 90, ctypes.sizeof(_Subscription))  # _IOW
VIDIOC_DQEVENT = _ioc(2, 89, ctypes.sizeof(_Event))  # _IOR


class DemandWatcher(Protocol):
    method: str

    def poll(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for news; return True while a reader is (or just was) there."""
        ...

    def close(self) -> None: ...


class _Linger:
    """Turns a raw reader count into a steady yes/no: 'no' only after ``linger`` s at zero."""

    def __init__(self, linger: float) -> None:
        self.linger = linger
        self.count = 0
        self._zero_since: float | None = None  # None: no reader seen yet

    def set(self, count: int) -> None:
        count = max(0, count)
        if count == 0 and self.count > 0:
            self._zero_since = time.monotonic()
        self.count = count

    @property
    def active(self) -> bool:
        if self.count > 0:
            return True
        since = self._zero_since
        return since is not None and time.monotonic() - since < self.linger


class EventWatcher:
    """v4l2loopback ≥ 0.13: the driver tells us when readers start and stop streaming."""

    method = "v4l2loopback client-usage event"

    def __init__(self, path: str, linger: float = 2.0) -> None:
        import fcntl  # Linux only, like v4l2loopback

        self.path = path
        self._ioctl = fcntl.ioctl
        self._fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
        try:
            sub = _Subscription(
                type=V4L2_EVENT_PRI_CLIENT_USAGE, flags=V4L2_EVENT_SUB_FL_SEND_INITIAL
            )
            self._ioctl(self._fd, VIDIOC_SUBSCRIBE_EVENT, sub)
        except OSError:
            os.close(self._fd)
            raise
        self._poll = select.poll()
        self._poll.register(self._fd, select.POLLPRI)
        self._state = _Linger(linger)

    def poll(self, timeout: float) -> bool:
        if self._poll.poll(max(0, int(timeout * 1000))):
            ev = _Event()
            while True:
                try:
                    self._ioctl(self._fd, VIDIOC_DQEVENT, ev)
                except OSError as exc:
                    if exc.errno not in (errno.ENOENT, errno.EAGAIN):
                        log.debug("VIDIOC_DQEVENT failed: %s", exc)
                    break
                if ev.type == V4L2_EVENT_PRI_CLIENT_USAGE:
                    count = int.from_bytes(bytes(ev.u.data[:4]), "little")
                    self._state.set(count)
        return self._state.active

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)


def openers(path: str) -> int:
    """Open file descriptors on ``path`` held by other processes we may inspect (/proc)."""
    try:
        target = os.stat(path)
    except OSError:
        return 0
    me = os.getpid()
    n = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == me:
            continue
        fd_dir = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            with contextlib.suppress(OSError):
                st = os.stat(f"{fd_dir}/{fd}")
                if st.st_ino == target.st_ino and st.st_dev == target.st_dev:
                    n += 1
    return n


class InotifyWatcher:
    """Counts opens and closes of the device node with inotify (any v4l2loopback version)."""

    method = "inotify open/close counting"

    def __init__(self, path: str, linger: float = 2.0) -> None:
        from inotify_simple import INotify, flags

        self.path = path
        self._flags = flags
        self._ino = INotify()
        self._ino.add_watch(path, flags.OPEN | flags.CLOSE_WRITE | flags.CLOSE_NOWRITE)
        self._state = _Linger(linger)
        self._state.set(openers(path))
        self._next_sync = time.monotonic() + RESYNC

    def poll(self, timeout: float) -> bool:
        flags = self._flags
        count = self._state.count
        for event in self._ino.read(timeout=max(0, int(timeout * 1000))):
            if event.mask & flags.OPEN:
                count += 1
            if event.mask & (flags.CLOSE_WRITE | flags.CLOSE_NOWRITE):
                count -= 1
        now = time.monotonic()
        if now >= self._next_sync:
            self._next_sync = now + RESYNC
            synced = openers(self.path)
            if synced != max(0, count):
                log.debug("on-demand: %s open count %d, /proc says %d", self.path, count, synced)
                count = synced
        self._state.set(count)
        return self._state.active

    def close(self) -> None:
        self._ino.close()


def watch_readers(path: str, linger: float = 2.0) -> DemandWatcher:
    """A watcher for ``path``: the client-usage event when the driver has it, else inotify."""
    try:
        watcher: DemandWatcher = EventWatcher(path, linger)
    except OSError as exc:
        log.info(
            "on-demand: %s has no client-usage event (%s); counting opens with inotify "
            "instead (a program that only probes the device starts the camera briefly)",
            path,
            os.strerror(exc.errno) if exc.errno else exc,
        )
        watcher = InotifyWatcher(path, linger)
    else:
        log.info("on-demand: watching %s through the %s", path, watcher.method)
    return watcher


def watch_for(path: str | None, sink_name: str) -> DemandWatcher | None:
    """The watcher for ``output.on_demand`` on ``path`` (the sink's device), or None with a
    warning when there is nothing to watch: not an error, so that the same profile works with
    ``--sink null`` or ``file:…`` to try it."""
    if path is None or sys.platform != "linux":
        log.warning(
            "output.on_demand ignored: it watches a Linux v4l2loopback device for readers, "
            "and this run has none (sink %s); the camera stays open",
            sink_name,
        )
        return None
    return watch_readers(path)
