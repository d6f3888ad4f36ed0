"""``bgcam doctor``: what this machine offers BgCam, what BgCam chose, and why.

:func:`diagnose` gathers one JSON-ready report:

* **onnxruntime**: its version, the execution providers this build offers, and the provider a
  real session with the configured ``segment.providers`` runs on (a listed provider may fail to
  start: onnxruntime-gpu lists CUDA without a GPU), with the reason for each one not used;
* **OpenCL** through OpenCV: the drivers registered with the ICD loader, the device OpenCV uses
  (name, vendor, version) or why there is none; when OpenCV ignores a CPU-only driver, that
  driver's device is looked up in a child process with ``OPENCV_OPENCL_DEVICE=:CPU:``;
* **CUDA**: the NVIDIA kernel driver, OpenCV's CUDA device count, onnxruntime's CUDA provider;
* the **segmenter** and **compositor** the configuration leads to, with the auto measurement
  (each backend's milliseconds, or why it cannot run here);
* the **models** present, the **virtual camera** device, and the PipeWire camera and
  v4l2loopback findings of :mod:`bgcam.sinks.report`.

Nothing here downloads or changes anything.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from bgcam import __version__
from bgcam.config import Config
from bgcam.errors import BgCamError

log = logging.getLogger(__name__)

ICD_DIRS = (Path("/etc/OpenCL/vendors"),)


def _err(exc: BaseException) -> str:
    return exc.message if isinstance(exc, BgCamError) else f"{type(exc).__name__}: {exc}"


# --------------------------------------------------------------------------------------------
# onnxruntime


def onnxruntime_report(providers: tuple[str, ...]) -> dict[str, Any]:
    """Version, available providers, and what a session with ``providers`` really runs on."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        return {"installed": False, "error": str(exc)}
    from bgcam.ort import PROVIDERS, resolve_providers, session, why_not

    available = list(ort.get_available_providers())
    report: dict[str, Any] = {
        "installed": True,
        "version": ort.__version__,
        "device": ort.get_device(),
        "available_providers": available,
    }
    try:
        wanted = resolve_providers(list(providers), available)
    except BgCamError as exc:
        report["session_error"] = exc.message
        return report
    report["requested_providers"] = list(providers)
    try:
        from bgcam.compose import onnxgraph
        from bgcam.compose.plan import BlurPlan

        model = onnxgraph.blur_graph(BlurPlan.of((64, 48), 60, "gaussian")).SerializeToString()
        running = list(session(model, wanted).get_providers())
    except Exception as exc:  # onnxruntime raises its own exception types
        report["session_error"] = str(exc)
        return report
    report["session_providers"] = running
    report["session_runs_on"] = running[0]
    not_used: dict[str, str] = {}
    for name in providers:  # those preferred to the one that runs: why not
        full = name if name.endswith("ExecutionProvider") else PROVIDERS.get(name.lower(), name)
        if full == running[0]:
            break
        if full not in available:
            not_used[full] = f"not in this onnxruntime build ({ort.__version__})"
        else:
            not_used[full] = why_not(full)
    report["not_used"] = not_used
    return report


# --------------------------------------------------------------------------------------------
# OpenCL


def opencl_icds() -> list[dict[str, str]]:
    """OpenCL drivers registered with the ICD loader (Linux: /etc/OpenCL/vendors/*.icd)."""
    out = []
    dirs = list(ICD_DIRS)
    extra = os.environ.get("OCL_ICD_VENDORS")
    if extra:
        dirs.insert(0, Path(extra))
    for d in dirs:
        try:
            files = sorted(d.glob("*.icd"))
        except OSError:
            continue
        for f in files:
            try:
                lib = f.read_text(encoding="utf-8", errors="replace").strip()
            except OSError:
                lib = "?"
            out.append({"file": str(f), "library": lib})
    return out


_CHILD = """
import json, cv2
from bgcam.compose.opencl import default_device
d = default_device()
print(json.dumps(None if d is None else {
    "name": d.name, "vendor": d.vendor, "version": d.version, "driver": d.driver,
    "kind": d.kind, "compute_units": d.compute_units, "memory_mb": d.memory_mb}))
"""


