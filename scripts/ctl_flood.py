"""Issue 12's settings flood: a live run receiving ``bgcam ctl blur N`` ten times a second.

Runs ``bgcam run --source CLIP --sink null`` (hotkeys off) in a private runtime directory; after
``--warmup`` seconds it starts one real ``bgcam ctl blur N`` process every ``1 / --rate``
seconds for ``--flood`` seconds (strengths stepping through 1–100, so every command changes the
blur), waits for them, then lets the daemon run ``--after`` seconds more and stops it with TERM.
The daemon's own ``--stats-json`` gives ``fps_out`` and ``cpu_percent``; its status just before
the flood gives the warm-up's repeated and dropped frames, which are subtracted.

    .venv/bin/python scripts/ctl_flood.py --source clip.mp4 [--rate 10] [--flood 5] [--json]

Each ``bgcam ctl`` is a whole Python process, as a hotkey daemon or a script would run it: its
start-up competes with the daemon for the same cores, so this measures what users see.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BGCAM = [sys.executable, "-m", "bgcam"]


def _status(env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [*BGCAM, "ctl", "status", "--json"],
        env=env,
        cwd=env["BGCAM_RUNTIME_DIR"],
        capture_output=True,
        text=True,
        check=True,
    )
    status: dict[str, Any] = json.loads(done.stdout)
    return status


def _wait_ready(env: dict[str, str], daemon: subprocess.Popen[bytes], timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if daemon.poll() is not None:
            sys.exit(f"the daemon exited early with code {daemon.returncode}")
        try:
            if _status(env).get("frames_out", 0) > 0:
                return
        except subprocess.CalledProcessError:
            pass
        time.sleep(0.25)
    sys.exit(f"the daemon sent no frame within {timeout:.0f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", required=True, help="a video file (looped)")
    ap.add_argument("--rate", type=float, default=10.0, help="commands a second [10]")
    ap.add_argument("--flood", type=float, default=5.0, help="seconds of commands [5]")
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds before the flood [5]")
    ap.add_argument("--after", type=float, default=2.0, help="seconds after the flood [2]")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="bgcam-flood-") as tmp:
        # Every process runs in the runtime directory: ``-m bgcam`` takes the package from the
        # current directory first, so PYTHONPATH can point all of them at another tree.
        run = Path(tmp) / "run"
        run.mkdir(mode=0o700)
        env = {**os.environ, "BGCAM_RUNTIME_DIR": str(run)}
        stats = Path(tmp) / "stats.json"
        sets = [a for kv in ["control.hotkeys=false", *args.set] for a in ("--set", kv)]
        argv = [
            *BGCAM,
            "run",
            "--source",
            str(Path(args.source).absolute()),
            "--sink",
            "null",
            *sets,
        ]
        daemon = subprocess.Popen(
            [*argv, "--stats-json", str(stats)], env=env, cwd=run, stderr=subprocess.DEVNULL
        )
        try:
            _wait_ready(env, daemon, 120)
            time.sleep(args.warmup)
            before = _status(env)
            count = round(args.rate * args.flood)
            start = time.monotonic()
            clients: list[tuple[subprocess.Popen[bytes], float]] = []
            pending: list[tuple[subprocess.Popen[bytes], float]] = []
            walls: list[float] = []  # each command's own time, from its start to its exit

            def reap() -> None:
                for item in [c for c in pending if c[0].poll() is not None]:
                    walls.append(time.monotonic() - item[1])
                    pending.remove(item)

            for i in range(count):
                while (delay := start + i / args.rate - time.monotonic()) > 0:
                    time.sleep(min(delay, 0.005))
                    reap()
                strength = str(1 + (i * 37) % 100)
                proc = subprocess.Popen(
                    [*BGCAM, "ctl", "blur", strength],
                    env=env,
                    cwd=run,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                clients.append((proc, time.monotonic()))
                pending.append(clients[-1])
            while pending:
                time.sleep(0.005)
                reap()
            failed = sum(proc.returncode != 0 for proc, _ in clients)
            sent_s = time.monotonic() - start
            time.sleep(args.after)
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(60)
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
        data = json.loads(stats.read_text())
    result = {
        "commands": count,
        "failed": failed,
        "seconds_to_send": round(sent_s, 2),
        "ctl_wall_s_p50": round(statistics.median(walls), 3),
        "ctl_wall_s_max": round(max(walls), 3),
        "fps_out": data["fps_out"],
        "cpu_percent": data["cpu_percent"],
        "frames_repeated": data["frames_repeated"] - before["frames_repeated"],
        "frames_dropped": data["frames_dropped"] - before["frames_dropped"],
        "warmup_repeated": before["frames_repeated"],
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(", ".join(f"{k} {v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
