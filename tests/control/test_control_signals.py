"""Real signals to a daemon process: HUP reloads (a bad file keeps the config), USR1 toggles,
TERM and INT stop it cleanly and remove the socket."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from bgcam.control.client import ControlClient
from tests.control.control_support import spawn_clobbering, spawn_daemon
from tests.live_media import wait_for


def status(rundir: Path) -> dict[str, object]:
    with ControlClient(rundir / "control.sock", timeout=20) as c:
        return c.call("status")


def test_hup_reloads_a_good_file_and_keeps_the_config_on_a_bad_one(
    rundir: Path, tmp_path: Path, clip: Path
) -> None:
    cfg = tmp_path / "bgcam.toml"
    cfg.write_text("# mine\n[compose]\nblur = 20\n", encoding="utf-8")
    proc = spawn_daemon(rundir, clip, cfg)
    try:
        assert status(rundir)["blur"] == 20
        cfg.write_text("[compose]\nblur = 70\nmode = 'remove'\n", encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: status(rundir)["blur"] == 70, what="the reload")
        assert status(rundir)["mode"] == "remove"

        cfg.write_text("[compose]\nblur = 'very'\nmood = 1\n", encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        proc.send_signal(signal.SIGUSR1)  # queued after the failed reload: proves it was handled
        wait_for(lambda: status(rundir)["mode"] == "off", what="the toggle after the bad HUP")
        assert status(rundir)["blur"] == 70
    finally:
        out = proc.finish()
    assert proc.returncode == 0, out
    assert "reload failed, keeping the running configuration" in out
    assert "compose.blur: expected an integer, got 'very'" in out
    assert "compose.mood: unknown key (did you mean 'compose.mode'?)" in out
    assert "Traceback" not in out
    assert not (rundir / "control.sock").exists()


def test_usr1_toggles(rundir: Path, clip: Path) -> None:
    proc = spawn_daemon(rundir, clip)
    try:
        assert status(rundir)["mode"] == "blur"
        proc.send_signal(signal.SIGUSR1)
        wait_for(lambda: status(rundir)["mode"] == "off", what="toggle off")
        proc.send_signal(signal.SIGUSR1)
        wait_for(lambda: status(rundir)["mode"] == "blur", what="toggle back on")
    finally:
        out = proc.finish()
    assert "toggled (mode off)" in out and "toggled (mode blur)" in out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_term_and_int_stop_gracefully(rundir: Path, clip: Path, sig: int) -> None:
    proc = spawn_daemon(rundir, clip)
    out = proc.finish(sig)
    assert proc.returncode == 0, out
    assert f"{signal.Signals(sig).name}: stopping" in out
    assert "Traceback" not in out
    assert not (rundir / "control.sock").exists()


def test_quit_over_the_socket_stops_it(rundir: Path, clip: Path) -> None:
    proc = spawn_daemon(rundir, clip)
    with ControlClient(rundir / "control.sock") as c:
        c.call("quit")
    proc.proc.wait(30)
    out = proc.finish()
    assert proc.returncode == 0, out
    assert "Traceback" not in out
    assert not (rundir / "control.sock").exists()


def test_a_handler_replaced_behind_pythons_back_is_restored(rundir: Path, model_dir: Path) -> None:
    """LLVM (inside pocl and other OpenCL drivers) replaces the USR1 handler at the C level and
    swallows the signal; the dispatcher notices and puts Python's handler back."""
    proc = spawn_clobbering(rundir)
    try:
        proc.wait_log("a native library replaced the handlers of SIGUSR1")
        proc.send_signal(signal.SIGUSR1)
        wait_for(lambda: status(rundir)["mode"] == "off", what="the toggle")
    finally:
        out = proc.finish()
    assert proc.returncode == 0, out
