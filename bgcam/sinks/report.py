"""What ``bgcam devices`` and ``bgcam doctor`` say about the two virtual cameras.

:func:`cameras_report` gathers, without changing anything:

* **PipeWire camera**: the daemon's socket, the session manager, GStreamer's ``pipewiresink``
  and ``shmsrc`` (the shared-memory transport; without it frames go through a pipe),
  BgCam's node when a ``bgcam run --sink pipewire`` publishes it (and every camera node apps
  see), and whether xdg-desktop-portal offers the Camera interface (Flatpak apps and sandboxed
  browsers reach cameras only through it);
* **v4l2loopback**: loaded or not, its version, ``exclusive_caps`` (Chrome lists only devices
  that advertise capture alone), the Secure Boot state (``mokutil --sb-state``) and the module's
  signer (``modinfo -F signer``): with Secure Boot on, an unsigned module does not load.

Each finding carries ``ok`` (True, False, or None for a note) and a ``fix`` when there is one.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from bgcam.errors import BgCamError

SYS_MODULE = Path("/sys/module/v4l2loopback")
TIMEOUT = 5.0


def _run(cmd: list[str]) -> str | None:
    if shutil.which(cmd[0]) is None:
        return None
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (res.stdout or res.stderr).strip() if res.returncode == 0 else None


def _finding(what: str, ok: bool | None, state: str, fix: str | None = None) -> dict[str, Any]:
    return {"what": what, "ok": ok, "state": state, "fix": fix}


def portal_has_camera() -> bool | None:
    """True/False when the session bus answers; None when it cannot be asked (no gdbus)."""
    if shutil.which("gdbus") is None:
        return None
    out = _run(
        [
            "gdbus",
            "call",
            "--session",
            "--timeout",
            "3",
            "--dest",
            "org.freedesktop.portal.Desktop",
            "--object-path",
            "/org/freedesktop/portal/desktop",
            "--method",
            "org.freedesktop.DBus.Properties.Get",
            "org.freedesktop.portal.Camera",
            "version",
        ]
    )
    return out is not None


def pipewire_report(node_name: str = "bgcam") -> dict[str, Any]:
    from bgcam.sinks import pipewire_env as pw

    findings = []
    try:
        pw.check_pipewire()
        findings.append(_finding("PipeWire session", True, "daemon, session manager, pipewiresink"))
    except BgCamError as exc:
        findings.append(_finding("PipeWire session", False, exc.message, exc.hint))
    shm = pw.has_element("shmsrc")
    findings.append(
        _finding(
            "PipeWire camera transport",
            True if shm else None,
            "shared memory (GStreamer's shmsrc)"
            if shm
            else "a pipe (GStreamer's shmsrc is missing: dearer, and one reader at a time)",
            None if shm else pw.missing_package_hint("bad"),
        )
    )
    objects = pw.graph()
    node = pw.find_node(objects, node_name) if objects is not None else None
    cams = [n.description or n.name for n in pw.camera_nodes(objects)] if objects else []
    if node is not None:
        readers = pw.node_readers(objects or [], node.id)
        findings.append(
            _finding(
                "PipeWire camera node",
                True,
                f"{node.name} (id {node.id}, {node.description!r}, {node.state}, "
                f"{readers} reader(s))",
            )
        )
    else:
        findings.append(
            _finding(
                "PipeWire camera node",
                None,
                "not published now" if objects is not None else "cannot tell (no pw-dump)",
                "it exists while BgCam runs with --sink pipewire (check: pw-cli ls Node)",
            )
        )
    portal = portal_has_camera()
    findings.append(
        _finding(
            "camera portal",
            portal,
            {True: "xdg-desktop-portal offers the Camera interface", False: "not offered",
             None: "cannot tell (no gdbus)"}[portal],
            None
            if portal
            else "Flatpak apps need it: install xdg-desktop-portal (and a desktop backend)",
        )
    )  # fmt: skip
    return {
        "socket": str(pw.pipewire_socket()) if pw.pipewire_socket() else None,
        "session_manager": pw.session_manager(objects) if objects is not None else None,
        "node": None if node is None else {"id": node.id, "state": node.state},
        "camera_nodes": cams,
        "portal": portal,
        "findings": findings,
    }


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return None


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for p in version.split("."):
        if not p.isdigit():
            break
        parts.append(int(p))
    return tuple(parts)


def v4l2loopback_report(module: Path = SYS_MODULE) -> dict[str, Any]:
    findings = []
    loaded = module.is_dir()
    version = _read(module / "version")
    exclusive = _read(module / "parameters" / "exclusive_caps")
    sb = _run(["mokutil", "--sb-state"])
    signer = _run(["modinfo", "-F", "signer", "v4l2loopback"])
    if not loaded:
        findings.append(
            _finding(
                "v4l2loopback",
                False,
                "not loaded",
                "sudo scripts/setup-v4l2loopback.sh (Zoom/Teams desktop apps need it); "
                "browsers, OBS and Flatpak apps can use --sink pipewire instead",
            )
        )
    else:
        findings.append(_finding("v4l2loopback", True, f"loaded, version {version or '?'}"))
        if exclusive is not None and "Y" not in exclusive.upper() and "1" not in exclusive:
            findings.append(
                _finding(
                    "exclusive_caps",
                    False,
                    exclusive,
                    "Chrome lists the device only with exclusive_caps=1: "
                    "sudo scripts/setup-v4l2loopback.sh reloads it so",
                )
            )
        if version and _version_tuple(version) >= (0, 14):
            findings.append(
                _finding(
                    "one reader at a time",
                    None,
                    f"v4l2loopback {version} serves one application at a time",
                    "for a second app make a second device: sudo v4l2loopback-ctl add "
                    "-n 'BgCam 2' -x 1, and run BgCam with --device on it",
                )
            )
    if sb is not None and "enabled" in sb.lower():
        ok = bool(signer) if signer is not None else None
        findings.append(
            _finding(
                "Secure Boot",
                ok,
                f"{sb}; v4l2loopback signed by {signer!r}" if signer else f"{sb}; module unsigned",
                None
                if ok
                else "an unsigned module does not load under Secure Boot: enrol the DKMS key "
                "(sudo mokutil --import /var/lib/dkms/mok.pub, then reboot) or use "
                "--sink pipewire (no module)",
            )
        )
    elif sb is not None:
        findings.append(_finding("Secure Boot", True, sb))
    return {
        "loaded": loaded,
        "version": version,
        "exclusive_caps": exclusive,
        "secure_boot": sb,
        "signer": signer,
        "findings": findings,
    }


def cameras_report(node_name: str = "bgcam") -> dict[str, Any]:
    return {"pipewire": pipewire_report(node_name), "v4l2loopback": v4l2loopback_report()}
