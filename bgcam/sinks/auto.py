"""``output.sink = "auto"`` (the default): the v4l2loopback camera when its device exists, else
the PipeWire camera when a PipeWire session runs, else ``virtualcam`` (whose error explains how
to load v4l2loopback). The choice is logged in one line with the way to get the other one.
"""

from __future__ import annotations

import logging
import sys

from bgcam.errors import DeviceError

log = logging.getLogger(__name__)


def resolve_auto(device: str = "", device_name: str = "BgCam") -> str:
    """The sink name ``auto`` stands for on this machine now."""
    if device or not sys.platform.startswith("linux"):
        return "virtualcam"
    from bgcam.sinks.pipewire_env import pipewire_available
    from bgcam.sinks.virtualcam import find_bgcam_device

    try:
        path = find_bgcam_device(card_name=device_name)
    except DeviceError:
        path = None
    if path is not None:
        log.info(
            "output.sink auto: the v4l2loopback camera %s (%r); for apps that read PipeWire "
            "cameras too: --sink virtualcam,pipewire",
            path,
            device_name,
        )
        return "virtualcam"
    if pipewire_available():
        log.info(
            "output.sink auto: no v4l2loopback device named %r, so the PipeWire camera "
            "(browsers, OBS, Flatpak apps); for Zoom/Teams desktop apps load v4l2loopback: "
            "sudo scripts/setup-v4l2loopback.sh",
            device_name,
        )
        return "pipewire"
    return "virtualcam"
