"""``bgcam open``: open the running daemon's web control panel in a browser."""

from __future__ import annotations

import os
import socket
import sys
import webbrowser
from urllib.parse import urlsplit

import click

from bgcam.cli import examples
from bgcam.control.client import NotRunningError
from bgcam.web.access import panel_url, read_access


def _has_display() -> bool:
    """Whether a graphical browser can open here (else webbrowser may start a text browser)."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _answers(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), 2.0):
            return True
    except OSError:
        return False


@click.command("open", epilog=examples("bgcam open", "bgcam open --print"))
@click.option(
    "--print", "print_only", is_flag=True, help="Only print the address; do not start a browser."
)
def open_cmd(print_only: bool) -> None:
    """Open the web control panel of the running daemon (needs web.enabled = true).

    The address carries the panel's access token; keep it to yourself.
    """
    url, token = read_access()
    if not _answers(url):
        raise NotRunningError(
            f"the web panel at {url} does not answer (the daemon may have crashed)",
            hint="start it again: `bgcam run --set web.enabled=true`",
        )
    full = panel_url(url, token)
    if print_only or not _has_display() or not webbrowser.open(full):
        click.echo(full)
    else:
        click.echo(f"opened the BgCam panel ({url}) in your browser")


COMMANDS = [open_cmd]
