"""The PipeWire sink's parts without a PipeWire session: the child's command line, the frame
buffers between the output and writer threads, the checks that name missing packages, the graph
reading, and the sink names (multi-sink, auto)."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from bgcam.config import Config
from bgcam.errors import ConfigError, DeviceError
from bgcam.sinks import create_sink, pipewire_env
from bgcam.sinks.auto import resolve_auto
from bgcam.sinks.multi import MultiSink
from bgcam.sinks.null import NullSink
from bgcam.sinks.pipewire import I420Slots, PipeWireSink, child_command
from bgcam.sinks.virtualcam import VirtualCamSink, bgr_to_yuyv


def test_child_command_publishes_a_fixed_camera_node() -> None:
    cmd = child_command("/usr/bin/gst-launch-1.0", (1280, 720), 30.0, "Desk Cam")
    text = " ".join(cmd)
    assert "--no-fault" in cmd
    assert f"blocksize={1280 * 720 * 3 // 2}" in cmd
    assert "video/x-raw,format=I420,width=1280,height=720,framerate=30/1" in cmd
    props = cmd[-1]
    for key in ("media.class=Video/Source", "media.role=Camera", "node.name=bgcam"):
        assert key in props
    assert 'node.description="Desk Cam"' in props
    assert "mode=provide" in text and "sync=false" in text


def test_child_command_rate_is_an_exact_fraction() -> None:
    cmd = child_command("gst-launch-1.0", (640, 360), 29.97, "BgCam")
    assert "framerate=2997/100" in " ".join(cmd) or "framerate=30000/1001" in " ".join(cmd)


def test_slots_convert_keep_order_and_drop_the_oldest() -> None:
    slots = I420Slots((64, 48), count=3)
    frames = [np.full((48, 64, 3), v, np.uint8) for v in (10, 100, 200, 250)]
    for f in frames:
        slots.put(f)
    # Three buffers: one being filled, two pending; four puts → one dropped (the oldest).
    assert slots.dropped == 2
    first = slots.take(0)
    assert first is not None
    y = np.frombuffer(slots.view(first), np.uint8)[: 64 * 48]
    expected = cv2.cvtColor(frames[2], cv2.COLOR_BGR2YUV_I420)[:48].ravel()
    assert np.array_equal(y, expected)
    assert slots.take(0) is not None
    assert slots.take(0) is None


def test_slots_put_never_waits_for_the_writer() -> None:
    slots = I420Slots((32, 32))
    done = threading.Event()

    def producer() -> None:
        for _ in range(100):
            slots.put(np.zeros((32, 32, 3), np.uint8))
        done.set()

    t = threading.Thread(target=producer)
    t.start()
    t.join(10)
    assert done.is_set() and slots.dropped == 100 - 3


def test_yuyv_packing_matches_opencv_round_trip() -> None:
    rng = np.random.default_rng(1)
    img = rng.integers(16, 240, (3, 4, 3), dtype=np.uint8)
    img = np.repeat(np.repeat(img, 2, axis=0), 2, axis=1)  # 2x2 blocks: 4:2:0 loses nothing
    i420 = np.empty((9, 8), np.uint8)
    out = np.empty((6, 16), np.uint8)
    bgr_to_yuyv(img, i420, out)
    back = cv2.cvtColor(out.reshape(6, 8, 2), cv2.COLOR_YUV2BGR_YUYV)
    assert np.abs(back.astype(int) - img.astype(int)).max() <= 4


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("pipewire", PipeWireSink),
        ("null,pipewire", MultiSink),
        ("virtualcam,pipewire", MultiSink),
        ("null,null", ConfigError),
        ("null,", ConfigError),
        ("auto,null", ConfigError),
        ("pipewire:x", ConfigError),
    ],
)
def test_sink_specs(spec: str, expected: type) -> None:
    if issubclass(expected, Exception):
        with pytest.raises(expected):
            create_sink(spec)
    else:
        assert isinstance(create_sink(spec), expected)


def test_multi_sink_feeds_every_sink_the_same_frame() -> None:
    a, b = NullSink(), NullSink()
    multi = MultiSink([a, b])
    multi.open((64, 48), 30)
    for _ in range(3):
        multi.send(np.zeros((48, 64, 3), np.uint8))
    multi.close()
    assert a.frames == b.frames == 3 and a.size == b.size == (64, 48)
    assert multi.name == "null,null"


def test_multi_sink_closes_what_it_opened_when_one_fails() -> None:
    class Broken(NullSink):
        def open(self, size: tuple[int, int], fps: float) -> None:
            raise DeviceError("no")

    closed: list[str] = []

    class Tracking(NullSink):
        def close(self) -> None:
            closed.append("first")

    with pytest.raises(DeviceError):
        MultiSink([Tracking(), Broken()]).open((64, 48), 30)
    assert closed == ["first"]


def test_auto_prefers_v4l2loopback_then_pipewire(monkeypatch: pytest.MonkeyPatch) -> None:
    from bgcam.sinks import virtualcam

    monkeypatch.setattr(pipewire_env, "pipewire_available", lambda: True)
    monkeypatch.setattr(
        virtualcam, "find_bgcam_device", lambda **kw: (_ for _ in ()).throw(DeviceError("none"))
    )
    assert resolve_auto() == "pipewire"
    monkeypatch.setattr(pipewire_env, "pipewire_available", lambda: False)
    assert resolve_auto() == "virtualcam"  # → the clear no-device error of virtualcam
    monkeypatch.setattr(virtualcam, "find_bgcam_device", lambda **kw: "/dev/video9")
    monkeypatch.setattr(pipewire_env, "pipewire_available", lambda: True)
    assert resolve_auto() == "virtualcam"
    assert resolve_auto(device="/dev/video3") == "virtualcam"


@pytest.mark.parametrize(
    ("name", "ok"),
    [("BgCam", True), ("Desk Cam 2", True), ('a"b', False), (" x", False), ("a,b", False)],
)
def test_device_name_is_checked(name: str, ok: bool) -> None:
    if ok:
        assert Config().replace(**{"output.device_name": name}).output.device_name == name
    else:
        with pytest.raises(ConfigError):
            Config().replace(**{"output.device_name": name})


def test_missing_gstreamer_tools_name_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(DeviceError) as err:
        pipewire_env.check_pipewire()
    assert err.value.exit_code == 5
    assert "gstreamer1.0-tools" in str(err.value.hint)
    assert "Fedora" in str(err.value.hint) and "Arch" in str(err.value.hint)


def test_missing_pipewiresink_names_the_plugin_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(pipewire_env, "has_element", lambda el, inspect=None: el != "pipewiresink")
    with pytest.raises(DeviceError) as err:
        pipewire_env.check_pipewire()
    assert "pipewiresink" in err.value.message
    hint = str(err.value.hint)
    assert "gstreamer1.0-pipewire" in hint and "pipewire-gstreamer" in hint


def test_no_runtime_dir_is_no_pipewire(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(pipewire_env, "has_element", lambda el, inspect=None: True)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.delenv("PIPEWIRE_RUNTIME_DIR", raising=False)
    monkeypatch.delenv("PIPEWIRE_REMOTE", raising=False)
    with pytest.raises(DeviceError) as err:
        pipewire_env.check_pipewire()
    assert "no PipeWire session" in err.value.message
    assert not pipewire_env.pipewire_available()


GRAPH: list[dict[str, Any]] = [
    {"id": 31, "type": "PipeWire:Interface:Client", "info": {"props": {
        "application.name": "WirePlumber", "application.process.id": 10}}},
    {"id": 39, "type": "PipeWire:Interface:Client", "info": {"props": {
        "application.name": "gst-launch-1.0", "application.process.id": 4242}}},
    {"id": 40, "type": "PipeWire:Interface:Node", "info": {"state": "running", "props": {
        "node.name": "bgcam", "node.description": "BgCam", "client.id": 39,
        "media.class": "Video/Source", "media.role": "Camera"}}},
    {"id": 36, "type": "PipeWire:Interface:Node", "info": {"state": "running", "props": {
        "node.name": "chromium", "client.id": 38}}},
    {"id": 41, "type": "PipeWire:Interface:Link", "info": {
        "output-node-id": 40, "input-node-id": 36, "props": {}}},
]  # fmt: skip


def test_graph_reading_finds_our_node_its_readers_and_the_session_manager() -> None:
    node = pipewire_env.find_node(GRAPH, "bgcam", 4242)
    assert node is not None and node.id == 40 and node.state == "running"
    assert pipewire_env.find_node(GRAPH, "bgcam", 1) is None  # another process's node
    assert pipewire_env.node_readers(GRAPH, 40) == 1
    assert pipewire_env.node_readers(GRAPH, 36) == 0
    assert pipewire_env.session_manager(GRAPH) == "WirePlumber"
    assert [n.name for n in pipewire_env.camera_nodes(GRAPH)] == ["bgcam"]


def test_virtualcam_is_found_by_driver_and_label(tmp_path: Path) -> None:
    from tests.sinks.test_sinks import fake_sysfs

    sysfs = fake_sysfs(
        tmp_path,
        {"video0": ("Desk Cam", False), "video4": ("Desk Cam", True), "video5": ("BgCam", True)},
    )
    sink = VirtualCamSink(sysfs=sysfs, card_name="Desk Cam")
    with pytest.raises(DeviceError):  # found (video4, the loopback one), but no /dev/video4
        sink.locate()
    from bgcam.sinks.virtualcam import find_bgcam_device

    assert find_bgcam_device(sysfs, card_name="Desk Cam") == "/dev/video4"


def test_v4l2loopback_findings_from_sysfs(tmp_path: Path) -> None:
    from bgcam.sinks.report import v4l2loopback_report

    module = tmp_path / "v4l2loopback"
    (module / "parameters").mkdir(parents=True)
    (module / "version").write_text("0.15.0\n")
    (module / "parameters" / "exclusive_caps").write_text("N\n")
    report = v4l2loopback_report(module)
    assert report["loaded"] and report["version"] == "0.15.0"
    what = {f["what"]: f for f in report["findings"]}
    assert (
        what["exclusive_caps"]["ok"] is False
        and "exclusive_caps=1" in what["exclusive_caps"]["fix"]
    )
    assert "v4l2loopback-ctl add" in what["one reader at a time"]["fix"]
    missing = v4l2loopback_report(tmp_path / "absent")
    assert missing["findings"][0]["ok"] is False
    assert "--sink pipewire" in missing["findings"][0]["fix"]


def test_reset_and_output_check_need_a_v4l2_device(tmp_path: Path) -> None:
    from bgcam.sinks.virtualcam import advertises_output, query_driver, reset_device

    plain = tmp_path / "not-a-device"
    plain.write_bytes(b"")
    assert query_driver(str(plain)) is None
    assert advertises_output(str(plain)) is None
    assert reset_device(str(plain)) is False
    assert reset_device(str(tmp_path / "absent")) is False


@pytest.mark.parametrize("has_shmsrc", [True, False])
def test_report_names_the_transport_and_the_package_for_shared_memory(
    monkeypatch: pytest.MonkeyPatch, has_shmsrc: bool
) -> None:
    from bgcam.sinks.report import pipewire_report

    monkeypatch.setattr(pipewire_env, "has_element", lambda el, inspect=None: has_shmsrc)
    monkeypatch.setattr(pipewire_env, "graph", lambda: None)
    monkeypatch.setattr("bgcam.sinks.report.portal_has_camera", lambda: None)
    what = {f["what"]: f for f in pipewire_report()["findings"]}
    transport = what["PipeWire camera transport"]
    if has_shmsrc:
        assert transport["ok"] and "shared memory" in transport["state"]
    else:
        assert transport["ok"] is None and "a pipe" in transport["state"]
        assert "gstreamer1.0-plugins-bad" in transport["fix"]
