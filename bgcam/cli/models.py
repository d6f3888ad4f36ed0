"""``bgcam models list|fetch|verify``: the segmentation models on this machine."""

from __future__ import annotations

from pathlib import Path

import click

from bgcam.cli import examples
from bgcam.errors import ModelError
from bgcam.models import MODELS


def _size(n: int | None) -> str:
    return "-" if n is None else f"{n / 1024:.0f} KiB"


@click.group(
    epilog=examples(
        "bgcam models list",
        "bgcam models fetch",
        "bgcam models verify",
        "BGCAM_MODEL_DIR=/srv/models bgcam models fetch",
    )
)
def models() -> None:
    """Manage the MediaPipe selfie-segmentation models (list, fetch, verify).

    They are stored in the user data dir; set BGCAM_MODEL_DIR to use another directory.
    """


@models.command("list", epilog=examples("bgcam models list"))
def list_models() -> None:
    """Show each model: input size, files, sizes and whether they are verified."""
    from rich.console import Console
    from rich.table import Table

    from bgcam.models import model_dir
    from bgcam.models.fetch import model_status

    click.echo(f"models in {model_dir()}")
    table = Table(box=None)
    for col in ("name", "input", "file", "size", "state"):
        table.add_column(col, no_wrap=True)
    statuses = model_status()
    for st in statuses:
        spec = MODELS[st.name]
        rows = (
            (st.tflite_size, st.tflite_ok, st.tflite_path),
            (st.onnx_size, st.onnx_ok, st.onnx_path),
        )
        for i, (size, ok, path) in enumerate(rows):
            state = "[green]verified" if ok else "[red]missing" if size is None else "[red]bad"
            table.add_row(
                st.name if i == 0 else "",
                f"{spec.width}x{spec.height}" if i == 0 else "",
                path.name,
                _size(size),
                state,
            )
    Console().print(table)
    if not all(st.tflite_ok and st.onnx_ok for st in statuses):
        click.echo("some models are missing or bad: run `bgcam models fetch`")


@models.command(
    epilog=examples(
        "bgcam models fetch",
        "bgcam models fetch --force",
        "bgcam models fetch --wheel mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl",
    )
)
@click.option("--force", is_flag=True, help="Download and convert again even if present.")
@click.option(
    "--wheel",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Use an already downloaded mediapipe-0.10.21 wheel instead of running pip.",
)
@click.option("--index-url", help="Package index for pip (default: pip's own configuration).")
@click.option(
    "--model",
    "names",
    multiple=True,
    type=click.Choice(sorted(MODELS)),
    help="Only this model (repeatable; default: all).",
)
@click.option(
    "--face-cascade/--no-face-cascade",
    default=True,
    show_default=True,
    help="Also get OpenCV's frontal-face cascade, which the hsv fallback segmenter anchors on "
    "(OpenCV 5 wheels no longer ship it).",
)
def fetch(
    force: bool,
    wheel: Path | None,
    index_url: str | None,
    names: tuple[str, ...],
    face_cascade: bool,
) -> None:
    """Download the models (mediapipe 0.10.21 wheel from PyPI) and convert them to ONNX."""
    from bgcam.models import model_dir
    from bgcam.models.fetch import fetch_models

    results = fetch_models(names or None, force=force, wheel=wheel, index_url=index_url)
    for r in results:
        diff = f", max abs diff {r.max_abs_diff:.1e}" if r.max_abs_diff is not None else ""
        click.echo(f"{r.name}: tflite {r.tflite}, onnx {r.onnx}{diff}")
    if face_cascade:
        _fetch_face_cascade(force)
    click.echo(f"models are in {model_dir()}")


def _fetch_face_cascade(force: bool) -> None:
    """The hsv segmenter's face cascade; optional, so a failure is a warning, not an error."""
    from bgcam.segment.hsv import fetch_face_cascade, find_face_cascade

    found = find_face_cascade()
    if found is not None and not force:
        click.echo(f"face cascade: present ({found})")
        return
    try:
        click.echo(f"face cascade: {fetch_face_cascade()}")
    except ModelError as exc:
        click.secho(f"warning: {exc.message} (only the hsv fallback needs it)", fg="yellow")
        if exc.hint:
            click.echo(f"  fix: {exc.hint}")


@models.command(epilog=examples("bgcam models verify"))
def verify() -> None:
    """Recheck the sha256 sums, and that each ONNX model loads and matches its TFLite original."""
    from bgcam.models.fetch import model_status

    bad, absent = [], []
    for st in model_status(deep=True):
        if st.problems:
            bad.append(st)
            for p in st.problems:
                click.echo(f"{st.name}: {p}")
            if all(p.endswith(" is missing") for p in st.problems):
                absent.append(st)
        else:
            click.echo(f"{st.name}: ok ({st.tflite_path.name}, {st.onnx_path.name})")
    if bad and len(absent) == len(bad):
        raise ModelError(
            f"{len(bad)} model(s) not fetched yet (nothing is corrupt)",
            hint="run `bgcam models fetch`",
        )
    if bad:
        raise ModelError(
            f"{len(bad)} model(s) failed verification", hint="run `bgcam models fetch --force`"
        )


COMMANDS = [models]
