"""The cuda compositor: its ONNX graphs run on onnxruntime's CPU provider here and must match
the CPU compositor; the CUDA provider itself is tested only where a GPU works (else skipped)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from bgcam.compose import create_compositor, onnxgraph
from bgcam.compose.cpu import CpuCompositor
from bgcam.compose.cuda import OnnxCompositor, probe_cuda
from bgcam.compose.plan import BlurPlan
from bgcam.config import ComposeConfig
from bgcam.errors import BackendError
from bgcam.frame import ShrunkFrame, upsample_alpha8
from bgcam.ort import CPU, CUDA
from tests.compose.compose_cases import (
    CASES,
    MIN_PSNR,
    SIZES,
    case_id,
    compare_all,
    compare_changes,
    frame_and_alpha,
    psnr,
)


def _cuda_reason() -> str | None:
    try:
        probe_cuda()
    except BackendError as exc:
        return exc.message
    return None


CUDA_MISSING = _cuda_reason()
needs_gpu = pytest.mark.skipif(
    CUDA_MISSING is not None, reason=f"no working CUDA device here: {CUDA_MISSING}"
)


def _on_cpu_provider(cfg: ComposeConfig, size: tuple[int, int]) -> OnnxCompositor:
    return OnnxCompositor(cfg, size, providers=(CPU,))


@pytest.fixture(scope="module")
def scores(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[float]]:
    return compare_all(_on_cpu_provider, tmp_path_factory.mktemp("onnx"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c)))
def test_graph_matches_cpu(
    scores: dict[str, list[float]], size: tuple[int, int], case: tuple[str, str, int]
) -> None:
    with_alpha, without = scores[case_id(size, case)]
    assert with_alpha >= MIN_PSNR, f"with the real alpha: {with_alpha:.1f} dB"
    assert without >= MIN_PSNR, f"without a mask: {without:.1f} dB"


def test_a_change_prepared_on_another_thread_and_the_cheaper_path_match_cpu(
    model_dir: Path, tmp_path: Path
) -> None:
    """Sessions built by :meth:`prepare` on a builder thread, put in place by :meth:`update`,
    then the governor's cheaper path: within PSNR 40 dB of the CPU compositor."""
    scores = compare_changes(_on_cpu_provider, tmp_path)
    assert len(scores) == 4 and any(len(s) == 2 for s in scores.values()), scores
    for name, values in scores.items():
        assert min(values) >= MIN_PSNR, f"{name}: {values}"


@pytest.mark.parametrize(
    ("size", "strength", "area_op"),
    [
        ((640, 480), 100, "AveragePool"),  # pre 160x120 -> work 80x60: exact 2x
        ((960, 540), 100, "AveragePool"),  # pre 240x136 (twice the work size, 120x68): 2x
        ((320, 180), 25, None),  # factor 2 (the least at 180 rows): one bilinear step
    ],
)
def test_graph_shrinks_as_opencv_does(
    size: tuple[int, int], strength: int, area_op: str | None
) -> None:
    model = onnxgraph.blur_graph(BlurPlan.of(size, strength, "gaussian"))
    ops = {n.op_type for n in model.graph.node}
    onnx.checker.check_model(model)
    assert model.ir_version == onnxgraph.IR_VERSION  # onnxruntime-gpu 1.31 rejects IR 14
    if area_op is None:
        assert not ops & {"AveragePool", "MatMul"}
    else:
        assert area_op in ops


def test_median_falls_back_to_the_cpu_filter_between_two_graphs(model_dir: Path) -> None:
    image, alpha = frame_and_alpha((640, 480))
    cfg = ComposeConfig(blur_type="median", blur=60, backend="cpu")
    comp = _on_cpu_provider(cfg, (640, 480))
    try:
        comp.compose(image, alpha)
        work = BlurPlan.of((640, 480), 60, "median").work_size
        assert set(comp._runners) == {("fill", comp._plan), ("upblend", work, 0.0)}
        # Switching back and forth reuses the cached sessions.
        comp.update(cfg.model_copy(update={"blur_type": "gaussian"}))
        runners = dict(comp._runners)
        comp.update(cfg)
        assert sorted(key[0] for key in comp._runners) == ["blur", "fill", "upblend"]
        assert all(comp._runners[k] is r for k, r in runners.items())
    finally:
        comp.close()


def test_output_buffer_is_reused_and_input_untouched(model_dir: Path) -> None:
    image, alpha = frame_and_alpha((640, 480))
    before = image.copy()
    comp = _on_cpu_provider(ComposeConfig(backend="cpu"), (640, 480))
    try:
        first = comp.compose(image, alpha)
        second = comp.compose(image, alpha)
        assert first is second
        assert np.array_equal(image, before)
        with pytest.raises(ValueError, match=r"expected shape \(480, 640, 3\)"):
            comp.compose(image[:100], alpha)
    finally:
        comp.close()


def test_compose_matte_is_compose_of_the_upsampled_matte_over_255(model_dir: Path) -> None:
    image, alpha = frame_and_alpha((640, 480))
    small = cv2.resize(alpha, (320, 240), interpolation=cv2.INTER_AREA)
    alpha8_small = np.round(small * 255.0).astype(np.uint8)
    comp = _on_cpu_provider(ComposeConfig(backend="cpu"), (640, 480))
    try:
        via_matte = comp.compose_matte(ShrunkFrame(image), alpha8_small).copy()
        full = upsample_alpha8(alpha8_small, (640, 480))
        direct = comp.compose(image, (full / 255.0).astype(np.float32))
        assert np.array_equal(via_matte, direct)
    finally:
        comp.close()


@pytest.mark.skipif(CUDA_MISSING is None, reason="CUDA works here; the failure path cannot be seen")
def test_cuda_backend_without_a_gpu_says_why() -> None:
    with pytest.raises(BackendError) as err:
        create_compositor(ComposeConfig(backend="cuda"), (640, 480))
    assert "CUDA" in err.value.message
    assert err.value.hint is not None and 'compose.backend = "cpu"' in err.value.hint


@needs_gpu
def test_cuda_backend_matches_cpu(model_dir: Path) -> None:
    image, alpha = frame_and_alpha((1280, 720))
    cfg = ComposeConfig(backend="cuda")
    comp = create_compositor(cfg, (1280, 720))
    assert isinstance(comp, OnnxCompositor) and comp.provider == CUDA
    want = CpuCompositor(cfg, (1280, 720)).compose(image, alpha)
    assert psnr(want, comp.compose(image, alpha)) >= MIN_PSNR
