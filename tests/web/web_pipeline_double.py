"""A real stand-in for the live pipeline, for the web panel's tests.

Not a mock: a thread runs a real :class:`bgcam.engine.Engine` (MediaPipe segmentation, refiner,
compositor) over a real photo at a fixed rate, applies the real :class:`CommandQueue` between
frames and publishes each output in one of two buffers it owns, as the live pipeline does. It
implements both :class:`bgcam.control.commands.Daemon` and :class:`bgcam.web.app.PanelPipeline`,
so the control socket and the web panel can serve it side by side.

With ``engine=False`` it publishes the photo itself (no video work): used where the cost of the
preview alone is measured.
"""

from __future__ import annotations

import collections
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from bgcam.config import Config
from bgcam.control.commands import CommandQueue, ToggleMemory
from bgcam.control.save import save_config
from bgcam.engine import Engine
from bgcam.frame import Image


class EnginePipeline:
    def __init__(
        self,
        image: Image,
        cfg: Config | None = None,
        *,
        fps: float = 15.0,
        engine: bool = True,
        config_path: Path | None = None,
    ) -> None:
        self.image = image
        self._config = cfg or Config()
        self._started_with = self._config
        self.config_path = config_path
        self.commands = CommandQueue()
        self.memory = ToggleMemory()
        h, w = image.shape[:2]
        self.engine = Engine(self._config, (w, h)) if engine else None
        self.period = 1.0 / fps
        self.paused = False
        self.frames_out = 0
        self.applied: list[Config] = []
        self._buffers = [np.zeros_like(image), np.zeros_like(image)]
        self._latest: Image | None = None
        self._index = -1
        self._lock = threading.Lock()
        self._ms: collections.deque[float] = collections.deque(maxlen=200)
        self._stop = threading.Event()
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="engine-pipeline", daemon=True)

    # -- Daemon ------------------------------------------------------------------------------
    @property
    def config(self) -> Config:
        return self._config

    def apply_config(self, cfg: Config) -> None:
        if self.engine is not None:
            self.engine.update(cfg)
        self._config = cfg
        self.applied.append(cfg)

    def set_paused(self, paused: bool) -> None:
        self.paused = paused

    def reload_config(self) -> Config:
        return self._started_with

    def save_config(self) -> Path:
        return save_config(self.config_path, self._config, baseline=self._started_with)

    def status(self) -> dict[str, Any]:
        ms = np.array(self._ms) if self._ms else np.zeros(1)
        elapsed = max(time.monotonic() - self._t0, 1e-6)
        c = self._config.compose
        return {
            "state": "paused" if self.paused else "running",
            "frames_out": self.frames_out,
            "fps_out": self.frames_out / elapsed,
            "latency_ms_p50": float(np.percentile(ms, 50)),
            "latency_ms_p99": float(np.percentile(ms, 99)),
            "mode": c.mode,
            "blur": c.blur,
            "blur_type": c.blur_type,
            "segmenter": self._config.segment.segmenter,
            "paused": self.paused,
        }

    def settling(self) -> None:
        return None

    def request_stop(self) -> None:
        self._stop.set()

    # -- PanelPipeline -----------------------------------------------------------------------
    def latest_output(self) -> tuple[Image | None, int]:
        with self._lock:
            return self._latest, self._index

    # -- the loop ----------------------------------------------------------------------------
    def _run(self) -> None:
        due = time.monotonic()
        while not self._stop.is_set():
            self.commands.run_pending(self, self.memory)
            if not self.paused:
                t0 = time.monotonic()
                out = self.engine.process(self.image) if self.engine else self.image
                buf = self._buffers[(self._index + 1) % 2]
                np.copyto(buf, out)
                with self._lock:
                    self._latest = buf
                    self._index += 1
                self.frames_out += 1
                self._ms.append((time.monotonic() - t0) * 1e3)
            due += self.period
            self._stop.wait(max(0.0, due - time.monotonic()))
            due = max(due, time.monotonic() - self.period)
        self.commands.run_pending(self, self.memory)

    def start(self) -> EnginePipeline:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        if self.engine is not None:
            self.engine.close()
