"""``bgcam service install|uninstall|status``: BgCam as a systemd user service."""

from __future__ import annotations

from pathlib import Path

import click

from bgcam import service as svc
from bgcam.cli import examples


def _report(result: svc.ServiceResult) -> None:
    for line in result.done:
        click.echo(f"  done: {line}")
    if result.todo:
        click.echo("systemctl --user did not work here; run these in your desktop session:")
        for line in result.todo:
            click.echo(f"  {line}")


@click.group(
    "service",
    epilog=examples(
        "bgcam service install --start",
        "bgcam service status",
        "bgcam service uninstall",
    ),
)
def service() -> None:
    """Run BgCam as a systemd user service (starts at login, restarts after a crash)."""


@service.command(
    "install",
    epilog=examples(
        "bgcam service install --start",
        "bgcam service install --config ~/.config/bgcam/config.toml --no-enable",
    ),
)
@click.option(
    "-c",
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Config file the service runs with (default: none, i.e. ~/.config/bgcam/config.toml "
    "when it exists).",
)
@click.option("--no-enable", is_flag=True, help="Only write the unit; do not enable it.")
@click.option("--start", is_flag=True, help="Also (re)start it now.")
def install(config: Path | None, no_enable: bool, start: bool) -> None:
    """Write ~/.config/systemd/user/bgcam.service and enable it."""
    result = svc.install(config, enable=not no_enable, start=start)
    click.echo(f"wrote {result.path}")
    _report(result)
    click.echo("logs: journalctl --user -u bgcam -f")
    click.echo("reload the config: systemctl --user reload bgcam")


@service.command("uninstall", epilog=examples("bgcam service uninstall"))
def uninstall() -> None:
    """Stop and disable the service and remove its unit file."""
    result = svc.uninstall()
    _report(result)
    click.echo(f"{result.path} is gone")


@service.command("status", epilog=examples("bgcam service status"))
def status() -> None:
    """Whether the unit is installed, and what systemd says about it."""
    installed, text = svc.service_status()
    path = svc.unit_path()
    click.echo(f"unit: {path} ({'installed' if installed else 'not installed'})")
    click.echo(text)


COMMANDS = [service]
