"""``bgcam ctl COMMAND [ARG]`` and ``bgcam status [--json]``: clients of the control socket."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from bgcam.cli import examples
from bgcam.control.client import ControlClient
from bgcam.control.grammar import COMMANDS as COMMAND_SET
from bgcam.control.grammar import Command, CommandError
from bgcam.errors import BgCamError

_NAMES = [name.replace("_", "-") for name in COMMAND_SET]


def _show(result: dict[str, Any]) -> None:
    """A status dict as aligned ``key: value`` lines (nested dicts flattened with dots)."""
    flat: list[tuple[str, Any]] = []

    def walk(value: Any, prefix: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{prefix}{k}.")
        else:
            flat.append((prefix.rstrip("."), value))

    walk(result, "")
    width = max((len(k) for k, _ in flat), default=0)
    for key, value in flat:
        if isinstance(value, float):
            value = f"{value:.2f}"
        click.echo(f"{key.ljust(width)}  {value}")


def _summary(result: dict[str, Any]) -> str:
    """One line after a command: the settings a user just changed, and the output rate."""
    parts = []
    for key in ("mode", "blur", "paused", "segmenter", "autoframe", "light", "fps_out"):
        if key in result:
            value = result[key]
            if key == "autoframe" and isinstance(value, dict):
                value = f"{'on' if value.get('on') else 'off'} (zoom {value.get('zoom')})"
            elif key == "light" and isinstance(value, dict):
                value = f"{value.get('mode')} (gain {value.get('gain')})"
            parts.append(f"{key} {value:.1f}" if isinstance(value, float) else f"{key} {value}")
    return ", ".join(parts) or json.dumps(result, default=str)


@click.command(
    "ctl",
    epilog="Commands: "
    + ", ".join(_NAMES)
    + ".\n\n"
    + examples(
        "bgcam ctl toggle",
        "bgcam ctl blur 40",
        "bgcam ctl mode replace",
        "bgcam ctl background ~/beach.jpg",
        "bgcam ctl autoframe on",
        "bgcam ctl light auto",
        "bgcam ctl status --json",
    ),
)
@click.argument("command", type=click.Choice(_NAMES + list(COMMAND_SET)), metavar="COMMAND")
@click.argument("arg", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the daemon's reply as JSON.")
def ctl(command: str, arg: str | None, as_json: bool) -> None:
    """Send COMMAND (with ARG where it takes one) to the running daemon.

    The daemon applies it between two frames and replies with its new state
    (all of it with --json). Not running: exit code 7.
    """
    name = command.replace("-", "_")
    try:
        cmd = Command.from_text(name, arg)  # a usage mistake is reported even when no daemon runs
    except CommandError as exc:
        raise BgCamError(str(exc), hint="see `bgcam ctl --help`") from None
    value = cmd.arg
    if name == "background" and arg:  # the daemon's working directory is not ours
        value = str(Path(arg).expanduser().absolute())
    with ControlClient() as client:
        result = client.call(name, value)
    if as_json:
        click.echo(json.dumps(result, indent=2, default=str))
    elif command == "save":
        click.echo(f"saved to {result.get('saved')}")
    elif command == "quit":
        click.echo("BgCam is stopping")
    else:
        click.echo(_summary(result))


@click.command("status", epilog=examples("bgcam status", "bgcam status --json"))
@click.option("--json", "as_json", is_flag=True, help="Print the status as one JSON object.")
def status(as_json: bool) -> None:
    """Show what the running daemon is doing (fps, latency, mode, blur)."""
    with ControlClient() as client:
        result = client.call("status")
    if as_json:
        click.echo(json.dumps(result, default=str))
    else:
        _show({k: v for k, v in result.items() if k != "config"})


COMMANDS = [ctl, status]
