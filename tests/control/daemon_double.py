"""A small, real Daemon for control tests: a frame loop that applies the command queue.

Not a mock: it keeps a frozen Config, swaps it on commands, reloads and saves real files and
counts "frames" made by a real loop thread (no video work, so control tests stay fast and do
not depend on the video pipeline). Run as a script it is a whole daemon process::

    python tests/control/daemon_double.py [--config FILE]

with signals, the control socket, hotkeys and sd_notify started through ``start_controls`` in
its main thread, exactly as ``bgcam run`` does.
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from bgcam.config import Config, load_config
from bgcam.control.commands import CommandQueue, ToggleMemory
from bgcam.control.save import save_config


class DaemonDouble:
    """Implements the ``Daemon`` protocol plus ``commands``; frames every ``period`` seconds."""

    def __init__(self, config_path: Path | None = None, period: float = 0.01) -> None:
        self.config_path = config_path
        self._config = load_config(config_path)
        self._started_with = self._config
        self.commands = CommandQueue()
        self.memory = ToggleMemory()
        self.period = period
        self.frames_out = 0
        self.paused = False
        self.applied: list[Config] = []
        self._stop = threading.Event()
        self._t0 = time.monotonic()

    # -- Daemon protocol ---------------------------------------------------------------------
    @property
    def config(self) -> Config:
        return self._config

    def apply_config(self, cfg: Config) -> None:
        self._config = cfg
        self.applied.append(cfg)

    def set_paused(self, paused: bool) -> None:
        self.paused = paused

    def reload_config(self) -> Config:
        cfg = load_config(self.config_path)
        self._started_with = cfg
        return cfg

    def save_config(self) -> Path:
        return save_config(self.config_path, self._config, baseline=self._started_with)

    def status(self) -> dict[str, Any]:
        elapsed = max(time.monotonic() - self._t0, 1e-6)
        return {
            "pid": os.getpid(),
            "frames_out": self.frames_out,
            "fps_out": self.frames_out / elapsed,
            "mode": self._config.compose.mode,
            "blur": self._config.compose.blur,
            "paused": self.paused,
        }

    def settling(self) -> None:
        return None

    def request_stop(self) -> None:
        self._stop.set()

    # -- the loop ----------------------------------------------------------------------------
    def run(self, seconds: float | None = None) -> None:
        """Make frames and apply commands between them until stopped (or ``seconds`` pass)."""
        end = None if seconds is None else time.monotonic() + seconds
        while not self._stop.is_set():
            self.commands.run_pending(self, self.memory)
            self.frames_out += 1
            if end is not None and time.monotonic() >= end:
                break
            self._stop.wait(self.period)
        self.commands.run_pending(self, self.memory)  # answer what is left

    def start_thread(self) -> threading.Thread:
        t = threading.Thread(target=self.run, name="daemon-double", daemon=True)
        t.start()
        return t


def main() -> None:
    from bgcam.control.runtime import start_controls

    parser = argparse.ArgumentParser()
    parser.add_argument("--config", type=Path)
    parser.add_argument(
        "--clobber-usr1",
        action="store_true",
        help="then set SIGUSR1 to SIG_IGN with libc sigaction, behind Python's back, as LLVM "
        "inside an OpenCL driver does",
    )
    args = parser.parse_args()
    logging.basicConfig(level="INFO", format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("bgcam.control.signals").setLevel(logging.DEBUG)  # restored handlers
    daemon = DaemonDouble(args.config)
    controls = start_controls(daemon, args.config)
    if args.clobber_usr1:
        ign = ctypes.create_string_buffer(512)
        ctypes.memmove(ign, ctypes.byref(ctypes.c_void_p(1)), ctypes.sizeof(ctypes.c_void_p))
        libc = ctypes.CDLL(None)
        libc.sigaction.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
        assert libc.sigaction(int(signal.SIGUSR1), ign, None) == 0
    try:
        daemon.run()
    finally:
        controls.stop()
    logging.getLogger("daemon_double").info("stopped cleanly")


if __name__ == "__main__":
    main()
