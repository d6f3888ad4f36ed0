"""The ``opencl`` compositor: the CPU compositor's algorithm on OpenCV's transparent API (UMat).

Every step of :mod:`bgcam.compose.cpu` (shrink, mask weights, normalised blur, fill, the five
blur types, upscale, 8-bit blend) is written with OpenCV functions on ``cv2.UMat`` buffers
allocated once per setting, so the frame stays on the OpenCL device from the first resize to the
final blend: per frame one upload of the frame, one of the alpha, and one download of the result.
A replacement picture is uploaded once; a background video once per frame.

**Per-op fallback.** OpenCV runs an op on the device when it has a kernel for it and falls back to
its CPU code (mapping the buffer) otherwise, transparently. Here that happens for
``medianBlur`` with apertures above 5 (median blur type at most strengths) and possibly for
``bilateralFilter`` on some drivers; everything else in the path has an OpenCL kernel.

**Rounding.** The CPU path truncates its float blur to 8 bits; OpenCV's conversions here round.
The difference (≤ 1 level) keeps the output well above the 40 dB PSNR the tests require.

**Devices.** OpenCV opens one default device per process on first OpenCL use: a GPU, unless the
environment variable ``OPENCV_OPENCL_DEVICE`` (read at that first use) says otherwise, e.g.
``OPENCV_OPENCL_DEVICE=:CPU:`` for a CPU driver such as PoCL, or ``Intel:GPU:`` to pick a vendor.
Without a working device, creating this backend raises :class:`BackendError` naming the reason.

Downloading: the Python bindings cannot write a UMat into an existing numpy array, so the result
is one fresh array per frame (``UMat.get()``); device buffers come from OpenCV's buffer pool.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from bgcam.compose import FloatCompositor, Prepared, SlotPrepared, check_inputs, register
from bgcam.compose.plan import BlurPlan, describe_blur, gaussian_ksize
from bgcam.config import ComposeConfig
from bgcam.effects import (
    BackgroundSlot,
    ImageBackground,
    disc_kernel,
    fill_color,
    parse_color,
)
from bgcam.errors import BackendError
from bgcam.frame import Image, Mask

log = logging.getLogger(__name__)

UMat = Any
"""A ``cv2.UMat``."""
cv: Any = cv2
"""OpenCV, untyped here: its stubs omit the transparent API's overloads this module relies on
(a UMat built from an ndarray, a scalar operand beside a UMat)."""

DEVICE_HINT = (
    "install your GPU's OpenCL driver (e.g. intel-opencl-icd, mesa-opencl-icd, the NVIDIA "
    "driver), or set OPENCV_OPENCL_DEVICE=:CPU: to use a CPU driver such as pocl; "
    'or set compose.backend = "cpu"; `bgcam doctor` shows what was found'
)


@dataclass(frozen=True, slots=True)
class OpenClDevice:
    """The OpenCL device OpenCV uses in this process."""

    name: str
    vendor: str
    version: str
    driver: str
    kind: str
    compute_units: int
    memory_mb: int


_KINDS = {
    cv.ocl.DEVICE_TYPE_CPU: "CPU",
    cv.ocl.DEVICE_TYPE_GPU: "GPU",
    cv.ocl.DEVICE_TYPE_ACCELERATOR: "accelerator",
    cv.ocl.DEVICE_TYPE_DGPU: "discrete GPU",
    cv.ocl.DEVICE_TYPE_IGPU: "integrated GPU",
}


def default_device() -> OpenClDevice | None:
    """OpenCV's default OpenCL device (opening it on first call), or ``None`` when there is none."""
    if not cv.ocl.haveOpenCL():
        return None
    d = cv.ocl.Device.getDefault()
    if not d.available() or not d.name():
        return None
    return OpenClDevice(
        name=d.name(),
        vendor=d.vendorName(),
        version=d.version(),
        driver=d.driverVersion(),
        kind=_KINDS.get(d.type(), f"type {d.type()}"),
        compute_units=int(d.maxComputeUnits()),
        memory_mb=int(d.globalMemSize()) // (1 << 20),
    )


