"""Which codecs go into which container, chosen by the output's file suffix.

Every container gets a video codec that plays in browsers and common players (H.264 in 4:2:0,
VP9 for WebM). The input's audio is copied packet for packet when the container may hold its
codec, and re-encoded (AAC, Opus, MP3) only when it may not. PyAV's wheels for Linux, Windows
and macOS bundle libx264, libvpx and libopus, so the same files come out everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    """How one output suffix is written."""

    format: str
    """FFmpeg's muxer name."""
    video_codec: str
    """The video encoder."""
    audio_codec: str
    """The audio encoder used when the input's audio codec may not be copied."""
    audio_copy: frozenset[str] | None
    """Audio codecs copied as they are (``None``: any codec the muxer accepts)."""
    crf_default: int
    crf_max: int
    video_options: dict[str, str] = field(default_factory=dict)
    container_options: dict[str, str] = field(default_factory=dict)
    constant_rate: bool = False
    """The container holds one frame rate only (AVI): frames are numbered, not timed."""


_MP4_AUDIO = frozenset({"aac", "mp3", "opus", "flac", "alac", "ac3", "eac3"})
# veryfast: 3-4x the speed of x264's default preset at a few percent more bytes for the same
# quality; rendering must keep up with the engine on a laptop.
_X264 = {"preset": "veryfast"}
# libvpx's default deadline is far too slow for video of any length; realtime + cpu-used 8 and
# row multithreading encode 720p faster than real time on two cores.
_VP9 = {"deadline": "realtime", "cpu-used": "8", "row-mt": "1", "b": "0"}
_FASTSTART = {"movflags": "+faststart"}  # the index first: browsers start playing at once

CONTAINERS: dict[str, ContainerSpec] = {
    ".mp4": ContainerSpec("mp4", "libx264", "aac", _MP4_AUDIO, 23, 51, _X264, _FASTSTART),
    ".m4v": ContainerSpec("mp4", "libx264", "aac", _MP4_AUDIO, 23, 51, _X264, _FASTSTART),
    ".mov": ContainerSpec(
        "mov",
        "libx264",
        "aac",
        frozenset({"aac", "alac", "mp3", "ac3", "pcm_s16le", "pcm_s24le", "pcm_f32le"}),
        23,
        51,
        _X264,
        _FASTSTART,
    ),
    ".mkv": ContainerSpec("matroska", "libx264", "libopus", None, 23, 51, _X264),
    ".webm": ContainerSpec(
        "webm", "libvpx-vp9", "libopus", frozenset({"opus", "vorbis"}), 32, 63, _VP9
    ),
    ".avi": ContainerSpec(
        "avi",
        "libx264",
        "libmp3lame",
        frozenset({"mp3", "ac3", "pcm_s16le"}),
        23,
        51,
        _X264,
        constant_rate=True,
    ),
}
"""Output suffix → how it is written."""

VIDEO_SUFFIXES = tuple(CONTAINERS)
