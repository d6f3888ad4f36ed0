"""``bgcam render`` and the file sink write H.264 (VP9 for WebM) with the input's sound and
timing: checked with ffprobe and PyAV on real clips with real sound made here."""

from __future__ import annotations

import logging
from pathlib import Path

import av
import pytest

from bgcam.config import Config
from bgcam.errors import OutputError
from bgcam.render import render
from bgcam.sinks.file import FileSink
from bgcam.video.writer import VideoEncoder
from tests.video.video_clips import ffprobe, frame_at, frame_times, make_talk

pytestmark = pytest.mark.usefixtures("model_dir")

CFG = Config()


def durations(path: Path) -> dict[str, float]:
    """codec type → duration in seconds (ffprobe)."""
    return {
        s["codec_type"]: float(s["duration"])
        for s in ffprobe(path, "codec_type", "duration")
        if s.get("duration", "N/A") != "N/A"
    }


def test_h264_aac_input_gives_h264_aac_with_the_same_sound(tmp_path: Path) -> None:
    talk = tmp_path / "talk.mp4"
    make_talk(talk, n=48, fps=24)
    result = render(CFG, talk, tmp_path / "out.mp4")
    assert result.frames == 48 and not result.short
    assert result.audio == "copied (aac)"
    streams = ffprobe(tmp_path / "out.mp4", "codec_type", "codec_name", "pix_fmt", "nb_frames")
    video = next(s for s in streams if s["codec_type"] == "video")
    audio = next(s for s in streams if s["codec_type"] == "audio")
    assert (video["codec_name"], video["pix_fmt"], video["nb_frames"]) == ("h264", "yuv420p", "48")
    assert audio["codec_name"] == "aac"
    assert abs(durations(tmp_path / "out.mp4")["audio"] - durations(talk)["audio"]) <= 0.05


def test_variable_frame_rate_keeps_every_frame_time(tmp_path: Path) -> None:
    times = [0.0, 0.04, 0.2, 0.25, 0.5, 0.52, 0.9, 1.3]
    talk = tmp_path / "vfr.mkv"
    make_talk(talk, times=times, audio="libopus")
    for name in ("out.mp4", "out.mkv", "out.webm"):
        render(CFG, talk, tmp_path / name)
        assert frame_times(tmp_path / name) == pytest.approx(times, abs=0.002), name


def test_fps_retimes_frames_and_leaves_the_sound_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    talk = tmp_path / "vfr.mp4"
    make_talk(talk, times=[0.0, 0.3, 0.4, 1.0])
    with caplog.at_level(logging.WARNING):
        result = render(CFG, talk, tmp_path / "out.mp4", fps=10)
    assert result.audio is None
    assert "sound" in caplog.text
    assert frame_times(tmp_path / "out.mp4") == pytest.approx([0.0, 0.1, 0.2, 0.3])


def test_no_audio_leaves_the_sound_out(tmp_path: Path) -> None:
    talk = tmp_path / "talk.mp4"
    make_talk(talk, n=8)
    render(CFG, talk, tmp_path / "out.mp4", audio=False)
    assert [s["codec_type"] for s in ffprobe(tmp_path / "out.mp4", "codec_type")] == ["video"]


@pytest.mark.parametrize(
    ("source_audio", "output", "video_codec", "audio_codec", "how"),
    [
        ("aac", "out.webm", "vp9", "opus", "re-encoded"),  # WebM holds only Opus/Vorbis
        ("pcm_s16le", "out.mp4", "h264", "aac", "re-encoded"),  # no PCM in MP4
        ("pcm_s16le", "out.mkv", "h264", "pcm_s16le", "copied"),  # Matroska keeps any codec
        ("aac", "out.mov", "h264", "aac", "copied"),
        ("aac", "out.avi", "h264", "mp3", "re-encoded"),
    ],
)
def test_each_container_gets_codecs_it_can_hold(
    tmp_path: Path, source_audio: str, output: str, video_codec: str, audio_codec: str, how: str
) -> None:
    talk = tmp_path / ("talk.mov" if source_audio.startswith("pcm") else "talk.mp4")
    make_talk(talk, n=12, audio=source_audio)
    result = render(CFG, talk, tmp_path / output)
    assert result.audio is not None and result.audio.startswith(how)
    codecs = {
        s["codec_type"]: s["codec_name"]
        for s in ffprobe(tmp_path / output, "codec_type", "codec_name")
    }
    assert codecs == {"video": video_codec, "audio": audio_codec}
    assert abs(audio_seconds(tmp_path / output) - 0.5) <= 0.06


def audio_seconds(path: Path) -> float:
    """Decoded sound length (AVI's header duration is only an estimate from the bit rate)."""
    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        return sum(f.samples for f in c.decode(stream)) / stream.rate


def test_crf_sets_the_quality(tmp_path: Path) -> None:
    talk = tmp_path / "talk.mp4"
    make_talk(talk, n=12, audio=None)
    render(CFG, talk, tmp_path / "best.mp4", crf=12)
    render(CFG, talk, tmp_path / "small.mp4", crf=45)
    assert (tmp_path / "small.mp4").stat().st_size < (tmp_path / "best.mp4").stat().st_size / 2
    with pytest.raises(OutputError, match="crf 60 is out of range") as err:
        render(CFG, talk, tmp_path / "bad.mp4", crf=60)
    assert err.value.hint is not None and "--crf" in err.value.hint
    assert not (tmp_path / "bad.mp4").exists()
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


def test_odd_sizes_lose_the_last_row_and_column(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="bgcam.video.writer"):
        encoder = VideoEncoder(tmp_path / "odd.mp4", (321, 241), fps=25)
    assert "321x241 frames are written at 320x240" in caplog.text  # said, not silent
    for i in range(3):
        encoder.write(frame_at(i, (321, 241)))
    encoder.close()
    with av.open(str(tmp_path / "odd.mp4")) as c:
        stream = c.streams.video[0]
        assert (stream.width, stream.height, stream.frames) == (320, 240, 3)


def test_file_sink_writes_h264(tmp_path: Path) -> None:
    sink = FileSink(str(tmp_path / "rec" / "live.mp4"))
    sink.open((320, 240), 30.0)
    for i in range(15):
        sink.send(frame_at(i, (320, 240)))
    sink.close()
    (video,) = ffprobe(
        tmp_path / "rec" / "live.mp4", "codec_name", "pix_fmt", "nb_frames", "r_frame_rate"
    )
    assert video == {
        "codec_name": "h264",
        "pix_fmt": "yuv420p",
        "nb_frames": "15",
        "r_frame_rate": "30/1",
    }
