"""Input detection, frame reading and atomic writers, on real images and clips made here."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from bgcam.errors import InputError, OutputError
from bgcam.media import (
    ImageFileWriter,
    ImageFolderWriter,
    MaskFolderWriter,
    VideoFileWriter,
    open_writer,
    output_kind,
    probe_input,
    read_frames,
    remove_stale_temporaries,
)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def make_clip(
    path: Path, photo: np.ndarray, n: int = 6, size: tuple[int, int] = (320, 240)
) -> None:
    """A short real clip: a crop window sliding over the photo."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 25.0, size)
    assert writer.isOpened()
    for i in range(n):
        crop = photo[10 * i : 10 * i + 384, 8 * i : 8 * i + 480]
        writer.write(cv2.resize(crop, size, interpolation=cv2.INTER_AREA))
    writer.release()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial-" in p.name)


# --------------------------------------------------------------------------------------------
# Input detection


def test_probe_video(tmp_path: Path, astronaut: np.ndarray) -> None:
    clip = tmp_path / "clip.mp4"
    make_clip(clip, astronaut, n=7)
    info = probe_input(clip)
    assert (info.kind, info.size, info.fps, info.count) == ("video", (320, 240), 25.0, 7)
    frames = [f.copy() for f in read_frames(info)]
    assert len(frames) == 7
    assert all(f.shape == (240, 320, 3) and f.dtype == np.uint8 for f in frames)
    # Real, moving content: consecutive frames differ, no frame is flat.
    assert all(np.abs(a.astype(int) - b).mean() > 1 for a, b in itertools.pairwise(frames))
    assert min(float(f.std()) for f in frames) > 20
    names = info.frame_names()
    assert [next(names) for _ in range(3)] == ["00000.png", "00001.png", "00002.png"]


def test_probe_image_by_content_not_name(tmp_path: Path, astronaut: np.ndarray) -> None:
    # A PNG named .dat is still an image: detection decodes, it does not trust the suffix.
    odd = tmp_path / "photo.dat"
    ok, buf = cv2.imencode(".png", astronaut)
    assert ok
    odd.write_bytes(buf.tobytes())
    info = probe_input(odd)
    assert (info.kind, info.size, info.count) == ("image", (512, 512), 1)
    (frame,) = list(read_frames(info))
    assert np.array_equal(frame, astronaut)


def test_probe_folder_sorted_by_name_skipping_other_files(
    tmp_path: Path, astronaut: np.ndarray
) -> None:
    for name in ["f10.jpg", "f2.png", "f1.jpg", "g.png"]:
        cv2.imwrite(str(tmp_path / name), astronaut)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden.png").write_bytes(b"")
    info = probe_input(tmp_path)
    assert info.kind == "folder"
    assert [f.name for f in info.files] == ["f1.jpg", "f2.png", "f10.jpg", "g.png"]
    assert info.count == 4
    assert list(info.frame_names()) == ["f1.jpg", "f2.png", "f10.jpg", "g.png"]


def _text_as_mp4(p: Path) -> Path:
    f = p / "talk.mp4"
    f.write_text("this is not a video\n" * 100)
    return f


def _empty(p: Path) -> Path:
    f = p / "empty.png"
    f.write_bytes(b"")
    return f


def _truncated_jpeg(p: Path) -> Path:
    _, buf = cv2.imencode(".jpg", cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    f = p / "cut.jpg"
    f.write_bytes(buf.tobytes()[:200])
    return f


def _folder_without_images(p: Path) -> Path:
    d = p / "frames"
    d.mkdir()
    (d / "readme.txt").write_text("no frames here")
    return d


def _empty_folder(p: Path) -> Path:
    d = p / "nothing"
    d.mkdir()
    return d


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_text_as_mp4, "neither a video nor an image"),
        (_empty, "is empty (0 bytes)"),
        (_truncated_jpeg, "neither a video nor an image"),
        (_folder_without_images, "holds no images (1 other files)"),
        (_empty_folder, "holds no images (it is empty)"),
        (lambda p: p / "missing.mp4", "does not exist"),
    ],
)
def test_probe_refuses_what_is_not_video_or_image(
    make: Callable[[Path], Path], message: str, tmp_path: Path
) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        probe_input(make(tmp_path))


def test_unreadable_image_in_folder_stops_the_stream(tmp_path: Path, astronaut: np.ndarray) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), astronaut)
    _, buf = cv2.imencode(".png", astronaut)
    (tmp_path / "b.png").write_bytes(buf.tobytes()[:300])  # PNG signature, truncated body
    frames = read_frames(probe_input(tmp_path))
    assert next(frames).shape == (512, 512, 3)
    with pytest.raises(InputError, match=r"cannot decode image .*b\.png"):
        next(frames)


# --------------------------------------------------------------------------------------------
# Output kinds and atomic writers


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("out.mp4", "video"),
        ("OUT.MKV", "video"),
        ("out.avi", "video"),
        ("out.mov", "video"),
        ("out.png", "image"),
        ("out.jpg", "image"),
        ("out", "folder"),
        ("out.xyz", OutputError),
    ],
)
def test_output_kind(name: str, expected: str | type[Exception], tmp_path: Path) -> None:
    if isinstance(expected, str):
        assert output_kind(tmp_path / name) == expected
    else:
        with pytest.raises(expected, match="cannot tell what to write"):
            output_kind(tmp_path / name)


