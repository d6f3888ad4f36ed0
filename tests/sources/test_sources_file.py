"""File, folder and synthetic sources: real files, real capture threads."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from bgcam.config import SourceConfig
from bgcam.errors import InputError
from bgcam.frame import Frame
from bgcam.sources import SourceState, SourceStateError, create_source, source_kind
from bgcam.sources.file import FileSource
from tests.live_media import astronaut_frames, wait_for, write_clip


@pytest.mark.parametrize(
    ("uri", "kind"),
    [
        ("0", "camera"),
        ("/dev/video3", "camera"),
        ("http://127.0.0.1:8080/video", "stream"),
        ("rtsp://cam.local/stream1", "stream"),
        ("clip.mp4", "file"),
        ("frames/", "file"),
        ("synthetic:640x360", "synthetic"),
    ],
)
def test_source_kind(uri: str, kind: str) -> None:
    assert source_kind(uri) == kind


def test_video_loops_and_keeps_only_the_newest(tmp_path: Path) -> None:
    frames = astronaut_frames(6)
    clip = write_clip(tmp_path / "c.avi", frames, fps=60)
    src = FileSource(clip, loop=True)
    assert src.open() == (320, 180)
    assert src.fps == pytest.approx(60)
    src.start()
    try:
        # More frames than the clip holds: it looped. Indices only grow.
        wait_for(lambda: src.frames_captured > 14, 20, "the clip to loop")
        a = src.latest()
        b = src.wait_newer(a.index, 5.0)
        assert a is not None and b is not None and b.index > a.index
        assert b.t_capture >= a.t_capture
    finally:
        src.stop()
    assert src.state is SourceState.STOPPED


def test_videos_up_to_1080p_are_decoded_on_the_capture_thread_alone(tmp_path: Path) -> None:
    """FFmpeg's frame threads add latency and CPU; a live source up to 1080p does without."""
    clip = write_clip(tmp_path / "c.avi", astronaut_frames(3), fps=30)
    src = FileSource(clip)
    src.open()
    try:
        assert src._cap is not None
        assert src._cap.get(cv2.CAP_PROP_N_THREADS) == 1
    finally:
        src.stop()


def test_video_without_loop_ends(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "c.avi", astronaut_frames(3), fps=100)
    src = FileSource(clip, loop=False)
    src.open()
    src.start()
    wait_for(lambda: src.state is SourceState.ENDED, 20, "the end of the file")
    assert src.frames_captured == 3
    src.stop()


def test_folder_source_plays_images_in_order(tmp_path: Path) -> None:
    frames = astronaut_frames(3)
    for i, f in enumerate(frames):
        cv2.imwrite(str(tmp_path / f"f{i}.png"), f)
    src = create_source(SourceConfig(uri=str(tmp_path), fps=100.0, loop=False))
    src.open()
    src.start()
    seen: list[Frame] = []
    last = -1
    while len(seen) < 3:
        frame = src.wait_newer(last, 10.0)
        assert frame is not None, "folder source stalled"
        # The newest frame only (DROP_OLDEST): a slow reader may skip, never see duplicates.
        seen.append(frame)
        last = frame.index
        if src.state is SourceState.ENDED:
            break
    src.stop()
    assert np.array_equal(seen[0].image, frames[seen[0].index])


def test_mirror_and_resize_happen_in_the_capture_thread(tmp_path: Path) -> None:
    frames = astronaut_frames(2)
    cv2.imwrite(str(tmp_path / "a.png"), frames[0])
    src = FileSource(tmp_path / "a.png", mirror=True)
    src.open()
    src.target_size = (160, 90)
    src.start()
    frame = src.wait_newer(-1, 10.0)
    src.stop()
    assert frame is not None and frame.size == (160, 90)
    want = cv2.flip(cv2.resize(frames[0], (160, 90), interpolation=cv2.INTER_AREA), 1)
    assert np.array_equal(frame.image, want)


def test_illegal_transitions_raise(tmp_path: Path) -> None:
    src = create_source(SourceConfig(uri="synthetic:64x48@100"))
    with pytest.raises(SourceStateError):
        src.start()  # not opened
    src.open()
    with pytest.raises(SourceStateError):
        src.open()
    src.start()
    with pytest.raises(SourceStateError):
        src.start()
    src.stop()
    src.stop()  # idempotent
    src.start()  # restartable after stop (pause, on-demand)
    wait_for(lambda: src.state is SourceState.RUNNING, 10, "the restarted source")
    src.stop()


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    src = create_source(SourceConfig(uri=str(tmp_path / "nope.mp4")))
    with pytest.raises(InputError, match="does not exist"):
        src.open()
