"""Config values that were accepted but broke the daemon (finding 9 of issue 13)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bgcam.errors import ConfigError
from tests.adversarial.adversary import BASE_ARGS, daemon_env


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (["output.fps=0.01"], "output.fps: expected a value ≥ 1"),
        (["output.fps=1e-300"], "output.fps: expected a value ≥ 1"),
        (["output.fps=121"], "output.fps: expected a value ≤ 120"),
        (["output.width=1"], "output.width: expected 0 (the source's) or 64–8192"),
        (["output.width=7680", "output.height=2"], "output.height: expected 0"),
        (["output.width=8192", "output.height=64"], "within 4:1 of each other"),
        (["output.width=9000"], "output.width: expected a value ≤ 8192"),
        (["source.fps=0.001"], "source.fps: expected a value ≥ 1"),
    ],
)
def test_broken_values_are_refused_before_anything_starts(
    settings: list[str], expected: str, tmp_path: Path, rundir: Path
) -> None:
    args = [a for s in settings for a in ("--set", s)]
    r = subprocess.run(
        [sys.executable, "-m", "bgcam", "run", "--source", "synthetic:640x360@30",
         *BASE_ARGS, *args, "--seconds", "5"],
        env=daemon_env(rundir, tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert r.returncode == ConfigError.exit_code, r.stderr
    assert expected in r.stderr
    assert "Traceback" not in r.stderr
