"""The public surface of the package."""

from __future__ import annotations

import bgcam


def test_all_is_sorted_and_complete() -> None:
    assert bgcam.__all__ == sorted(bgcam.__all__)
    for name in bgcam.__all__:
        assert hasattr(bgcam, name), name


def test_bgcam_ctl_imports_neither_numpy_nor_opencv() -> None:
    """A short-lived ``bgcam ctl`` must not spend a busy machine's CPU on numpy and OpenCV."""
    import subprocess
    import sys

    code = (
        "import sys, bgcam.cli.ctl; print(sorted(m for m in ('numpy', 'cv2') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]", out.stdout
