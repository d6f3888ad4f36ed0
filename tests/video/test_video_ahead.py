"""Decoding ahead on a thread: the same frames and times as the plain reader, a thread that ends
when the consumer stops early, and a decoding error raised where the frames are used."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bgcam.frame import Image
from bgcam.video.ahead import DecodeAhead
from bgcam.video.reader import VideoReader, probe_video
from tests.video.video_clips import make_talk


def _clip(tmp_path: Path, n: int = 30) -> tuple[Path, Any]:
    clip = tmp_path / "clip.mp4"
    make_talk(clip, n=n, times=[i / 24 + (0.02 if i % 3 else 0) for i in range(n)], audio=None)
    info = probe_video(clip)
    assert info is not None
    return clip, info


def _decoders() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "bgcam-decoder"]


@pytest.mark.parametrize("threads", [0, 1])
def test_same_frames_and_times_as_the_reader(tmp_path: Path, threads: int) -> None:
    clip, info = _clip(tmp_path)
    plain = [(image.copy(), pts) for image, pts in VideoReader(clip, info)]
    reader = VideoReader(clip, info, threads=threads)
    ahead = [(image.copy(), pts) for image, pts in DecodeAhead(reader)]
    assert [p for _, p in ahead] == [p for _, p in plain]
    for (a, _), (b, _) in zip(ahead, plain, strict=True):
        np.testing.assert_array_equal(a, b)
    assert reader.read == 30 and not reader.short and reader.error is None
    assert not _decoders()


def test_a_yielded_frame_stays_valid_until_the_next_is_asked_for(tmp_path: Path) -> None:
    clip, info = _clip(tmp_path)
    plain = [image.copy() for image, _ in VideoReader(clip, info)]
    ahead = DecodeAhead(VideoReader(clip, info), slots=2)
    for i, (image, _) in enumerate(ahead):
        # Give the thread time to decode ahead into every free buffer: this one must not change.
        for _ in range(50):
            if ahead._ready.qsize() >= 1:
                break
            threading.Event().wait(0.01)
        np.testing.assert_array_equal(image, plain[i])


def test_leaving_early_stops_the_thread(tmp_path: Path) -> None:
    clip, info = _clip(tmp_path, n=60)
    with DecodeAhead(VideoReader(clip, info)) as ahead:
        for i, _ in enumerate(ahead):
            if i == 3:
                break
    assert not _decoders()

    gen = iter(DecodeAhead(VideoReader(clip, info)))
    next(gen)
    gen.close()  # as a render's ``finally`` does on an error or a stop
    assert not _decoders()


def test_a_failure_on_the_thread_is_raised_in_the_consumer(tmp_path: Path) -> None:
    clip, info = _clip(tmp_path)

    class Broken(VideoReader):
        def convert(self, frame: Any, dst: Image) -> Image:
            if self.read == 5:
                raise MemoryError("no room for frame 5")
            return super().convert(frame, dst)

    got = 0
    with pytest.raises(MemoryError, match="frame 5"):
        for _ in DecodeAhead(Broken(clip, info)):
            got += 1
    assert got == 4
    assert not _decoders()


def test_iterates_once_and_needs_two_slots(tmp_path: Path) -> None:
    clip, info = _clip(tmp_path, n=3)
    ahead = DecodeAhead(VideoReader(clip, info))
    assert len(list(ahead)) == 3
    with pytest.raises(RuntimeError, match="once"):
        list(ahead)
    with pytest.raises(ValueError, match="expected at least 2, got 1"):
        DecodeAhead(VideoReader(clip, info), slots=1)
