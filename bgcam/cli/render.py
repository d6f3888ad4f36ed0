"""``bgcam render``: blur / replace / remove the background of a video, an image or a folder."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import get_args

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from bgcam.cli import config_options
from bgcam.config import BlurType, Mode, SegmenterName, load_config

log = logging.getLogger(__name__)


def _choices(literal: object) -> str:
    return " | ".join(str(a) for a in get_args(literal))


def _toml_string(value: str) -> str:
    # A JSON string is a valid TOML basic string, so paths with spaces or quotes stay strings.
    return json.dumps(value)


class _FpsColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:5.1f} fps" if speed else "  ... fps", style="progress.data.speed")


@click.command(
    "render",
    epilog="""\b
Examples:
  bgcam render talk.mp4 -o talk-blurred.mp4
  bgcam render talk.mp4 -o out.mkv --blur 90 --blur-type lens
  bgcam render photo.jpg -o photo-blurred.jpg
  bgcam render frames/ -o out-frames/ --masks masks/
  bgcam render talk.mp4 -o beach.mp4 --background beach.jpg
  bgcam render talk.mp4 -o green.mp4 --mode remove --set compose.color=#00ff00
  bgcam render frames/ -o out.mp4 --fps 25 --config configs/quality.toml
""",
)
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(path_type=Path),
    help="Where to write: a video (.mp4 .m4v .mov .mkv .avi, at the input's frame rate), "
    "an image (.png .jpg …, for an image input) or a folder (a name without suffix; frames "
    "keep the input's file names, a video's frames become 00000.png, 00001.png, …). "
    "Written under a temporary name and moved into place at the end: an existing OUTPUT is "
    "only replaced on success.",
)
@click.option(
    "--masks",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write the final alpha matte of every frame as an 8-bit PNG (255 = person) at "
    "frame size into this folder, named after the input image (a video's: 00000.png, …). "
    "In an existing folder, files of the same name are replaced at the end, others are kept.",
)
@config_options("TOML config file (see configs/default.toml); the options below override it.")
@click.option(
    "--segmenter",
    default=None,
    help=f"Model that finds the person: {_choices(SegmenterName)}. [segment.segmenter]",
)
@click.option("--mode", default=None, help=f"What to do: {_choices(Mode)}. [compose.mode]")
@click.option(
    "--blur",
    default=None,
    metavar="0-100",
    help="Blur strength, same look at any resolution. [compose.blur]",
)
@click.option(
    "--blur-type",
    default=None,
    help=f"Blur kind: {_choices(BlurType)}. [compose.blur_type]",
)
@click.option(
    "--background",
    default=None,
    metavar="FILE",
    help="Image or video (looped) to show behind you; implies --mode replace unless --mode is "
    "given. [compose.background]",
)
@click.option(
    "--fps",
    type=click.FloatRange(min=0, min_open=True, max=1000),
    default=None,
    help="Frame rate of a video OUTPUT (default: the input video's, 30 for images).",
)
@click.option("--no-progress", is_flag=True, help="Do not show the progress bar.")
def render(
    input_path: Path,
    output: Path,
    masks: Path | None,
    config_path: Path | None,
    overrides: tuple[str, ...],
    segmenter: str | None,
    mode: str | None,
    blur: str | None,
    blur_type: str | None,
    background: str | None,
    fps: float | None,
    no_progress: bool,
) -> None:
    """Process INPUT (a video, an image or a folder of images) with the live engine.

    The frames of INPUT are processed in order as one sequence, so the temporal smoothing
    behaves exactly as on the live camera. A folder's images are taken sorted by name (numbers
    in names compared as numbers); a frame whose size differs from the first one is processed at
    the first frame's size and written back at its own size (a video output keeps the first
    frame's size).

    Settings come from the defaults, then --config, then --set, then the options below; an
    invalid value is reported with its config key.
    """
    from bgcam.render import render as run_render

    flags = list(overrides)
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
    cfg = load_config(config_path, flags)

    console = Console(stderr=True)
    bar = Progress(
        TextColumn("[bold]render"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("frames"),
        _FpsColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=no_progress,
        transient=False,
    )
    task = bar.add_task("render", total=None, start=False)

    def progress(done: int, total: int) -> None:
        if done == 1:  # start the bar with the first frame, after the engine's log lines
            bar.start()
            bar.start_task(task)
        bar.update(task, completed=done, total=total)

    try:
        result = run_render(cfg, input_path, output, masks=masks, fps=fps, progress=progress)
        bar.update(task, completed=result.frames, total=result.frames)
    finally:
        if bar.live.is_started:
            bar.stop()
    log.info(
        "wrote %d frames (%dx%d) to %s%s in %.1f s (%.1f fps)",
        result.frames,
        *result.input.size,
        result.output,
        f" and masks to {result.masks}" if result.masks else "",
        result.seconds,
        result.fps,
    )


COMMANDS = [render]
