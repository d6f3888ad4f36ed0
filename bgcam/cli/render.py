"""``bgcam render``: blur / replace / remove the background of a video, an image or a folder."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

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

from bgcam.cli import config_options, effect_options, warn_unused_background
from bgcam.config import load_config

if TYPE_CHECKING:
    from bgcam.render import Stop

log = logging.getLogger(__name__)


class _FpsColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:5.1f} fps" if speed else "  ... fps", style="progress.data.speed")


@contextlib.contextmanager
def _stop_on_signals(stop: Stop) -> Iterator[None]:
    """TERM, INT and HUP stop the render between two frames (its temporaries are removed)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        stop.requested = signal.Signals(signum).name  # one write; the render loop does the rest

    names = ("SIGTERM", "SIGINT", "SIGHUP")
    old = {n: signal.signal(getattr(signal, n), handle) for n in names if hasattr(signal, n)}
    try:
        yield
    finally:
        for n, handler in old.items():
            signal.signal(getattr(signal, n), handler)


@click.command(
    "render",
    epilog="""\b
Examples:
  bgcam render talk.mp4 -o talk-blurred.mp4
  bgcam render talk.mp4 -o talk.webm --crf 36 --no-audio
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
    help="Where to write: a video (.mp4 .m4v .mov .mkv .avi: H.264, .webm: VP9; at the input's "
    "frame times, with its sound), "
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
@effect_options
@click.option(
    "--fps",
    type=click.FloatRange(min=0, min_open=True, max=1000),
    default=None,
    help="Re-time a video OUTPUT at this constant rate, without sound (default: the input "
    "video's own frame times; 30 fps for images).",
)
@click.option(
    "--crf",
    type=click.IntRange(0, 63),
    default=None,
    help="Video quality: lower is better and larger (H.264 0-51, default 23; VP9 for .webm "
    "0-63, default 32).",
)
@click.option("--no-audio", is_flag=True, help="Leave the input's sound out of a video OUTPUT.")
@click.option(
    "--force",
    is_flag=True,
    help="Write into an output (or --masks) folder that already holds files, replacing the "
    "frames of the same name; without it such a folder is refused.",
)
@click.option("--no-progress", is_flag=True, help="Do not show the progress bar.")
def render(
    input_path: Path,
    output: Path,
    masks: Path | None,
    config_path: Path | None,
    overrides: tuple[str, ...],
    effects: list[str],
    fps: float | None,
    crf: int | None,
    no_audio: bool,
    force: bool,
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
    from bgcam.render import Stop
    from bgcam.render import render as run_render

    flags = [*overrides, *effects]
    cfg = load_config(config_path, flags)
    warn_unused_background(cfg, overrides)

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

    stop = Stop()
    with _stop_on_signals(stop):
        try:
            result = run_render(
                cfg,
                input_path,
                output,
                masks=masks,
                fps=fps,
                audio=not no_audio,
                crf=crf,
                progress=progress,
                force=force,
                stop=stop,
            )
            bar.update(task, completed=result.frames, total=result.frames)
        finally:
            if bar.live.is_started:
                bar.stop()
    log.info(
        "wrote %d frames (%dx%d) to %s%s%s in %.1f s (%.1f fps)%s",
        result.frames,
        *result.input.size,
        result.output,
        f", sound {result.audio}" if result.audio else "",
        f" and masks to {result.masks}" if result.masks else "",
        result.seconds,
        result.fps,
        f"; SHORT: the input announced {result.expected} frames" if result.short else "",
    )


COMMANDS = [render]
