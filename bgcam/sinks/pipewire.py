"""``pipewire``: BgCam as a PipeWire camera (no kernel module, no root).

The camera is a PipeWire node with ``media.class=Video/Source``, ``media.role=Camera``,
``node.name=bgcam`` and ``node.description`` = ``output.device_name``, offering one fixed size,
rate and pixel format (I420): the camera portal and browsers list only such nodes.

**Engine.** GStreamer's ``pipewiresink``, run by ``gst-launch-1.0`` as a child process that reads
raw I420 frames from a pipe::

    fdsrc fd=0 ! rawvideoparse (size, I420, rate) ! compositor ! caps ! pipewiresink mode=provide

Why a child process and not PyGObject in our process: PyGObject (``gi``) is not on PyPI as a
wheel for Linux (it builds against the system's GLib and introspection data), so it would tie the
venv to system packages; a crash in the PipeWire/GStreamer stack (and Debian 12's
``pipewiresink`` 0.3.65 does crash, see below) would take the whole daemon down instead of one
child that is restarted; and the child needs only the distribution's packages, found on PATH.
The price is one copy of each frame through a pipe (1.4 MB at 720p) and a BGR→I420 conversion
here (OpenCV, ~1 ms at 720p), measured in BENCHMARKS.md.

Why ``compositor`` in the middle: ``pipewiresink`` of PipeWire 0.3.x tells PipeWire its buffer
size only when the element upstream allocates from its pool with the frame size (as
``videotestsrc`` does); ``rawvideoparse`` does not, and a reader then gets zero-sized buffers
and the child crashes (seen here with 0.3.65). ``compositor`` with one opaque full-size input is
a plain copy into pipewiresink's own buffers. ``async=false``: the child does not wait for a
reader before it starts, and ``sync=false``: frames go out as BgCam sends them (BgCam paces).

**Never stalls the pipeline.** :meth:`PipeWireSink.send` converts the frame into one of four
owned I420 buffers and returns; a writer thread writes them to the child in order. While nobody
reads the camera, ``pipewiresink`` blocks and the pipe fills: the writer waits, and the oldest
unsent frame gives its buffer to the newest (counted as ``dropped``).

**Supervision** (a monitor thread asks ``pw-dump`` once a second which links leave our node):

* the child's death (crash, kill) is logged once, and it is restarted after 0.1 s, then with a
  back-off (0.5, 1, 2, 5 s) while it keeps dying within 10 s of starting; "works again" is
  logged when it has run for 10 s;
* PipeWire 0.3.x's ``pipewiresink`` serves one reader per stream start: after the last reader
  leaves, a new reader gets no frames. So when the reader count drops to zero, the child is
  restarted at once (no reader is disturbed; logged at debug level);
* a child that has a reader but accepts no frame for 2 s is stuck: it is restarted (logged).

Readers see the node go away and come back when the child restarts (a new node id): a browser's
track ends and the page must call ``getUserMedia`` again; ``pipewiresrc`` must be restarted.

**On demand**: :meth:`PipeWireSink.demand_watcher` reports "a reader is there" while at least one
link leaves our node (from ``pw-dump``: PipeWire links, not node states, because a node stays
"running" for a moment after its last reader left).
"""

from __future__ import annotations

import logging
import os
import resource
import threading
import time
from collections import deque

import cv2
import numpy as np
import numpy.typing as npt

from bgcam.errors import ConfigError, DeviceError
from bgcam.frame import Image
from bgcam.sinks.pipewire_child import NODE_NAME, Child, child_command
from bgcam.sinks.pipewire_env import check_pipewire, find_node, graph, node_readers

log = logging.getLogger(__name__)

__all__ = ["I420Slots", "PipeWireSink", "child_command"]

RESTART_DELAYS = (0.1, 0.5, 1.0, 2.0, 5.0)
"""Seconds before restarting a child that died, one step further each time it dies young."""
HEALTHY_AFTER = 10.0
"""A child that ran this long counts as working: the back-off starts again from the first step."""
STUCK_AFTER = 2.0
"""Seconds a child with a reader may refuse frames before it is restarted."""
MONITOR_PERIOD = 1.0
LINGER = 2.0
"""On demand: seconds without readers before the camera counts as unused."""


def children_cpu_seconds() -> float:
    """User+system CPU seconds of this process's reaped children (``pw-dump`` calls among them)."""
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


