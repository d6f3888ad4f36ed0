"""The TFLite → ONNX converter: output matches the TFLite models on real images."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import onnx
import pytest
import tflite

from bgcam.errors import ModelError
from bgcam.models import MODELS, model_path
from bgcam.models import check as model_check
from bgcam.models.tflite2onnx import IR_VERSION, OPSET, SOURCE_SHA256, convert


def _real_images(
    astronaut: npt.NDArray[np.uint8], davis: Path | None
) -> list[npt.NDArray[np.uint8]]:
    """RGB images: the astronaut, its mirror, and a few DAVIS frames when present."""
    rgb = cv2.cvtColor(astronaut, cv2.COLOR_BGR2RGB)
    images = [rgb, np.ascontiguousarray(rgb[:, ::-1])]
    if davis is not None:
        for seq in ("lucia", "dance-twirl", "tennis"):
            bgr = cv2.imread(str(davis / "JPEGImages" / seq / "00010.jpg"))
            if bgr is not None:
                images.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return images


@pytest.fixture
def davis_or_none(request: pytest.FixtureRequest) -> Path | None:
    try:
        path: Path = request.getfixturevalue("davis_dir")
    except pytest.skip.Exception:
        return None
    return path


@pytest.mark.parametrize("name", sorted(MODELS))
def test_converted_model_matches_tflite_on_real_images(
    model_dir: Path, name: str, astronaut: npt.NDArray[np.uint8], davis_or_none: Path | None
) -> None:
    src = model_path(name, "tflite")
    onnx_bytes = convert(src.read_bytes(), name).SerializeToString()
    spec = MODELS[name]
    worst = 0.0
    foreground = []
    for image in _real_images(astronaut, davis_or_none):
        small = np.ascontiguousarray(
            cv2.resize(image, (spec.width, spec.height), interpolation=cv2.INTER_AREA)
        )
        ref = model_check.run_tflite(src, small)
        got = model_check.run_onnx(onnx_bytes, small)
        assert got.shape == (spec.height, spec.width)
        worst = max(worst, float(np.abs(got - ref).max()))
        foreground.append(float((ref > 0.5).mean()))
    assert worst < 1e-3
    # The check is not vacuous: every image has both person and background pixels.
    assert all(0.01 < f < 0.9 for f in foreground), foreground


@pytest.mark.parametrize("name", sorted(MODELS))
def test_converted_model_format(model_dir: Path, name: str) -> None:
    data = model_path(name, "tflite").read_bytes()
    model = convert(data, name)
    assert model.ir_version == IR_VERSION
    assert [(o.domain, o.version) for o in model.opset_import] == [("", OPSET)]
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    spec = MODELS[name]
    assert dims == [1, spec.height, spec.width, 3]  # NHWC, like the TFLite model
    out = [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
    assert out == [1, spec.height, spec.width, 1]
    ops = {n.op_type for n in model.graph.node}
    assert "ConvTranspose" in ops  # MediaPipe's custom op
    assert "DequantizeLinear" not in ops  # float16 weights were folded to float32
    assert all(
        i.data_type == onnx.TensorProto.FLOAT
        for i in model.graph.initializer
        if i.data_type != onnx.TensorProto.INT64
    )
    props = {p.key: p.value for p in model.metadata_props}
    assert props[SOURCE_SHA256] == spec.sha256


def _patch_opcode(data: bytes, old: str, new: str) -> bytes:
    """Rewrite the builtin code of operator ``old`` into ``new`` inside the flatbuffer."""
    buf = bytearray(data)
    model = tflite.Model.GetRootAsModel(data, 0)
    old_code = getattr(tflite.BuiltinOperator, old)
    new_code = getattr(tflite.BuiltinOperator, new)
    for i in range(model.OperatorCodesLength()):
        oc = model.OperatorCodes(i)
        tab = oc._tab
        if max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode()) != old_code:
            continue
        dep = tab.Offset(4)  # deprecated_builtin_code: int8
        if dep:
            buf[tab.Pos + dep] = new_code if new_code < 127 else 127
        code = tab.Offset(10)  # builtin_code: int32
        if code:
            buf[tab.Pos + code : tab.Pos + code + 4] = new_code.to_bytes(4, "little")
        return bytes(buf)
    raise AssertionError(f"{old} not in the model")


def test_unsupported_builtin_op_is_named(model_dir: Path) -> None:
    data = model_path("landscape", "tflite").read_bytes()
    patched = _patch_opcode(data, "HARD_SWISH", "ELU")
    with pytest.raises(ModelError, match=r"unsupported TFLite op ELU;") as info:
        convert(patched, "patched")
    assert "HARD_SWISH" in info.value.message  # the list of what is supported


def test_unsupported_custom_op_is_named(model_dir: Path) -> None:
    data = model_path("general", "tflite").read_bytes()
    patched = data.replace(b"Convolution2DTransposeBias", b"Convolution2DTransposeBiaZ")
    with pytest.raises(ModelError, match="unsupported TFLite op Convolution2DTransposeBiaZ"):
        convert(patched, "patched")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "not a TFLite model"),
        (b"\x00" * 64, "not a TFLite model"),
        (b"PK\x03\x04" + b"\x00" * 100, "not a TFLite model"),
    ],
)
def test_not_a_tflite_file(data: bytes, expected: str) -> None:
    with pytest.raises(ModelError, match=expected):
        convert(data, "junk")


def test_check_image_is_a_real_photo() -> None:
    rgb = model_check.check_image((256, 144))
    assert rgb.shape == (144, 256, 3) and rgb.dtype == np.uint8
    assert rgb.std() > 30  # a photo, not a flat fill


def _resize_without_half_pixel(data: bytes) -> bytes:
    """The model with every RESIZE_BILINEAR switched from half-pixel to asymmetric sampling."""
    buf = bytearray(data)
    model = tflite.Model.GetRootAsModel(data, 0)
    graph = model.Subgraphs(0)
    patched = 0
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        if code.BuiltinCode() != tflite.BuiltinOperator.RESIZE_BILINEAR:
            continue
        table = op.BuiltinOptions()
        field = table.Offset(10)  # half_pixel_centers: bool
        assert field, "half_pixel_centers is stored"
        buf[table.Pos + field] = 0
        patched += 1
    assert patched == 3
    return bytes(buf)


def test_resize_coordinate_mode_follows_the_tflite_option(
    model_dir: Path, astronaut: npt.NDArray[np.uint8], tmp_path: Path
) -> None:
    # The selfie models use half-pixel centres; the same model switched to TFLite's legacy
    # (asymmetric) sampling must still match what the TFLite runtime computes for it.
    src = tmp_path / "asymmetric.tflite"
    src.write_bytes(_resize_without_half_pixel(model_path("landscape", "tflite").read_bytes()))
    model = convert(src.read_bytes(), "asymmetric")
    modes = {
        onnx.helper.get_attribute_value(a)
        for n in model.graph.node
        if n.op_type == "Resize"
        for a in n.attribute
        if a.name == "coordinate_transformation_mode"
    }
    assert modes == {b"asymmetric"}
    rgb = cv2.resize(cv2.cvtColor(astronaut, cv2.COLOR_BGR2RGB), (256, 144))
    ref = model_check.run_tflite(src, rgb)
    got = model_check.run_onnx(model.SerializeToString(), rgb)
    assert float(np.abs(got - ref).max()) < 1e-3
    original = model_check.run_tflite(model_path("landscape", "tflite"), rgb)
    assert float(np.abs(original - ref).max()) > 1e-3  # the switch really changed the model
