"""The compositing of :mod:`bgcam.compose.cpu` as ONNX graphs, for onnxruntime's GPU providers.

Each graph takes the frame as it comes (uint8 HxWx3 BGR) and the float32 alpha (HxW) and gives
the output frame (uint8 HxWx3); internally it works in float32 NCHW, the layout every execution
provider supports:

* **shrink**: ``Resize`` (linear, half-pixel: OpenCV's ``INTER_LINEAR``) to twice the working size,
  then an exact 2x2 ``AveragePool`` (OpenCV's ``INTER_AREA`` at 2x), or, when the sizes are not
  exactly 2x apart, ``MatMul`` by OpenCV's own area weights (``cv2.resize`` of an identity);
  ``Round`` where the CPU path stores 8-bit pictures;
* **mask weights** ``w = (1 − dilate(α))²``: ``Resize``, a 3x3 ``MaxPool`` (the dilation), ``Clip``;
* **normalised blur** ``blur(I·w) / blur(w)``: the four channels (I·w, w) padded by ``Gather`` with
  OpenCV's ``BORDER_REFLECT`` indices, then a separable blur as two depthwise ``Conv`` (Gaussian
  taps as ``cv2.getGaussianKernel``, or a box), or one 2-D ``Conv`` with the lens disc;
* **upscale**: ``Resize`` linear to the frame size; **blend** in 8-bit steps as the CPU does
  (``a = round(255·α)``, ``round(I·a/255) + round(bg·(255−a)/255)``).

Every size and kernel comes from :class:`bgcam.compose.plan.BlurPlan` (i.e. from
:mod:`bgcam.effects`). Median and bilateral blurs have no linear form: :func:`fill_graph` gives
the person-filled small frame, OpenCV filters it on the CPU, and :func:`upblend_graph` finishes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper

from bgcam.compose.plan import LINEAR_TYPES, BlurPlan, gaussian_kernel, reflect_index
from bgcam.effects import disc_kernel

OPSET = 18
IR_VERSION = 9
"""onnx ≥ 1.23 writes IR 14 by default, which onnxruntime(-gpu) 1.31 rejects: set it explicitly."""


class _Builder:
    """A tiny helper to write ONNX nodes with generated tensor names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._n = 0

    def _name(self, hint: str) -> str:
        self._n += 1
        return f"{hint}_{self._n}"

    def const(self, value: npt.ArrayLike, dtype: type = np.float32) -> str:
        arr: npt.NDArray[Any] = np.asarray(value, dtype=dtype)
        name = self._name("c")
        self.inits.append(onnx.numpy_helper.from_array(arr, name))
        return name

    def op(self, op_type: str, *inputs: str, **attrs: Any) -> str:
        out = self._name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], **attrs))
        return out

    def model(
        self, inputs: Sequence[onnx.ValueInfoProto], output: str, size: tuple[int, int]
    ) -> onnx.ModelProto:
        """The model with ``output`` as its uint8 (h, w, 3) output "out"; ``size`` = (w, h)."""
        self.nodes.append(helper.make_node("Identity", [output], ["out"]))
        out = helper.make_tensor_value_info("out", TensorProto.UINT8, [size[1], size[0], 3])
        graph = helper.make_graph(self.nodes, "bgcam_compose", list(inputs), [out], self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = IR_VERSION
        onnx.checker.check_model(model)
        return model

    # -- building blocks -----------------------------------------------------------------

    def resize(self, x: str, channels: int, size: tuple[int, int]) -> str:
        w, h = size
        sizes = self.const([1, channels, h, w], np.int64)
        return self.op(
            "Resize",
            x,
            "",
            "",
            sizes,
            mode="linear",
            coordinate_transformation_mode="half_pixel",
        )

    def area(self, x: str, src: tuple[int, int], dst: tuple[int, int]) -> str:
        """OpenCV's INTER_AREA from ``src`` to ``dst`` (width, height) of an NCHW tensor."""
        (sw, sh), (dw, dh) = src, dst
        if (sw, sh) == (2 * dw, 2 * dh):
            return self.op("AveragePool", x, kernel_shape=[2, 2], strides=[2, 2])
        # OpenCV's own weights: resizing an identity gives each input's share of each output.
        ax = cv2.resize(np.eye(sw, dtype=np.float32), (dw, sw), interpolation=cv2.INTER_AREA)
        ay = cv2.resize(np.eye(sh, dtype=np.float32), (sh, dh), interpolation=cv2.INTER_AREA)
        x = self.op("MatMul", x, self.const(ax))  # (1, C, sh, dw)
        return self.op("MatMul", self.const(ay), x)  # (1, C, dh, dw)

    def to_u8_levels(self, x: str, *, rounding: bool) -> str:
        """What storing in uint8 does: clip to 0–255, then round (OpenCV) or truncate (numpy)."""
        x = self.op("Clip", x, self.const(0.0), self.const(255.0))
        return self.op("Round" if rounding else "Floor", x)

    def reflect_pad(self, x: str, axis: int, pad: int, n: int) -> str:
        if pad <= 0:
            return x
        idx = [reflect_index(i, n) for i in range(-pad, n + pad)]
        return self.op("Gather", x, self.const(idx, np.int64), axis=axis)

    def sep_filter(
        self, x: str, channels: int, taps: Sequence[float], size: tuple[int, int]
    ) -> str:
        """Separable correlation with ``taps`` in both directions, BORDER_REFLECT."""
        w, h = size
        k = len(taps)
        r = (k - 1) // 2
        kern = np.asarray(taps, np.float32)
        wv = self.const(np.tile(kern.reshape(1, 1, k, 1), (channels, 1, 1, 1)))
        wh = self.const(np.tile(kern.reshape(1, 1, 1, k), (channels, 1, 1, 1)))
        x = self.reflect_pad(x, 2, r, h)
        x = self.op("Conv", x, wv, group=channels)
        x = self.reflect_pad(x, 3, r, w)
        return self.op("Conv", x, wh, group=channels)

    def filter2d(
        self, x: str, channels: int, kernel: npt.NDArray[np.float32], size: tuple[int, int]
    ) -> str:
        w, h = size
        k = kernel.shape[0]
        r = (k - 1) // 2
        weights = self.const(np.tile(kernel.reshape(1, 1, k, k), (channels, 1, 1, 1)))
        x = self.reflect_pad(x, 2, r, h)
        x = self.reflect_pad(x, 3, r, w)
        return self.op("Conv", x, weights, group=channels)


def _inputs(plan: BlurPlan, background: tuple[int, int] | None = None) -> list[onnx.ValueInfoProto]:
    w, h = plan.frame_size
    vi = [
        helper.make_tensor_value_info("image", TensorProto.UINT8, [h, w, 3]),
        helper.make_tensor_value_info("alpha", TensorProto.FLOAT, [h, w]),
    ]
    if background is not None:
        bw, bh = background
        vi.append(helper.make_tensor_value_info("background", TensorProto.UINT8, [bh, bw, 3]))
    return vi


def _nchw(b: _Builder, hwc_u8: str) -> str:
    x = b.op("Transpose", hwc_u8, perm=[2, 0, 1])
    x = b.op("Unsqueeze", x, b.const([0], np.int64))
    return b.op("Cast", x, to=TensorProto.FLOAT)


def _shrink(b: _Builder, plan: BlurPlan, image: str) -> str:
    f = plan.factor
    if f == 1:
        return image
    if f == 2:
        return b.to_u8_levels(b.resize(image, 3, plan.work_size), rounding=True)
    pre = b.to_u8_levels(b.resize(image, 3, plan.pre_size), rounding=True)
    return b.to_u8_levels(b.area(pre, plan.pre_size, plan.work_size), rounding=True)


def _weights(b: _Builder, plan: BlurPlan) -> str:
    a = b.op("Unsqueeze", "alpha", b.const([0, 1], np.int64))
    if plan.work_size != plan.frame_size:
        a = b.resize(a, 1, plan.work_size)
    a = b.op("MaxPool", a, kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    a = b.op("Sub", b.const(1.0), a)
    a = b.op("Clip", a, b.const(0.0), b.const(1.0))
    return b.op("Mul", a, a)


def _normalised(b: _Builder, plan: BlurPlan, small: str, w: str, taps: Sequence[float]) -> str:
    """blur(I·w) / blur(w), (1, 3, h, w) float."""
    stack = b.op("Concat", b.op("Mul", small, w), w, axis=1)
    blur = b.sep_filter(stack, 4, taps, plan.work_size)
    zero, three, four, one = (b.const([v], np.int64) for v in (0, 3, 4, 1))
    num = b.op("Slice", blur, zero, three, one)
    den = b.op("Slice", blur, three, four, one)
    den = b.op("Max", den, b.const(1e-6))
    return b.op("Div", num, den)


def _filled(b: _Builder, plan: BlurPlan, small: str, w: str) -> str:
    """The small frame with the person filled from its surroundings, as uint8 levels."""
    nb = _normalised(b, plan, small, w, gaussian_kernel(plan.fill_sigma))
    x = b.op("Add", nb, b.op("Mul", b.op("Sub", small, nb), w))
    return b.to_u8_levels(x, rounding=False)


def _background(b: _Builder, plan: BlurPlan, small: str, w: str) -> str:
    """The blurred background at the working size (uint8 levels, float)."""
    kind = plan.blur_type
    if plan.sigma_full <= 0:
        return _filled(b, plan, small, w)
    if kind in ("gaussian", "box"):
        taps = gaussian_kernel(plan.sigma) if kind == "gaussian" else [1.0 / plan.box] * plan.box
        if plan.normalised:
            return b.to_u8_levels(_normalised(b, plan, small, w, taps), rounding=False)
        # weak: the person filled in first, then a plain blur
        filled = _filled(b, plan, small, w)
        if len(taps) == 1:
            return filled
        blurred = b.sep_filter(filled, 3, taps, plan.work_size)
        return b.to_u8_levels(blurred, rounding=True)
    if kind == "lens":
        filled = _filled(b, plan, small, w)
        lin = b.op("Pow", b.op("Div", filled, b.const(255.0)), b.const(2.2))
        x = b.filter2d(lin, 3, disc_kernel(plan.lens_radius), plan.work_size)
        x = b.op("Pow", b.op("Max", x, b.const(0.0)), b.const(1.0 / 2.2))
        return b.to_u8_levels(b.op("Mul", x, b.const(255.0)), rounding=False)
    raise ValueError(f"blur type {kind!r} has no ONNX graph; use fill_graph + upblend_graph")


def _upblend(
    b: _Builder,
    plan: BlurPlan,
    image: str,
    bg: str,
    bg_size: tuple[int, int],
    sharp: float = 0.0,
) -> str:
    """Upscale ``bg`` (NCHW float levels) to the frame, mix in ``sharp`` of ``image`` (weak
    blurs), blend with ``image``, back to HWC uint8."""
    if bg_size != plan.frame_size:
        bg = b.to_u8_levels(b.resize(bg, 3, plan.frame_size), rounding=True)
    if sharp > 0:
        mixed = b.op(
            "Add", b.op("Mul", image, b.const(sharp)), b.op("Mul", bg, b.const(1.0 - sharp))
        )
        bg = b.to_u8_levels(mixed, rounding=True)
    a = b.op("Unsqueeze", "alpha", b.const([0, 1], np.int64))
    a8 = b.to_u8_levels(b.op("Mul", a, b.const(255.0)), rounding=True)
    fg = b.op("Round", b.op("Mul", image, b.op("Div", a8, b.const(255.0))))
    inv = b.op("Div", b.op("Sub", b.const(255.0), a8), b.const(255.0))
    back = b.op("Round", b.op("Mul", bg, inv))
    out = b.op("Min", b.op("Add", fg, back), b.const(255.0))
    out = b.op("Cast", out, to=TensorProto.UINT8)
    out = b.op("Squeeze", out, b.const([0], np.int64))
    return b.op("Transpose", out, perm=[1, 2, 0])


def blur_graph(plan: BlurPlan) -> onnx.ModelProto:
    """(image, alpha) → out for the gaussian, box and lens blurs and strength 0."""
    if plan.sigma_full > 0 and plan.blur_type not in LINEAR_TYPES:
        raise ValueError(f"blur type {plan.blur_type!r} has no ONNX graph")
    b = _Builder()
    image = _nchw(b, "image")
    small = _shrink(b, plan, image)
    bg = _background(b, plan, small, _weights(b, plan))
    out = _upblend(b, plan, image, bg, plan.work_size, plan.sharp)
    return b.model(_inputs(plan), out, plan.frame_size)


def fill_graph(plan: BlurPlan) -> onnx.ModelProto:
    """(image, alpha) → the person-filled frame at the working size (uint8 hxwx3)."""
    b = _Builder()
    small = _shrink(b, plan, _nchw(b, "image"))
    x = _filled(b, plan, small, _weights(b, plan))
    x = b.op("Cast", x, to=TensorProto.UINT8)
    x = b.op("Squeeze", x, b.const([0], np.int64))
    return b.model(_inputs(plan), b.op("Transpose", x, perm=[1, 2, 0]), plan.work_size)


def upblend_graph(plan: BlurPlan, bg_size: tuple[int, int], sharp: float = 0.0) -> onnx.ModelProto:
    """(image, alpha, background of ``bg_size``) → out: upscale the background, mix in
    ``sharp`` of the frame, and blend."""
    b = _Builder()
    image = _nchw(b, "image")
    bg = _nchw(b, "background")
    out = _upblend(b, plan, image, bg, bg_size, sharp)
    return b.model(_inputs(plan, bg_size), out, plan.frame_size)
