"""``bgcam run``: the live daemon (camera → blurred background → virtual camera)."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bgcam.cli import (
    config_options,
    effect_options,
    examples,
    warn_unused_background,
)
from bgcam.config import Config, load_config
from bgcam.control.runtime import start_controls
from bgcam.errors import BgCamError
from bgcam.outpath import check_output

if TYPE_CHECKING:
    from bgcam.stats import RunStats

log = logging.getLogger("bgcam.run")


def build_loader(
    config: Path | None, overrides: tuple[str, ...], direct: dict[str, str]
) -> tuple[Path | None, Any]:
    """The config file in use and a function that (re)builds the Config with the CLI's overrides.

    Without ``--config`` the user's own file (written by ``bgcam ctl save``) is used if it exists.
    ``direct`` holds values given by dedicated options (``--source``…): set as strings as given,
    after the file and ``--set``.
    """
    if config is None:
        from bgcam.control.save import user_config_path

        user = user_config_path()
        config = user if user.is_file() else None

    def load() -> Config:
        cfg = load_config(config, overrides)
        return cfg.replace(**direct) if direct else cfg

    return config, load


@click.command(
    epilog=examples(
        "bgcam run                                    # camera 0 → virtual camera",
        "bgcam run --source clip.mp4 --sink null      # without a webcam or v4l2loopback",
        "bgcam run --source http://phone:8080/video --sink preview",
        "bgcam run --blur 40 --blur-type lens",
        "bgcam run --background beach.jpg             # switches to --mode replace",
        "bgcam run --seconds 60 --stats-json stats.json",
    )
)
@config_options("TOML config file (default: your saved settings, else the defaults).")
@effect_options
@click.option("--source", help="Camera index, /dev/videoN, video file, image folder or URL.")
@click.option(
    "--sink",
    help="auto | virtualcam | pipewire | file:PATH | preview | null; several with commas "
    "(virtualcam,pipewire).",
)
@click.option(
    "--device", help="Virtual camera device (/dev/videoN) instead of the one named BgCam."
)
@click.option(
    "--seconds",
    type=click.FloatRange(min=0, min_open=True),
    help="Stop cleanly after this many seconds.",
)
@click.option(
    "--stats-json",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the run's stats to this file at exit (one JSON object).",
)
def run(
    config_path: Path | None,
    overrides: tuple[str, ...],
    effects: list[str],
    source: str | None,
    sink: str | None,
    device: str | None,
    seconds: float | None,
    stats_json: Path | None,
) -> None:
    """Run live: webcam → background blur → the "BgCam" virtual camera."""
    from bgcam.cli import setup_logging
    from bgcam.pipeline import Pipeline

    direct = {
        k: v
        for k, v in (("source.uri", source), ("output.sink", sink), ("output.device", device))
        if v is not None
    }
    config_path, loader = build_loader(config_path, (*overrides, *effects), direct)
    cfg = loader()
    if logging.getLogger().level > logging.DEBUG:
        setup_logging(cfg.log.level)
    warn_unused_background(cfg, overrides)
    if stats_json is not None:
        stats_json = check_output(stats_json, what="--stats-json")
    report = _StatsReport(stats_json)
    try:
        report.pipeline = Pipeline(cfg, config_path=config_path, loader=loader)
        report.summary = _run(report.pipeline, cfg, config_path, seconds)
    except BaseException as exc:
        report.error = exc
        raise
    finally:
        report.write()
    opened = report.pipeline.abandoned_open
    if opened is not None and opened.open_abandoned:
        # Stopped during the start-up open, which may still run on a helper thread (FFmpeg's
        # cannot be interrupted): everything else is closed, so leave now, without waiting for
        # it or letting the interpreter's teardown meet it.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def _run(pipeline: Any, cfg: Config, config_path: Path | None, seconds: float | None) -> Any:
    # Controls first: the socket's lock refuses a second daemon before anything else starts
    # (the web panel would otherwise overwrite the first daemon's token file).
    controls = start_controls(pipeline, config_path)
    web = None
    try:
        if cfg.web.enabled:
            from bgcam.web.server import start_web

            web = start_web(pipeline, cfg.web)
        return pipeline.run(seconds)
    finally:
        if web is not None:
            web.stop()
        controls.stop()


class _StatsReport:
    """``--stats-json``: the run's stats, written however the run ends (with ``error`` set
    when it failed, so a long measurement is never lost)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.pipeline: Any = None
        self.summary: RunStats | None = None
        self.error: BaseException | None = None

    def write(self) -> None:
        if self.path is None:
            return
        data: dict[str, Any] = dict(self.summary or {})
        if not data and self.pipeline is not None:
            data = self.pipeline.stats.summary()
        if self.error is not None and not isinstance(self.error, KeyboardInterrupt):
            err = self.error
            data["error"] = err.message if isinstance(err, BgCamError) else repr(err)
            data["exit_code"] = err.exit_code if isinstance(err, BgCamError) else 1
        try:
            self.path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            log.error("cannot write --stats-json %s: %s", self.path, exc.strerror)


COMMANDS = [run]
