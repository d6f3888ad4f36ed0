"""The ``cuda`` compositor: the compositing as ONNX graphs on onnxruntime-gpu's CUDA provider.

Why an ONNX graph: BgCam already depends on onnxruntime-gpu (for the ``onnx`` segmenter), so a
CUDA path needs no further library — no CuPy/PyTorch wheel of hundreds of MB tied to one CUDA
version, and no OpenCV built with CUDA (the PyPI wheels have none). The graph
(:mod:`bgcam.compose.onnxgraph`) is plain ONNX, so the very same graph is tested here on the CPU
provider against the CPU compositor, and could run on any other provider that can run it.

Per frame: the frame and the alpha are bound as inputs (copied to the GPU once), the whole chain
runs on the device, and the result is copied once into a preallocated output array (IO binding).
Median and bilateral blurs have no linear form: their person-filled small frame comes back from
the GPU, OpenCV filters it on the CPU (a frame a sixteenth of the size or less), and a second
graph upscales and blends on the GPU. Sessions are cached per setting, so changing the blur back
and forth does not rebuild them.

On a machine without a working CUDA device, creating this backend raises :class:`BackendError`
with onnxruntime's reason (it lists CUDA as available even without a GPU; the provider that
really runs is read from the session).
"""

from __future__ import annotations

import functools
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import cv2
import numpy as np

from bgcam.compose import FloatCompositor, Prepared, SlotPrepared, check_inputs, register
from bgcam.compose.plan import LINEAR_TYPES, BlurPlan, describe_blur
from bgcam.config import ComposeConfig
from bgcam.effects import BackgroundSlot, fill_color, parse_color
from bgcam.errors import BackendError
from bgcam.frame import Image, Mask
from bgcam.ort import CPU, CUDA, library_error, session, why_not

log = logging.getLogger(__name__)

_CACHE_SIZE = 8

CUDA_HINT = (
    "install an NVIDIA driver and the CUDA/cuDNN runtime your onnxruntime-gpu was built for "
    '(pip install "onnxruntime-gpu[cuda,cudnn]"), or set compose.backend = "cpu"; '
    "`bgcam doctor` shows what was found"
)


