"""Which sinks take I420 frames, and what they do with them.

The v4l2loopback device cannot exist on the test machines (no kernel modules): pyvirtualcam's
``Camera`` is replaced by a recorder that keeps what the sink opened it with and the frames it
was sent; everything before it (format choice, conversion, shape checks) is the sink's real code.
The PipeWire sink's I420 frames through a real PipeWire session: tests/sinks/test_pipewire_e2e.py.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
import pytest

from bgcam.sinks import takes_i420
from bgcam.sinks.multi import MultiSink
from bgcam.sinks.null import NullSink
from bgcam.sinks.pipewire import PipeWireSink
from bgcam.sinks.pipewire_slots import I420Slots
from bgcam.sinks.virtualcam import VirtualCamSink

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="v4l2loopback is Linux")


class RecordingCamera:
    """Stands in for pyvirtualcam.Camera (no v4l2loopback device can exist here)."""

    opened: ClassVar[list[Any]] = []

    def __init__(self, w: int, h: int, fps: float, *, fmt: Any, device: Any, backend: Any) -> None:
        self.fmt = fmt
        self.frames: list[np.ndarray] = []
        RecordingCamera.opened.append(self)

    def send(self, frame: np.ndarray) -> None:
        self.frames.append(frame.copy())

    def close(self) -> None:
        pass


@pytest.fixture
def camera(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> type[RecordingCamera]:
    import pyvirtualcam

    RecordingCamera.opened = []
    monkeypatch.setattr(pyvirtualcam, "Camera", RecordingCamera)
    return RecordingCamera


def test_which_sinks_take_i420() -> None:
    assert not takes_i420(NullSink())
    assert takes_i420(PipeWireSink())
    assert takes_i420(VirtualCamSink("/dev/null", pixel_format="I420")) == sys.platform.startswith(
        "linux"
    )
    assert not takes_i420(VirtualCamSink("/dev/null", pixel_format="YUYV"))
    assert not takes_i420(MultiSink([PipeWireSink(), NullSink()]))
    assert takes_i420(MultiSink([PipeWireSink(), VirtualCamSink("/dev/null")])) == (
        sys.platform.startswith("linux")
    )
    assert not takes_i420(object())


def opened(tmp_path: Path, pixel_format: str) -> VirtualCamSink:
    """A virtual camera sink opened on a plain file standing for the device node."""
    node = tmp_path / "video9"
    node.touch()
    sink = VirtualCamSink(str(node), pixel_format=pixel_format)
    sink.open((64, 36), 30)
    return sink


@linux
def test_v4l2loopback_gets_i420_as_it_is(camera: type[RecordingCamera], tmp_path: Path) -> None:
    import pyvirtualcam

    sink = opened(tmp_path, "I420")
    cam = camera.opened[0]
    assert cam.fmt == pyvirtualcam.PixelFormat.I420
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (54, 64), np.uint8)
    sink.send_i420(frame)
    np.testing.assert_array_equal(cam.frames[0], frame)
    bgr = rng.integers(0, 256, (36, 64, 3), np.uint8)
    sink.send(bgr)  # a BGR frame (a card, another compositor's) is converted here
    np.testing.assert_array_equal(cam.frames[1], cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420))
    with pytest.raises(ValueError, match="I420 frame"):
        sink.send_i420(frame[:40])
    sink.close()


@linux
def test_v4l2loopback_yuyv_takes_only_bgr(camera: type[RecordingCamera], tmp_path: Path) -> None:
    import pyvirtualcam

    sink = opened(tmp_path, "YUYV")
    assert camera.opened[0].fmt == pyvirtualcam.PixelFormat.YUYV
    sink.send(np.zeros((36, 64, 3), np.uint8))
    assert camera.opened[0].frames[0].shape == (36, 128)
    with pytest.raises(ValueError, match="I420"):
        sink.send_i420(np.zeros((54, 64), np.uint8))
    sink.close()


def test_multi_sink_hands_i420_to_every_sink() -> None:
    got: list[np.ndarray] = []

    class Taker(NullSink):
        accepts_i420 = True

        def send_i420(self, frame: np.ndarray) -> None:
            got.append(frame)

    multi = MultiSink([Taker(), Taker()])
    assert takes_i420(multi)
    frame = np.zeros((54, 64), np.uint8)
    multi.send_i420(frame)
    assert len(got) == 2 and all(f is frame for f in got)


def test_slots_copy_i420_frames() -> None:
    slots = I420Slots((64, 36))
    frame = np.random.default_rng(0).integers(0, 256, (54, 64), np.uint8)
    slots.put(frame, i420=True)
    index = slots.take(1.0)
    assert index is not None
    np.testing.assert_array_equal(np.frombuffer(slots.view(index), np.uint8).reshape(54, 64), frame)
