"""``pipewire``: BgCam as a PipeWire camera (no kernel module, no root).

The camera is a PipeWire node with ``media.class=Video/Source``, ``media.role=Camera``,
``node.name=bgcam`` and ``node.description`` = ``output.device_name``, offering one fixed size,
rate and pixel format (I420): the camera portal and browsers list only such nodes.

**Engine.** GStreamer's ``pipewiresink``, run by ``gst-launch-1.0`` as a child process::

    shmsrc (or fdsrc fd=0) ! rawvideoparse (size, I420, rate) ! compositor ! caps
        ! pipewiresink mode=provide

Why a child process and not PyGObject in our process: PyGObject (``gi``) is not on PyPI as a
wheel for Linux (it builds against the system's GLib and introspection data), so it would tie the
venv to system packages; a crash in the PipeWire/GStreamer stack (and Debian 12's
``pipewiresink`` 0.3.65 does crash, see below) would take the whole daemon down instead of one
child that is restarted; and the child needs only the distribution's packages, found on PATH.

**How frames reach the child** (``BGCAM_PIPEWIRE_TRANSPORT`` = ``auto``, ``shm`` or ``pipe``):

* *shared memory* (the default when GStreamer's ``shmsrc``, in the "bad" plugins, exists):
  :class:`~bgcam.sinks.pipewire_shm.ShmFrames`. The BGR→I420 conversion writes straight into
  one of six frames of a shared area; the child is handed its offset and gives it back when done
  (at most three lent at once). No copy before the child's ``compositor``;
* *a pipe* on the child's stdin (the fallback, also when /dev/shm cannot be used): a writer
  thread writes each frame (1.4 MB at 720p); the child pays a kernel copy and, as a frame is
  larger than the 1 MiB pipe, a copy to join two reads. 3-5 points of a core more at 720p30 than
  shared memory (BENCHMARKS.md).

Why ``compositor`` in the middle: ``pipewiresink`` of PipeWire 0.3.x tells PipeWire its buffer
size only once its buffer pool is configured with the frame size; an element upstream that asks
for an allocation (``compositor`` does, ``rawvideoparse`` does not) does that before the stream
starts. Without it the sink configures the pool at its first frame, after PipeWire has already
made zero-sized buffers, and the child crashes (seen here with 0.3.65). ``compositor`` with one
opaque full-size input is a plain copy, and ``pipewiresink`` copies once more into PipeWire's
buffers (``perf``: these two copies are half of the child's CPU). ``async=false``: the child
does not wait for a reader before it starts, and ``sync=false``: frames go out as BgCam sends
them (BgCam paces).

**Never stalls the pipeline.** :meth:`PipeWireSink.send` converts the frame into a free I420
buffer (:class:`I420Slots`) and returns (:meth:`PipeWireSink.send_i420` only copies a frame the
CPU compositor wrote in I420 itself, :mod:`bgcam.compose.i420`); a writer thread hands the
buffers to the child in order. While nobody reads the camera, ``pipewiresink`` blocks and the
child takes no more frames: the oldest unsent frame gives its buffer to the newest (counted as
``dropped``).

**Readers.** Through shared memory one child serves several readers at once, and a reader that
opens the camera right after another closed it (tests/sinks/test_pipewire_e2e.py). Through the
pipe, PipeWire 0.3.65's ``pipewiresink`` serves one reader per stream start: a second reader
gets no frames (and stops the first), and so does a new reader after the last one left, until
the child restarts.

**Supervision** (a monitor thread asks ``pw-dump`` which links leave our node: every second
for on-demand and for the pipe; with shared memory otherwise only while the child takes no
frame, every 5 s, since a blocked child is normal while nobody reads):

* the child's death (crash, kill) is logged once, and it is restarted after 0.1 s, then with a
  back-off (0.5, 1, 2, 5 s) while it keeps dying within 10 s of starting; "works again" is
  logged when it has run for 10 s;
* pipe only: when the reader count drops to zero, the child is restarted at once (no reader is
  disturbed; logged at debug level), so that the next reader gets frames;
* a child that has had a reader for 2 s but accepts no frame for 2 s is stuck: it is restarted
  (logged).

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

from bgcam.errors import ConfigError, DeviceError
from bgcam.frame import Image
from bgcam.sinks.pipewire_child import NODE_NAME, Child, child_command
from bgcam.sinks.pipewire_env import (
    check_pipewire,
    find_node,
    graph,
    has_element,
    missing_package_hint,
    node_readers,
)
from bgcam.sinks.pipewire_shm import ShmFrames
from bgcam.sinks.pipewire_slots import I420Slots

log = logging.getLogger(__name__)

__all__ = ["I420Slots", "PipeWireSink", "child_command"]

RESTART_DELAYS = (0.1, 0.5, 1.0, 2.0, 5.0)
"""Seconds before restarting a child that died, one step further each time it dies young."""
HEALTHY_AFTER = 10.0
"""A child that ran this long counts as working: the back-off starts again from the first step."""
STUCK_AFTER = 2.0
"""Seconds a child with a reader may refuse frames before it is restarted."""
MONITOR_PERIOD = 1.0
STALL_RECHECK = 5.0
"""Shared memory: seconds between two looks at the readers while the child takes no frame (it
blocks, as it should, while nobody reads)."""
SHM_SLOTS = 6
SHM_LEND = 3
"""Shared memory: frames in the area, and how many the child may hold at once; the rest are the
one being converted and those waiting (see :class:`I420Slots`)."""
CONNECT_TIMEOUT = 5.0
"""Seconds a new child's ``shmsrc`` has to connect before the child is restarted."""
TRANSPORTS = ("auto", "shm", "pipe")
TRANSPORT_ENV = "BGCAM_PIPEWIRE_TRANSPORT"
LINGER = 2.0
"""On demand: seconds without readers before the camera counts as unused."""


