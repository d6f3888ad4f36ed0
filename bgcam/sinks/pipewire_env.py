"""What a PipeWire camera needs on this machine, and a look at the PipeWire graph.

Checks (each failure is a :class:`~bgcam.errors.DeviceError`, exit code 5, naming the package to
install on Debian/Ubuntu, Fedora and Arch):

* ``gst-launch-1.0`` / ``gst-inspect-1.0`` (the GStreamer tools) are on PATH;
* the elements the child pipeline uses exist: ``pipewiresink`` (GStreamer's PipeWire plugin),
  ``rawvideoparse`` and ``compositor`` (GStreamer's base plugins); ``shmsrc`` (the bad
  plugins) is optional: :mod:`bgcam.sinks.pipewire` then feeds the child through a pipe;
* a PipeWire daemon listens on ``$PIPEWIRE_RUNTIME_DIR`` or ``$XDG_RUNTIME_DIR``/``pipewire-0``;
* a session manager (WirePlumber or pipewire-media-session) is connected to it: without one,
  nothing links a reader to the camera.

:func:`graph` runs ``pw-dump`` once and returns the objects it lists (nodes, links, clients);
:func:`node_readers` reads from them how many links leave one node.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bgcam.errors import DeviceError

log = logging.getLogger(__name__)

__all__ = [
    "PACKAGES",
    "PipeWireNode",
    "check_pipewire",
    "find_node",
    "graph",
    "has_element",
    "missing_package_hint",
    "node_readers",
    "pipewire_socket",
    "session_manager",
]

PACKAGES: dict[str, dict[str, str]] = {
    "tools": {
        "Debian/Ubuntu": "gstreamer1.0-tools",
        "Fedora": "gstreamer1",
        "Arch": "gstreamer",
    },
    "pipewiresink": {
        "Debian/Ubuntu": "gstreamer1.0-pipewire",
        "Fedora": "pipewire-gstreamer",
        "Arch": "gst-plugin-pipewire",
    },
    "base": {
        "Debian/Ubuntu": "gstreamer1.0-plugins-base",
        "Fedora": "gstreamer1-plugins-base",
        "Arch": "gst-plugins-base",
    },
    "bad": {
        "Debian/Ubuntu": "gstreamer1.0-plugins-bad",
        "Fedora": "gstreamer1-plugins-bad-free",
        "Arch": "gst-plugins-bad",
    },
    "daemon": {"Debian/Ubuntu": "pipewire", "Fedora": "pipewire", "Arch": "pipewire"},
    "session": {"Debian/Ubuntu": "wireplumber", "Fedora": "wireplumber", "Arch": "wireplumber"},
}
"""What to install, per missing part and distribution."""

SESSION_MANAGERS = ("WirePlumber", "pipewire-media-session")
ELEMENTS = {"pipewiresink": "pipewiresink", "rawvideoparse": "base", "compositor": "base"}
TIMEOUT = 5.0


def missing_package_hint(part: str) -> str:
    pkgs = PACKAGES[part]
    return "install it: " + "; ".join(f"{distro}: {pkg}" for distro, pkg in pkgs.items())


def pipewire_socket() -> Path | None:
    """The PipeWire daemon's socket path, or None when no runtime directory is known."""
    remote = os.environ.get("PIPEWIRE_REMOTE", "pipewire-0")
    if remote.startswith("/"):
        return Path(remote)
    base = os.environ.get("PIPEWIRE_RUNTIME_DIR") or os.environ.get("XDG_RUNTIME_DIR")
    return Path(base) / remote if base else None


def _daemon_listening() -> tuple[bool, str]:
    path = pipewire_socket()
    if path is None:
        return False, "XDG_RUNTIME_DIR is not set (no user session)"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        try:
            s.connect(str(path))
        except OSError as exc:
            return False, f"no PipeWire daemon listens on {path} ({exc.strerror or exc})"
    return True, str(path)


def graph() -> list[dict[str, Any]] | None:
    """The PipeWire objects ``pw-dump`` lists now, or None when it cannot tell."""
    exe = shutil.which("pw-dump")
    if exe is None:
        return None
    try:
        res = subprocess.run(
            [exe, "--no-colors"], capture_output=True, timeout=TIMEOUT, check=False
        )
        data = json.loads(res.stdout) if res.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None
    return data if isinstance(data, list) else None


def _props(obj: dict[str, Any]) -> dict[str, Any]:
    info = obj.get("info") or {}
    props = info.get("props") or {}
    return props if isinstance(props, dict) else {}


