"""Decoding with timestamps, and input that ends early (cut off or damaged): a warning with the
frames announced and read, the output still written, the summary flagged short."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from bgcam.config import Config
from bgcam.media import probe_input
from bgcam.render import render
from bgcam.video.reader import VideoReader, probe_video
from tests.video.video_clips import frame_at, make_talk


def cut(src: Path, dst: Path, fraction: float) -> None:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])


def test_reader_yields_bgr_frames_with_their_times(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    make_talk(clip, times=[0.0, 0.1, 0.35, 0.4], audio=None)
    info = probe_video(clip)
    assert info is not None and info.size == (320, 240) and info.audio is None
    reader = VideoReader(clip, info)
    got = [(image.copy(), float(pts * info.time_base)) for image, pts in reader]
    assert [t for _, t in got] == pytest.approx([0.0, 0.1, 0.35, 0.4], abs=1e-3)
    assert not reader.short and reader.error is None
    # The colours survive the 4:2:0 round trip (H.264 at its default quality).
    diff = np.abs(got[0][0].astype(int) - frame_at(0, (320, 240)).astype(int))
    assert diff.mean() < 6


def test_probe_reports_the_sound(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mkv"
    make_talk(clip, n=5, audio="libopus")
    info = probe_input(clip)
    assert info.video is not None and info.video.audio == "opus"
    assert info.count == 5


@pytest.mark.usefixtures("model_dir")
def test_cut_off_input_is_rendered_as_far_as_it_goes_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    full = tmp_path / "full.mkv"
    make_talk(full, n=70, fps=30)
    cut(full, tmp_path / "cut.mkv", 0.35)
    with caplog.at_level(logging.WARNING):
        result = render(Config(), tmp_path / "cut.mkv", tmp_path / "out.mp4")
    # Matroska has no frame index: the count is estimated from its duration (sound included).
    assert result.short and 0 < result.frames < 70 and result.expected in (70, 71)
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"announces about {result.expected} frames, {result.frames} were read" in warning
    assert "decoding stopped at" in warning
    assert probe_input(tmp_path / "out.mp4").count == result.frames


@pytest.mark.usefixtures("model_dir")
def test_cut_off_mp4_with_its_index_first_names_the_exact_count(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    full = tmp_path / "full.mp4"
    make_talk(full, n=70, fps=30, faststart=True)
    cut(full, tmp_path / "cut.mp4", 0.4)
    with caplog.at_level(logging.WARNING):
        result = render(Config(), tmp_path / "cut.mp4", tmp_path / "out.mp4")
    assert result.short and result.expected == 70
    assert f"announces 70 frames, {result.frames} were read" in caplog.text


@pytest.mark.usefixtures("model_dir")
def test_damaged_middle_stops_or_skips_without_failing(tmp_path: Path) -> None:
    full = tmp_path / "full.mkv"
    make_talk(full, n=40, audio=None)
    data = bytearray(full.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4000] = bytes(4000)  # a zeroed stretch, as on a bad sector
    (tmp_path / "bad.mkv").write_bytes(bytes(data))
    result = render(Config(), tmp_path / "bad.mkv", tmp_path / "out.mp4")
    assert 0 < result.frames <= 40
    assert (tmp_path / "out.mp4").stat().st_size > 0


@pytest.mark.parametrize("size", [(480, 270), (322, 182), (320, 240)])
def test_heights_that_are_not_a_multiple_of_four_decode(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    """4:2:0 chroma planes of (h/2)x(w/2) need not fill whole rows of the I420 buffer."""
    clip = tmp_path / "clip.mp4"
    make_talk(clip, n=3, size=size, audio=None)
    info = probe_video(clip)
    assert info is not None and info.size == size
    got = [image.copy() for image, _ in VideoReader(clip, info)]
    assert len(got) == 3
    diff = np.abs(got[0].astype(int) - frame_at(0, size).astype(int))
    assert diff.mean() < 6, "colours are wrong: the chroma planes are misplaced"