@functools.cache
def probe() -> OpenClDevice:
    """The working OpenCL device, checked once per process; BackendError saying why not."""
    if not cv.ocl.haveOpenCL():
        raise BackendError(
            "OpenCL is not available: OpenCV found no OpenCL runtime or platform "
            "(no ICD loader, or no driver registered in /etc/OpenCL/vendors)",
            hint=DEVICE_HINT,
        )
    cv.ocl.setUseOpenCL(True)
    device = default_device()
    if device is None:
        import os

        wanted = os.environ.get("OPENCV_OPENCL_DEVICE")
        which = (
            f"OPENCV_OPENCL_DEVICE={wanted} matches no device"
            if wanted
            else "OpenCV looks for a GPU (unless OPENCV_OPENCL_DEVICE names another device) "
            "and found none"
        )
        raise BackendError(f"OpenCL has no usable device: {which}", hint=DEVICE_HINT)
    if not cv.ocl.useOpenCL():
        raise BackendError(
            f"OpenCL is switched off in OpenCV for device {device.name}", hint=DEVICE_HINT
        )
    # A device may be listed yet fail to build or run kernels (a broken driver): try one.
    try:
        test = np.arange(64 * 48 * 3, dtype=np.uint8).reshape(48, 64, 3)
        got = cv.GaussianBlur(cv.UMat(test), (0, 0), 2.0).get()
    except cv.error as exc:
        raise BackendError(
            f"OpenCL device {device.name} cannot run OpenCV's kernels: {exc.err}",
            hint=DEVICE_HINT,
        ) from None
    want = cv.GaussianBlur(test, (0, 0), 2.0)
    if np.abs(got.astype(np.int16) - want).max() > 2:
        raise BackendError(
            f"OpenCL device {device.name} computes wrong results (a Gaussian blur differs "
            "from the CPU's)",
            hint=DEVICE_HINT,
        )
    return device


def _umat(h: int, w: int, typ: int) -> UMat:
    return cv.UMat(h, w, typ)