def _device_in_child(selector: str) -> dict[str, Any] | None:
    """The device OpenCV opens with OPENCV_OPENCL_DEVICE=selector, asked of a child process."""
    env = dict(os.environ, OPENCV_OPENCL_DEVICE=selector)
    try:
        res = subprocess.run(
            [sys.executable, "-c", _CHILD],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        found: dict[str, Any] | None = json.loads(res.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        return None
    return found


def opencl_report() -> dict[str, Any]:
    import dataclasses

    import cv2

    from bgcam.compose.opencl import default_device, probe

    report: dict[str, Any] = {
        "opencv": cv2.__version__,
        "runtime": bool(cv2.ocl.haveOpenCL()),
        "OPENCV_OPENCL_DEVICE": os.environ.get("OPENCV_OPENCL_DEVICE"),
        "icds": opencl_icds(),
    }
    device = default_device() if report["runtime"] else None
    report["device"] = dataclasses.asdict(device) if device else None
    try:
        probe()
        report["usable"] = True
    except BgCamError as exc:
        report["usable"] = False
        report["reason"] = exc.message
    if device is None and report["icds"] and not report["OPENCV_OPENCL_DEVICE"]:
        cpu = _device_in_child(":CPU:")
        if cpu is not None:
            report["ignored_cpu_device"] = cpu
    return report


# --------------------------------------------------------------------------------------------
# CUDA


def cuda_report() -> dict[str, Any]:
    import cv2

    report: dict[str, Any] = {}
    nv = Path("/proc/driver/nvidia/version")
    try:
        report["nvidia_driver"] = nv.read_text(encoding="utf-8").splitlines()[0].strip()
    except (OSError, IndexError):
        report["nvidia_driver"] = None
    try:
        report["opencv_cuda_devices"] = int(cv2.cuda.getCudaEnabledDeviceCount())
    except (AttributeError, cv2.error):
        report["opencv_cuda_devices"] = None
    from bgcam.compose.cuda import probe_cuda

    try:
        report["onnxruntime_cuda"] = probe_cuda()
        report["usable"] = True
    except BgCamError as exc:
        report["usable"] = False
        report["reason"] = exc.message
    return report


# --------------------------------------------------------------------------------------------
# Stages


def segmenter_report(cfg: Config, frame_size: tuple[int, int], models_ok: bool) -> dict[str, Any]:
    """Try each segmenter: the configured one is used; the others' state says why not."""
    from bgcam import segment

    report: dict[str, Any] = {"configured": cfg.segment.segmenter, "backends": {}}
    for name in segment.available():
        if name != "hsv" and not models_ok:
            report["backends"][name] = {
                "ok": False,
                "reason": "models are missing (run `bgcam models fetch`)",
            }
            continue
        seg_cfg = cfg.segment.model_copy(update={"segmenter": name})
        try:
            seg = segment.create_segmenter(seg_cfg, frame_size)
        except Exception as exc:  # a segmenter's runtime may fail in its own way
            report["backends"][name] = {"ok": False, "reason": _err(exc)}
            continue
        entry: dict[str, Any] = {"ok": True}
        provider = getattr(seg, "provider", None)
        if provider:
            entry["provider"] = provider
        seg.close()
        report["backends"][name] = entry
    chosen = report["backends"].get(cfg.segment.segmenter, {})
    report["chosen"] = cfg.segment.segmenter if chosen.get("ok") else None
    if not chosen.get("ok"):
        report["reason"] = chosen.get("reason", "unknown segmenter")
    return report


def compositor_report(cfg: Config, frame_size: tuple[int, int]) -> dict[str, Any]:
    """The auto measurement at ``frame_size`` and what the configuration chooses."""
    from bgcam.compose import auto

    trials, _ = auto.measure(cfg.compose, frame_size)
    decision = auto.decide(trials, frame_size)
    configured = cfg.compose.backend
    report: dict[str, Any] = {
        "configured": configured,
        "frame_size": list(frame_size),
        "trials": [
            {
                "backend": t.backend,
                "ok": t.ok,
                "ms": None if t.ms is None else round(t.ms, 3),
                "cpu_ms": None if t.cpu_ms is None else round(t.cpu_ms, 3),
                "setup_ms": round(t.setup_ms, 1),
                "reason": t.error,
            }
            for t in trials
        ],
    }
    if configured == "auto":
        report["chosen"] = decision.chosen
        report["reason"] = f"auto: {decision.reason}"
    else:
        trial = next((t for t in trials if t.backend == configured), None)
        report["chosen"] = configured if trial is not None and trial.ok else None
        report["reason"] = (
            "set in the configuration" if report["chosen"] else (trial.error if trial else "?")
        )
    return report


def models_report() -> list[dict[str, Any]]:
    from bgcam.models.fetch import model_status

    return [
        {
            "name": st.name,
            "tflite": str(st.tflite_path),
            "tflite_ok": st.tflite_ok,
            "onnx": str(st.onnx_path),
            "onnx_ok": st.onnx_ok,
            "problems": list(st.problems),
        }
        for st in model_status()
    ]


def virtualcam_report() -> dict[str, Any]:
    try:
        from bgcam.sinks.virtualcam import find_bgcam_device
    except ImportError as exc:  # pragma: no cover - the sink ships with the package
        return {"device": None, "reason": f"virtual camera sink missing: {exc}"}
    if not sys.platform.startswith("linux"):
        return {"device": None, "reason": "checked on Linux only (OBS / Unity Capture elsewhere)"}
    try:
        return {"device": find_bgcam_device()}
    except BgCamError as exc:
        return {"device": None, "reason": exc.message, "hint": exc.hint}


def diagnose(
    cfg: Config | None = None, frame_size: tuple[int, int] | None = None
) -> dict[str, Any]:
    """The whole report (see the module docstring)."""
    cfg = cfg or Config()
    size = frame_size or (cfg.source.width, cfg.source.height)
    models = models_report()
    models_ok = all(m["tflite_ok"] and m["onnx_ok"] for m in models)
    ocl = opencl_report()
    cuda = cuda_report()
    accelerators = []
    if ocl["usable"] and ocl["device"] and ocl["device"]["kind"] != "CPU":
        accelerators.append(f"OpenCL {ocl['device']['kind']}: {ocl['device']['name']}")
    if cuda["usable"]:
        accelerators.append(f"CUDA: {cuda['onnxruntime_cuda']}")
    return {
        "bgcam": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "accelerators": accelerators,
        "onnxruntime": onnxruntime_report(cfg.segment.providers),
        "opencl": ocl,
        "cuda": cuda,
        "segmenter": segmenter_report(cfg, size, models_ok),
        "compositor": compositor_report(cfg, size),
        "models": models,
        "models_ok": models_ok,
        "virtual_camera": virtualcam_report(),
        "cameras": cameras(),
    }


def cameras() -> dict[str, Any]:
    from bgcam.sinks.report import cameras_report

    return cameras_report()
