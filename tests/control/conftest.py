"""Fixtures of this folder; its helpers live in control_support.py (imported by name)."""

from control_support import *  # noqa: F403 - pytest finds the fixtures in this namespace
