"""Fixtures of this folder (defined in control_support.py, imported here by name)."""

from tests.control.control_support import clip, served, xvfb

__all__ = ["clip", "served", "xvfb"]
