"""``bgcam devices``: the cameras and virtual cameras this machine has."""

from __future__ import annotations

import sys

import click

from bgcam.cli import examples


@click.command(epilog=examples("bgcam devices", "bgcam run --source /dev/video2"))
def devices() -> None:
    """List cameras (with the modes V4L2 reports) and the virtual cameras: v4l2loopback devices
    (version, exclusive_caps, Secure Boot) and the PipeWire camera (session, node, portal)."""
    if not sys.platform.startswith("linux"):
        click.echo(
            "Listing devices is implemented for Linux only; use the camera index "
            "(--source 0, 1, …)."
        )
        return
    from bgcam.sinks.virtualcam import CARD_NAME, list_video_devices
    from bgcam.sources.camera import list_cameras

    loop_paths = {d.path: d for d in list_video_devices() if d.loopback}
    cams = [c for c in list_cameras() if c.path not in loop_paths]
    click.echo("Cameras:")
    if not cams:
        click.echo(
            "  none found (no /dev/video* capture device).\n"
            "  Try BgCam with a file or stream instead: "
            "bgcam run --source clip.mp4 --sink null"
        )
    for cam in cams:
        click.echo(f"  {cam.path}  {cam.card} ({cam.driver})")
        for mode in cam.modes:
            click.echo(f"      {mode}")
    click.echo("Virtual cameras (v4l2loopback):")
    if not loop_paths:
        click.echo(
            "  none: v4l2loopback is not loaded.\n"
            "  Set one up with: sudo scripts/setup-v4l2loopback.sh"
        )
    for dev in loop_paths.values():
        mark = "  ← used by bgcam run" if dev.card == CARD_NAME else ""
        click.echo(f"  {dev.path}  {dev.card!r}{mark}")
    from bgcam.sinks.report import cameras_report

    report = cameras_report()
    for title, part in (
        ("v4l2loopback:", report["v4l2loopback"]),
        ("PipeWire camera (--sink pipewire):", report["pipewire"]),
    ):
        click.echo(title)
        for f in part["findings"]:
            mark = {True: "ok", False: "NO", None: "--"}[f["ok"]]
            click.echo(f"  [{mark}] {f['what']}: {f['state']}")
            if f["fix"] and f["ok"] is not True:
                click.echo(f"       fix: {f['fix']}")
        if part.get("camera_nodes"):
            click.echo(f"  cameras apps see: {', '.join(part['camera_nodes'])}")


COMMANDS = [devices]
