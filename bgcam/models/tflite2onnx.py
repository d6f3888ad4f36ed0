"""BgCam's own TFLite → ONNX converter, for the MediaPipe selfie-segmentation models.

It reads the TFLite flatbuffer with the ``tflite`` package and builds the ONNX graph with
``onnx.helper``. The ONNX graph keeps the TFLite interface (one NHWC float32 input in [0, 1], NHWC
output) and works in NCHW inside: every rank-4 activation is NCHW in ONNX, constants are laid out
for the ONNX op at conversion time, and one Transpose sits at each end.

Supported: the ops the selfie models use (DEQUANTIZE of float16/int8 constants — folded into
float32 initializers —, CONV_2D, DEPTHWISE_CONV_2D, AVERAGE_POOL_2D, MEAN, ADD, MUL, RELU, RELU6,
HARD_SWISH, LOGISTIC, TANH, RESIZE_BILINEAR and MediaPipe's custom ``Convolution2DTransposeBias``),
with TFLite SAME/VALID padding, fused activations and resize coordinate modes. Anything else
raises :class:`~bgcam.errors.ModelError` naming the op.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
import tflite
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper

from bgcam.errors import ModelError

OPSET = 17
"""ONNX opset of the converted models (onnxruntime ≥ 1.14 runs it)."""
IR_VERSION = 8
"""Set explicitly: onnx ≥ 1.20 writes IR 10+ by default, which older onnxruntime rejects."""
CONVERTER_VERSION = "1"
"""Bump when the converter's output changes, so stored ONNX files get converted again."""
SOURCE_SHA256 = "bgcam.source_sha256"
CONVERTER = "bgcam.converter_version"

_TFLITE_DTYPES: dict[int, Any] = {
    tflite.TensorType.FLOAT32: np.float32,
    tflite.TensorType.FLOAT16: np.float16,
    tflite.TensorType.INT32: np.int32,
    tflite.TensorType.INT64: np.int64,
    tflite.TensorType.INT8: np.int8,
    tflite.TensorType.UINT8: np.uint8,
}
_NHWC_TO_NCHW = (0, 3, 1, 2)
_NCHW_TO_NHWC = (0, 2, 3, 1)
_AXIS_NHWC_TO_NCHW = {0: 0, 1: 2, 2: 3, 3: 1}


@dataclass
class _Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: Any
    const: NDArray[Any] | None  # value in TFLite layout, when the tensor is a constant
    quant: tuple[NDArray[np.float32], NDArray[np.float32], int] | None = None  # scale, zero, axis


@dataclass
class _Builder:
    tensors: list[_Tensor]
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    inits: list[onnx.TensorProto] = field(default_factory=list)
    names: dict[int, str] = field(default_factory=dict)  # tflite tensor index -> onnx value
    pending: list[tuple[int, str, str, str]] = field(default_factory=list)  # fused activations
    counter: int = 0

    def fresh(self, hint: str) -> str:
        self.counter += 1
        return f"{hint}_{self.counter}"

    def init(self, hint: str, value: NDArray[Any]) -> str:
        name = self.fresh(hint)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], outputs: list[str], **attrs: Any) -> None:
        self.nodes.append(
            helper.make_node(op, inputs, outputs, name=self.fresh(op.lower()), **attrs)
        )

    def value(self, index: int, like_rank: int = 4) -> str:
        """The ONNX value of TFLite tensor ``index`` (a constant becomes an initializer)."""
        if index in self.names:
            return self.names[index]
        t = self.tensors[index]
        if t.const is None:
            raise ModelError(f"tensor {t.name!r} is used before any op produces it")
        arr = np.asarray(t.const)
        if arr.ndim == 4:
            arr = arr.transpose(_NHWC_TO_NCHW)
        elif arr.ndim == 1 and like_rank == 4 and arr.size > 1:
            arr = arr.reshape(-1, 1, 1)  # broadcast over the channel axis in NCHW
        return self.init("const", arr)

    def const(self, index: int, what: str) -> NDArray[Any]:
        t = self.tensors[index]
        if t.const is None:
            raise ModelError(f"{what}: tensor {t.name!r} must be a constant")
        return t.const

    def output(self, index: int) -> str:
        name = f"t{index}"
        self.names[index] = name
        return name


