"""Real clips for the video tests, written with PyAV: a window drifting over a real photo,
with a real sound track (a sine sweep) in the codec the test asks for."""

from __future__ import annotations

import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from skimage import data

FFPROBE = shutil.which("ffprobe")


def photo() -> np.ndarray:
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def frame_at(i: int, size: tuple[int, int]) -> np.ndarray:
    crop = photo()[4 * i : 4 * i + 400, 6 * i : 6 * i + 460]
    return cv2.resize(crop, size, interpolation=cv2.INTER_AREA)


def make_talk(
    path: Path,
    *,
    times: list[float] | None = None,
    n: int = 24,
    fps: int = 24,
    size: tuple[int, int] = (320, 240),
    audio: str | None = "aac",
    audio_seconds: float | None = None,
    video_codec: str = "libx264",
    faststart: bool = False,
) -> None:
    """A clip of ``n`` frames at ``fps`` (or shown at ``times`` seconds: variable rate) with
    ``audio_seconds`` (default: the video's length) of a 48 kHz sweep in ``audio``."""
    times = times if times is not None else [i / fps for i in range(n)]
    tb = Fraction(1, 1000)
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as out:
        vs = out.add_stream(video_codec, rate=fps)
        vs.width, vs.height, vs.pix_fmt = *size, "yuv420p"
        vs.time_base = tb
        vs.codec_context.time_base = tb
        a_stream = None
        if audio is not None:
            a_stream = out.add_stream(audio, rate=48000)
            a_stream.layout = "stereo"
        for i, t in enumerate(times):
            frame = av.VideoFrame.from_ndarray(frame_at(i, size), format="bgr24")
            frame.pts = round(t / tb)
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
        if a_stream is not None:
            seconds = audio_seconds if audio_seconds is not None else times[-1] + 1 / fps
            total = round(seconds * 48000)
            t_all = np.arange(total) / 48000
            wave = (0.3 * np.sin(2 * np.pi * (300 + 400 * t_all) * t_all)).astype(np.float32)
            for start in range(0, total, 1024):
                chunk = np.stack([wave[start : start + 1024]] * 2)
                sound = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
                sound.sample_rate = 48000
                sound.pts = start
                out.mux(a_stream.encode(sound))
            out.mux(a_stream.encode(None))


def ffprobe(path: Path, *entries: str) -> list[dict[str, str]]:
    """``ffprobe``'s stream entries of ``path``, one dict per stream."""
    if FFPROBE is None:
        pytest.skip("ffprobe is not installed (apt-get install ffmpeg)")
    out = subprocess.run(
        [
            FFPROBE,
            "-v",
            "error",
            "-show_entries",
            "stream=" + ",".join(entries),
            "-of",
            "compact=p=0:nk=0",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    streams = []
    for line in out.splitlines():
        fields = dict(part.split("=", 1) for part in line.split("|") if "=" in part)
        streams.append(fields)
    return streams


def frame_times(path: Path) -> list[float]:
    """The presentation times of the video frames of ``path`` (decoded with PyAV)."""
    with av.open(str(path)) as c:
        return [float(f.time) for f in c.decode(video=0) if f.time is not None]