class I420Slots:
    """A few I420 frames between the output thread and the writer thread, oldest first.

    ``put`` converts into a free buffer and never waits: when all are taken, the oldest unsent
    frame is dropped (counted) and its buffer reused. ``take`` returns the oldest unsent frame;
    the buffer stays the writer's until its next ``take``. Four buffers absorb a writer that is
    late by up to three frame periods (a busy machine) without losing frames.
    """

    def __init__(self, size: tuple[int, int], count: int = 4) -> None:
        w, h = size
        self._bufs: list[npt.NDArray[np.uint8]] = [
            np.zeros((h * 3 // 2, w), np.uint8) for _ in range(count)
        ]
        self._free = list(range(1, count))
        self._fill = 0
        self._pending: deque[int] = deque()
        self._out: int | None = None
        self._cond = threading.Condition()
        self.dropped = 0

    def put(self, image: Image) -> None:
        cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420, dst=self._bufs[self._fill])
        with self._cond:
            self._pending.append(self._fill)
            if self._free:
                self._fill = self._free.pop()
            else:
                self._fill = self._pending.popleft()
                self.dropped += 1
            self._cond.notify()

    def take(self, timeout: float) -> memoryview | None:
        with self._cond:
            if not self._pending and not self._cond.wait(timeout):
                return None
            if not self._pending:
                return None
            if self._out is not None:
                self._free.append(self._out)
            self._out = self._pending.popleft()
            return memoryview(self._bufs[self._out].data).cast("B")


class PipeWireSink:
    """Publishes the output as the PipeWire camera ``device_name`` (see the module docstring)."""

    name = "pipewire"
    device: str | None = None

    def __init__(self, description: str = "BgCam", node_name: str = NODE_NAME) -> None:
        self.description = description
        self.node_name = node_name
        self._launch: str | None = None
        self._size = (0, 0)
        self._fps = 30.0
        self._slots: I420Slots | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._child: Child | None = None
        self._writer: threading.Thread | None = None
        self._monitor: threading.Thread | None = None
        self._last_progress = time.monotonic()
        self._writing = False
        self._failures = 0
        self._down_logged = False
        self.readers = 0
        self.node_id: int | None = None
        self.frames_written = 0
        self.restarts = 0
        self._cpu_done = 0.0
        self._monitor_cpu = 0.0
        self._dropped_done = 0
        self._t_open = 0.0

    # -- the Sink protocol -----------------------------------------------------------------

    def locate(self) -> str | None:
        """Check that PipeWire, a session manager and the GStreamer parts are there."""
        self._launch = check_pipewire()
        return None

    def open(self, size: tuple[int, int], fps: float) -> None:
        w, h = size
        if w % 2 or h % 2:
            raise ConfigError(
                f"PipeWire camera frames must have an even size (I420), got {w}x{h}",
                hint="set output.width/output.height to even numbers",
            )
        if self._launch is None:
            self.locate()
        self._size, self._fps = size, fps
        self._slots = I420Slots(size)
        self._stop.clear()
        self._t_open = time.monotonic()
        self._spawn()
        self._writer = threading.Thread(target=self._write_loop, name="bgcam-pw-writer")
        self._monitor = threading.Thread(target=self._monitor_loop, name="bgcam-pw-monitor")
        self._writer.start()
        self._monitor.start()
        log.info(
            "PipeWire camera %r (node %s): %dx%d I420 at %.3g fps; check with: pw-cli ls Node",
            self.description,
            self.node_name,
            w,
            h,
            fps,
        )

    def send(self, image: Image) -> None:
        slots = self._slots
        if slots is None:
            raise DeviceError("the PipeWire camera is not open")
        h, w = image.shape[:2]
        if (w, h) != self._size or image.ndim != 3:
            raise ValueError(f"PipeWire camera frame: expected {self._size}, got {(w, h)}")
        slots.put(image)

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            child = self._child
        if child is not None:
            child.kill(expected=True)  # unblocks a writer stuck in write()
        for thread in (self._writer, self._monitor):
            if thread is not None:
                thread.join(5.0)
                if thread.is_alive():
                    log.warning("%s did not stop within 5 s", thread.name)
        self._writer = self._monitor = None
        with self._lock:
            child, self._child = self._child, None
        if child is not None:
            child.reap()
            child.dispose()
            self._cpu_done += child.cpu
        if self._slots is not None:
            self._dropped_done += self._slots.dropped
        self._slots = None

    # -- stats and on-demand -------------------------------------------------------------

    def stats(self) -> dict[str, float | int]:
        """Counters for ``--stats-json``: frames written/dropped, restarts, and the CPU (percent of
        one core) of the child and of the ``pw-dump`` calls that watch the readers: processes of
        their own, so not in the daemon's ``cpu_percent``."""
        with self._lock:
            child = self._child
        cpu = self._cpu_done + (child.cpu_seconds() if child is not None else 0.0)
        wall = max(1e-6, time.monotonic() - self._t_open) if self._t_open else 0.0
        return {
            "frames_written": self.frames_written,
            "frames_dropped": self._dropped_done
            + (self._slots.dropped if self._slots is not None else 0),
            "restarts": self.restarts,
            "child_cpu_percent": round(cpu / wall * 100.0, 1) if wall else 0.0,
            "monitor_cpu_percent": round(self._monitor_cpu / wall * 100.0, 1) if wall else 0.0,
        }

    def demand_watcher(self, linger: float = LINGER) -> PipeWireDemand:
        return PipeWireDemand(self, linger)

    # -- the child -------------------------------------------------------------------------

    def _spawn(self) -> None:
        assert self._launch is not None
        cmd = child_command(self._launch, self._size, self._fps, self.description, self.node_name)
        try:
            child = Child(cmd)
        except OSError as exc:
            raise DeviceError(
                f"cannot start {self._launch}: {exc}", hint="check the GStreamer installation"
            ) from None
        with self._lock:
            self._child = child
        self._last_progress = time.monotonic()
        log.debug("pipewiresink child started (pid %d)", child.pid)

    def _retire(self, child: Child) -> None:
        """Reap a dead (or killed) child; log and count it; wait the back-off if it crashed."""
        code = child.reap()
        detail = child.last_error()
        child.dispose()
        self._cpu_done += child.cpu
        with self._lock:
            if self._child is child:
                self._child = None
        if child.expected_exit:
            return
        lived = time.monotonic() - child.started
        self._failures = 1 if lived >= HEALTHY_AFTER else self._failures + 1
        delay = RESTART_DELAYS[min(self._failures, len(RESTART_DELAYS)) - 1]
        if not self._down_logged:
            self._down_logged = True
            log.warning(
                "the PipeWire camera's pipewiresink child exited (code %s%s); restarting it "
                "in %.1f s, with back-off while it keeps failing (logged once)",
                code,
                f": {detail}" if detail else "",
                delay,
            )
        else:
            log.debug("pipewiresink child exited again (code %s); retry in %.1f s", code, delay)
        self._stop.wait(delay)

    def _restart(self, reason: str, *, quiet: bool) -> None:
        with self._lock:
            child = self._child
        if child is None:
            return
        (log.debug if quiet else log.warning)("PipeWire camera: %s; restarting its child", reason)
        child.kill(expected=True)

    def _write_loop(self) -> None:
        slots = self._slots
        assert slots is not None
        while not self._stop.is_set():
            try:
                self._write_step(slots)
            except Exception:  # a bug here must not end the camera silently
                log.exception("PipeWire camera writer failed; going on")
                self._stop.wait(1.0)

    def _write_step(self, slots: I420Slots) -> None:
        """Restart a dead child, or write the next frame to the live one."""
        with self._lock:
            child = self._child
        if child is None or child.proc.poll() is not None:
            if child is not None:
                self._retire(child)
            if self._stop.is_set():
                return
            try:
                self._spawn()
            except DeviceError as exc:
                log.debug("respawn failed: %s", exc)
                self._failures += 1
                self._stop.wait(RESTART_DELAYS[-1])
                return
            self.restarts += 1
            return
        if self._down_logged and time.monotonic() - child.started > HEALTHY_AFTER:
            self._down_logged = False
            log.info("the PipeWire camera works again")
        frame = slots.take(0.1)
        if frame is None:
            return
        try:
            self._write_all(child.fd, frame)
        except OSError:  # the child died (EPIPE) or was killed to be restarted
            return
        self.frames_written += 1
        self._last_progress = time.monotonic()

    def _write_all(self, fd: int, data: memoryview) -> None:
        off = 0
        n = len(data)
        self._last_progress = time.monotonic()
        self._writing = True
        try:
            while off < n:
                off += os.write(fd, data[off:])
                self._last_progress = time.monotonic()
        finally:
            self._writing = False

    def _monitor_loop(self) -> None:
        watched_pid = 0
        while not self._stop.wait(MONITOR_PERIOD):
            with self._lock:
                child = self._child
            if child is None:
                continue
            before_cpu = children_cpu_seconds()
            objects = graph()
            self._monitor_cpu += children_cpu_seconds() - before_cpu
            if objects is None:
                continue
            node = find_node(objects, self.node_name, child.pid)
            readers = node_readers(objects, node.id) if node is not None else 0
            self.node_id = node.id if node is not None else None
            # Readers of an earlier child do not count: they left with it.
            before = self.readers if watched_pid == child.pid else 0
            watched_pid, self.readers = child.pid, readers
            if before and not readers:
                self._restart("the last reader left (PipeWire 0.3 workaround)", quiet=True)
            elif readers and self._writing and time.monotonic() - self._last_progress > STUCK_AFTER:
                self._restart(
                    f"a reader is linked but the child took no frame for {STUCK_AFTER:g} s",
                    quiet=False,
                )


class PipeWireDemand:
    """On demand for the PipeWire camera: True while a link leaves our node (plus ``linger``)."""

    method = "PipeWire links of the camera node (pw-dump)"

    def __init__(self, sink: PipeWireSink, linger: float = LINGER) -> None:
        self._sink = sink
        self._linger = linger
        self._last_seen: float | None = None

    def poll(self, timeout: float) -> bool:
        if timeout > 0:
            time.sleep(timeout)
        now = time.monotonic()
        if self._sink.readers > 0:
            self._last_seen = now
            return True
        return self._last_seen is not None and now - self._last_seen < self._linger

    def close(self) -> None:
        pass
