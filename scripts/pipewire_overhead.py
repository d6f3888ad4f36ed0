"""What the PipeWire camera costs over ``--sink null``, in percentage points of one core.

Starts a private PipeWire session (dbus, pipewire, wireplumber under a temporary
``XDG_RUNTIME_DIR``, as the tests do), then runs ``bgcam run --source synthetic:WxH@30`` with
``--sink null`` and with ``--sink pipewire`` (a real reader, ``pipewiresrc ! fakesink``,
attached) once per transport (``BGCAM_PIPEWIRE_TRANSPORT``: ``shm``, shared memory, and
``pipe``), alternating, ``--rounds`` times each, back to back. The PipeWire figures count the
daemon, its ``gst-launch`` child and the ``pw-dump`` calls that watch the readers; the reader's
own CPU is the application's, not BgCam's.

    .venv/bin/python scripts/pipewire_overhead.py --seconds 20 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

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
    session: PipeWireSession, sink: str, size: str, seconds: float, transport: str = "auto"
) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        stats_path = Path(tmp) / "stats.json"
        cmd = [
            sys.executable,
            "-m",
            "bgcam",
            "run",
            "--source",
            f"synthetic:{size}@30",
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
    return {
        "cpu": float(stats["cpu_percent"]),
        "child": child,
        "total": float(stats["cpu_percent"]) + child,
        "fps": float(stats["fps_out"]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--transports", default="shm,pipe", help="comma-separated: shm, pipe, auto")
    args = ap.parse_args()
    require_pipewire()
    transports = [t.strip() for t in args.transports.split(",") if t.strip()]
    runs = [("null", "null", "auto")] + [(f"pw-{t}", "pipewire", t) for t in transports]
    results: dict[str, list[dict[str, float]]] = {label: [] for label, _, _ in runs}
    with PipeWireSession() as session:
        for r in range(args.rounds):
            for label, sink, transport in runs:
                res = run_once(session, sink, args.size, args.seconds, transport)
                results[label].append(res)
                print(
                    f"round {r + 1} {label:8s} daemon {res['cpu']:5.1f} %  child "
                    f"{res['child']:5.1f} %  total {res['total']:5.1f} %  fps {res['fps']:.2f}",
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


if __name__ == "__main__":
    main()
