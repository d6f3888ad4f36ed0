"""``bgcam demo``: a before/after clip from the bundled photo, for machines without a webcam."""

from __future__ import annotations

from pathlib import Path

import click

from bgcam.cli import config_options, effect_options


@click.command(
    "demo",
    epilog="""\b
Examples:
  bgcam demo
  bgcam demo -o /tmp/demo.mp4 --no-preview
  bgcam demo --background beach.jpg
  bgcam demo --blur 90 --blur-type lens --seconds 8
""",
)
@click.option(
    "-o",
    "--output",
    default="demo.mp4",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Where to write the before | after video (H.264).",
)
@click.option(
    "--seconds",
    type=click.FloatRange(0.5, 60),
    default=4.0,
    show_default=True,
    help="Length of the clip.",
)
@click.option("--no-preview", is_flag=True, help="Do not open the preview window.")
@config_options("TOML config file (see configs/default.toml); the options below override it.")
@effect_options
def demo(
    output: str,
    seconds: float,
    no_preview: bool,
    config_path: Path | None,
    overrides: tuple[str, ...],
    effects: list[str],
) -> None:
    """Show BgCam at work without a webcam: a short clip made from the photo shipped with
    BgCam (a hand-held pan and zoom with sensor grain) goes through the live engine and is
    written side by side, before | after, to OUTPUT; the path is printed. Where there is a
    display, the preview window shows it as it is made (close it or press q to skip)."""
    from bgcam.config import load_config
    from bgcam.demo import run_demo

    flags = [*overrides, *effects]
    cfg = load_config(config_path, flags)
    result = run_demo(cfg, output, seconds=seconds, preview=not no_preview)
    click.echo(f"wrote {result.path.resolve()} ({result.frames} frames, before | after)")


COMMANDS = [demo]
