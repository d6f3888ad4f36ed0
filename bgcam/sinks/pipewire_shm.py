"""Frames to the PipeWire camera's child through shared memory: GStreamer's ``shmsrc`` protocol.

BgCam is the writer side of ``shmsrc``'s protocol (GStreamer's ``shm`` plugin, in the "bad"
plugins): one shared-memory area holding ``count`` I420 frames (``/dev/shm/bgcam-<pid>-<random>``,
mode 0600) and a listening Unix socket in a private directory (mode 0700). The child's ``shmsrc``
connects, BgCam tells it the area (``NEW_SHM_AREA``), then hands it each frame by offset
(``NEW_BUFFER``); the child maps the area read-only and answers ``ACK_BUFFER`` once it no longer
needs that frame, which gives the slot back. An area left behind by a BgCam that was killed is
removed by the next one (:func:`remove_stale`). Every message is one 24-byte record: ``uint type``,
``int area id`` and a union of two 64-bit words (``size_t``/``unsigned long`` on 64-bit Linux).

Why: a pipe costs the child a kernel copy per frame and, since a 720p frame (1.4 MB) is larger
than the 1 MiB a user may give a pipe, a second copy to join the two reads into one frame; the
frames here are converted straight into the area and never copied before the child's
``compositor`` (scripts/pipewire_overhead.py measures it).
"""

from __future__ import annotations

import contextlib
import mmap
import os
import re
import secrets
import select
import shutil
import socket
import struct
import tempfile

import numpy as np
import numpy.typing as npt

__all__ = ["ShmFrames"]

RECORD = struct.Struct("=IiQQ")
"""type, area id, then the union: (size, path size) / (offset, size) / (offset,)."""
NEW_SHM_AREA, CLOSE_SHM_AREA, NEW_BUFFER, ACK_BUFFER = 1, 2, 3, 4
AREA_ID = 1
SHM_DIR = "/dev/shm"


STALE = re.compile(r"bgcam-(\d+)-[0-9a-f]{8}")


def remove_stale() -> None:
    """Unlink areas of ours whose BgCam died without closing them (killed, crashed)."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(SHM_DIR):
            m = STALE.fullmatch(entry.name)
            if m is None or entry.stat().st_uid != os.getuid():
                continue
            try:
                os.kill(int(m.group(1)), 0)
            except ProcessLookupError:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
            except OSError:
                pass  # alive (another user's process cannot be signalled: keep it)


class ShmFrames:
    """``count`` I420 frames of ``size`` in one shared-memory area, lent to one ``shmsrc`` at a
    time (a restarted child connects again and is told the same area)."""

    def __init__(self, size: tuple[int, int], count: int) -> None:
        w, h = size
        self.frame_bytes = w * h * 3 // 2
        self._dir = tempfile.mkdtemp(prefix="bgcam-pw-", dir=os.environ.get("XDG_RUNTIME_DIR"))
        self.socket_path = os.path.join(self._dir, "frames")
        self.name = f"/bgcam-{os.getpid()}-{secrets.token_hex(4)}"
        self._mm: mmap.mmap | None = None
        self._listener: socket.socket | None = None
        self._conn: socket.socket | None = None
        self._partial = b""
        self.bufs: list[npt.NDArray[np.uint8]] = []
        remove_stale()
        try:
            fd = os.open(SHM_DIR + self.name, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.ftruncate(fd, count * self.frame_bytes)
                self._mm = mmap.mmap(fd, count * self.frame_bytes)
            finally:
                os.close(fd)
            self.bufs = [
                np.frombuffer(self._mm, np.uint8, self.frame_bytes, i * self.frame_bytes).reshape(
                    h * 3 // 2, w
                )
                for i in range(count)
            ]
            self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._listener.bind(self.socket_path)
            self._listener.listen(1)
        except BaseException:
            self.close()
            raise

    @property
    def connected(self) -> bool:
        return self._conn is not None

    def accept(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for a child to connect; tell it the area. False on timeout."""
        assert self._listener is not None
        self.disconnect()
        if not select.select([self._listener], [], [], timeout)[0]:
            return False
        conn, _ = self._listener.accept()
        path = self.name.encode() + b"\0"
        total = len(self.bufs) * self.frame_bytes
        head = struct.pack("=IiQI4x", NEW_SHM_AREA, AREA_ID, total, len(path))
        try:
            conn.sendall(head + path)
        except OSError:
            conn.close()
            return False
        conn.setblocking(False)
        self._conn = conn
        return True

    def send(self, slot: int) -> bool:
        """Hand frame ``slot`` to the child; False when it cannot take the message now."""
        if self._conn is None:
            return False
        msg = RECORD.pack(NEW_BUFFER, AREA_ID, slot * self.frame_bytes, self.frame_bytes)
        try:
            return self._conn.send(msg) == len(msg)
        except OSError:  # full (the child stopped reading) or gone: the caller sees no ack
            return False

    def acks(self, timeout: float) -> list[int] | None:
        """The slots the child gave back (waiting up to ``timeout`` s for the first), or None
        when it hung up."""
        conn = self._conn
        if conn is None:
            return None
        if timeout > 0 and not select.select([conn], [], [], timeout)[0]:
            return []
        try:
            data = conn.recv(RECORD.size * 64)
        except BlockingIOError:
            return []
        except OSError:
            data = b""
        if not data:
            self.disconnect()
            return None
        data = self._partial + data
        end = len(data) - len(data) % RECORD.size
        self._partial = data[end:]
        slots = []
        for off in range(0, end, RECORD.size):
            kind, _, offset, _ = RECORD.unpack_from(data, off)
            if kind == ACK_BUFFER and offset % self.frame_bytes == 0:
                slots.append(offset // self.frame_bytes)
        return slots

    def disconnect(self) -> None:
        conn, self._conn = self._conn, None
        self._partial = b""
        if conn is not None:
            conn.close()

    def close(self) -> None:
        self.disconnect()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self.bufs = []
        if self._mm is not None:
            with contextlib.suppress(BufferError):  # a view still alive: the GC unmaps it
                self._mm.close()
            self._mm = None
        with contextlib.suppress(OSError):
            os.unlink(SHM_DIR + self.name)
        shutil.rmtree(self._dir, ignore_errors=True)
