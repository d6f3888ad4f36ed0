"""Global hotkeys: binding parsing, backend choice per session, and real keys under Xvfb."""

from __future__ import annotations

import logging
from pathlib import Path

import evdev
import pytest

from bgcam.config import ControlConfig, KeysConfig
from bgcam.control.client import ControlClient
from bgcam.control.commands import CommandQueue
from bgcam.control.hotkeys import (
    ChordMatcher,
    bindings,
    parse_binding,
    session_kind,
    start_hotkeys,
)
from tests.control.control_support import press, spawn_daemon, start_xvfb
from tests.live_media import DaemonProcess, wait_for


@pytest.mark.parametrize(
    ("combo", "groups", "final"),
    [
        ("<ctrl>+<alt>+b", [("KEY_LEFTCTRL", "KEY_RIGHTCTRL"), ("KEY_LEFTALT", "KEY_RIGHTALT")],
         "KEY_B"),
        ("<ctrl>+<alt>+<up>", [("KEY_LEFTCTRL", "KEY_RIGHTCTRL"), ("KEY_LEFTALT", "KEY_RIGHTALT")],
         "KEY_UP"),
        ("<cmd>+<shift>+<f9>", [("KEY_LEFTMETA", "KEY_RIGHTMETA"), ("KEY_LEFTSHIFT",
         "KEY_RIGHTSHIFT")], "KEY_F9"),
        ("<ctrl_r>+7", [("KEY_RIGHTCTRL",)], "KEY_7"),
        ("<alt>+.", [("KEY_LEFTALT", "KEY_RIGHTALT")], "KEY_DOT"),
        ("<pause>", [], "KEY_PAUSE"),
    ],
)  # fmt: skip
def test_parse_binding(combo: str, groups: list[tuple[str, ...]], final: str) -> None:
    assert parse_binding(combo) == (groups, final)
    for name in [final, *(k for g in groups for k in g)]:
        assert name in evdev.ecodes.ecodes  # every name is a real evdev key


@pytest.mark.parametrize(
    ("combo", "error"),
    [
        ("<ctrl>+<alt>", "ends with a modifier"),
        ("<ctrl>+<bogus>", "unknown key <bogus>"),
        ("<up>+b", "only modifiers may come before"),
        ("ctrl+b", "'ctrl' is not a key"),
        ("<ctrl>+é", "no evdev key"),
    ],
)
def test_parse_binding_errors(combo: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_binding(combo)


@pytest.mark.parametrize(
    ("env", "kind"),
    [
        ({"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0"}, "wayland"),
        ({"XDG_SESSION_TYPE": "wayland"}, "wayland"),
        ({"XDG_SESSION_TYPE": "x11", "DISPLAY": ":0"}, "x11"),
        ({"DISPLAY": ":1"}, "x11"),
        ({}, "none"),
    ],
)
def test_session_kind(env: dict[str, str], kind: str) -> None:
    assert session_kind(env) == kind


def test_default_bindings() -> None:
    assert bindings(ControlConfig()) == {
        "<ctrl>+<alt>+b": "toggle",
        "<ctrl>+<alt>+<up>": "blur_up",
        "<ctrl>+<alt>+<down>": "blur_down",
        "<ctrl>+<alt>+m": "next_mode",
    }
    assert bindings(ControlConfig(keys=KeysConfig(toggle=""))).get("<ctrl>+<alt>+b") is None


def test_no_display_runs_without_hotkeys_and_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "XDG_SESSION_TYPE"):
        monkeypatch.delenv(var, raising=False)
    with caplog.at_level(logging.INFO, logger="bgcam.control.hotkeys"):
        assert start_hotkeys(ControlConfig(), CommandQueue()) is None
    assert len(caplog.records) == 1
    assert "no display" in caplog.text and "bgcam ctl" in caplog.text


