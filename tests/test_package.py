"""The public surface of the package."""

from __future__ import annotations

import bgcam


def test_all_is_sorted_and_complete() -> None:
    assert bgcam.__all__ == sorted(bgcam.__all__)
    for name in bgcam.__all__:
        assert hasattr(bgcam, name), name
