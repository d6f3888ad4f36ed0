"""compose.backend = "auto": a start-up measurement chooses a backend that runs, and says why."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bgcam.compose import auto, available, create_compositor
from bgcam.config import ComposeConfig

ROOT = Path(__file__).resolve().parents[2]
SIZE = (1280, 720)


def T(name: str, ms: float | None, cpu: float | None = None, err: str | None = None) -> auto.Trial:
    return auto.Trial(name, ms=ms, cpu_ms=cpu if cpu is not None else ms, error=err)


@pytest.mark.parametrize(
    ("trials", "chosen", "reason"),
    [
        ([T("cpu", 4.0)], "cpu", "the only backend that runs here"),
        ([T("cpu", 4.0), T("opencl", None, err="no device")], "cpu", "the only backend"),
        ([T("cpu", 4.0), T("opencl", 2.0), T("cuda", 1.5)], "cuda", "fastest"),
        ([T("cpu", 4.0), T("opencl", 9.0)], "cpu", "fastest"),
        # A GPU as fast as the CPU path (within 10 %) that frees the CPU wins.
        ([T("cpu", 4.0, 4.0), T("cuda", 4.3, 0.5)], "cuda", "uses less CPU"),
        # ...but not one that uses as much CPU (a CPU OpenCL driver).
        ([T("cpu", 4.0, 4.0), T("opencl", 4.2, 8.0)], "cpu", "fastest"),
        ([T("cpu", None, err="broken")], "cpu", "nothing could be measured"),
    ],
)
def test_decide(trials: list[auto.Trial], chosen: str, reason: str) -> None:
    decision = auto.decide(trials, SIZE)
    assert decision.chosen == chosen
    assert reason in decision.reason


def test_auto_creates_a_backend_that_runs_and_logs_why(
    model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = ComposeConfig(backend="auto")
    with caplog.at_level(logging.DEBUG, logger="bgcam.compose.auto"):
        comp, decision = auto.choose(cfg, SIZE, fresh=True)
    try:
        assert comp.name == decision.chosen and comp.name in available()
        records = [r for r in caplog.records if r.name == "bgcam.compose.auto"]
        # One short INFO line (the choice); the reasons of the others at DEBUG.
        (info,) = [r.getMessage() for r in records if r.levelno == logging.INFO]
        assert info.startswith(f"compositor {decision.chosen} at ") and "unavailable" not in info
        line = next(r.getMessage() for r in records if r.levelno == logging.DEBUG)
        assert line.startswith(f"compositor {decision.chosen} (")
        ran = [t for t in decision.trials if t.ok]
        if ran:  # something besides cpu could run: all were measured
            assert any(t.backend == "cpu" for t in ran)
        else:  # nothing else runs: no measurement needed (no cost at start-up)
            assert (decision.chosen, decision.reason) == ("cpu", "the only backend that runs here")
        for t in decision.trials:  # every backend is accounted for: ms, or why not
            assert (f"{t.backend} {t.ms:.2f} ms" if t.ok else f"{t.backend} unavailable") in line
        assert {t.backend for t in decision.trials} | {"cpu"} == set(available())
    finally:
        comp.close()
    # create_compositor("auto") reuses this process's decision for the same settings.
    again = create_compositor(cfg, SIZE)
    assert again.name == decision.chosen
    again.close()


def test_auto_measures_opencl_when_a_device_works() -> None:
    """In a child with the pocl CPU device: cpu and opencl both measured, the choice logged."""
    code = """
import json, logging
logging.basicConfig(level=logging.DEBUG)  # the reasons and CPU times are at DEBUG
from bgcam.compose import auto
from bgcam.config import ComposeConfig
comp, d = auto.choose(ComposeConfig(), (640, 480))
print(json.dumps({"chosen": d.chosen, "name": comp.name,
                  "trials": {t.backend: [t.ms, t.error] for t in d.trials}}))
"""
    res = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=dict(os.environ, OPENCV_OPENCL_DEVICE=":CPU:"),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    info = json.loads(res.stdout.strip().splitlines()[-1])
    trials = info["trials"]
    if trials["opencl"][1] is not None:
        pytest.skip(f"no CPU OpenCL device here: {trials['opencl'][1]}")
    assert trials["cpu"][0] > 0 and trials["opencl"][0] > 0
    assert info["chosen"] == info["name"] and info["chosen"] in ("cpu", "opencl")
    assert "compositor " + info["chosen"] in res.stderr
    assert "opencl " in res.stderr and " ms (cpu time " in res.stderr
