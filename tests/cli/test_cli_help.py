"""Every command's ``--help`` ends with examples, one per line, each a ``bgcam`` command."""

from __future__ import annotations

import importlib
import pkgutil

import click
import pytest
from click.testing import CliRunner

from bgcam.cli import COMMAND_MODULES, main


def _commands(group: click.Group, prefix: list[str]) -> list[list[str]]:
    found = []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):  # loads each lazily registered command
        cmd = group.get_command(ctx, name)
        assert cmd is not None, f"bgcam {' '.join([*prefix, name])} is listed but does not load"
        found.append([*prefix, name])
        if isinstance(cmd, click.Group):
            found.extend(_commands(cmd, [*prefix, name]))
    return found


@pytest.mark.parametrize("path", _commands(main, []), ids=" ".join)
def test_help_has_examples_one_per_line(path: list[str]) -> None:
    res = CliRunner().invoke(main, [*path, "--help"], terminal_width=80)
    assert res.exit_code == 0, res.output
    text = res.output if "Examples:" in res.output else ""
    assert text, f"bgcam {' '.join(path)} --help has no examples"
    lines = text.split("Examples:", 1)[1].strip().splitlines()
    examples = [line.strip() for line in lines if line.strip()]
    assert examples, "no example lines"
    for line in examples:
        assert line.startswith(("bgcam ", "BGCAM_", "OPENCV_")), line
        assert line.count("bgcam ") == 1, f"several examples on one line: {line}"


def test_every_command_module_is_in_the_lazy_map() -> None:
    """`bgcam --help` and dispatch find each command through COMMAND_MODULES: a command added to
    a module's COMMANDS but not to the map would be unreachable."""
    import bgcam.cli

    defined = {}
    for info in pkgutil.iter_modules(bgcam.cli.__path__):
        module = importlib.import_module(f"bgcam.cli.{info.name}")
        for cmd in getattr(module, "COMMANDS", []):
            defined[cmd.name] = info.name
    assert defined == COMMAND_MODULES
