"""``save`` writes run-time changes back, touching only changed keys and keeping comments."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bgcam.config import Config, load_config
from bgcam.control.client import ControlClient
from bgcam.control.save import changed_keys, save_config, user_config_path
from bgcam.errors import ConfigError
from tests.control.control_support import spawn_daemon

ORIGINAL = """\
# My BgCam setup -- hand written.

[compose]
# how blurry (I like it soft)
blur = 20   # trailing comment
mode = "blur"

[source]
uri = "0"  # the laptop camera
"""


def test_changed_keys_lists_only_differences() -> None:
    old = Config()
    new = old.replace(**{"compose.blur": 33, "segment.providers": ["CPU"]})
    assert changed_keys(old, new) == {"compose.blur": 33, "segment.providers": ["CPU"]}
    assert changed_keys(new, new) == {}


def test_only_changed_keys_are_touched_and_comments_survive(tmp_path: Path) -> None:
    path = tmp_path / "bgcam.toml"
    path.write_text(ORIGINAL, encoding="utf-8")
    os.chmod(path, 0o640)
    cfg = load_config(path).replace(
        **{"compose.blur": 80, "compose.blur_type": "lens", "control.keys.toggle": "<f9>"}
    )
    assert save_config(path, cfg) == path
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# My BgCam setup -- hand written.\n")
    assert "# how blurry (I like it soft)\nblur = 80   # trailing comment\n" in text
    assert 'uri = "0"  # the laptop camera' in text
    assert 'blur_type = "lens"' in text
    assert "[control.keys]" in text or "[control]" in text
    assert load_config(path) == cfg
    assert path.stat().st_mode & 0o777 == 0o640
    before = text
    save_config(path, cfg)  # nothing changed: file untouched
    assert path.read_text(encoding="utf-8") == before


def test_with_a_baseline_only_run_time_changes_are_written(tmp_path: Path) -> None:
    """--set overrides given at start are not written back; changes made while running are."""
    path = tmp_path / "bgcam.toml"
    path.write_text(ORIGINAL, encoding="utf-8")
    started = load_config(path, ["output.fps=15"])
    now = started.replace(**{"compose.mode": "remove"})
    save_config(path, now, baseline=started)
    text = path.read_text(encoding="utf-8")
    assert 'mode = "remove"' in text
    assert "fps" not in text


def test_without_a_config_file_the_user_config_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    target = user_config_path()
    assert target == tmp_path / "xdg" / "bgcam" / "config.toml"
    written = save_config(None, Config().replace(**{"compose.blur": 5}))
    assert written == target
    text = target.read_text(encoding="utf-8")
    assert text.startswith("# BgCam settings saved by `bgcam ctl save`")
    assert load_config(target) == Config().replace(**{"compose.blur": 5})
    assert "mode" not in text  # defaults are not copied


def test_a_broken_file_is_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "bgcam.toml"
    path.write_text("[compose\nblur = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        save_config(path, Config(), baseline=Config())
    assert path.read_text(encoding="utf-8") == "[compose\nblur = 1\n"


def test_ctl_save_in_a_running_daemon(rundir: Path, tmp_path: Path, clip: Path) -> None:
    path = tmp_path / "bgcam.toml"
    path.write_text(ORIGINAL, encoding="utf-8")
    proc = spawn_daemon(rundir, clip, path)
    try:
        with ControlClient(rundir / "control.sock") as c:
            c.call("blur", 45)
            assert c.call("save")["saved"] == str(path)
    finally:
        proc.finish()
    text = path.read_text(encoding="utf-8")
    assert "blur = 45   # trailing comment" in text
    assert text.replace("blur = 45", "blur = 20") == ORIGINAL


def test_ctl_save_without_a_config_file_writes_the_user_config(rundir: Path, clip: Path) -> None:
    proc = spawn_daemon(rundir, clip)  # XDG_CONFIG_HOME is rundir.parent / "xdg"
    target = rundir.parent / "xdg" / "bgcam" / "config.toml"
    try:
        with ControlClient(rundir / "control.sock") as c:
            c.call("blur", 15)
            c.call("mode", "remove")
            assert c.call("save")["saved"] == str(target)
    finally:
        proc.finish()
    saved = load_config(target)
    assert saved.compose.blur == 15 and saved.compose.mode == "remove"
    assert "segmenter" not in target.read_text(encoding="utf-8")  # a --set, not a change