@functools.cache
def probe_cuda() -> str:
    """The CUDA device onnxruntime runs on, checked once per process; BackendError why not."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise BackendError(f"onnxruntime cannot be imported: {exc}", hint=CUDA_HINT) from None
    if CUDA not in ort.get_available_providers():
        raise BackendError(
            f"this onnxruntime build ({ort.__version__}) has no CUDA provider "
            f"(it offers {', '.join(ort.get_available_providers())})",
            hint=CUDA_HINT,
        )
    # A provider whose library does not load cannot start: say so without building the probe
    # graph (which imports onnx, 1-2 s on a small machine).
    reason = library_error(CUDA)
    if reason is not None:
        raise BackendError(f"onnxruntime's CUDA provider does not start: {reason}", hint=CUDA_HINT)
    from bgcam.compose import onnxgraph

    plan = BlurPlan.of((64, 48), 60, "gaussian")
    probe = session(onnxgraph.blur_graph(plan).SerializeToString(), [CUDA, CPU])
    if probe.get_providers()[0] != CUDA:
        raise BackendError(
            f"onnxruntime's CUDA provider does not start: {why_not(CUDA)}", hint=CUDA_HINT
        )
    return f"CUDA device {probe.get_provider_options()[CUDA].get('device_id', '0')}"


class _Runner:
    """One session with its IO binding: inputs bound per call, output into a fixed array."""

    def __init__(self, model_bytes: bytes, providers: Sequence[str], out_shape: tuple[int, ...]):
        import onnxruntime as ort

        self.session = session(model_bytes, providers)
        self.provider: str = self.session.get_providers()[0]
        self.out = np.empty(out_shape, np.uint8)
        self._binding = self.session.io_binding()
        self._binding.bind_ortvalue_output("out", ort.OrtValue.ortvalue_from_numpy(self.out))

    def run(self, **inputs: np.ndarray[Any, Any]) -> Image:
        for name, arr in inputs.items():
            self._binding.bind_cpu_input(name, arr)
        self.session.run_with_iobinding(self._binding)
        return self.out


_Spec = tuple[tuple[Any, ...], Callable[[], Any], tuple[int, ...]]
"""A session: its cache key, how to build its graph, the shape of its output."""


class OnnxCompositor(FloatCompositor):
    """Modes blur / replace / remove / off as ONNX graphs on ``providers`` (first must run)."""

    name = "cuda"

    def __init__(
        self,
        cfg: ComposeConfig,
        frame_size: tuple[int, int],
        providers: Sequence[str] = (CUDA, CPU),
    ) -> None:
        self.providers = tuple(providers)
        self.frame_size = (int(frame_size[0]), int(frame_size[1]))
        w, h = self.frame_size
        self._copy = np.empty((h, w, 3), np.uint8)
        self._bg = np.empty((h, w, 3), np.uint8)
        self._zeros = np.zeros((h, w), np.float32)
        self._runners: OrderedDict[tuple[Any, ...], _Runner] = OrderedDict()
        self._plan = BlurPlan.of(self.frame_size, cfg.blur, cfg.blur_type)
        self._small_bg: Image | None = None
        self._slot = BackgroundSlot(self.frame_size)
        self.economy = 0
        self.cfg = cfg
        self.update(cfg)
        first = next(iter(self._runners.values()), None) or self._blend_runner(self.frame_size)
        self.provider = first.provider
        if self.provider != self.providers[0]:
            raise BackendError(
                f"onnxruntime runs the compositing graph on {self.provider}, not "
                f"{self.providers[0]}",
                hint=CUDA_HINT,
            )

    # -- sessions --------------------------------------------------------------------------

    def _runner(self, key: tuple[Any, ...], build: Any, out_shape: tuple[int, ...]) -> _Runner:
        runner = self._runners.get(key)
        if runner is None:
            runner = _Runner(build().SerializeToString(), self.providers, out_shape)
            self._keep(key, runner)
        else:
            self._runners.move_to_end(key)
        return runner

    def _keep(self, key: tuple[Any, ...], runner: _Runner) -> None:
        self._runners[key] = runner
        self._runners.move_to_end(key)
        if len(self._runners) > _CACHE_SIZE:
            self._runners.popitem(last=False)

    def _blur_spec(self, p: BlurPlan) -> _Spec:
        from bgcam.compose import onnxgraph

        w, h = self.frame_size
        if p.sigma_full <= 0 or p.blur_type in LINEAR_TYPES:
            return ("blur", p), lambda: onnxgraph.blur_graph(p), (h, w, 3)
        ww, wh = p.work_size
        return ("fill", p), lambda: onnxgraph.fill_graph(p), (wh, ww, 3)

    def _blend_spec(self, bg_size: tuple[int, int], sharp: float = 0.0) -> _Spec:
        from bgcam.compose import onnxgraph

        p = BlurPlan.of(self.frame_size, 0, "gaussian")  # only its sizes are used
        w, h = self.frame_size
        return (
            ("upblend", bg_size, sharp),
            lambda: onnxgraph.upblend_graph(p, bg_size, sharp),
            (h, w, 3),
        )

    def _blur_runner(self) -> _Runner:
        return self._runner(*self._blur_spec(self._plan))

    def _blend_runner(self, bg_size: tuple[int, int], sharp: float = 0.0) -> _Runner:
        return self._runner(*self._blend_spec(bg_size, sharp))

    def _specs(self, cfg: ComposeConfig, p: BlurPlan, replacing: bool) -> list[_Spec]:
        """The sessions that ``cfg`` composes with (``replacing``: a background is open)."""
        specs = []
        blurs = cfg.mode == "blur" or (cfg.mode == "replace" and not replacing)
        if blurs and not p.identity:
            specs.append(self._blur_spec(p))
            if p.sigma_full > 0 and p.blur_type not in LINEAR_TYPES:
                specs.append(self._blend_spec(p.work_size, p.sharp))
        if cfg.mode == "remove" or (cfg.mode == "replace" and replacing):
            specs.append(self._blend_spec(self.frame_size))
        return specs

    # -- Compositor ------------------------------------------------------------------------

    def prepare(self, cfg: ComposeConfig) -> SlotPrepared:
        """The background file and the sessions ``cfg`` needs that are not built yet (any
        thread: onnxruntime builds sessions anywhere; the cache is only read)."""
        prepared = SlotPrepared(cfg, self._slot.opened(cfg))
        p = BlurPlan.of(self.frame_size, cfg.blur, cfg.blur_type, coarser=self.economy)
        replacing = prepared.background is not None or self._slot.current is not None
        for key, build, shape in self._specs(cfg, p, replacing):
            if key not in self._runners:
                prepared.parts[key] = _Runner(build().SerializeToString(), self.providers, shape)
        return prepared

    def update(self, cfg: ComposeConfig, prepared: Prepared | None = None) -> None:
        if not isinstance(prepared, SlotPrepared) or prepared.cfg != cfg:
            prepared = self.prepare(cfg)
        self._slot.adopt(cfg, prepared.background)
        prepared.background = None
        for key, runner in prepared.parts.items():
            self._keep(key, runner)
        prepared.parts.clear()
        self.cfg = cfg
        self._set_plan(cfg, self.economy)
        if cfg.mode == "remove":
            fill_color(self._bg, parse_color(cfg.color))

    def economise(self, level: int) -> str | None:
        cfg = self.cfg
        plan = BlurPlan.of(self.frame_size, cfg.blur, cfg.blur_type, coarser=level)
        if level > 0 and plan.factor <= self._plan.factor:
            return None
        self.economy = level
        self._set_plan(cfg, level)
        return describe_blur(plan)

    def _set_plan(self, cfg: ComposeConfig, economy: int) -> None:
        """Use the plan of ``cfg`` at ``economy``, its sessions built now if not yet."""
        self._plan = p = BlurPlan.of(self.frame_size, cfg.blur, cfg.blur_type, coarser=economy)
        if p.sigma_full > 0 and p.blur_type not in LINEAR_TYPES:
            ww, wh = p.work_size
            self._small_bg = np.empty((wh, ww, 3), np.uint8)
        for spec in self._specs(cfg, p, self._slot.current is not None):
            self._runner(*spec)  # built now, not on the next frame (cached when prepared)

    def close(self) -> None:
        self._slot.close()
        self._runners.clear()

    def compose(self, image: Image, alpha: Mask | None) -> Image:
        check_inputs(self.frame_size, image, alpha)
        mode = self.cfg.mode
        if mode == "off":
            np.copyto(self._copy, image)
            return self._copy
        image = np.ascontiguousarray(image)
        if mode == "remove" or (mode == "replace" and self._slot.current is not None):
            bg = self._bg if mode == "remove" else self._background_image()
            if alpha is None:
                np.copyto(self._copy, bg)
                return self._copy
            return self._blend_runner(self.frame_size).run(
                image=image, alpha=np.ascontiguousarray(alpha), background=bg
            )
        # blur; no mask = the whole frame is background (alpha 0 everywhere)
        p = self._plan
        if p.identity:  # strength 0: the frame itself
            np.copyto(self._copy, image)
            return self._copy
        a = self._zeros if alpha is None else np.ascontiguousarray(alpha)
        runner = self._blur_runner()
        if p.sigma_full <= 0 or p.blur_type in LINEAR_TYPES:
            return runner.run(image=image, alpha=a)
        # median / bilateral: fill on the device, filter on the CPU, upscale + blend on the device
        filled = runner.run(image=image, alpha=a)
        assert self._small_bg is not None
        if p.blur_type == "median":
            cv2.medianBlur(filled, p.median, dst=self._small_bg)
        else:
            cv2.bilateralFilter(filled, p.bilateral_d, 60.0, p.bilateral_sigma, dst=self._small_bg)
        return self._blend_runner(p.work_size, p.sharp).run(
            image=image, alpha=a, background=self._small_bg
        )

    def _background_image(self) -> Image:
        assert self._slot.current is not None
        return np.ascontiguousarray(self._slot.current.frame())


@register("cuda")
def _create(cfg: ComposeConfig, frame_size: tuple[int, int]) -> OnnxCompositor:
    device = probe_cuda()
    log.debug("compositor cuda on %s", device)
    return OnnxCompositor(cfg, frame_size, (CUDA, CPU))
