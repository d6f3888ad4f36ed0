"""Frames from and to files: a video, one image, or a folder of images.

Reading (:mod:`.inputs`) detects the kind by decoding, never by name; writing (:mod:`.writers`)
is atomic, under a hidden temporary that only ``commit`` moves into place (:mod:`.partial`).
"""

from bgcam.media.inputs import (
    DEFAULT_FPS,
    InputInfo,
    InputKind,
    open_video,
    probe_input,
    quiet_decoders,
    read_frames,
    read_image,
)
from bgcam.media.partial import remove_stale_temporaries
from bgcam.media.writers import (
    FrameWriter,
    ImageFileWriter,
    ImageFolderWriter,
    MaskFolderWriter,
    OutputKind,
    VideoFileWriter,
    VideoOptions,
    open_writer,
    output_kind,
)

__all__ = [
    "DEFAULT_FPS",
    "FrameWriter",
    "ImageFileWriter",
    "ImageFolderWriter",
    "InputInfo",
    "InputKind",
    "MaskFolderWriter",
    "OutputKind",
    "VideoFileWriter",
    "VideoOptions",
    "open_video",
    "open_writer",
    "output_kind",
    "probe_input",
    "quiet_decoders",
    "read_frames",
    "read_image",
    "remove_stale_temporaries",
]
