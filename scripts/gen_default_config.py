#!/usr/bin/env python3
"""Write configs/default.toml from the settings declared in bgcam/config/sections.py.

Every key is documented by its declaration's help text, so the file and the code cannot drift
apart: tests/test_config.py fails when this script would change the file.
Usage: python scripts/gen_default_config.py [OUTPUT]   (default: configs/default.toml)
"""

from __future__ import annotations

import sys
from pathlib import Path

from bgcam.config import render_default_toml


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("configs/default.toml")
    out.write_text(render_default_toml(), encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
