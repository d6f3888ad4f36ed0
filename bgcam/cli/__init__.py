"""The ``bgcam`` command line: one click group; each subcommand lives in its own module here.

Logging is configured once, here. A :class:`~bgcam.errors.BgCamError` is printed as a message
(with its fix) and turns into a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

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
    from bgcam.logutil import install

    for handler in logging.getLogger().handlers:
        install(handler)  # a repeating failure is logged once, then as a count


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


def _choices(literal: object) -> str:
    from typing import get_args

    return " | ".join(str(a) for a in get_args(literal))


def _toml_string(value: str) -> str:
    # A JSON string is a valid TOML basic string, so paths with spaces or quotes stay strings.
    import json

    return json.dumps(value)


def examples(*lines: str) -> str:
    """A help epilog listing ``lines`` one per line (click keeps ``\\b`` blocks unwrapped)."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


EFFECT_PARAMS = ("segmenter", "mode", "blur", "blur_type", "background")
"""The parameters :func:`effect_options` adds (:func:`effect_overrides` takes them)."""


def effect_options(f: F) -> F:
    """``--segmenter --mode --blur --blur-type --background``: the effect flags of ``run``,
    ``render`` and ``demo``, declared once. Each is the ``--set`` of its config key, applied
    after ``--set``; the command receives them as one ``effects`` argument, the ``KEY=VALUE``
    list of :func:`effect_overrides`."""
    import functools

    from bgcam.config import BlurType, Mode, SegmenterName

    @functools.wraps(f)
    def with_effects(*args: Any, **kwargs: Any) -> Any:
        flags = {name: kwargs.pop(name) for name in EFFECT_PARAMS}
        return f(*args, effects=effect_overrides(**flags), **kwargs)

    options = [
        click.option(
            "--segmenter",
            default=None,
            help=f"Model that finds the person: {_choices(SegmenterName)}. [segment.segmenter]",
        ),
        click.option("--mode", default=None, help=f"What to do: {_choices(Mode)}. [compose.mode]"),
        click.option(
            "--blur",
            default=None,
            metavar="0-100",
            help="Blur strength, same look at any resolution. [compose.blur]",
        ),
        click.option(
            "--blur-type",
            default=None,
            help=f"Blur kind: {_choices(BlurType)}. [compose.blur_type]",
        ),
        click.option(
            "--background",
            default=None,
            metavar="FILE",
            help="Image or video (looped) to show behind you; switches to --mode replace "
            "unless --mode is given. [compose.background]",
        ),
    ]
    command: Any = with_effects
    for option in reversed(options):
        command = option(command)
    return cast(F, command)


def effect_overrides(
    segmenter: str | None,
    mode: str | None,
    blur: str | None,
    blur_type: str | None,
    background: str | None,
) -> list[str]:
    """The ``KEY=VALUE`` overrides the effect flags stand for (a background implies replace)."""
    flags = []
    if segmenter is not None:
        flags.append(f"segment.segmenter={_toml_string(segmenter)}")
    if mode is not None:
        flags.append(f"compose.mode={_toml_string(mode)}")
    elif background is not None:
        flags.append('compose.mode="replace"')
    if blur is not None:
        flags.append(f"compose.blur={blur}")
    if blur_type is not None:
        flags.append(f"compose.blur_type={_toml_string(blur_type)}")
    if background is not None:
        flags.append(f"compose.background={_toml_string(background)}")
    return flags


def warn_unused_background(cfg: Any, overrides: tuple[str, ...]) -> None:
    """``--set compose.background=…`` while the mode is not replace: say that it shows only in
    replace mode (a background kept in a config file for later is normal and not warned about)."""
    if cfg.compose.mode != "replace" and any(
        o.strip().startswith("compose.background") for o in overrides
    ):
        log.warning(
            "compose.background is set but the mode is %s: the image shows only in replace mode "
            "(add --mode replace, or use --background FILE, which switches to it)",
            cfg.compose.mode,
        )


COMMAND_MODULES: dict[str, str] = {
    "bench": "bench",
    "ctl": "ctl",
    "demo": "demo",
    "devices": "devices",
    "doctor": "doctor",
    "models": "models",
    "open": "web",
    "render": "render",
    "run": "run",
    "service": "service",
    "status": "ctl",
}
"""Each command and the module of this package that defines it (in its ``COMMANDS`` list). A
command's module is imported only when that command runs or help lists it, so ``bgcam ctl``
does not pay for the imports of ``bgcam run`` (OpenCV, onnxruntime, the config model)."""


class BgCamGroup(click.Group):
    """Loads each command's module on first use (:data:`COMMAND_MODULES`), and turns
    BgCamError into a clean message and exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMAND_MODULES))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module_name = COMMAND_MODULES.get(cmd_name)
        if module_name is not None and cmd_name not in self.commands:
            import importlib

            module = importlib.import_module(f"{__name__}.{module_name}")
            for cmd in module.COMMANDS:
                self.add_command(cmd)
        return super().get_command(ctx, cmd_name)

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
