"""``bgcam doctor``: run for real, as a user would, on this machine (no GPU, pocl installed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _doctor(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bgcam", "doctor", "--size", "640x360", *args],
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "160", **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def report(model_dir: Path) -> dict[str, Any]:
    res = _doctor("--json")
    assert res.returncode == 0, res.stderr[-3000:]
    data: dict[str, Any] = json.loads(res.stdout)
    return data


def test_json_lists_providers_and_what_a_session_runs_on(report: dict[str, Any]) -> None:
    ort = report["onnxruntime"]
    assert "CPUExecutionProvider" in ort["available_providers"]
    assert ort["session_runs_on"] in ort["available_providers"]
    # Every provider preferred to the one that runs is explained.
    for name, why in ort["not_used"].items():
        assert name.endswith("ExecutionProvider") and why


def test_json_explains_every_compositor(report: dict[str, Any]) -> None:
    comp = report["compositor"]
    assert comp["configured"] == "auto" and comp["frame_size"] == [640, 360]
    trials = {t["backend"]: t for t in comp["trials"]}
    assert set(trials) == {"cpu", "opencl", "cuda"}
    assert trials["cpu"]["ok"] and trials["cpu"]["ms"] > 0
    assert comp["chosen"] in {b for b, t in trials.items() if t["ok"]}
    for t in trials.values():
        assert t["ok"] or t["reason"]


def test_json_on_a_machine_without_accelerators(report: dict[str, Any]) -> None:
    if report["accelerators"]:
        pytest.skip(f"this machine has accelerators: {report['accelerators']}")
    assert report["cuda"]["usable"] is False and report["cuda"]["reason"]
    ocl = report["opencl"]
    if ocl["icds"] and not ocl["usable"]:
        # OpenCV looks for GPUs only; the CPU driver (pocl here) is found and explained.
        assert "no usable device" in ocl["reason"]
        assert ocl["ignored_cpu_device"]["kind"] == "CPU"
    assert report["compositor"]["chosen"] == "cpu"


def test_json_models_segmenter_and_virtual_camera(report: dict[str, Any]) -> None:
    assert report["models_ok"] is True
    assert {m["name"] for m in report["models"]} == {"general", "landscape"}
    seg = report["segmenter"]
    assert seg["chosen"] == seg["configured"] == "onnx"
    assert seg["backends"]["onnx"]["provider"] == report["onnxruntime"]["session_runs_on"]
    cam = report["virtual_camera"]
    if cam["device"] is None:  # no v4l2loopback on our machines
        assert "v4l2loopback" in cam["reason"]


def test_table_says_what_runs_and_why(model_dir: Path, report: dict[str, Any]) -> None:
    res = _doctor()
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout
    for label in (
        "onnxruntime",
        "OpenCL (OpenCV)",
        "onnxruntime CUDA",
        "compositor cpu",
        "compositor opencl",
        "compositor cuda",
        "segmenter mediapipe",
        "model landscape",
        "virtual camera",
    ):
        assert label in out, label
    assert "in use" in out
    if not report["accelerators"]:
        assert "No GPU or other accelerator is usable here" in out


def test_opencl_cpu_device_is_measured_when_selected(model_dir: Path) -> None:
    res = _doctor("--json", env={"OPENCV_OPENCL_DEVICE": ":CPU:"})
    assert res.returncode == 0, res.stderr[-3000:]
    data = json.loads(res.stdout)
    if not data["opencl"]["usable"]:
        pytest.skip(f"no CPU OpenCL device here: {data['opencl']['reason']}")
    assert data["opencl"]["device"]["kind"] == "CPU"
    opencl = next(t for t in data["compositor"]["trials"] if t["backend"] == "opencl")
    assert opencl["ok"] and opencl["ms"] > 0
    assert data["accelerators"] == []  # a CPU driver is not an accelerator


def test_bad_size_is_a_clear_error() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "bgcam", "doctor", "--size", "big"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 2
    assert "--size: expected WIDTHxHEIGHT" in res.stderr and "Traceback" not in res.stderr
