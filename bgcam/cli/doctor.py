"""``bgcam doctor``: which accelerators and runtimes this machine has and what BgCam runs on."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import click
from rich import box
from rich.console import Console
from rich.table import Table

from bgcam.cli import config_options
from bgcam.config import load_config
from bgcam.errors import ConfigError

OK = "[green]✓[/]"
NO = "[red]✗[/]"
NOTE = "[yellow]–[/]"


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.2f} ms"


def print_report(r: dict[str, Any], console: Console) -> None:
    """The doctor report as a friendly table."""
    table = Table(
        title=f"bgcam doctor — bgcam {r['bgcam']}, Python {r['python']}",
        box=box.SIMPLE_HEAD,
        show_lines=False,
        title_justify="left",
    )
    table.add_column("", no_wrap=True)
    table.add_column("what", no_wrap=True)
    table.add_column("state", overflow="fold")

    def row(mark: str, what: str, state: str) -> None:
        table.add_row(mark, what, state)

    # Accelerators
    ort = r["onnxruntime"]
    if ort.get("installed"):
        row(
            OK,
            "onnxruntime",
            f"{ort['version']} (providers: {', '.join(ort['available_providers'])})",
        )
        runs = ort.get("session_runs_on")
        if runs:
            row(OK if runs != "CPUExecutionProvider" else NOTE, "  a test session runs on", runs)
        else:
            row(NO, "  a test session", ort.get("session_error", "?"))
        for prov, why in ort.get("not_used", {}).items():
            row(NO, f"  {prov}", why)
    else:
        row(NO, "onnxruntime", ort.get("error", "not installed"))

    ocl = r["opencl"]
    dev = ocl.get("device")
    if dev:
        row(
            OK if ocl["usable"] else NO,
            "OpenCL (OpenCV)",
            f"{dev['name']} — {dev['vendor']}, {dev['version']} ({dev['kind']}, "
            f"{dev['compute_units']} units, {dev['memory_mb']} MB)",
        )
    else:
        row(NO, "OpenCL (OpenCV)", ocl.get("reason", "no device"))
    if ocl["icds"]:
        libs = ", ".join(icd["library"] for icd in ocl["icds"])
        row("", "  drivers registered", libs)
    else:
        row("", "  drivers registered", "none (no /etc/OpenCL/vendors/*.icd)")
    cpu = ocl.get("ignored_cpu_device")
    if cpu:
        row(
            NOTE,
            "  CPU device (unused)",
            f"{cpu['name']} ({cpu['version']}): OpenCV uses it only with "
            "OPENCV_OPENCL_DEVICE=:CPU: — a CPU driver is no faster than BgCam's CPU path",
        )

    cuda = r["cuda"]
    driver = cuda.get("nvidia_driver")
    row(OK if driver else NO, "NVIDIA driver", driver or "not loaded (/proc/driver/nvidia absent)")
    count = cuda.get("opencv_cuda_devices")
    row(
        OK if count else NO,
        "OpenCV CUDA devices",
        "OpenCV has no CUDA module" if count is None else str(count),
    )
    row(
        OK if cuda["usable"] else NO,
        "onnxruntime CUDA",
        cuda.get("onnxruntime_cuda") or cuda.get("reason", "?"),
    )
    table.add_section()

    # Chosen stages
    seg = r["segmenter"]
    for name, entry in seg["backends"].items():
        chosen = name == seg.get("chosen")
        state = ("[bold]in use[/]" if chosen else "works") if entry["ok"] else entry["reason"]
        if entry.get("provider"):
            state += f" (on {entry['provider']})"
        row(OK if entry["ok"] else NO, f"segmenter {name}", state)
    comp = r["compositor"]
    w, h = comp["frame_size"]
    for t in comp["trials"]:
        chosen = t["backend"] == comp.get("chosen")
        if t["ok"]:
            state = f"{_ms(t['ms'])} per {w}x{h} frame (CPU time {_ms(t['cpu_ms'])})"
            if chosen:
                state = f"[bold]in use[/] — {comp['reason']}: {state}"
        else:
            state = t["reason"] or "?"
        row(OK if t["ok"] else NO, f"compositor {t['backend']}", state)
    table.add_section()

    for m in r["models"]:
        ok = m["tflite_ok"] and m["onnx_ok"]
        state = "present and verified" if ok else "; ".join(m["problems"])
        row(OK if ok else NO, f"model {m['name']}", state)
    cam = r["virtual_camera"]
    if cam.get("device"):
        row(OK, "virtual camera", cam["device"])
    else:
        row(NO, "virtual camera", cam.get("reason", "not found"))
    fixes = []
    for part in ("v4l2loopback", "pipewire"):
        for f in r["cameras"][part]["findings"]:
            row({True: OK, False: NO, None: NOTE}[f["ok"]], f"  {f['what']}", f["state"])
            if f["fix"] and f["ok"] is not True:
                fixes.append(f"{f['what']}: {f['fix']}")
    console.print(table)

    if r["accelerators"]:
        console.print("Accelerators: " + "; ".join(r["accelerators"]))
    else:
        console.print(
            "No GPU or other accelerator is usable here: BgCam runs on the CPU, which is what it "
            "is tuned for."
        )
    hints = []
    if not r["models_ok"]:
        hints.append("get the models: bgcam models fetch")
    if cam.get("hint"):
        hints.append(cam["hint"])
    hints += fixes
    for hint in hints:
        console.print(f"[dim]fix: {hint}[/]")


@click.command(
    epilog="""\b
Examples:
  bgcam doctor
  bgcam doctor --json
  OPENCV_OPENCL_DEVICE=:CPU: bgcam doctor   # consider a CPU OpenCL driver too
""",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@config_options("Diagnose with this config (segmenter, providers, compositor, frame size).")
@click.option(
    "--size",
    default=None,
    metavar="WxH",
    help="Frame size for the compositor measurement (default: source.width x source.height).",
)
def doctor(
    as_json: bool, config_path: Path | None, overrides: tuple[str, ...], size: str | None
) -> None:
    """Show the accelerators and runtimes found, and which segmenter and compositor run.

    Lists onnxruntime's execution providers and the one a real session runs on, OpenCL devices
    (through OpenCV), CUDA, the compositor backends with a short speed measurement each (or why
    they cannot run), the models and the virtual camera.
    """
    from bgcam.doctor import diagnose

    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:  # the report says it all
        logging.getLogger("bgcam").setLevel(logging.WARNING)
    frame_size = None
    if size is not None:
        w, sep, h = size.lower().partition("x")
        if not sep or not w.isdigit() or not h.isdigit() or not (int(w) >= 16 and int(h) >= 16):
            raise ConfigError(f"--size: expected WIDTHxHEIGHT such as 1280x720, got {size!r}")
        frame_size = (int(w), int(h))
    cfg = load_config(config_path, overrides)
    report = diagnose(cfg, frame_size)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    console = Console()
    if not console.is_terminal:  # piped: do not squeeze the table into 80 columns
        console = Console(width=120)
    print_report(report, console)


COMMANDS = [doctor]
