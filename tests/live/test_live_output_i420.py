"""The output thread feeds a sink that takes I420 with I420, whatever made the frame.

A real :class:`~bgcam.live.output.Output` and engine (HSV segmenter) with a sink that records
what it gets: composed frames come in I420 straight from the CPU compositor (here the fail-closed
path: no matte, the whole frame blurred), cards are converted once while they show, and the last
output still reads as BGR for the web preview and the cards.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from bgcam.compose.i420 import to_i420
from bgcam.config import Config
from bgcam.engine import Engine
from bgcam.frame import Frame, ShrunkFrame
from bgcam.live import output as output_module
from bgcam.live.cards import LastOutput, make_card
from bgcam.live.masks import MaskExchange
from bgcam.live.output import Output
from bgcam.sinks.null import NullSink
from bgcam.stats import Stats

SIZE = (64, 48)


class I420Recorder(NullSink):
    accepts_i420 = True

    def __init__(self) -> None:
        super().__init__()
        self.got: list[npt.NDArray[np.uint8]] = []

    def send_i420(self, frame: npt.NDArray[np.uint8]) -> None:
        self.got.append(frame.copy())


def make_output(sink: NullSink, last: LastOutput) -> tuple[Output, Engine]:
    cfg = Config.model_validate({"segment": {"segmenter": "hsv"}, "compose": {"blur": 60}})
    engine = Engine(cfg, SIZE)
    output = Output(
        engine, MaskExchange(), sink, Stats(), last, every=lambda: 1, masking=lambda: False
    )
    return output, engine


def picture() -> npt.NDArray[np.uint8]:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (SIZE[1], SIZE[0], 3), np.uint8)


def test_composed_frames_go_out_in_i420() -> None:
    sink, last = I420Recorder(), LastOutput()
    output, engine = make_output(sink, last)
    try:
        image = picture()
        out, unmasked = output._compose(Frame(image, 0, 0.0), 30.0, 0.0)
        assert out.shape == (SIZE[1] * 3 // 2, SIZE[0]) and not unmasked
        assert output.send(out)
        bgr = Engine(engine.cfg, SIZE).compose(ShrunkFrame(image), None)
        want = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)
        assert np.abs(sink.got[0].astype(int) - want).max() <= 2
        seen, _ = last.get()  # the web preview reads BGR
        assert seen is not None and seen.shape == (SIZE[1], SIZE[0], 3)
        card = make_card("paused", SIZE, last.image)  # a card made from the I420 frame
        assert card.shape == (SIZE[1], SIZE[0], 3)
    finally:
        engine.close()


def test_cards_are_converted_once_while_they_show(monkeypatch: pytest.MonkeyPatch) -> None:
    sink, last = I420Recorder(), LastOutput()
    output, engine = make_output(sink, last)
    calls: list[int] = []

    def counting(image: npt.NDArray[np.uint8], dst: npt.NDArray[np.uint8]) -> object:
        calls.append(1)
        return to_i420(image, dst)

    monkeypatch.setattr(output_module, "to_i420", counting)
    try:
        card = output.cards.card("paused")
        for _ in range(3):
            assert output.send(card, still=True)
        assert len(calls) == 1 and len(sink.got) == 3
        np.testing.assert_array_equal(sink.got[2], cv2.cvtColor(card, cv2.COLOR_BGR2YUV_I420))
    finally:
        engine.close()


def test_a_bgr_sink_gets_bgr() -> None:
    sink, last = NullSink(), LastOutput()
    output, engine = make_output(sink, last)
    try:
        out, _ = output._compose(Frame(picture(), 0, 0.0), 30.0, 0.0)
        assert out.shape == (SIZE[1], SIZE[0], 3)
        assert output.send(out) and sink.frames == 1
    finally:
        engine.close()