class ClBackgroundBlur:
    """:class:`bgcam.compose.blur.BackgroundBlur` on UMat buffers of one frame size and setting."""

    def __init__(
        self, frame_size: tuple[int, int], strength: int, blur_type: str, coarser: int = 0
    ) -> None:
        self.plan = p = BlurPlan.of(frame_size, strength, blur_type, coarser=coarser)
        self.blur_type = blur_type
        self.sigma_full = p.sigma_full
        ww, wh = p.work_size
        pw, ph = p.pre_size
        self._pre = _umat(ph, pw, cv.CV_8UC3)
        self._small = _umat(wh, ww, cv.CV_8UC3)
        self._small4 = _umat(wh, ww, cv.CV_8UC4)
        self._a = _umat(wh, ww, cv.CV_32F)
        self._a2 = _umat(wh, ww, cv.CV_32F)
        self._ones = cv.UMat(np.ones((wh, ww), np.float32))
        self._w4 = _umat(wh, ww, cv.CV_32FC4)
        self._stack = _umat(wh, ww, cv.CV_32FC4)
        self._blur = _umat(wh, ww, cv.CV_32FC4)
        self._den = _umat(wh, ww, cv.CV_32F)
        self._den4 = _umat(wh, ww, cv.CV_32FC4)
        self._nb4 = _umat(wh, ww, cv.CV_32FC4)
        self._diff4 = _umat(wh, ww, cv.CV_32FC4)
        self._out4 = _umat(wh, ww, cv.CV_8UC4)
        self._fill8 = _umat(wh, ww, cv.CV_8UC3)
        self._bg8 = _umat(wh, ww, cv.CV_8UC3)
        self._lin = _umat(wh, ww, cv.CV_32FC3)
        self._bgf = _umat(wh, ww, cv.CV_32FC3)
        w, h = frame_size
        self._full = _umat(h, w, cv.CV_8UC3)
        if blur_type == "lens":
            self._kernel = cv.UMat(disc_kernel(p.lens_radius))
            lut = ((np.arange(256, dtype=np.float32) / 255.0) ** 2.2).astype(np.float32)
            self._lut = cv.UMat(lut.reshape(1, 256))

    def _shrink(self, image: UMat) -> UMat:
        p = self.plan
        if p.factor == 1:
            return image
        if p.factor == 2:
            cv.resize(image, p.work_size, dst=self._small, interpolation=cv.INTER_LINEAR)
        else:
            cv.resize(image, p.pre_size, dst=self._pre, interpolation=cv.INTER_LINEAR)
            cv.resize(self._pre, p.work_size, dst=self._small, interpolation=cv.INTER_AREA)
        return self._small

    def _weights(self, alpha: UMat | None) -> UMat:
        """w = (1 - dilate(alpha))^2 at the working size."""
        if alpha is None:
            return self._ones
        a = self._a
        cv.resize(alpha, self.plan.work_size, dst=self._a2, interpolation=cv.INTER_LINEAR)
        cv.dilate(self._a2, None, dst=a, borderType=cv.BORDER_REPLICATE)
        cv.subtract(1.0, a, dst=a)
        cv.max(a, 0.0, dst=a)
        cv.min(a, 1.0, dst=a)
        cv.multiply(a, a, dst=a)
        return a

    def _normalised(self, small: UMat, weights: UMat, sigma: float, box: bool) -> UMat:
        """blur(I·w) / blur(w) as float32 BGRx in _den4's shape: channels 0–2 in 0–1 (·255)."""
        cv.cvtColor(small, cv.COLOR_BGR2BGRA, dst=self._small4)  # alpha channel 255
        cv.merge([weights, weights, weights, weights], dst=self._w4)
        # (I·w / 255, w): the fourth channel carries the weights through the same blur.
        cv.multiply(self._small4, self._w4, dst=self._stack, scale=1.0 / 255.0, dtype=cv.CV_32F)
        if box:
            k = self.plan.box
            cv.blur(self._stack, (k, k), dst=self._blur, borderType=cv.BORDER_REFLECT)
        else:
            cv.GaussianBlur(
                self._stack, (0, 0), sigma, dst=self._blur, borderType=cv.BORDER_REFLECT
            )
        cv.extractChannel(self._blur, 3, dst=self._den)
        cv.max(self._den, 1e-6, dst=self._den)
        cv.merge([self._den, self._den, self._den, self._den], dst=self._den4)
        return self._blur

    def _filled(self, small: UMat, weights: UMat) -> UMat:
        """The small frame with the person replaced by the surrounding background (uint8)."""
        blur = self._normalised(small, weights, self.plan.fill_sigma, box=False)
        nb4 = cv.divide(blur, self._den4, dst=self._nb4, scale=255.0)
        # filled = nb + w * (small - nb), rounded to 8 bits
        cv.subtract(self._small4, nb4, dst=self._diff4, dtype=cv.CV_32F)
        cv.multiply(self._diff4, self._w4, dst=self._diff4)
        cv.add(self._diff4, nb4, dst=self._out4, dtype=cv.CV_8U)
        cv.cvtColor(self._out4, cv.COLOR_BGRA2BGR, dst=self._fill8)
        return self._fill8

    def run(self, image: UMat, alpha: UMat | None) -> UMat:
        """The blurred background at full size (a UMat this object owns, or ``image``)."""
        p = self.plan
        if p.identity:
            return image
        small = self._shrink(image)
        weights = self._weights(alpha)
        kind = self.blur_type
        if p.sigma_full <= 0:
            bg8 = self._filled(small, weights) if alpha is not None else small
        elif kind in ("gaussian", "box") and p.normalised:
            blur = self._normalised(small, weights, p.sigma, box=(kind == "box"))
            cv.divide(blur, self._den4, dst=self._out4, scale=255.0, dtype=cv.CV_8U)
            cv.cvtColor(self._out4, cv.COLOR_BGRA2BGR, dst=self._bg8)
            bg8 = self._bg8
        else:
            filled = self._filled(small, weights)
            bg8 = self._bg8
            if kind == "gaussian":  # weak: the filled frame, plainly blurred
                if p.sigma > 0:
                    k = gaussian_ksize(p.sigma)
                    cv.GaussianBlur(
                        filled, (k, k), p.sigma, dst=self._bg8, borderType=cv.BORDER_REFLECT
                    )
                else:
                    bg8 = filled
            elif kind == "box":
                cv.blur(filled, (p.box, p.box), dst=self._bg8, borderType=cv.BORDER_REFLECT)
            elif kind == "median":
                cv.medianBlur(filled, p.median, dst=self._bg8)
            elif kind == "bilateral":
                cv.bilateralFilter(filled, p.bilateral_d, 60.0, p.bilateral_sigma, dst=self._bg8)
            else:  # lens: a disc in (approximately) linear light
                cv.LUT(filled, self._lut, dst=self._lin)
                cv.filter2D(
                    self._lin, -1, self._kernel, dst=self._bgf, borderType=cv.BORDER_REFLECT
                )
                cv.max(self._bgf, 0.0, dst=self._bgf)
                cv.pow(self._bgf, 1.0 / 2.2, dst=self._bgf)
                cv.convertScaleAbs(self._bgf, dst=self._bg8, alpha=255.0)
        if p.work_size == p.frame_size:
            return bg8
        cv.resize(bg8, p.frame_size, dst=self._full, interpolation=cv.INTER_LINEAR)
        if p.sharp > 0:  # a weak blur: the detail finer than the working size, from the frame
            cv.addWeighted(image, p.sharp, self._full, 1.0 - p.sharp, 0.0, dst=self._full)
        return self._full


