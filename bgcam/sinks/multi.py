"""Several sinks fed the same composed frame (``--sink virtualcam,pipewire``).

The frame is composed once; each sink gets the same buffer in turn (sinks never keep it), in I420
only when every one of them takes it (:func:`~bgcam.sinks.takes_i420`). A sink that fails to
open closes the ones already open. On demand: a reader of any of them counts.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Protocol

from bgcam.frame import Image
from bgcam.sinks import Sink, takes_i420

log = logging.getLogger(__name__)


class _Watcher(Protocol):
    method: str

    def poll(self, timeout: float) -> bool: ...

    def close(self) -> None: ...


class AnyReader:
    """On demand over several watchers: True while any of them has a reader."""

    def __init__(self, watchers: list[_Watcher]) -> None:
        self._watchers = watchers
        self.method = " + ".join(w.method for w in watchers)

    def poll(self, timeout: float) -> bool:
        first, *rest = self._watchers
        wanted = first.poll(timeout)
        for w in rest:
            wanted = w.poll(0) or wanted
        return wanted

    def close(self) -> None:
        for w in self._watchers:
            w.close()


class MultiSink:
    def __init__(self, sinks: list[Sink]) -> None:
        self.sinks = sinks
        self.name = ",".join(s.name for s in sinks)
        self.device: str | None = next((s.device for s in sinks if s.device), None)
        self.accepts_i420 = all(takes_i420(s) for s in sinks)

    def locate(self) -> None:
        for sink in self.sinks:
            locate = getattr(sink, "locate", None)
            if locate is not None:
                locate()
        self.device = next((s.device for s in self.sinks if s.device), None)

    def open(self, size: tuple[int, int], fps: float) -> None:
        opened: list[Sink] = []
        try:
            for sink in self.sinks:
                sink.open(size, fps)
                opened.append(sink)
        except BaseException:
            for sink in reversed(opened):
                with contextlib.suppress(Exception):
                    sink.close()
            raise

    def send(self, image: Image) -> None:
        for sink in self.sinks:
            sink.send(image)

    def send_i420(self, frame: Image) -> None:
        """Only when :attr:`accepts_i420` (every sink takes I420)."""
        for sink in self.sinks:
            sink.send_i420(frame)  # type: ignore[attr-defined]

    def close(self) -> None:
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:
                log.warning("closing the %s sink failed: %s", sink.name, exc)

    def demand_watcher(self) -> AnyReader | None:
        """Readers of every sink that can report them (PipeWire links, v4l2loopback readers)."""
        from bgcam.ondemand import watch_readers

        watchers: list[_Watcher] = []
        for sink in self.sinks:
            factory = getattr(sink, "demand_watcher", None)
            if factory is not None:
                watchers.append(factory())
            elif sink.device:
                watchers.append(watch_readers(sink.device))
        return AnyReader(watchers) if watchers else None

    def stats(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for sink in self.sinks:
            stats = getattr(sink, "stats", None)
            if stats is not None:
                out[sink.name] = stats()
        return out
