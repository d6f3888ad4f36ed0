"""The systemd user unit: its text, `systemd-analyze verify`, install/uninstall, and the CLI."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bgcam.cli import main
from bgcam.service import bgcam_executable, install, render_unit, uninstall, unit_path

ROOT = Path(__file__).resolve().parents[1]


def test_unit_has_what_systemd_needs() -> None:
    cfg = ROOT / "configs" / "default.toml"
    text = render_unit(cfg, ["/opt/bg cam/bin/bgcam"])
    lines = text.splitlines()
    for line in [
        "Type=notify",
        "NotifyAccess=main",
        "Restart=on-failure",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "WantedBy=default.target",
    ]:
        assert line in lines
    assert f'ExecStart="/opt/bg cam/bin/bgcam" run --config {cfg}' in lines
    assert any(line.startswith("WatchdogSec=") for line in lines)


def test_exec_start_is_this_bgcam() -> None:
    cmd = bgcam_executable()
    assert Path(cmd[0]).is_absolute()
    assert Path(cmd[0]).exists()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    """System mode (``--user`` needs a user manager we lack); errors only show on stderr."""
    unit = tmp_path / "bgcam.service"
    unit.write_text(render_unit(ROOT / "configs" / "default.toml"), encoding="utf-8")
    proc = subprocess.run(
        ["systemd-analyze", "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.stderr.strip() == "", proc.stderr
    assert proc.returncode == 0
    # and it does catch a broken unit, so the empty stderr above means something
    broken = tmp_path / "broken.service"
    broken.write_text(
        render_unit(None, ["/nonexistent/bgcam"]).replace("Type=notify", "Type=notifyy"),
        encoding="utf-8",
    )
    bad = subprocess.run(
        ["systemd-analyze", "verify", str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    ).stderr
    assert "notifyy" in bad and "/nonexistent/bgcam" in bad


@pytest.fixture
def user_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private XDG_CONFIG_HOME and a PATH without systemctl (never touch a real manager)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    return tmp_path / "config"


def test_install_and_uninstall_without_systemctl(user_home: Path) -> None:
    cfg = ROOT / "configs" / "default.toml"
    result = install(cfg)
    assert result.path == user_home / "systemd" / "user" / "bgcam.service" == unit_path()
    assert f"--config {cfg}" in result.path.read_text(encoding="utf-8")
    assert result.done == []
    assert result.todo == [
        "systemctl --user daemon-reload",
        "systemctl --user enable bgcam.service",
    ]
    gone = uninstall()
    assert not result.path.exists()
    assert "systemctl --user disable --now bgcam.service" in gone.todo


def test_cli_service_install_status_uninstall(user_home: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    cfg = tmp_path / "my.toml"
    cfg.write_text("[compose]\nblur = 10\n", encoding="utf-8")
    res = runner.invoke(main, ["service", "install", "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    assert "wrote " in res.output and "systemctl --user enable bgcam.service" in res.output
    res = runner.invoke(main, ["service", "status"])
    if "cannot ask systemd" in res.output:  # no systemctl / user manager here (CI, containers)
        assert res.exit_code == 1 and "fix:" in res.output and "installed)" in res.output
    else:
        assert res.exit_code == 0 and "(installed)" in res.output
    res = runner.invoke(main, ["service", "uninstall"])
    assert res.exit_code == 0 and "is gone" in res.output
    res = runner.invoke(main, ["service", "install", "--config", str(tmp_path / "none.toml")])
    assert res.exit_code == 1 and "does not exist" in res.output
    assert "Traceback" not in res.output


def test_python_m_bgcam_has_the_service_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bgcam", "service", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "install" in out and "uninstall" in out
