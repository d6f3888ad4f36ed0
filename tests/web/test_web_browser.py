"""The panel in a real browser: Debian's chromium, headless, driven by Playwright.

The page is loaded through the ?token= address ``bgcam open`` prints, operated with the
keyboard only, and every change is read back over the real control socket. Screenshots (wide and
narrow) are kept in test-artifacts/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import pytest

from bgcam.control.client import ControlClient
from bgcam.pipeline import Pipeline
from bgcam.web.server import WebHandle
from tests.live_media import wait_for
from tests.web.web_support import photo


def socket_status(path: Path) -> dict[str, Any]:
    with ControlClient(path) as client:
        return client.call("status")


@pytest.fixture
def problems() -> list[str]:
    """Page errors and console errors/warnings; must stay empty (a test may drop expected ones)."""
    return []


@pytest.fixture
def page(browser: Any, web: WebHandle, problems: list[str]) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1100, "height": 850})
    pg = context.new_page()
    pg.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    pg.on(
        "console",
        lambda msg: (
            problems.append(f"console {msg.type}: {msg.text}")
            if msg.type in ("error", "warning")
            else None
        ),
    )
    pg.goto(web.panel_url)
    pg.wait_for_function("() => document.getElementById('connection').textContent === 'Connected'")
    yield pg
    context.close()
    assert problems == []


def test_blur_slider_moved_by_keyboard_is_read_back_over_the_socket(
    page: Any, control: Path, artifacts: Path
) -> None:
    assert page.url.endswith("/")  # the token left the address bar for a cookie
    slider = page.get_by_label("Blur strength")
    assert slider.input_value() == "60"
    slider.focus()
    page.keyboard.press("Home")  # 0
    for _ in range(3):
        page.keyboard.press("PageUp")  # +10 each
    for _ in range(5):
        page.keyboard.press("ArrowRight")  # +1 each
    assert slider.input_value() == "35"
    wait_for(lambda: socket_status(control)["blur"] == 35, what="blur 35 over the socket")
    page.wait_for_function("() => document.getElementById('message').textContent.includes('35')")
    assert page.locator("#blur-value").text_content() == "35"
    page.wait_for_function("() => document.getElementById('preview').naturalWidth > 0")
    page.screenshot(path=str(artifacts / "web-panel.png"), full_page=True)


def test_every_control_works_from_the_keyboard(
    page: Any, control: Path, pipeline: Pipeline
) -> None:
    page.get_by_label("Remove (solid colour)").focus()
    page.keyboard.press("Space")
    wait_for(lambda: socket_status(control)["mode"] == "remove", what="mode remove")

    page.get_by_label("Blur type").select_option("box")  # a select, reached by its label
    wait_for(
        lambda: socket_status(control)["config"]["compose"]["blur_type"] == "box",
        what="blur type box",
    )

    page.get_by_label("Person finder (segmenter)").select_option("hsv")
    wait_for(lambda: socket_status(control)["segmenter"] == "hsv", what="segmenter hsv")

    pause = page.get_by_role("button", name="Pause video")
    pause.focus()
    page.keyboard.press("Enter")
    wait_for(lambda: socket_status(control)["paused"] is True, what="paused")
    page.wait_for_function(
        "() => document.getElementById('pause').getAttribute('aria-pressed') === 'true'"
    )
    page.keyboard.press("Enter")
    wait_for(lambda: socket_status(control)["paused"] is False, what="resumed")


def test_background_upload_from_the_page(
    page: Any, control: Path, upload_dir: Path, tmp_path: Path, problems: list[str]
) -> None:
    good = tmp_path / "beach.png"
    cv2.imwrite(str(good), photo((320, 180)))
    page.get_by_label("Image file").set_input_files(str(good))
    page.get_by_role("button", name="Upload and use it").click()
    page.wait_for_function(
        "() => document.getElementById('message').textContent"
        ".includes('Background set to beach.png')"
    )
    status = socket_status(control)
    assert status["mode"] == "replace"
    assert [p.suffix for p in upload_dir.iterdir()] == [".png"]

    bad = tmp_path / "notes.png"
    bad.write_text("not an image at all")
    page.get_by_label("Image file").set_input_files(str(bad))
    page.get_by_role("button", name="Upload and use it").click()
    alert = page.get_by_role("alert")
    alert.filter(has_text="not an image").wait_for()
    # Chromium logs the refused request (415) on the console: expected here.
    problems[:] = [p for p in problems if "status of 415" not in p]
    assert len(list(upload_dir.iterdir())) == 1  # the bad file was not saved


def test_page_is_accessible_and_fits_a_narrow_window(page: Any, artifacts: Path) -> None:
    unlabeled = page.evaluate(
        """() => [...document.querySelectorAll('input, select, button, output')]
            .filter(el => {
              if (el.tagName === 'BUTTON') return !el.textContent.trim();
              if (el.tagName === 'OUTPUT') return !el.htmlFor.length;
              return !(el.labels && el.labels.length) && !el.getAttribute('aria-label');
            })
            .map(el => el.outerHTML)"""
    )
    assert unlabeled == []
    assert page.locator("h1").count() == 1
    assert page.get_by_role("heading", level=2).all_text_contents() == [
        "Live output",
        "Status",
        "Controls",
    ]
    assert page.locator("#stats-live").get_attribute("aria-live") == "polite"
    assert page.get_by_role("alert").count() == 1

    # Stats refresh by themselves.
    first = page.locator("#stat-frames").text_content()
    page.wait_for_function(
        "(t) => document.getElementById('stat-frames').textContent !== t", arg=first
    )

    # Tab order reaches the controls, starting with the skip link.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"

    page.set_viewport_size({"width": 360, "height": 900})
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    wide = page.evaluate(
        """() => [...document.querySelectorAll('body *')]
            .filter(el => el.getBoundingClientRect().right > window.innerWidth)
            .map(el => el.tagName + '#' + el.id + '.' + el.className + ' ' +
                 Math.round(el.getBoundingClientRect().right))"""
    )
    assert overflow <= 0, wide
    box = page.get_by_label("Blur strength").bounding_box()
    assert box is not None and box["x"] + box["width"] <= 360
    page.screenshot(path=str(artifacts / "web-panel-narrow.png"), full_page=True)


def test_hiding_the_preview_stops_the_stream(page: Any, web: WebHandle) -> None:
    page.wait_for_function("() => document.getElementById('preview').naturalWidth > 0")
    wait_for(lambda: web.panel.viewers == 1, what="one preview viewer")
    page.get_by_label("Show the live preview").uncheck()
    wait_for(lambda: web.panel.viewers == 0, what="the preview stream to end")
    encoded = web.panel.encoder.encoded
    page.wait_for_timeout(500)
    assert web.panel.encoder.encoded == encoded  # nobody watches: nothing is encoded
    page.get_by_label("Show the live preview").check()
    wait_for(lambda: web.panel.viewers == 1, what="the preview to come back")
