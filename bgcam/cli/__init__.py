"""The ``bgcam`` command line: one click group; each subcommand lives in its own module here.

Logging is configured once, here. A :class:`~bgcam.errors.BgCamError` is printed as a message
(with its fix) and turns into a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from bgcam import __version__
from bgcam.errors import BgCamError

log = logging.getLogger("bgcam")


def setup_logging(level: str = "info") -> None:
    """The one logging configuration: stderr, or the journal's format under systemd."""
    import os

    under_systemd = "JOURNAL_STREAM" in os.environ or "INVOCATION_ID" in os.environ
    fmt = (
        "%(levelname)s %(name)s: %(message)s"
        if under_systemd
        else ("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    )
    logging.basicConfig(level=level.upper(), format=fmt, datefmt="%H:%M:%S", force=True)


F = TypeVar("F", bound=Callable[..., Any])


def config_options(config_help: str) -> Callable[[F], F]:
    """``-c/--config FILE`` (parameter ``config_path``) and repeatable ``--set KEY=VALUE``
    (parameter ``overrides``): how every command that builds a Config takes it."""

    def deco(f: F) -> F:
        f = click.option(
            "--set",
            "overrides",
            multiple=True,
            metavar="KEY=VALUE",
            help="Override one setting, e.g. --set compose.blur=80 (repeatable).",
        )(f)
        return click.option(
            "-c",
            "--config",
            "config_path",
            type=click.Path(path_type=Path, dir_okay=False),
            default=None,
            help=config_help,
        )(f)

    return deco


class BgCamGroup(click.Group):
    """Turns BgCamError into a clean message and exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BgCamError as exc:
            click.secho(f"error: {exc.message}", fg="red", err=True)
            if exc.hint:
                click.echo(f"  fix: {exc.hint}", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=BgCamGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bgcam")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def main(verbose: bool) -> None:
    """BgCam: your webcam with a blurred, replaced or removed background.

    \b
    Quick start:
      bgcam models fetch             # once: get the segmentation models
      bgcam render in.mp4 -o out.mp4 # blur a recorded video
      bgcam run                      # live: webcam -> "BgCam" virtual camera
      bgcam bench                    # how fast each stage is on this machine
    """
    setup_logging("debug" if verbose else "info")


def _register() -> None:
    """Add the commands of every module in this package (each lists its own in ``COMMANDS``)."""
    import importlib
    import pkgutil

    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for cmd in getattr(module, "COMMANDS", []):
            main.add_command(cmd)


_register()
