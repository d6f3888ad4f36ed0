"""Model rewrites for onnxruntime on the CPU: a blocked layout throughout, and BGR bytes in.

:func:`bgr255_planar_input` lets a model take OpenCV's BGR frame as planar floats in 0–255
(folded into its first convolutions), so no colour conversion, scaling or transpose runs per
frame. :func:`keep_nchwc` keeps it in onnxruntime's blocked (NCHWc) layout from end to end.

On x86 CPUs onnxruntime runs convolutions in a channel-blocked layout ("NCHWc") and converts
tensors back to plain NCHW around every operator it cannot run blocked. The selfie models'
squeeze-and-excitation blocks hit two such operators ten times each: ``ReduceMean`` over the
spatial axes, and a ``Mul`` that broadcasts one scale per channel over the whole feature map.
Each forces a ``ReorderOutput``/``ReorderInput`` pair, and one bilinear ``Resize`` falls back to
the generic kernel behind such a ``Mul``: about a sixth of the landscape model's run time.

:func:`keep_nchwc` replaces, with the same arithmetic:

* ``ReduceMean(x, axes=[2, 3], keepdims=1)`` by ``GlobalAveragePool(x)``;
* ``Mul(x, s)`` with ``x`` of static shape (N, C, H, W) and ``s`` of shape (N, C, 1, 1) by
  ``Mul(x, Resize(s, scales=[1, 1, H, W], mode=nearest))``: both operands now have the same
  shape, which the blocked ``Mul`` needs, and the nearest-neighbour expansion runs blocked too.

Outputs are unchanged up to float rounding of the mean (checked in the tests). Patterns that do
not match exactly (unknown shapes, other axes, other opsets) are left alone, so any model may
pass through it; on other execution providers the rewritten graph runs as before.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

MIN_RESIZE_SCALES_OPSET = 11
"""``Resize`` takes (X, roi, scales) inputs with nearest_mode from opset 11 on."""


def _opset(model: onnx.ModelProto) -> int:
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return int(imp.version)
    return 0


def _static_shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    """Tensor name → shape, for the tensors whose every dimension is known."""
    inferred = shape_inference.infer_shapes(model)
    graph = inferred.graph
    shapes: dict[str, list[int]] = {}
    for info in [*graph.input, *graph.value_info, *graph.output]:
        dims = info.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") and d.dim_value > 0 for d in dims):
            shapes[info.name] = [int(d.dim_value) for d in dims]
    for init in graph.initializer:
        shapes[init.name] = [int(d) for d in init.dims]
    return shapes


def _spatial_mean(node: onnx.NodeProto, consts: dict[str, list[int]]) -> bool:
    """True for ReduceMean over axes 2 and 3 only, keeping the dimensions."""
    keepdims, axes = 1, None
    for attr in node.attribute:
        if attr.name == "keepdims":
            keepdims = int(attr.i)
        elif attr.name == "axes":
            axes = [int(a) for a in attr.ints]
    if axes is None and len(node.input) > 1:  # opset 18: axes as a constant input
        axes = consts.get(node.input[1])
    return keepdims == 1 and axes is not None and sorted(axes) == [2, 3]


def keep_nchwc(model: onnx.ModelProto) -> int:
    """Rewrite ``model`` in place (see the module doc); returns the number of nodes rewritten."""
    shapes = _static_shapes(model)
    graph = model.graph
    consts = {
        init.name: [int(v) for v in numpy_helper.to_array(init).ravel()]
        for init in graph.initializer
        if init.data_type == onnx.TensorProto.INT64 and len(init.dims) <= 1
    }
    constant = {init.name for init in graph.initializer}
    can_expand = _opset(model) >= MIN_RESIZE_SCALES_OPSET
    nodes: list[onnx.NodeProto] = []
    added: list[onnx.TensorProto] = []
    rewritten = 0
    for node in graph.node:
        standard = node.domain in ("", "ai.onnx")
        if (
            standard
            and node.op_type == "ReduceMean"
            and _spatial_mean(node, consts)
            and len(shapes.get(node.input[0], [])) == 4
        ):
            gap = helper.make_node("GlobalAveragePool", [node.input[0]], list(node.output))
            gap.name = node.name
            nodes.append(gap)
            rewritten += 1
            continue
        if standard and node.op_type == "Mul" and can_expand:
            expanded = _expand_channel_scale(node, shapes, constant, added)
            if expanded:
                nodes.extend(expanded)
                rewritten += 1
                continue
        nodes.append(node)
    if rewritten:
        del graph.node[:]
        graph.node.extend(nodes)
        graph.initializer.extend(added)
    return rewritten


def _expand_channel_scale(
    node: onnx.NodeProto,
    shapes: dict[str, list[int]],
    constant: set[str],
    added: list[onnx.TensorProto],
) -> list[onnx.NodeProto]:
    """[Resize, Mul] for a computed per-channel scale broadcast over a feature map, else [].

    A constant scale is left alone: onnxruntime folds it into the convolution before it.
    """
    if len(node.input) != 2:
        return []
    for big, small in (node.input, node.input[::-1]):
        sb, ss = shapes.get(big), shapes.get(small)
        if (
            small not in constant
            and sb is not None
            and ss is not None
            and len(sb) == 4
            and ss == [sb[0], sb[1], 1, 1]
            and sb[2] * sb[3] > 1
        ):
            scales = f"{node.name or node.output[0]}_nchwc_scales"
            full = f"{small}_nchwc_full_{node.output[0]}"
            added.append(
                numpy_helper.from_array(np.array([1, 1, sb[2], sb[3]], np.float32), scales)
            )
            resize = helper.make_node(
                "Resize",
                [small, "", scales],
                [full],
                name=f"{node.name}_expand",
                mode="nearest",
                coordinate_transformation_mode="asymmetric",
                nearest_mode="floor",
            )
            mul = helper.make_node("Mul", [big, full], list(node.output), name=node.name)
            return [resize, mul]
    return []


def bgr255_planar_input(model: onnx.ModelProto) -> bool:
    """Let ``model`` take the frame as OpenCV holds it: planar B, G, R planes in 0–255.

    Applies to a model whose one NHWC input (N, H, W, 3) only feeds a Transpose to NCHW that
    only feeds convolutions with constant weights of their own (the selfie models: RGB in
    [0, 1]). The transpose goes, the input becomes (N, 3, H, W), and each convolution's weights
    are reversed along the input channels and divided by 255: the same result from the caller's
    BGR bytes cast to float, without a colour conversion, a scaling pass or a transpose.
    Returns False, changing nothing, when the model does not have that shape.
    """
    graph = model.graph
    if len(graph.input) != 1:
        return False
    inp = graph.input[0]
    dims = inp.type.tensor_type.shape.dim
    if len(dims) != 4 or not all(d.HasField("dim_value") for d in dims[1:]):
        return False
    _, h, w, channels = (int(d.dim_value) for d in dims)
    if channels != 3:
        return False
    users = [n for n in graph.node if inp.name in n.input]
    if len(users) != 1 or users[0].op_type != "Transpose":
        return False
    transpose = users[0]
    perm = [list(a.ints) for a in transpose.attribute if a.name == "perm"]
    nchw = transpose.output[0]
    if perm != [[0, 3, 1, 2]] or nchw in {o.name for o in graph.output}:
        return False
    convs = [n for n in graph.node if nchw in n.input]
    inits = {init.name: init for init in graph.initializer}
    for conv in convs:
        groups = [a.i for a in conv.attribute if a.name == "group"]
        weight = inits.get(conv.input[1]) if len(conv.input) > 1 else None
        if (
            conv.op_type != "Conv"
            or list(conv.input).count(nchw) != 1
            or conv.input[0] != nchw
            or groups not in ([], [1])
            or weight is None
            or len(weight.dims) != 4
            or weight.dims[1] != 3
            or sum(conv.input[1] in n.input for n in graph.node) != 1
        ):
            return False
    for conv in convs:
        weight = inits[conv.input[1]]
        folded = numpy_helper.to_array(weight)[:, ::-1] / np.float32(255.0)
        weight.CopyFrom(
            numpy_helper.from_array(np.ascontiguousarray(folded, np.float32), weight.name)
        )
        conv.input[0] = inp.name
    graph.node.remove(transpose)
    dims[1].dim_value, dims[2].dim_value, dims[3].dim_value = 3, h, w
    return True


def narrow_input(model: onnx.ModelProto, width: int) -> bool:
    """Give a square-input segmentation model (the general selfie model: NHWC (1, S, S, 3) in,
    (1, S, S, 1) out) the input (1, S, ``width``, 3): the same weights on a narrower picture.

    The network is convolutional except where its input size is written into the graph: each
    squeeze-and-excitation block averages its whole feature map with an ``AveragePool`` whose
    kernel is that map's size (becomes ``GlobalAveragePool``, the same arithmetic at any size),
    and the decoder's ``Resize`` nodes name their output sizes (their widths are scaled). Returns
    False, changing nothing, when ``model`` does not have exactly that shape, when ``width`` is
    not a multiple of the network's largest stride, or when the narrowed graph's shapes do not
    infer.
    """
    graph = model.graph
    if len(graph.input) != 1 or len(graph.output) != 1 or width <= 0:
        return False
    idims = graph.input[0].type.tensor_type.shape.dim
    odims = graph.output[0].type.tensor_type.shape.dim
    known = len(idims) == 4 and len(odims) == 4 and all(d.HasField("dim_value") for d in idims)
    if not known or idims[1].dim_value != idims[2].dim_value or idims[3].dim_value != 3:
        return False
    side = int(idims[1].dim_value)
    shapes = _static_shapes(model)
    if shapes.get(graph.output[0].name) != [1, side, side, 1]:
        return False
    inits = {init.name: init for init in graph.initializer}
    sizes: dict[str, np.ndarray] = {}
    for node in graph.node:
        if node.op_type == "AveragePool":
            kernel = [list(a.ints) for a in node.attribute if a.name == "kernel_shape"]
            pads = [list(a.ints) for a in node.attribute if a.name == "pads"]
            src = shapes.get(node.input[0])
            if src is None or kernel != [src[2:]] or pads not in ([], [[0, 0, 0, 0]]):
                return False
        elif node.op_type == "Resize":
            if len(node.input) != 4 or node.input[3] not in inits:
                return False
            out = numpy_helper.to_array(inits[node.input[3]]).copy()
            if out.shape != (4,) or out[2] != out[3] or side % int(out[2]):
                return False
            stride = side // int(out[2])
            if width % stride:
                return False
            out[3] = width // stride
            sizes[node.input[3]] = out
    narrowed = onnx.ModelProto()
    narrowed.CopyFrom(model)
    g = narrowed.graph
    for node in g.node:
        if node.op_type == "AveragePool":  # every one spans its whole map (checked above)
            pool = helper.make_node("GlobalAveragePool", [node.input[0]], [node.output[0]])
            pool.name = node.name
            node.CopyFrom(pool)
    for init in g.initializer:
        if init.name in sizes:
            init.CopyFrom(numpy_helper.from_array(sizes[init.name], init.name))
    g.input[0].type.tensor_type.shape.dim[2].dim_value = width
    g.output[0].type.tensor_type.shape.dim[2].dim_value = width
    del g.value_info[:]
    try:
        out_shape = _static_shapes(narrowed).get(g.output[0].name)
    except Exception:  # onnx's inference errors have several types
        return False
    if out_shape != [1, side, width, 1]:
        return False
    model.CopyFrom(narrowed)
    return True