def _activation(b: _Builder, code: int, src: str, dst: str, op: str) -> None:
    """Apply TFLite fused activation ``code`` from ``src`` to ``dst``."""
    act = tflite.ActivationFunctionType
    if code == act.NONE:
        b.node("Identity", [src], [dst])
    elif code == act.RELU:
        b.node("Relu", [src], [dst])
    elif code == act.RELU6:
        lo = b.init("lo", np.array(0.0, np.float32))
        hi = b.init("hi", np.array(6.0, np.float32))
        b.node("Clip", [src, lo, hi], [dst])
    elif code == act.RELU_N1_TO_1:
        lo = b.init("lo", np.array(-1.0, np.float32))
        hi = b.init("hi", np.array(1.0, np.float32))
        b.node("Clip", [src, lo, hi], [dst])
    elif code == act.TANH:
        b.node("Tanh", [src], [dst])
    else:
        raise ModelError(f"{op}: fused activation {code} is not supported by the converter")


def _fused(b: _Builder, code: int, out_index: int, op: str) -> str:
    """Where an op should write so that its fused activation ``code`` ends in ``out_index``."""
    dst = b.output(out_index)
    if code == tflite.ActivationFunctionType.NONE:
        return dst
    raw = b.fresh("preact")
    b.pending.append((code, raw, dst, op))
    return raw


def _same_pads(size: int, out: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _pads(
    padding: int,
    in_hw: tuple[int, int],
    out_hw: tuple[int, int],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int] = (1, 1),
) -> list[int]:
    """ONNX pads [top, left, bottom, right] for TFLite padding SAME or VALID."""
    if padding == tflite.Padding.VALID:
        return [0, 0, 0, 0]
    top, bottom = _same_pads(in_hw[0], out_hw[0], kernel[0], stride[0], dilation[0])
    left, right = _same_pads(in_hw[1], out_hw[1], kernel[1], stride[1], dilation[1])
    return [top, left, bottom, right]


def _options(op: Any, cls: type[Any]) -> Any:
    table = op.BuiltinOptions()
    opts = cls()
    if table is not None:
        opts.Init(table.Bytes, table.Pos)
    return opts


# --------------------------------------------------------------------------------------------
# Op converters: (builder, op, tflite op name) -> None


def _conv(b: _Builder, op: Any, name: str) -> None:
    depthwise = name == "DEPTHWISE_CONV_2D"
    o = _options(op, tflite.DepthwiseConv2DOptions if depthwise else tflite.Conv2DOptions)
    ins = op.InputsAsNumpy()
    x, w_i = int(ins[0]), int(ins[1])
    w = b.const(w_i, name).astype(np.float32)
    xs, ys = b.tensors[x].shape, b.tensors[int(op.Outputs(0))].shape
    if depthwise:  # [1, KH, KW, C*M] -> [C*M, 1, KH, KW], one group per input channel
        weight = w[0].transpose(2, 0, 1)[:, None]
        group = xs[3]
    else:  # [O, KH, KW, I] -> [O, I, KH, KW]
        weight = w.transpose(0, 3, 1, 2)
        group = 1
    kh, kw = weight.shape[2], weight.shape[3]
    stride = (o.StrideH(), o.StrideW())
    dil = (o.DilationHFactor(), o.DilationWFactor())
    pads = _pads(o.Padding(), (xs[1], xs[2]), (ys[1], ys[2]), (kh, kw), stride, dil)
    inputs = [b.value(x), b.init("w", weight)]
    if len(ins) > 2 and ins[2] >= 0:
        inputs.append(b.init("b", b.const(int(ins[2]), name).astype(np.float32)))
    dst = _fused(b, o.FusedActivationFunction(), int(op.Outputs(0)), name)
    b.node(
        "Conv",
        inputs,
        [dst],
        kernel_shape=[kh, kw],
        strides=list(stride),
        dilations=list(dil),
        pads=pads,
        group=group,
    )


