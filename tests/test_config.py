"""The config object: defaults, files, overrides, and errors that name key, expected and got."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bgcam.config import Config, load_config, parse_override, render_default_toml
from bgcam.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_need_no_file() -> None:
    cfg = load_config()
    assert cfg == Config()
    assert cfg.compose.mode == "blur"
    assert 0 <= cfg.compose.blur <= 100


def test_default_toml_is_generated_from_declarations() -> None:
    text = (ROOT / "configs" / "default.toml").read_text(encoding="utf-8")
    assert text == render_default_toml(), "run: python scripts/gen_default_config.py"
    assert load_config(ROOT / "configs" / "default.toml") == Config()


def test_every_key_in_default_toml_has_a_comment() -> None:
    lines = (ROOT / "configs" / "default.toml").read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if "=" in line and not line.startswith("#"):
            assert lines[i - 1].startswith("# "), f"undocumented key: {line}"


@pytest.mark.parametrize("profile", sorted((ROOT / "configs").glob("*.toml")), ids=lambda p: p.name)
def test_shipped_profiles_load(profile: Path) -> None:
    load_config(profile)


def test_file_and_override_precedence(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text("[compose]\nblur = 20\nmode = 'remove'\n", encoding="utf-8")
    cfg = load_config(f, ["compose.blur=75", "segment.providers=['CPU']"])
    assert cfg.compose.blur == 75
    assert cfg.compose.mode == "remove"
    assert cfg.segment.providers == ("CPU",)


def test_config_is_frozen_and_replace_builds_a_new_one() -> None:
    cfg = Config()
    with pytest.raises(ValueError):
        cfg.compose.blur = 3  # type: ignore[misc]
    new = cfg.replace(**{"compose.blur": 10})
    assert new.compose.blur == 10 and cfg.compose.blur != 10
    with pytest.raises(ConfigError, match=r"compose\.blur"):
        cfg.replace(**{"compose.blur": 1000})


@pytest.mark.parametrize(
    ("override", "needles"),
    [
        ("compose.blurr=3", ["compose.blurr", "unknown key", "did you mean 'compose.blur'"]),
        ("nosuch.key=1", ["nosuch", "unknown key", "compose"]),
        ("compose.blur=300", ["compose.blur", "≤ 100", "300"]),
        ("compose.blur=-1", ["compose.blur", "≥ 0", "-1"]),
        ("compose.blur='x'", ["compose.blur", "an integer", "'x'"]),
        ("compose.mode=foo", ["compose.mode", "'blur'", "'foo'"]),
        ("compose.color=red", ["compose.color", "#rrggbb", "'red'"]),
        ("source.fourcc=ab", ["source.fourcc", "4 characters", "'ab'"]),
        ("output.on_demand=1", ["output.on_demand", "true or false", "1"]),
        ("web.port=70000", ["web.port", "65535", "70000"]),
        ("effects.light=on", ["effects.light", "'auto'", "'on'"]),
        ("effects.autoframe_zoom=8", ["effects.autoframe_zoom", "≤ 4", "8"]),
        ("effects.autoframe_zoom=0.5", ["effects.autoframe_zoom", "≥ 1", "0.5"]),
        ("effects.light_strength=2", ["effects.light_strength", "≤ 1", "2"]),
        ("effects.autoframe=yes", ["effects.autoframe", "true or false", "'yes'"]),
        ("effects.autofrane=true", ["unknown key", "did you mean 'effects.autoframe'"]),
        ("compose=3", ["compose", "a table", "3"]),
    ],
)
def test_bad_values_name_key_expected_and_got(override: str, needles: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    message = str(info.value)
    for needle in needles:
        assert needle in message


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("[compose\nblur = 1", "not valid TOML"),
        ("[compose]\nblur = 1.5\n", "compose.blur: expected an integer, got 1.5"),
        ("[refine]\nedge = 'sobel'\n", "refine.edge"),
    ],
)
def test_bad_files_are_reported_with_their_name(tmp_path: Path, content: str, needle: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(f)
    assert str(f) in str(info.value)
    assert needle in str(info.value)


def test_missing_file_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml")
    assert "does not exist" in info.value.message
    assert info.value.hint and "--config" in info.value.hint


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("compose.blur=80", ("compose.blur", 80)),
        ("compose.mode=replace", ("compose.mode", "replace")),
        ("output.on_demand=true", ("output.on_demand", True)),
        ("source.uri=/dev/video2", ("source.uri", "/dev/video2")),
        ("source.uri = http://127.0.0.1:8080/x?a=b", ("source.uri", "http://127.0.0.1:8080/x?a=b")),
    ],
)
def test_parse_override(item: str, expected: tuple[str, object]) -> None:
    assert parse_override(item) == expected


@pytest.mark.parametrize("item", ["compose.blur", "=3", ""])
def test_parse_override_rejects_malformed(item: str) -> None:
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_override(item)


def test_default_toml_round_trips_through_tomllib() -> None:
    data = tomllib.loads(render_default_toml())
    assert Config.model_validate(data) == Config()


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("segment.providers=CPU,CUDA", ("CPU", "CUDA")),
        ("segment.providers= CUDA , CPU ", ("CUDA", "CPU")),
        ("segment.providers=CPU", ("CPU",)),
        ('segment.providers=["CoreML", "CPU"]', ("CoreML", "CPU")),
    ],
)
def test_list_settings_take_comma_separated_values(
    override: str, expected: tuple[str, ...]
) -> None:
    assert load_config(None, [override]).segment.providers == expected


def test_a_wrong_list_value_shows_the_form_that_works() -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, ["segment.providers=3"])
    assert "--set segment.providers=A,B" in err.value.message
