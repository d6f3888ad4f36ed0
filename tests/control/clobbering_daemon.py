"""A real daemon (the Pipeline on a synthetic source, its controls started as ``bgcam run`` starts
them) whose SIGUSR1 handler is set to SIG_IGN with libc ``sigaction`` once the controls are up,
behind Python's back, as LLVM inside an OpenCL driver does. Run as a script by the signal tests::

    python tests/control/clobbering_daemon.py
"""

from __future__ import annotations

import ctypes
import logging
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bgcam.control.runtime import start_controls
from bgcam.pipeline import Pipeline
from tests.live_media import pipeline_config


def main() -> None:
    logging.basicConfig(level="INFO", format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("bgcam.control.signals").setLevel(logging.DEBUG)  # restored handlers
    cfg = pipeline_config()
    pipeline = Pipeline(cfg, loader=lambda: cfg)
    controls = start_controls(pipeline, None)
    ign = ctypes.create_string_buffer(512)
    ctypes.memmove(ign, ctypes.byref(ctypes.c_void_p(1)), ctypes.sizeof(ctypes.c_void_p))
    libc = ctypes.CDLL(None)
    libc.sigaction.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
    assert libc.sigaction(int(signal.SIGUSR1), ign, None) == 0
    try:
        pipeline.run()
    finally:
        controls.stop()
    logging.getLogger("clobbering_daemon").info("stopped cleanly")


if __name__ == "__main__":
    main()
