"""The NCHWc layout rewrites: same outputs, and onnxruntime really keeps the blocked layout."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from bgcam.segment.onnx import for_cpu_layout
from bgcam.segment.ortlayout import bgr255_planar_input, keep_nchwc, narrow_input


def _session(model: onnx.ModelProto | str, optimized: Path | None = None) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if optimized is not None:
        so.optimized_model_filepath = str(optimized)
    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else model
    return ort.InferenceSession(source, so, providers=["CPUExecutionProvider"])


def _ops(model: onnx.ModelProto) -> Counter[str]:
    return Counter(n.op_type for n in model.graph.node)


@pytest.mark.parametrize("name", ["selfie_segmentation_landscape", "selfie_segmentation"])
def test_selfie_models_give_the_same_mask_and_stay_blocked(
    model_dir: Path, astronaut: npt.NDArray[np.uint8], tmp_path: Path, name: str
) -> None:
    path = model_dir / f"{name}.onnx"
    original = onnx.load(path)
    rewritten = onnx.load(path)
    # Ten squeeze-and-excitation blocks: a per-channel scale each, and a spatial mean each that
    # the general model already has as an AveragePool.
    assert keep_nchwc(rewritten) == 10 + _ops(original)["ReduceMean"]
    onnx.checker.check_model(rewritten)
    assert _ops(rewritten)["ReduceMean"] == 0
    assert _ops(rewritten)["GlobalAveragePool"] == _ops(original)["ReduceMean"]

    before, after = (
        _session(str(path), tmp_path / "a.onnx"),
        _session(rewritten, tmp_path / "b.onnx"),
    )
    inp = before.get_inputs()[0]
    _, h, w, _ = inp.shape
    x = cv2.resize(astronaut, (w, h), interpolation=cv2.INTER_AREA)[None].astype(np.float32) / 255
    y0 = before.run(None, {inp.name: x})[0]
    y1 = after.run(None, {inp.name: x})[0]
    assert np.abs(y0 - y1).max() < 1e-4  # float sums in another order
    assert (y1 > 0.5).mean() > 0.2  # a person was found: the comparison is not of two blanks

    # What onnxruntime made of each (its saved optimised graphs): the layout conversions
    # around every squeeze-and-excitation block are gone.
    reorders_before = _reorders(onnx.load(tmp_path / "a.onnx"))
    reorders_after = _reorders(onnx.load(tmp_path / "b.onnx"))
    assert reorders_before >= 30
    assert reorders_after <= 5


@pytest.mark.parametrize("name", ["selfie_segmentation_landscape", "selfie_segmentation"])
def test_planar_bgr_input_gives_the_same_mask(
    model_dir: Path, astronaut: npt.NDArray[np.uint8], name: str
) -> None:
    path = model_dir / f"{name}.onnx"
    original, rewritten = onnx.load(path), onnx.load(path)
    assert bgr255_planar_input(rewritten)
    onnx.checker.check_model(rewritten)
    assert _ops(rewritten)["Transpose"] == _ops(original)["Transpose"] - 1
    before, after = _session(str(path)), _session(rewritten)
    _, h, w, _ = before.get_inputs()[0].shape
    assert after.get_inputs()[0].shape == [1, 3, h, w]
    bgr = cv2.resize(astronaut, (w, h), interpolation=cv2.INTER_AREA)
    rgb01 = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)[None].astype(np.float32) / 255
    planar = np.ascontiguousarray(bgr.transpose(2, 0, 1)[None], np.float32)
    y0 = before.run(None, {before.get_inputs()[0].name: rgb01})[0]
    y1 = after.run(None, {after.get_inputs()[0].name: planar})[0]
    assert np.abs(y0 - y1).max() < 1e-4
    assert (y1 > 0.5).mean() > 0.2
    # A second pass finds no NHWC input any more and changes nothing.
    again = rewritten.SerializeToString()
    assert not bgr255_planar_input(rewritten)
    assert rewritten.SerializeToString() == again


def test_planar_input_needs_a_transpose_into_convolutions() -> None:
    model = _tiny([2, 3], scale_is_constant=False)  # NCHW input into ReduceMean
    before = model.SerializeToString()
    assert not bgr255_planar_input(model)
    assert model.SerializeToString() == before


def _reorders(optimized: onnx.ModelProto) -> int:
    ops = _ops(optimized)
    return ops["ReorderInput"] + ops["ReorderOutput"]


def _tiny(axes: list[int], scale_is_constant: bool, opset: int = 17) -> onnx.ModelProto:
    """x (1, 16, 8, 8) → ReduceMean(axes) → Sigmoid → Mul with x (or a constant scale)."""
    nodes = [
        helper.make_node("ReduceMean", ["x"], ["m"], axes=axes, keepdims=1),
        helper.make_node("Sigmoid", ["m"], ["s"]),
        helper.make_node("Mul", ["x", "k" if scale_is_constant else "s"], ["y0"]),
        helper.make_node("Add", ["y0", "s"], ["y"]),
    ]
    k = numpy_helper.from_array(np.full((1, 16, 1, 1), 0.5, np.float32), "k")
    out_shape = [1, 16, 8, 8]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        [k],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8  # what onnxruntime 1.20 reads
    return model


def test_rewrites_only_what_matches_exactly() -> None:
    x = np.random.default_rng(1).random((1, 16, 8, 8), dtype=np.float32)

    model = _tiny([2, 3], scale_is_constant=False)
    want = _session(model).run(None, {"x": x})[0]
    assert keep_nchwc(model) == 2
    assert _ops(model) == Counter(
        {"GlobalAveragePool": 1, "Sigmoid": 1, "Resize": 1, "Mul": 1, "Add": 1}
    )
    np.testing.assert_allclose(_session(model).run(None, {"x": x})[0], want, atol=1e-6)

    # A mean over the channels and a constant scale (folded into convolutions) stay as they are.
    other = _tiny([1], scale_is_constant=True)
    assert keep_nchwc(other) == 0
    assert _ops(other)["ReduceMean"] == 1 and _ops(other)["Resize"] == 0

    # Before opset 11 Resize has no nearest_mode: only the mean is rewritten.
    old = _tiny([2, 3], scale_is_constant=False, opset=10)
    assert keep_nchwc(old) == 1 and _ops(old)["Resize"] == 0


def test_a_file_onnx_cannot_read_is_passed_on_unchanged(tmp_path: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model at all")
    assert for_cpu_layout(junk, "junk.onnx") == (str(junk), False, None)
    assert for_cpu_layout(b"\x00\x01", "bytes") == (b"\x00\x01", False, None)


def test_a_narrowed_general_model_sees_a_tall_picture_as_the_square_one_does(
    model_dir: Path, astronaut: npt.NDArray[np.uint8]
) -> None:
    """The general model given a 160-wide input: on a standing person (the astronaut's middle,
    undistorted, on a grey picture) it finds what the square model finds when given the same
    person with grey beside (same scale); the output has the new shape. The two differ on the
    ambiguous objects beside her (the shuttle, the helmet), which only the square model
    takes for person."""
    path = model_dir / "selfie_segmentation.onnx"
    narrowed = onnx.load(path)
    assert narrow_input(narrowed, 160)
    onnx.checker.check_model(narrowed)
    assert _ops(narrowed)["AveragePool"] == 0
    square, narrow = _session(str(path)), _session(narrowed)
    assert narrow.get_inputs()[0].shape == [1, 256, 160, 3]
    picture = np.full((256, 256, 3), 128, np.uint8)
    person = cv2.resize(astronaut[:, 130:400], (135, 256), interpolation=cv2.INTER_AREA)
    picture[:, 60:195] = cv2.cvtColor(person, cv2.COLOR_BGR2RGB)
    x = picture[None].astype(np.float32) / 255
    y_square = square.run(None, {"input_1": x})[0][0, :, 48:208, 0]
    y_narrow = narrow.run(None, {"input_1": np.ascontiguousarray(x[:, :, 48:208])})[0]
    assert y_narrow.shape == (1, 256, 160, 1)
    a, b = y_square > 0.5, y_narrow[0, :, :, 0] > 0.5
    assert a.mean() > 0.3  # a person: the comparison is not of two blanks
    assert (a & b).sum() / (a | b).sum() > 0.85
    core = (slice(30, 250), slice(40, 80))  # face, neck and suit
    assert a[core].mean() > 0.95 and b[core].mean() > 0.95


def test_narrowing_refuses_what_it_cannot_keep_exact(model_dir: Path) -> None:
    """A non-square input (the landscape model), a width off the network's stride, a model of
    another shape: False, and the model is left as it was."""
    for name, width in (("selfie_segmentation_landscape", 128), ("selfie_segmentation", 150)):
        model = onnx.load(model_dir / f"{name}.onnx")
        before = model.SerializeToString()
        assert not narrow_input(model, width)
        assert model.SerializeToString() == before
    tiny = _tiny([2, 3], scale_is_constant=True)
    assert not narrow_input(tiny, 32)