def test_existing_folder_is_a_folder_whatever_its_name(tmp_path: Path) -> None:
    (tmp_path / "looks.mp4").mkdir()
    assert output_kind(tmp_path / "looks.mp4") == "folder"


def test_video_writer_commits_atomically(tmp_path: Path, astronaut: np.ndarray) -> None:
    target = tmp_path / "sub" / "out.mkv"  # missing parent folders are created
    writer = VideoFileWriter(target, 12.5, (320, 240))
    frame = cv2.resize(astronaut, (320, 240))
    for i in range(4):
        writer.write(f"{i:05d}.png", frame)
    assert not target.exists()  # only a hidden temporary until commit
    assert len(leftovers(target.parent)) == 1
    writer.commit()
    assert leftovers(target.parent) == []
    info = probe_input(target)
    assert (info.kind, info.size, info.fps, info.count) == ("video", (320, 240), 12.5, 4)


def test_video_writer_abort_keeps_the_old_file(tmp_path: Path, astronaut: np.ndarray) -> None:
    target = tmp_path / "out.mp4"
    target.write_bytes(b"previous result")
    writer = VideoFileWriter(target, 25.0, (320, 240))
    writer.write("00000.png", cv2.resize(astronaut, (320, 240)))
    writer.abort()
    assert target.read_bytes() == b"previous result"
    assert leftovers(tmp_path) == []


def test_image_writer_refuses_a_second_frame(tmp_path: Path, astronaut: np.ndarray) -> None:
    writer = ImageFileWriter(tmp_path / "one.png")
    writer.write("a.png", astronaut)
    with pytest.raises(OutputError, match="one image"):
        writer.write("b.png", astronaut)
    writer.commit()
    assert cv2.imread(str(tmp_path / "one.png")).shape == (512, 512, 3)


def test_folder_writer_merges_into_an_existing_folder(
    tmp_path: Path, astronaut: np.ndarray
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    (out / "a.png").write_bytes(b"old")
    writer = ImageFolderWriter(out, force=True)
    writer.write("a.png", astronaut)
    writer.write("b.jpg", astronaut)
    assert (out / "a.png").read_bytes() == b"old"  # untouched until commit
    writer.commit()
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.jpg", "keep.txt"]
    assert (out / "keep.txt").read_text() == "mine"
    assert cv2.imread(str(out / "a.png")).shape == (512, 512, 3)
    assert leftovers(tmp_path) == []


def test_folder_writer_abort_leaves_nothing(tmp_path: Path, astronaut: np.ndarray) -> None:
    writer = ImageFolderWriter(tmp_path / "out")
    writer.write("a.png", astronaut)
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_mask_writer_writes_rounded_8bit_png(tmp_path: Path) -> None:
    alpha = np.zeros((48, 64), np.float32)
    alpha[:, 16:] = 0.5
    alpha[:, 32:] = 1.0
    alpha[:, 48:] = 1.7  # saturates
    writer = MaskFolderWriter(tmp_path / "m")
    writer.write_mask("00007", alpha)
    writer.commit()
    png = cv2.imread(str(tmp_path / "m" / "00007.png"), cv2.IMREAD_UNCHANGED)
    assert png.dtype == np.uint8 and png.shape == (48, 64)
    assert png[0, [0, 20, 40, 60]].tolist() == [0, 128, 255, 255]


def test_writer_refuses_to_replace_a_folder_with_a_file(tmp_path: Path) -> None:
    (tmp_path / "x.png").mkdir()
    with pytest.raises(OutputError, match="existing folder"):
        ImageFileWriter(tmp_path / "x.png")


def test_folder_writer_refuses_a_non_empty_folder_without_force(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "00000.png").write_bytes(b"someone's frame")
    with pytest.raises(OutputError, match="is not empty") as info:
        ImageFolderWriter(out)
    assert "--force" in str(info.value.hint)
    ImageFolderWriter(tmp_path / "empty").abort()  # a new (or empty) folder is fine


def test_only_the_outputs_own_folder_is_created(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="does not exist"):
        open_writer(tmp_path / "no" / "such" / "out.png", "image", 30.0, (64, 64))
    assert not (tmp_path / "no").exists()
    writer = open_writer(tmp_path / "new" / "out.png", "image", 30.0, (64, 64))
    writer.abort()
    assert (tmp_path / "new").is_dir()


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path: Path) -> None:
    target = tmp_path / "out.mp4"
    gone = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1  # no process has this pid
    stale_file = tmp_path / f".out.partial-{gone}-0123abcd.mp4"
    stale_dir = tmp_path / f".out.partial-{gone}-89abcdef.mp4"
    live = tmp_path / f".out.partial-{os.getpid()}-00000000.mp4"
    other = tmp_path / f".other.partial-{gone}-0123abcd.mp4"
    for p in (stale_file, live, other):
        p.write_bytes(b"x")
    stale_dir.mkdir()
    removed = remove_stale_temporaries(target)
    assert sorted(removed) == sorted([stale_file, stale_dir])
    assert live.exists() and other.exists()
