"""The opencl compositor, for real on a CPU OpenCL driver (Debian's pocl-opencl-icd).

OpenCV opens its OpenCL device once per process, at the first OpenCL use, choosing it by the
environment variable OPENCV_OPENCL_DEVICE read at that moment; other tests in this process may
already have touched OpenCL without it. So every check runs in a child process with
``OPENCV_OPENCL_DEVICE=:CPU:`` (the pocl device) or with a selector that matches nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.compose.compose_cases import CASES, MIN_PSNR, SIZES, case_id

ROOT = Path(__file__).resolve().parents[2]


def _child(code: str, device: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, OPENCV_OPENCL_DEVICE=device)
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


_PROBE = """
import json
from bgcam.compose.opencl import probe
from bgcam.errors import BackendError
try:
    d = probe()
    print(json.dumps({"ok": True, "name": d.name, "kind": d.kind, "version": d.version}))
except BackendError as exc:
    print(json.dumps({"ok": False, "message": exc.message, "hint": exc.hint}))
"""


def _last_json(res: subprocess.CompletedProcess[str]) -> Any:
    lines = res.stdout.strip().splitlines()
    assert res.returncode == 0 and lines, f"child failed ({res.returncode}):\n{res.stderr[-3000:]}"
    return json.loads(lines[-1])


@pytest.fixture(scope="module")
def pocl() -> dict[str, Any]:
    """The pocl CPU device as OpenCV sees it; skips when this machine has no OpenCL driver."""
    info: dict[str, Any] = _last_json(_child(_PROBE, ":CPU:"))
    if not info["ok"]:
        pytest.skip(f"no CPU OpenCL device here (install pocl-opencl-icd): {info['message']}")
    return info


@pytest.fixture(scope="module")
def scores(
    pocl: dict[str, Any], model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, list[float]]:
    """PSNR of every case (opencl vs cpu), computed in one child process on the pocl device."""
    out = tmp_path_factory.mktemp("opencl")
    code = f"""
import json
from pathlib import Path
from bgcam.compose.opencl import OpenClCompositor
from tests.compose.compose_cases import compare_all
print(json.dumps(compare_all(OpenClCompositor, Path({str(out)!r}))))
"""
    result: dict[str, list[float]] = _last_json(_child(code, ":CPU:"))
    return result


def test_device_is_the_cpu_driver(pocl: dict[str, Any]) -> None:
    assert pocl["kind"] == "CPU"
    assert "OpenCL" in pocl["version"]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c)))
def test_matches_cpu(scores: dict[str, list[float]], size: tuple[int, int], case: Any) -> None:
    with_alpha, without = scores[case_id(size, case)]
    assert with_alpha >= MIN_PSNR, f"with the real alpha: {with_alpha:.1f} dB"
    assert without >= MIN_PSNR, f"without a mask: {without:.1f} dB"


def test_a_change_prepared_on_another_thread_and_the_cheaper_path_match_cpu(
    pocl: dict[str, Any], model_dir: Path, tmp_path: Path
) -> None:
    """:meth:`prepare` on a builder thread, :meth:`update` on this one, then the governor's
    cheaper path (:meth:`economise`): the picture stays within PSNR 40 dB of the CPU's."""
    code = f"""
import json
from pathlib import Path
from bgcam.compose.opencl import OpenClCompositor
from tests.compose.compose_cases import compare_changes
print(json.dumps(compare_changes(OpenClCompositor, Path({str(tmp_path)!r}))))
"""
    scores: dict[str, list[float]] = _last_json(_child(code, ":CPU:"))
    assert len(scores) == 4 and any(len(s) == 2 for s in scores.values()), scores
    for name, values in scores.items():
        assert min(values) >= MIN_PSNR, f"{name}: {values}"


def test_no_device_is_a_backend_error_naming_why(pocl: dict[str, Any]) -> None:
    """A selector that matches nothing, on a machine with an OpenCL runtime (skips without one)."""
    code = """
import json
from bgcam.compose import create_compositor
from bgcam.config import ComposeConfig
from bgcam.errors import BackendError
try:
    create_compositor(ComposeConfig(backend="opencl"), (640, 480))
    print(json.dumps({"ok": True}))
except BackendError as exc:
    print(json.dumps({"ok": False, "message": exc.message, "hint": exc.hint}))
"""
    info = _last_json(_child(code, "NoSuchVendor:GPU:"))
    assert info == {
        "ok": False,
        "message": "OpenCL has no usable device: "
        "OPENCV_OPENCL_DEVICE=NoSuchVendor:GPU: matches no device",
        "hint": info["hint"],
    }
    assert "compose.backend" in info["hint"] and "OPENCV_OPENCL_DEVICE=:CPU:" in info["hint"]


def test_keeps_frames_on_the_device_between_steps(pocl: dict[str, Any]) -> None:
    """Every intermediate buffer of the blur is a UMat; only the result comes back as numpy."""
    code = """
import json, cv2, numpy as np
from bgcam.compose.opencl import OpenClCompositor
from bgcam.config import ComposeConfig
c = OpenClCompositor(ComposeConfig(backend="opencl"), (640, 480))
bufs = {k: type(v).__name__ for k, v in vars(c._blur).items() if k.startswith("_")}
img = np.full((480, 640, 3), 100, np.uint8)
out = c.compose(img, np.zeros((480, 640), np.float32))
print(json.dumps({"bufs": bufs, "out": type(out).__name__, "shape": list(out.shape),
                  "mean": float(out.mean())}))
"""
    info = _last_json(_child(code, ":CPU:"))
    assert set(info["bufs"].values()) == {"UMat"}, info["bufs"]
    assert info["out"] == "ndarray" and info["shape"] == [480, 640, 3]
    assert abs(info["mean"] - 100) < 1  # a flat grey stays that grey through the blur