class OpenClCompositor(FloatCompositor):
    """Modes blur / replace / remove / off on the OpenCL device, for frames of one size."""

    name = "opencl"

    def __init__(self, cfg: ComposeConfig, frame_size: tuple[int, int]) -> None:
        self.device = probe()
        self.frame_size = (int(frame_size[0]), int(frame_size[1]))
        w, h = self.frame_size
        self._copy = np.empty((h, w, 3), np.uint8)
        self._out = _umat(h, w, cv.CV_8UC3)
        self._tmp = _umat(h, w, cv.CV_8UC3)
        self._a8 = _umat(h, w, cv.CV_8UC1)
        self._a3 = _umat(h, w, cv.CV_8UC3)
        self._color: UMat | None = None
        self._blur: ClBackgroundBlur | None = None
        self._slot = BackgroundSlot(self.frame_size)
        self._background_u: UMat | None = None
        self.economy = 0
        self.cfg = cfg
        self.update(cfg)
        log.debug(
            "compositor opencl on %s (%s, %s)",
            self.device.name,
            self.device.kind,
            self.device.version,
        )

    def prepare(self, cfg: ComposeConfig) -> SlotPrepared:
        """A new background file opened (any thread); the blur's device buffers are made by
        :meth:`update` on the thread that composes."""
        return SlotPrepared(cfg, self._slot.opened(cfg))

    def update(self, cfg: ComposeConfig, prepared: Prepared | None = None) -> None:
        if not isinstance(prepared, SlotPrepared) or prepared.cfg != cfg:
            prepared = self.prepare(cfg)
        if self._slot.adopt(cfg, prepared.background):
            self._background_u = None
        prepared.background = None
        self.cfg = cfg
        self._set_blur(cfg, self.economy)
        if cfg.mode == "remove":
            w, h = self.frame_size
            color = fill_color(np.empty((h, w, 3), np.uint8), parse_color(cfg.color))
            self._color = cv.UMat(color)

    def economise(self, level: int) -> str | None:
        cfg, blur = self.cfg, self._blur
        plan = BlurPlan.of(self.frame_size, cfg.blur, cfg.blur_type, coarser=level)
        if level > 0 and blur is not None and plan.factor <= blur.plan.factor:
            return None
        self.economy = level
        self._set_blur(cfg, level)
        return describe_blur(plan)

    def _set_blur(self, cfg: ComposeConfig, economy: int) -> None:
        blur = self._blur
        plan = BlurPlan.of(self.frame_size, cfg.blur, cfg.blur_type, coarser=economy)
        if blur is None or blur.plan != plan:
            self._blur = ClBackgroundBlur(self.frame_size, cfg.blur, cfg.blur_type, economy)

    def close(self) -> None:
        self._slot.close()
        self._background_u = None

    def compose(self, image: Image, alpha: Mask | None) -> Image:
        check_inputs(self.frame_size, image, alpha)
        if self.cfg.mode == "off":
            np.copyto(self._copy, image)
            return self._copy
        ui = cv.UMat(image)  # the one upload of the frame
        ua = cv.UMat(alpha) if alpha is not None else None  # ... and of the alpha
        bg = self._background_frame(ui, ua)
        if ua is None:
            out: Image = bg.get()
            return out
        self._blend(ui, bg, ua)
        result: Image = self._out.get()  # the one download
        return result

    def _background_frame(self, image: UMat, alpha: UMat | None) -> UMat:
        mode = self.cfg.mode
        if mode == "remove":
            assert self._color is not None
            return self._color
        if mode == "replace" and self._slot.current is not None:
            if isinstance(self._slot.current, ImageBackground):
                if self._background_u is None:  # a still picture: uploaded once
                    self._background_u = cv.UMat(self._slot.current.frame())
                return self._background_u
            return cv.UMat(self._slot.current.frame())
        assert self._blur is not None
        return self._blur.run(image, alpha)

    def _blend(self, image: UMat, bg: UMat, alpha: UMat) -> None:
        """out = (image · a + bg · (255 − a)) / 255 with a = round(255 · alpha), in 8 bits."""
        a8, a3, tmp, out = self._a8, self._a3, self._tmp, self._out
        cv.convertScaleAbs(alpha, dst=a8, alpha=255.0)
        cv.cvtColor(a8, cv.COLOR_GRAY2BGR, dst=a3)
        cv.multiply(image, a3, dst=out, scale=1.0 / 255.0)
        cv.bitwise_not(a3, dst=a3)
        cv.multiply(bg, a3, dst=tmp, scale=1.0 / 255.0)
        cv.add(out, tmp, dst=out)


@register("opencl")
def _create(cfg: ComposeConfig, frame_size: tuple[int, int]) -> OpenClCompositor:
    return OpenClCompositor(cfg, frame_size)