def test_wayland_explains_desktop_shortcuts(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    if evdev.list_devices():
        pytest.skip("this machine has readable keyboards: evdev would take over")
    with caplog.at_level(logging.INFO, logger="bgcam.control.hotkeys"):
        assert start_hotkeys(ControlConfig(), CommandQueue()) is None
    assert len(caplog.records) == 1
    text = caplog.text
    assert "Wayland" in text and "ctl toggle" in text and "ctl blur-up" in text
    assert "Custom Shortcuts" in text and "usermod -aG input" in text


def test_evdev_without_keyboards_says_how_to_get_access(caplog: pytest.LogCaptureFixture) -> None:
    if evdev.list_devices():
        pytest.skip("this machine has readable keyboards")
    cfg = ControlConfig(hotkey_backend="evdev")
    with caplog.at_level(logging.INFO, logger="bgcam.control.hotkeys"):
        assert start_hotkeys(cfg, CommandQueue()) is None
    assert "no readable keyboard under /dev/input" in caplog.text
    assert "usermod -aG input" in caplog.text


def test_pynput_without_an_x_server_is_handled(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    monkeypatch.setenv("DISPLAY", ":987")  # nobody listens there
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("XDG_SESSION_TYPE", raising=False)
    with caplog.at_level(logging.INFO, logger="bgcam.control.hotkeys"):
        assert start_hotkeys(ControlConfig(), CommandQueue()) is None
    assert "hotkeys off: pynput cannot listen here" in caplog.text


# --------------------------------------------------------------------------------------------
# Real keys: xdotool presses them on a private Xvfb; the daemon's new state is read back over
# the control socket.


def blur_and_mode(daemon: DaemonProcess) -> tuple[object, object]:
    with ControlClient(daemon.socket_path, timeout=20) as c:
        s = c.call("status")
    return s["blur"], s["mode"]


def studio(daemon: DaemonProcess) -> tuple[object, object]:
    with ControlClient(daemon.socket_path, timeout=20) as c:
        cfg = c.call("status")["config"]["effects"]
    return cfg["autoframe"], cfg["light"]


def test_default_hotkeys_under_x11(rundir: Path, xvfb: str, clip: Path) -> None:
    daemon = spawn_daemon(rundir, clip, env={"DISPLAY": xvfb, "WAYLAND_DISPLAY": ""})
    try:
        daemon.wait_log("hotkeys (pynput)")
        assert blur_and_mode(daemon) == (60, "blur")
        press(xvfb, "ctrl+alt+Up")
        wait_for(lambda: blur_and_mode(daemon) == (70, "blur"), what="Ctrl+Alt+Up")
        press(xvfb, "ctrl+alt+Down")
        press(xvfb, "ctrl+alt+Down")
        wait_for(lambda: blur_and_mode(daemon) == (50, "blur"), what="Ctrl+Alt+Down twice")
        press(xvfb, "ctrl+alt+b")
        wait_for(lambda: blur_and_mode(daemon) == (50, "off"), what="Ctrl+Alt+B (off)")
        press(xvfb, "ctrl+alt+b")
        wait_for(lambda: blur_and_mode(daemon) == (50, "blur"), what="Ctrl+Alt+B (on)")
        press(xvfb, "ctrl+alt+m")
        wait_for(lambda: blur_and_mode(daemon) == (50, "replace"), what="Ctrl+Alt+M")
        press(xvfb, "b")  # no modifiers: not a hotkey
        press(xvfb, "ctrl+b")
    finally:
        out = daemon.finish()
    assert daemon.returncode == 0, out
    assert out.count("hotkey <ctrl>+<alt>+b: toggle") == 2
    assert "hotkey <ctrl>+<alt>+m: next_mode" in out


def test_bindings_come_from_the_config(rundir: Path, xvfb: str, tmp_path: Path, clip: Path) -> None:
    cfg = tmp_path / "keys.toml"
    cfg.write_text(
        '[control.keys]\ntoggle = "<ctrl>+<shift>+<f9>"\nblur_up = "<alt>+p"\n'
        'next_mode = "<ctrl>+<alt>+<nonsense>"\n',
        encoding="utf-8",
    )
    daemon = spawn_daemon(rundir, clip, cfg, env={"DISPLAY": xvfb})
    try:
        daemon.wait_log("hotkeys off: control.keys.next_mode")
        assert blur_and_mode(daemon) == (60, "blur")
    finally:
        daemon.finish()
    cfg.write_text(
        '[control.keys]\ntoggle = "<ctrl>+<shift>+<f9>"\nblur_up = "<alt>+p"\n'
        'autoframe = "<ctrl>+<alt>+f"\nlight = "<ctrl>+<alt>+g"\n',
        encoding="utf-8",
    )
    daemon = spawn_daemon(rundir, clip, cfg, env={"DISPLAY": xvfb})
    try:
        daemon.wait_log("hotkeys (pynput)")
        press(xvfb, "ctrl+alt+b")  # the default, no longer bound
        press(xvfb, "alt+p")
        wait_for(lambda: blur_and_mode(daemon)[0] == 70, what="Alt+P")
        assert blur_and_mode(daemon) == (70, "blur")
        press(xvfb, "ctrl+shift+F9")
        wait_for(lambda: blur_and_mode(daemon) == (70, "off"), what="Ctrl+Shift+F9")
        press(xvfb, "ctrl+alt+f")
        wait_for(lambda: studio(daemon) == (True, "off"), what="Ctrl+Alt+F (auto-framing)")
        press(xvfb, "ctrl+alt+g")
        wait_for(lambda: studio(daemon) == (True, "auto"), what="Ctrl+Alt+G (low light)")
    finally:
        out = daemon.finish()
    assert "hotkey <ctrl>+<shift>+<f9>: toggle" in out
    assert "hotkey <ctrl>+<alt>+f: autoframe" in out


def test_chord_matcher_fires_on_the_final_key_with_modifiers_held() -> None:
    """The evdev backend's key logic, fed the event codes a kernel keyboard would send
    (no /dev/input here to read real ones)."""
    e = evdev.ecodes
    fired: list[str] = []
    m = ChordMatcher()
    m.add("<ctrl>+<alt>+b", lambda: fired.append("toggle"))
    m.add("<ctrl>+<alt>+<up>", lambda: fired.append("up"))
    down, up, repeat = 1, 0, 2
    events = [
        (e.KEY_B, down), (e.KEY_B, up),  # b alone
        (e.KEY_LEFTCTRL, down), (e.KEY_B, down), (e.KEY_B, up),  # ctrl+b
        (e.KEY_RIGHTALT, down), (e.KEY_B, down), (e.KEY_B, repeat), (e.KEY_B, repeat),
        (e.KEY_B, up), (e.KEY_UP, down), (e.KEY_UP, up),
        (e.KEY_LEFTCTRL, up), (e.KEY_B, down), (e.KEY_B, up),  # ctrl released
    ]  # fmt: skip
    for code, value in events:
        m.on_key(int(code), value)
    assert fired == ["toggle", "up"]


def test_an_x_server_without_record_costs_the_hotkeys_not_the_daemon(
    rundir: Path, clip: Path
) -> None:
    """pynput's listener never gets ready there (and its wait() would block forever)."""
    xproc, display = start_xvfb(record=False)
    try:
        daemon = spawn_daemon(rundir, clip, env={"DISPLAY": display})
        try:
            daemon.wait_log("hotkeys off: pynput cannot listen here")
            assert "RECORD extension" in daemon.output
            assert blur_and_mode(daemon) == (60, "blur")  # the socket still serves
        finally:
            out = daemon.finish()
        assert daemon.returncode == 0, out
    finally:
        xproc.terminate()
        xproc.wait(10)
