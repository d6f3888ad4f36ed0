"""What the PipeWire camera costs over ``--sink null``, in percentage points of one core.

Starts a private PipeWire session (dbus, pipewire, wireplumber under a temporary
``XDG_RUNTIME_DIR``, as the tests do), then runs ``bgcam run --source synthetic:WxH@30`` with
``--sink null`` and with ``--sink pipewire`` (a real reader, ``pipewiresrc ! fakesink``,
attached) once per transport (``BGCAM_PIPEWIRE_TRANSPORT``: ``shm``, shared memory, and
``pipe``), alternating, ``--rounds`` times each, back to back. The PipeWire figures count the
daemon, its ``gst-launch`` child and the ``pw-dump`` calls that watch the readers; the reader's
own CPU is the application's, not BgCam's.

    .venv/bin/python scripts/pipewire_overhead.py --seconds 20 --rounds 3

``--sink-only`` measures the sink alone, in this process: one 720p frame sent 30 times a second
to a ``NullSink``, then to a ``PipeWireSink`` per transport (same reader), this process's CPU
plus the child's and the ``pw-dump`` calls'. No segmentation or compositing runs beside it, so
the machine's load disturbs the figure far less than the daemon's total, which varies by several
points from run to run on a shared machine. ``--i420`` adds, per transport, a run that hands the
sink I420 frames (``send_i420``: what it gets when the CPU compositor writes I420 itself), beside
the BGR frames it converts.

Each daemon run also prints the output thread's compose and send times (``stage_ms``, median
milliseconds a frame), which show the I420 path's effect with less noise than the CPU totals.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402

from bgcam.live.worker import opencv_threads  # noqa: E402
from bgcam.sinks.null import NullSink  # noqa: E402
from bgcam.sinks.pipewire import PipeWireSink  # noqa: E402
from tests.sinks.pipewire_support import PipeWireSession, require_pipewire, wait_for  # noqa: E402

READER = [
    "gst-launch-1.0",
    "-q",
    "pipewiresrc",
    "target-object=bgcam",
    "stream-properties=props,media.type=Video,media.category=Capture,media.role=Camera",
    "!",
    "fakesink",
    "sync=false",
]


def run_once(
    session: PipeWireSession,
    sink: str,
    size: str,
    seconds: float,
    transport: str = "auto",
    source: str = "",
) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        stats_path = Path(tmp) / "stats.json"
        cmd = [
            sys.executable,
            "-m",
            "bgcam",
            "run",
            "--source",
            source or f"synthetic:{size}@30",
            "--sink",
            sink,
            "--seconds",
            str(seconds),
            "--stats-json",
            str(stats_path),
            "--set",
            "control.hotkeys=false",
            # The quality governor would lower segmentation on a busy machine: pin it, so both
            # runs do the same work and only the sink differs.
            "--set",
            "output.governor=false",
        ]
        env = dict(session.env, BGCAM_PIPEWIRE_TRANSPORT=transport)
        env.pop("DISPLAY", None)
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        reader = None
        try:
            if sink == "pipewire":
                wait_for(
                    lambda: session.has_node("bgcam") or proc.poll() is not None, 90, "the node"
                )
                reader = subprocess.Popen(
                    READER, env=session.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
            proc.wait(seconds + 60)
        finally:
            if reader is not None:
                reader.terminate()
                reader.wait(10)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        stats: dict[str, Any] = json.loads(stats_path.read_text())
    counters: dict[str, float] = stats.get("sink", {})
    child = float(counters.get("child_cpu_percent", 0.0)) + float(
        counters.get("monitor_cpu_percent", 0.0)
    )
    stages: dict[str, float] = stats.get("stage_ms", {})
    return {
        "cpu": float(stats["cpu_percent"]),
        "child": child,
        "total": float(stats["cpu_percent"]) + child,
        "fps": float(stats["fps_out"]),
        "compose": float(stages.get("compose", 0.0)),
        "send": float(stages.get("send", 0.0)),
    }


def own_cpu() -> float:
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def sink_once(
    session: PipeWireSession,
    transport: str | None,
    size: tuple[int, int],
    seconds: float,
    i420: bool = False,
) -> dict[str, float]:
    """CPU % of one core that sending frames at 30 fps to one sink costs (``None``: null);
    ``i420``: the frames are I420 already."""
    w, h = size
    frame = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)
    if i420:
        frame = cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420)
    sink = NullSink() if transport is None else PipeWireSink(transport=transport)
    sink.locate()
    sink.open(size, 30.0)
    reader = None
    try:
        if transport is not None:
            # The node appears once the child has its first frame: send while waiting.
            pump(sink, frame, 30, until=lambda: session.has_node("bgcam"))
            reader = subprocess.Popen(
                READER, env=session.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        pump(sink, frame, 3)  # the reader links, the frames flow
        c0, t0, h0 = own_cpu(), time.monotonic(), helpers_cpu(sink)
        n = pump(sink, frame, seconds)
        wall = time.monotonic() - t0
        own = (own_cpu() - c0) / wall * 100
        child = (helpers_cpu(sink) - h0) / wall * 100
    finally:
        if reader is not None:
            reader.terminate()
            reader.wait(10)
        sink.close()
    return {"cpu": own, "child": child, "total": own + child, "fps": n / wall}


def pump(
    sink: NullSink | PipeWireSink,
    frame: npt.NDArray[np.uint8],
    seconds: float,
    until: Callable[[], bool] | None = None,
) -> int:
    """Send ``frame`` 30 times a second for ``seconds`` (or until ``until()``); frames sent."""
    t0 = time.monotonic()
    n = 0
    send = sink.send_i420 if frame.ndim == 2 and isinstance(sink, PipeWireSink) else sink.send
    while n < seconds * 30:
        send(frame)
        n += 1
        if until is not None and n % 15 == 0 and until():
            break
        time.sleep(max(0.0, t0 + n / 30 - time.monotonic()))
    else:
        if until is not None:
            raise AssertionError(f"timed out after {seconds:g} s")
    return n


def helpers_cpu(sink: object) -> float:
    """CPU seconds of the sink's child so far plus this process's reaped children (the
    ``pw-dump`` calls among them)."""
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    reaped = use.ru_utime + use.ru_stime
    if not isinstance(sink, PipeWireSink):
        return reaped
    child = sink._child  # a measuring script reads the live child
    return reaped + (child.cpu_seconds() if child is not None else 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--transports", default="shm,pipe", help="comma-separated: shm, pipe, auto")
    ap.add_argument("--source", default="", help="instead of synthetic:SIZE@30 (e.g. a clip)")
    ap.add_argument("--sink-only", action="store_true", help="the sink alone, in this process")
    ap.add_argument("--i420", action="store_true", help="--sink-only: also send I420 frames")
    args = ap.parse_args()
    require_pipewire()
    if args.sink_only:
        sink_only(args)
        return
    transports = [t.strip() for t in args.transports.split(",") if t.strip()]
    runs = [("null", "null", "auto")] + [(f"pw-{t}", "pipewire", t) for t in transports]
    results: dict[str, list[dict[str, float]]] = {label: [] for label, _, _ in runs}
    with PipeWireSession() as session:
        for r in range(args.rounds):
            for label, sink, transport in runs:
                res = run_once(session, sink, args.size, args.seconds, transport, args.source)
                results[label].append(res)
                print(
                    f"round {r + 1} {label:8s} daemon {res['cpu']:5.1f} %  child "
                    f"{res['child']:5.1f} %  total {res['total']:5.1f} %  fps {res['fps']:.2f}  "
                    f"compose {res['compose']:.2f} ms  send {res['send']:.2f} ms",
                    flush=True,
                )
    med = {k: statistics.median(x["total"] for x in v) for k, v in results.items()}
    for label, _, _ in runs[1:]:
        diffs = [
            p["total"] - n["total"] for p, n in zip(results[label], results["null"], strict=True)
        ]
        print(
            f"{label}: median total {med[label]:.1f} % vs null {med['null']:.1f} %: overhead "
            f"{med[label] - med['null']:+.1f} points of one core at {args.size} (per round: "
            + ", ".join(f"{d:+.1f}" for d in diffs)
            + ")"
        )


def sink_only(args: argparse.Namespace) -> None:
    w, h = (int(v) for v in args.size.split("x"))
    transports = [t.strip() for t in args.transports.split(",") if t.strip()]
    runs: list[tuple[str, str | None, bool]] = [("null", None, False)]
    for t in transports:
        runs.append((f"pw-{t}", t, False))
        if args.i420:
            runs.append((f"pw-{t}-i420", t, True))
    results: dict[str, list[float]] = {label: [] for label, _, _ in runs}
    cv2.setNumThreads(opencv_threads())  # as the daemon's pipeline does while it runs
    with PipeWireSession() as session:
        os.environ.update(session.env)  # the sink finds PipeWire through this process's env
        for r in range(args.rounds):
            for label, transport, i420 in runs:
                res = sink_once(session, transport, (w, h), args.seconds, i420)
                results[label].append(res["total"])
                print(
                    f"round {r + 1} {label:8s} this process {res['cpu']:5.2f} %  child "
                    f"{res['child']:5.2f} %  total {res['total']:5.2f} %  fps {res['fps']:.2f}",
                    flush=True,
                )
    for label, _, _ in runs[1:]:
        diffs = [p - n for p, n in zip(results[label], results["null"], strict=True)]
        print(
            f"{label}: sink alone {statistics.median(diffs):+.2f} points of one core over null "
            f"at {args.size} (per round: " + ", ".join(f"{d:+.2f}" for d in diffs) + ")"
        )


if __name__ == "__main__":
    main()
