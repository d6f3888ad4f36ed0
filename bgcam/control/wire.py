"""JSON as the control surfaces read it from a client: bounded and strictly standard.

:func:`loads` is :func:`json.loads` with three refusals, each a :class:`ValueError` with a message
a client can act on:

- nesting deeper than :data:`MAX_DEPTH` (checked before parsing, so a line of ``[[[[…`` costs no
  recursion and never becomes a RecursionError);
- ``NaN``, ``Infinity`` and ``-Infinity``, which are not JSON;
- numbers that do not fit a double (``1e999`` would become ``inf`` and be echoed back as
  ``Infinity``, which is not JSON either).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = ["MAX_DEPTH", "loads"]

MAX_DEPTH = 8
"""Arrays/objects inside each other; a request needs 2."""

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


def _depth(data: bytes) -> int:
    deepest = depth = 0
    for m in _BRACKET.finditer(_STRING.sub(b"", data)):
        if m.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def loads(data: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """Parse one JSON document from a client; ValueError when it is not acceptable."""
    raw = data.encode() if isinstance(data, str) else data
    if _depth(raw) > max_depth:
        raise ValueError(f"nested too deeply: more than {max_depth} levels")
    return json.loads(raw, parse_constant=_constant, parse_float=_float)
