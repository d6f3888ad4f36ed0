"""Validation errors in words: the key, what was expected and what was given, "did you mean"."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel


def describe_error(err: Mapping[str, Any], parent: type[BaseModel]) -> str:
    """One line naming the key, what was expected and what was given (``parent``: its section)."""
    loc = tuple(err["loc"])
    key = ".".join(str(p) for p in loc)
    given = err.get("input")
    kind = err["type"]
    if kind == "extra_forbidden":
        known = list(parent.model_fields)
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        maybe = f" (did you mean {'.'.join([*map(str, loc[:-1]), close[0]])!r}?)" if close else ""
        return f"{key}: unknown key{maybe}; expected one of: {', '.join(known)}"
    expected = _expected(err)
    if kind == "tuple_type" or (len(loc) > 2 and isinstance(loc[-1], int)):
        list_key = ".".join(str(p) for p in loc if not isinstance(p, int))
        expected += f' (e.g. --set {list_key}=A,B or {list_key} = ["A", "B"] in a file)'
    return f"{key}: expected {expected}, got {given!r}"


_TYPE_WORDS = {
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "string_type": "a string",
    "tuple_type": "a list",
    "model_type": "a table (section)",
    "dict_type": "a table (section)",
}


def _expected(err: Mapping[str, Any]) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind in _TYPE_WORDS:
        return str(_TYPE_WORDS[kind])
    if kind == "literal_error":
        return "one of " + str(ctx.get("expected", ""))
    bounds = {
        "greater_than": "a value > {gt}",
        "greater_than_equal": "a value ≥ {ge}",
        "less_than": "a value < {lt}",
        "less_than_equal": "a value ≤ {le}",
    }
    if kind in bounds:
        return bounds[kind].format(**ctx)
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    return str(err["msg"]).lower()
