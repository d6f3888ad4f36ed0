"""The pipeline's ends: the output size, and the camera following pause and on-demand."""

from __future__ import annotations

import pytest

from bgcam.config import OutputConfig
from bgcam.live.devices import Camera, output_size
from bgcam.live.state import Lifecycle, PipelineState
from bgcam.sources import SourceState, SyntheticSource


@pytest.mark.parametrize(
    ("width", "height", "native", "expected"),
    [
        (0, 0, (1280, 720), (1280, 720)),
        (0, 0, (641, 361), (640, 360)),
        (640, 0, (1280, 720), (640, 360)),
        (0, 480, (640, 480), (640, 480)),
        (1920, 1080, (640, 480), (1920, 1080)),
    ],
)
def test_output_size(
    width: int, height: int, native: tuple[int, int], expected: tuple[int, int]
) -> None:
    assert output_size(OutputConfig(width=width, height=height), native) == expected


def test_the_camera_is_open_only_while_running() -> None:
    source = SyntheticSource("synthetic:64x48")
    source.open()
    source.start()
    life = Lifecycle(PipelineState.RUNNING)
    camera = Camera(life, lambda: source)
    try:
        camera.pause(True)
        assert life.state is PipelineState.PAUSED and source.state is SourceState.STOPPED
        camera.pause(False)
        assert life.state is PipelineState.RUNNING and source.state is not SourceState.STOPPED
        assert camera.idle() is False  # no on-demand watcher: never idle
    finally:
        source.stop()