def _transpose_conv_bias(b: _Builder, op: Any, name: str) -> None:
    """MediaPipe's Convolution2DTransposeBias: ConvTranspose + bias, weights OHWI."""
    ins = op.InputsAsNumpy()
    if len(ins) != 3:
        raise ModelError(f"{name}: expected 3 inputs (input, weights, bias), got {len(ins)}")
    raw = op.CustomOptionsAsNumpy()
    if isinstance(raw, int) or raw.size < 12:
        raise ModelError(f"{name}: missing its options (padding, stride_w, stride_h)")
    _padding, stride_w, stride_h = struct.unpack("<3i", raw[:12].tobytes())
    x, y = int(ins[0]), int(op.Outputs(0))
    w = b.const(int(ins[1]), name).astype(np.float32)  # [O, KH, KW, I]
    bias = b.const(int(ins[2]), name).astype(np.float32)
    weight = w.transpose(3, 0, 1, 2)  # ONNX ConvTranspose: [I, O, KH, KW]
    kh, kw = weight.shape[2], weight.shape[3]
    xs, ys = b.tensors[x].shape, b.tensors[y].shape
    pads = []
    for size, out, k, s in ((xs[1], ys[1], kh, stride_h), (xs[2], ys[2], kw, stride_w)):
        total = s * (size - 1) + k - out
        if total < 0:
            raise ModelError(f"{name}: output size {out} needs output padding (unsupported)")
        pads.append((total // 2, total - total // 2))
    b.node(
        "ConvTranspose",
        [b.value(x), b.init("w", weight), b.init("b", bias)],
        [b.output(y)],
        kernel_shape=[kh, kw],
        strides=[stride_h, stride_w],
        pads=[pads[0][0], pads[1][0], pads[0][1], pads[1][1]],
    )


def _average_pool(b: _Builder, op: Any, name: str) -> None:
    o = _options(op, tflite.Pool2DOptions)
    x, y = int(op.Inputs(0)), int(op.Outputs(0))
    xs, ys = b.tensors[x].shape, b.tensors[y].shape
    kernel = (o.FilterHeight(), o.FilterWidth())
    stride = (o.StrideH(), o.StrideW())
    pads = _pads(o.Padding(), (xs[1], xs[2]), (ys[1], ys[2]), kernel, stride)
    dst = _fused(b, o.FusedActivationFunction(), y, name)
    # TFLite averages over the valid (unpadded) cells only: count_include_pad=0.
    b.node(
        "AveragePool",
        [b.value(x)],
        [dst],
        kernel_shape=list(kernel),
        strides=list(stride),
        pads=pads,
        count_include_pad=0,
    )


def _mean(b: _Builder, op: Any, name: str) -> None:
    o = _options(op, tflite.ReducerOptions)
    x, y = int(op.Inputs(0)), int(op.Outputs(0))
    rank = len(b.tensors[x].shape)
    axes = sorted(int(a) % rank for a in np.ravel(b.const(int(op.Inputs(1)), name)))
    keep = bool(o.KeepDims())
    if rank == 4:
        if not keep and axes != [1, 2]:
            raise ModelError(f"{name} over axes {axes} without keep_dims is not supported")
        axes = sorted(_AXIS_NHWC_TO_NCHW[a] for a in axes)
    b.node("ReduceMean", [b.value(x)], [b.output(y)], axes=axes, keepdims=int(keep))


def _binary(b: _Builder, op: Any, name: str) -> None:
    onnx_op = {"ADD": "Add", "MUL": "Mul"}[name]
    o = _options(op, tflite.AddOptions if name == "ADD" else tflite.MulOptions)
    a, c, y = int(op.Inputs(0)), int(op.Inputs(1)), int(op.Outputs(0))
    rank = len(b.tensors[y].shape)
    dst = _fused(b, o.FusedActivationFunction(), y, name)
    b.node(onnx_op, [b.value(a, rank), b.value(c, rank)], [dst])


def _unary(onnx_op: str, **attrs: Any) -> Callable[[_Builder, Any, str], None]:
    def convert(b: _Builder, op: Any, name: str) -> None:
        b.node(onnx_op, [b.value(int(op.Inputs(0)))], [b.output(int(op.Outputs(0)))], **attrs)

    return convert


def _relu6(b: _Builder, op: Any, name: str) -> None:
    _activation(
        b,
        tflite.ActivationFunctionType.RELU6,
        b.value(int(op.Inputs(0))),
        b.output(int(op.Outputs(0))),
        name,
    )


def _resize_bilinear(b: _Builder, op: Any, name: str) -> None:
    o = _options(op, tflite.ResizeBilinearOptions)
    x, y = int(op.Inputs(0)), int(op.Outputs(0))
    new_h, new_w = (int(v) for v in np.ravel(b.const(int(op.Inputs(1)), name)))
    n, _, _, c = b.tensors[x].shape
    if o.AlignCorners():
        mode = "align_corners"
    elif o.HalfPixelCenters():
        mode = "half_pixel"
    else:
        mode = "asymmetric"
    sizes = b.init("sizes", np.array([n, c, new_h, new_w], np.int64))
    b.node(
        "Resize",
        [b.value(x), "", "", sizes],
        [b.output(y)],
        mode="linear",
        coordinate_transformation_mode=mode,
    )


def _dequantize(b: _Builder, op: Any, name: str) -> None:
    """Fold DEQUANTIZE of a constant into a float32 constant (no ONNX node)."""
    x, y = int(op.Inputs(0)), int(op.Outputs(0))
    src = b.tensors[x]
    value = b.const(x, name)
    if value.dtype == np.float16:
        out = value.astype(np.float32)
    else:
        if src.quant is None:
            raise ModelError(f"{name}: tensor {src.name!r} of {value.dtype} has no quantization")
        scale, zero, axis = src.quant
        shape = [1] * value.ndim
        if scale.size > 1:
            shape[axis] = -1
        out = (value.astype(np.float32) - zero.reshape(shape)) * scale.reshape(shape)
    b.tensors[y].const = out.astype(np.float32)


_CONVERTERS: dict[str, Callable[[_Builder, Any, str], None]] = {
    "CONV_2D": _conv,
    "DEPTHWISE_CONV_2D": _conv,
    "AVERAGE_POOL_2D": _average_pool,
    "MEAN": _mean,
    "ADD": _binary,
    "MUL": _binary,
    "RELU": _unary("Relu"),
    "RELU6": _relu6,
    "HARD_SWISH": _unary("HardSwish"),
    "LOGISTIC": _unary("Sigmoid"),
    "TANH": _unary("Tanh"),
    "RESIZE_BILINEAR": _resize_bilinear,
    "DEQUANTIZE": _dequantize,
    "Convolution2DTransposeBias": _transpose_conv_bias,
}
SUPPORTED_OPS = tuple(sorted(_CONVERTERS))


# --------------------------------------------------------------------------------------------


def _read_tensors(model: Any, graph: Any, buf: bytes) -> list[_Tensor]:
    tensors = []
    for i in range(graph.TensorsLength()):
        t = graph.Tensors(i)
        name = (t.Name() or b"").decode("utf-8", "replace") or f"tensor{i}"
        dtype = _TFLITE_DTYPES.get(t.Type())
        shape = tuple(int(s) for s in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        const = None
        buffer = model.Buffers(t.Buffer())
        raw: Any = None
        if buffer.Offset() > 1:  # data stored after the flatbuffer (large models)
            raw = np.frombuffer(buf, np.uint8, buffer.Size(), buffer.Offset())
        elif buffer.DataLength():
            raw = buffer.DataAsNumpy()
        if raw is not None:
            if dtype is None:
                raise ModelError(f"tensor {name!r} has unsupported type {t.Type()}")
            const = np.frombuffer(raw.tobytes(), dtype).reshape(shape).copy()
        tensor = _Tensor(name, shape, dtype, const)
        q = t.Quantization()
        if q is not None and q.ScaleLength():
            axis = int(q.QuantizedDimension())
            zero = q.ZeroPointAsNumpy() if q.ZeroPointLength() else np.zeros(1)
            tensor.quant = (
                q.ScaleAsNumpy().astype(np.float32),
                np.asarray(zero, np.float32),
                axis,
            )
        tensors.append(tensor)
    return tensors


def _op_name(model: Any, op: Any) -> str:
    code = model.OperatorCodes(op.OpcodeIndex())
    builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
    if builtin == tflite.BuiltinOperator.CUSTOM:
        return (code.CustomCode() or b"?").decode("utf-8", "replace")
    try:
        return str(tflite.opcode2name(builtin))
    except ValueError:
        return f"builtin op {builtin}"


def convert(data: bytes, source: str = "model") -> onnx.ModelProto:
    """Convert TFLite flatbuffer bytes to an ONNX model (NHWC float32 in and out).

    Raises ModelError when the file is not a TFLite model or uses an op the converter lacks.
    """
    try:
        if not tflite.Model.ModelBufferHasIdentifier(data, 0):
            raise ValueError("no TFL3 identifier")
        model = tflite.Model.GetRootAsModel(data, 0)
        graphs = model.SubgraphsLength()
    except Exception as exc:
        raise ModelError(f"{source} is not a TFLite model: {exc}") from None
    if graphs != 1:
        raise ModelError(f"{source}: expected one subgraph, found {graphs}")
    graph = model.Subgraphs(0)
    ops = [graph.Operators(i) for i in range(graph.OperatorsLength())]
    names = [_op_name(model, op) for op in ops]
    missing = sorted({n for n in names if n not in _CONVERTERS})
    if missing:
        raise ModelError(
            f"{source}: unsupported TFLite op{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)}; the converter handles {', '.join(SUPPORTED_OPS)}"
        )

    b = _Builder(_read_tensors(model, graph, data))
    inputs, outputs = [], []
    for i in graph.InputsAsNumpy():
        t = b.tensors[int(i)]
        if t.dtype is not np.float32 or len(t.shape) != 4:
            raise ModelError(f"{source}: input {t.name!r} must be float32 NHWC, got {t.shape}")
        inputs.append(helper.make_tensor_value_info(t.name, TensorProto.FLOAT, list(t.shape)))
        b.node("Transpose", [t.name], [b.output(int(i))], perm=list(_NHWC_TO_NCHW))

    for op, name in zip(ops, names, strict=True):
        _CONVERTERS[name](b, op, name)
        for code, raw, dst, opname in b.pending:
            _activation(b, code, raw, dst, opname)
        b.pending.clear()

    for i in graph.OutputsAsNumpy():
        t = b.tensors[int(i)]
        src = b.names.get(int(i))
        if src is None:
            raise ModelError(f"{source}: output {t.name!r} is not produced by any op")
        if len(t.shape) == 4:
            b.node("Transpose", [src], [t.name], perm=list(_NCHW_TO_NHWC))
        else:
            b.node("Identity", [src], [t.name])
        outputs.append(helper.make_tensor_value_info(t.name, TensorProto.FLOAT, list(t.shape)))

    onnx_graph = helper.make_graph(b.nodes, "bgcam_" + source, inputs, outputs, b.inits)
    result = helper.make_model(
        onnx_graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="bgcam.models.tflite2onnx",
        doc_string=f"{source}, converted from TFLite by BgCam",
    )
    result.ir_version = IR_VERSION
    helper.set_model_props(
        result,
        {SOURCE_SHA256: hashlib.sha256(data).hexdigest(), CONVERTER: CONVERTER_VERSION},
    )
    try:
        onnx.checker.check_model(result, full_check=True)
    except Exception as exc:  # onnx raises several checker/inference error types
        raise ModelError(f"{source}: the converted ONNX graph is invalid: {exc}") from None
    return result
