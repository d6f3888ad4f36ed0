"""Sinks: the name table, the file sink, preview without a display, the virtual camera finder.

The v4l2loopback kernel module cannot be loaded on our machines, so the virtual camera is tested
up to the device check: the finder reads a *fake sysfs directory* built here (the same files the
driver creates under /sys/class/video4linux), and opening the real device is out of reach.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from bgcam.errors import ConfigError, DeviceError, OutputError
from bgcam.sinks import create_sink, split_sinks
from bgcam.sinks.file import FileSink
from bgcam.sinks.null import NullSink
from bgcam.sinks.preview import PreviewSink
from bgcam.sinks.virtualcam import VirtualCamSink, find_bgcam_device, list_video_devices
from tests.live_media import astronaut_frames


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("null", NullSink),
        ("file:out.mp4", FileSink),
        ("preview", PreviewSink),
        ("virtualcam", VirtualCamSink),
        ("nul", ConfigError),
        ("file:", ConfigError),
        ("null:x", ConfigError),
        ("file:out.txt", OutputError),
    ],
)
def test_create_sink(spec: str, expected: type) -> None:
    if issubclass(expected, Exception):
        with pytest.raises(expected):
            create_sink(spec)
    else:
        assert isinstance(create_sink(spec), expected)


def fake_sysfs(root: Path, devices: dict[str, tuple[str, bool]]) -> Path:
    """/sys/class/video4linux look-alike: name → (card name, is v4l2loopback)."""
    sysfs = root / "sys"
    for node, (card, loopback) in devices.items():
        d = sysfs / node
        d.mkdir(parents=True)
        (d / "name").write_text(card + "\n")
        if loopback:
            (d / "max_openers").write_text("10\n")
    return sysfs


def test_no_v4l2loopback_names_the_setup_script(tmp_path: Path) -> None:
    sysfs = fake_sysfs(tmp_path, {"video0": ("Integrated Camera", False)})
    with pytest.raises(DeviceError) as err:
        find_bgcam_device(sysfs)
    assert "not loaded" in err.value.message
    assert "scripts/setup-v4l2loopback.sh" in str(err.value.hint)


def test_finds_the_device_named_bgcam(tmp_path: Path) -> None:
    sysfs = fake_sysfs(
        tmp_path,
        {
            "video0": ("Integrated Camera", False),
            "video2": ("Dummy", True),
            "video10": ("BgCam", True),
        },
    )
    assert find_bgcam_device(sysfs, Path("/dev")) == "/dev/video10"
    devs = {d.path: d for d in list_video_devices(sysfs)}
    assert devs["/dev/video2"].loopback and not devs["/dev/video0"].loopback


def test_loopback_under_another_name_suggests_device(tmp_path: Path) -> None:
    sysfs = fake_sysfs(tmp_path, {"video4": ("OBS Virtual Camera", True)})
    with pytest.raises(DeviceError, match="no virtual camera named 'BgCam'") as err:
        find_bgcam_device(sysfs)
    assert "--device /dev/video4" in str(err.value.hint)


def test_virtualcam_sink_found_but_node_missing(tmp_path: Path) -> None:
    # sysfs says BgCam is /dev/video10, but this machine has no such node: a clear error.
    sysfs = fake_sysfs(tmp_path, {"video10": ("BgCam", True)})
    sink = VirtualCamSink(sysfs=sysfs)
    with pytest.raises(DeviceError, match="does not exist"):
        sink.locate()


def test_virtualcam_refuses_odd_sizes(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="even"):
        VirtualCamSink("/dev/video10").open((641, 360), 30)


def test_file_sink_is_atomic(tmp_path: Path) -> None:
    out = tmp_path / "out.avi"
    sink = FileSink(str(out))
    sink.open((320, 180), 30.0)
    frames = astronaut_frames(5)
    for f in frames:
        sink.send(f)
    assert not out.exists()  # only a hidden temporary until close
    sink.close()
    cap = cv2.VideoCapture(str(out))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 5


def test_preview_without_display(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(DeviceError, match="needs a display"):
        PreviewSink().open((320, 180), 30)


def test_null_sink_counts() -> None:
    sink = NullSink()
    sink.open((4, 2), 30)
    sink.send(np.zeros((2, 4, 3), np.uint8))
    assert sink.frames == 1


@pytest.mark.parametrize(
    ("spec", "parts"),
    [
        ("null", ["null"]),
        ("virtualcam, pipewire", ["virtualcam", "pipewire"]),
        ("file:talk,take 2.mp4", ["file:talk,take 2.mp4"]),
        ("file:a,b.mp4,null", ["file:a,b.mp4", "null"]),
        ("null,file:a,b.mp4,file:c.mkv", ["null", "file:a,b.mp4", "file:c.mkv"]),
        ("null,,pipewire", ["null", "", "pipewire"]),
    ],
)
def test_split_sinks_keeps_commas_inside_file_paths(spec: str, parts: list[str]) -> None:
    assert split_sinks(spec) == parts


def test_a_file_sink_path_with_a_comma_is_written_whole(tmp_path: Path) -> None:
    target = tmp_path / "talk, take 2.mp4"
    sink = create_sink(f"null,file:{target}")
    frames = astronaut_frames(5, (64, 48))
    sink.open((64, 48), 30.0)
    for f in frames:
        sink.send(f)
    sink.close()
    assert target.is_file() and target.stat().st_size > 0
    assert [p.name for p in tmp_path.iterdir()] == [target.name]