def session_manager(objects: list[dict[str, Any]] | None = None) -> str | None:
    """The session manager's name when one is connected (``pw-dump``), else its process name
    found in /proc (when pw-dump is missing), else None."""
    if objects is None:
        objects = graph()
    if objects is not None:
        for obj in objects:
            if str(obj.get("type", "")).endswith(":Client"):
                name = str(_props(obj).get("application.name", ""))
                if any(name.startswith(m) for m in SESSION_MANAGERS):
                    return name
        return None
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                comm = Path(f"/proc/{pid}/comm").read_text(encoding="utf-8").strip()
            except OSError:
                continue
            if comm in ("wireplumber", "pipewire-media-session", "pipewire-media-s"):
                return comm
    return None


@dataclass(frozen=True, slots=True)
class PipeWireNode:
    id: int
    name: str
    description: str
    state: str
    media_class: str
    role: str
    pid: int | None


def _nodes(objects: list[dict[str, Any]]) -> list[PipeWireNode]:
    pids: dict[int, int] = {}
    for obj in objects:
        if str(obj.get("type", "")).endswith(":Client"):
            pid = _props(obj).get("application.process.id")
            if pid is not None:
                pids[int(obj["id"])] = int(pid)
    out = []
    for obj in objects:
        if not str(obj.get("type", "")).endswith(":Node"):
            continue
        p = _props(obj)
        client = p.get("client.id")
        out.append(
            PipeWireNode(
                id=int(obj["id"]),
                name=str(p.get("node.name", "")),
                description=str(p.get("node.description", "")),
                state=str((obj.get("info") or {}).get("state", "")),
                media_class=str(p.get("media.class", "")),
                role=str(p.get("media.role", "")),
                pid=pids.get(int(client)) if client is not None else None,
            )
        )
    return out


def find_node(
    objects: list[dict[str, Any]], name: str, pid: int | None = None
) -> PipeWireNode | None:
    """The node called ``name`` (published by process ``pid`` when given)."""
    for node in _nodes(objects):
        if node.name == name and (pid is None or node.pid == pid):
            return node
    return None


def camera_nodes(objects: list[dict[str, Any]]) -> list[PipeWireNode]:
    """Nodes that browsers and the camera portal list: Video/Source with media.role Camera."""
    return [n for n in _nodes(objects) if n.media_class == "Video/Source" and n.role == "Camera"]


def node_readers(objects: list[dict[str, Any]], node_id: int) -> int:
    """How many links leave node ``node_id`` (each one a reader)."""
    n = 0
    for obj in objects:
        if str(obj.get("type", "")).endswith(":Link"):
            p = _props(obj)
            out_node = (obj.get("info") or {}).get("output-node-id", p.get("link.output.node"))
            if out_node is not None and int(out_node) == node_id:
                n += 1
    return n


def has_element(element: str, inspect: str | None = None) -> bool:
    """True when GStreamer (``gst-inspect-1.0``) knows ``element``."""
    inspect = inspect or shutil.which("gst-inspect-1.0")
    if inspect is None:
        return False
    try:
        res = subprocess.run([inspect, element], capture_output=True, timeout=TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return res.returncode == 0


def check_pipewire() -> str:
    """Raise DeviceError naming what is missing; return gst-launch-1.0's path when all is there."""
    launch = shutil.which("gst-launch-1.0")
    inspect = shutil.which("gst-inspect-1.0")
    if launch is None or inspect is None:
        raise DeviceError(
            "the PipeWire camera needs GStreamer's command-line tools (gst-launch-1.0, "
            "gst-inspect-1.0), which are not installed",
            hint=missing_package_hint("tools"),
        )
    for element, part in ELEMENTS.items():
        if not has_element(element, inspect):
            what = "GStreamer's PipeWire plugin" if part == "pipewiresink" else "GStreamer's base"
            raise DeviceError(
                f"the GStreamer element {element!r} is missing ({what} plugins)",
                hint=missing_package_hint(part),
            )
    ok, where = _daemon_listening()
    if not ok:
        raise DeviceError(
            f"no PipeWire session: {where}",
            hint=missing_package_hint("daemon")
            + ", then start it: systemctl --user start pipewire wireplumber",
        )
    if session_manager() is None:
        raise DeviceError(
            "PipeWire runs but no session manager (WirePlumber) is connected: nothing would "
            "link an application to the camera",
            hint=missing_package_hint("session") + ", then: systemctl --user start wireplumber",
        )
    return launch


def pipewire_available() -> bool:
    """True when a PipeWire daemon listens and a session manager is connected (for auto)."""
    ok, _ = _daemon_listening()
    return ok and session_manager() is not None
