"""Fixtures of this folder (defined in web_support.py, imported here by name)."""

from tests.web.web_support import artifacts, browser, control, pipeline, upload_dir, web, web_models

__all__ = ["artifacts", "browser", "control", "pipeline", "upload_dir", "web", "web_models"]