def children_cpu_seconds() -> float:
    """User+system CPU seconds of this process's reaped children (``pw-dump`` calls among them)."""
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


class PipeWireSink:
    """Publishes the output as the PipeWire camera ``device_name`` (see the module docstring)."""

    name = "pipewire"
    device: str | None = None

    def __init__(
        self, description: str = "BgCam", node_name: str = NODE_NAME, transport: str | None = None
    ) -> None:
        self.description = description
        self.node_name = node_name
        self.transport = transport or os.environ.get(TRANSPORT_ENV, "") or "auto"
        if self.transport not in TRANSPORTS:
            raise ConfigError(
                f"{TRANSPORT_ENV}: expected one of {', '.join(TRANSPORTS)}, got {self.transport!r}",
                hint=f"unset {TRANSPORT_ENV} (auto: shared memory when GStreamer's shmsrc exists)",
            )
        self._launch: str | None = None
        self._use_shm = False
        self._shm: ShmFrames | None = None
        self._lent: set[int] = set()
        self._watch_readers = False
        self._next_stall_check = 0.0
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
        """Check that PipeWire, a session manager and the GStreamer parts are there, and pick
        the transport: shared memory when GStreamer's ``shmsrc`` exists, else a pipe."""
        self._launch = check_pipewire()
        self._use_shm = self.transport != "pipe" and has_element("shmsrc")
        if self.transport == "shm" and not self._use_shm:
            raise DeviceError(
                "the GStreamer element 'shmsrc' is missing (GStreamer's bad plugins)",
                hint=missing_package_hint("bad") + f", or unset {TRANSPORT_ENV}",
            )
        if self.transport == "auto" and not self._use_shm:
            log.info(
                "PipeWire camera: GStreamer's shmsrc is missing, so frames go through a pipe "
                "(dearer, and one reader at a time); for shared memory %s",
                missing_package_hint("bad"),
            )
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
        self._shm = self._open_shm(size) if self._use_shm else None
        if self._shm is not None:
            self._slots = I420Slots(size, bufs=self._shm.bufs)
        else:
            self._slots = I420Slots(size)
        self._lent.clear()
        self._stop.clear()
        self._t_open = time.monotonic()
        self._spawn()
        self._writer = threading.Thread(target=self._write_loop, name="bgcam-pw-writer")
        self._monitor = threading.Thread(target=self._monitor_loop, name="bgcam-pw-monitor")
        self._writer.start()
        self._monitor.start()
        log.info(
            "PipeWire camera %r (node %s): %dx%d I420 at %.3g fps through %s; check with: "
            "pw-cli ls Node",
            self.description,
            self.node_name,
            w,
            h,
            fps,
            "shared memory" if self._shm is not None else "a pipe",
        )

    def _open_shm(self, size: tuple[int, int]) -> ShmFrames | None:
        """The shared frames; None (the pipe) when they cannot be made and the transport was
        not asked for by name."""
        try:
            return ShmFrames(size, SHM_SLOTS)
        except OSError as exc:
            if self.transport == "shm":
                raise DeviceError(
                    f"cannot set up shared memory for the PipeWire camera: {exc}",
                    hint=f"check that /dev/shm is writable, or use the pipe: {TRANSPORT_ENV}=pipe",
                ) from None
            log.warning("PipeWire camera: no shared memory (%s); frames go through a pipe", exc)
            return None

    def send(self, image: Image) -> None:
        slots = self._slots
        if slots is None:
            raise DeviceError("the PipeWire camera is not open")
        h, w = image.shape[:2]
        if (w, h) != self._size or image.ndim != 3:
            raise ValueError(f"PipeWire camera frame: expected {self._size}, got {(w, h)}")
        slots.put(image)

    accepts_i420 = True
    """Frames may come in I420 already (:func:`bgcam.sinks.takes_i420`): only copied."""

    def send_i420(self, frame: Image) -> None:
        """Send an I420 frame (H * 3/2, W) of the output size (copied into a free buffer)."""
        slots = self._slots
        if slots is None:
            raise DeviceError("the PipeWire camera is not open")
        w, h = self._size
        if frame.shape != (h * 3 // 2, w):
            raise ValueError(
                f"PipeWire camera I420 frame: expected {(h * 3 // 2, w)}, got {frame.shape}"
            )
        slots.put(frame, i420=True)

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
        if self._shm is not None:
            self._shm.close()
            self._shm = None

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
        self._watch_readers = True
        return PipeWireDemand(self, linger)

    # -- the child -------------------------------------------------------------------------

    def _spawn(self) -> None:
        assert self._launch is not None
        shm = self._shm
        cmd = child_command(
            self._launch,
            self._size,
            self._fps,
            self.description,
            self.node_name,
            shm.socket_path if shm is not None else None,
        )
        try:
            child = Child(cmd, pipe=shm is None)
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
            self._take_back(slots)
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
        if self._shm is not None:
            self._lend_step(slots, self._shm, child)
            return
        index = slots.take(0.1)
        if index is None:
            return
        try:
            self._write_all(child.fd, slots.view(index))
        except OSError:  # the child died (EPIPE) or was killed to be restarted
            slots.release(index, dropped=True)
            return
        slots.release(index)
        self.frames_written += 1
        self._last_progress = time.monotonic()

    def _lend_step(self, slots: I420Slots, shm: ShmFrames, child: Child) -> None:
        """Shared memory: connect a new child, take back the frames it acknowledged, lend it the
        next one (at most :data:`SHM_LEND` at a time)."""
        if not shm.connected:
            self._take_back(slots)
            if shm.accept(0.2):
                self._last_progress = time.monotonic()
            elif time.monotonic() - child.started > CONNECT_TIMEOUT:
                self._restart(
                    f"its shmsrc did not connect within {CONNECT_TIMEOUT:g} s", quiet=False
                )
            return
        acked = shm.acks(0.1 if len(self._lent) >= SHM_LEND else 0.0)
        if acked is None:  # the child hung up: it is exiting, the next step restarts it
            return
        for back in acked:
            if back in self._lent:
                self._lent.discard(back)
                slots.release(back)
                self._last_progress = time.monotonic()
        self._writing = len(self._lent) >= SHM_LEND
        if self._writing:
            return
        index = slots.take(0.1)
        if index is None:
            return
        if shm.send(index):
            self._lent.add(index)
            self.frames_written += 1
        else:
            slots.release(index, dropped=True)

    def _take_back(self, slots: I420Slots) -> None:
        """The frames lent to a child that is gone are free again."""
        for index in self._lent:
            slots.release(index)
        self._lent.clear()
        if self._shm is not None:
            self._shm.disconnect()

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

    def _must_look(self, stalled: bool) -> bool:
        """Whether to ask ``pw-dump`` now: every period for on-demand and for the pipe (whose
        child must restart when its last reader leaves); with shared memory otherwise only
        while the child takes no frame (stuck, or nobody reads), every :data:`STALL_RECHECK` s."""
        if self._watch_readers or self._shm is None:
            return True
        now = time.monotonic()
        if not stalled or now < self._next_stall_check:
            return False
        self._next_stall_check = now + STALL_RECHECK
        return True

    def _monitor_loop(self) -> None:
        watched_pid = 0
        linked_since = 0.0
        while not self._stop.wait(MONITOR_PERIOD):
            with self._lock:
                child = self._child
            if child is None:
                continue
            stalled = self._writing and time.monotonic() - self._last_progress > STUCK_AFTER
            if not self._must_look(stalled):
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
            now = time.monotonic()
            if readers and not before:
                linked_since = now  # a reader that just linked needs a moment to start
            if before and not readers and self._shm is None:
                self._restart("the last reader left (PipeWire 0.3 workaround)", quiet=True)
            elif readers and stalled and now - linked_since > STUCK_AFTER:
                self._restart(
                    f"a reader is linked but the child took no frame for {STUCK_AFTER:g} s",
                    quiet=False,
                )
            elif readers and stalled:  # look again as soon as it would count as stuck
                self._next_stall_check = min(self._next_stall_check, linked_since + STUCK_AFTER)


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
