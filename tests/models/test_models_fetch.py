"""Fetching, storing and verifying the models: real pip, real files, real conversion."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from bgcam.errors import ModelError
from bgcam.models import MODELS, WHEEL_NAME, ensure_model, model_path
from bgcam.models import check as model_check
from bgcam.models import tflite2onnx as converter
from bgcam.models.fetch import extract_models, fetch_models, model_status, pip_command

STEMS = sorted(f"{spec.stem}.tflite" for spec in MODELS.values())


@pytest.fixture
def empty_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """BGCAM_MODEL_DIR pointing to a fresh, empty directory."""
    path = tmp_path / "models"
    monkeypatch.setenv("BGCAM_MODEL_DIR", str(path))
    return path


@pytest.fixture
def tflite_only(model_dir: Path, empty_dir: Path) -> Path:
    """A fresh model directory holding only the two (real) .tflite files."""
    empty_dir.mkdir()
    for name in STEMS:
        shutil.copy(model_dir / name, empty_dir / name)
    return empty_dir


def _offline_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make pip fail fast and for sure: one unreachable local index, no other source.

    This machine's pip config adds extra indexes and find-links: PIP_CONFIG_FILE=os.devnull
    disables every config file, and the PIP_* variables that name other sources are removed.
    PIP_RETRIES=1 keeps one "connection refused" line in pip's output (0 retries hide it).
    """
    for var in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_NO_INDEX", "PIP_INDEX"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "1")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")


def test_no_network_error_is_clear_and_leaves_nothing(
    empty_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _offline_env(monkeypatch)
    with pytest.raises(ModelError) as info:
        fetch_models(show_progress=False)
    err = info.value
    assert "could not download mediapipe 0.10.21 with pip" in err.message
    assert "Connection refused" in err.message  # pip's reason is passed on
    assert err.hint is not None
    assert pip_command() in err.hint  # the exact manual download command
    assert f"bgcam models fetch --wheel DIR/{WHEEL_NAME}" in err.hint
    assert str(empty_dir) in err.hint and "bgcam models verify" in err.hint
    assert sorted(p.name for p in empty_dir.iterdir()) == []  # nothing half-written


def test_no_network_cli_exit_code_and_message(
    empty_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _offline_env(monkeypatch)
    proc = subprocess.run(
        [sys.executable, "-m", "bgcam", "models", "fetch"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 3, proc.stderr
    assert "error: could not download mediapipe 0.10.21" in proc.stderr
    assert "fix:" in proc.stderr and "python -m pip download" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not empty_dir.exists() or not any(empty_dir.iterdir())


def _fake_wheel(path: Path, payload: bytes) -> Path:
    wheel = path / WHEEL_NAME
    with zipfile.ZipFile(wheel, "w") as z:
        for stem in STEMS:
            z.writestr(f"mediapipe/modules/selfie_segmentation/{stem}", payload)
    return wheel


def test_wheel_with_wrong_hash_is_refused(empty_dir: Path, tmp_path: Path) -> None:
    wheel = _fake_wheel(tmp_path, b"not the model")
    with pytest.raises(ModelError, match=r"expected 05dc4a9e.*refusing to use it"):
        fetch_models(wheel=wheel, show_progress=False)
    assert not any(empty_dir.iterdir())


def test_member_with_wrong_hash_is_refused(tmp_path: Path) -> None:
    wheel = _fake_wheel(tmp_path, b"tampered")
    with pytest.raises(ModelError, match="refusing to store it"):
        extract_models(wheel, ["general"])


def test_tampered_tflite_is_refused(tflite_only: Path) -> None:
    path = tflite_only / "selfie_segmentation.tflite"
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256 differs") as info:
        ensure_model("general", "tflite", fetch=False)
    assert info.value.hint == "run `bgcam models fetch --force` to download it again"
    status = {s.name: s for s in model_status()}
    assert not status["general"].tflite_ok and status["landscape"].tflite_ok


def test_fetch_converts_present_tflite_without_download_and_is_idempotent(
    tflite_only: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _offline_env(monkeypatch)  # proves no download is attempted
    first = fetch_models(show_progress=False)
    assert [(r.tflite, r.onnx) for r in first] == [("present", "converted")] * 2
    assert all(r.max_abs_diff is not None and r.max_abs_diff < 1e-3 for r in first)
    mtimes = {p.name: p.stat().st_mtime_ns for p in tflite_only.iterdir()}
    second = fetch_models(show_progress=False)
    assert [(r.tflite, r.onnx) for r in second] == [("present", "present")] * 2
    assert {p.name: p.stat().st_mtime_ns for p in tflite_only.iterdir()} == mtimes
    assert all(s.tflite_ok and s.onnx_ok and not s.problems for s in model_status(deep=True))
    assert not [p for p in tflite_only.iterdir() if p.name.startswith(".")]  # no temp files


def test_ensure_model_converts_on_first_use(tflite_only: Path) -> None:
    assert not model_path("landscape", "onnx").exists()
    path = ensure_model("landscape", "onnx")
    assert path == tflite_only / "selfie_segmentation_landscape.onnx" and path.is_file()
    # Every model is left complete, so `bgcam models verify` right after is green.
    assert all(s.tflite_ok and s.onnx_ok and not s.problems for s in model_status(deep=True))


def test_ensure_model_without_fetch_says_how(empty_dir: Path) -> None:
    with pytest.raises(ModelError, match="is missing") as info:
        ensure_model("general", "onnx", fetch=False)
    assert info.value.hint == "run `bgcam models fetch`"
    with pytest.raises(ModelError, match="unknown model"):
        ensure_model("portrait")


def _perturbed(model: onnx.ModelProto) -> onnx.ModelProto:
    """The same model with the bias of its last transpose-conv shifted (a wrong conversion)."""
    node = next(n for n in model.graph.node if n.op_type == "ConvTranspose")
    init = next(i for i in model.graph.initializer if i.name == node.input[2])
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) + np.float32(0.5), init.name))
    return model


def test_conversion_that_does_not_match_is_not_stored(
    tflite_only: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fault injection: a converter that produces a subtly wrong graph must be caught by the
    # check against the TFLite output, and nothing stored.
    real = converter.convert
    monkeypatch.setattr(converter, "convert", lambda data, source: _perturbed(real(data, source)))
    with pytest.raises(ModelError, match=r"differs from the TFLite model by .* not stored"):
        fetch_models(["landscape"], show_progress=False)
    assert sorted(p.name for p in tflite_only.iterdir()) == STEMS


def test_verify_detects_a_wrong_onnx(tflite_only: Path) -> None:
    fetch_models(["general"], show_progress=False)
    path = model_path("general", "onnx")
    model = _perturbed(onnx.load(str(path)))
    onnx.save(model, str(path))
    assert model_check.max_abs_diff(model_path("general", "tflite"), path) > 1e-3
    status = {s.name: s for s in model_status(["general"], deep=True)}["general"]
    assert not status.onnx_ok
    assert any("differs from" in p for p in status.problems)
