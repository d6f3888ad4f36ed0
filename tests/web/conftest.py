"""Fixtures of this folder; its helpers live in web_support.py (imported by name)."""

from web_support import *  # noqa: F403 - pytest finds the fixtures in this namespace
