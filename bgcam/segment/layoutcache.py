"""The ``onnx`` segmenter's rewritten models, kept on disk so that starting does not import onnx.

:mod:`bgcam.segment.ortlayout` rewrites every model before onnxruntime loads it, with the
``onnx`` package. Importing that package takes 1–2.5 s on a two-core machine (nearly all of it
in ml_dtypes' extension), longer than building the rest of the engine; it delayed every
``run``, ``render`` and ``bench`` (a 9 s 720p clip renders 15 % faster without it). The
rewritten model depends only on the source model's bytes, the rewrite's code and onnx's
version, so it is stored under a key made of the three, and a later start reads it back
without importing onnx.

The cache is ``$BGCAM_CACHE_DIR/cpu-layout/`` (default: the platform's user cache dir,
``~/.cache/bgcam`` on Linux). Files are written atomically and are derived data: removing
them only costs the next start its rewrite. One that does not load is removed by
:func:`forget` and the model rewritten again. A cache that cannot be written is not an
error (the model is rewritten at each start, as before).

Each upgrade of onnx or of the rewrite makes new keys, so old entries would pile up (about
0.45 MB each; one start of the default pipeline uses five: the two models and the square one's
three narrower inputs). A read touches its entry, and every write keeps only the
:data:`KEEP` entries used most recently.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import logging
import os
from pathlib import Path

import platformdirs

from bgcam.models.fetch import write_atomic

log = logging.getLogger(__name__)

_PLANAR, _PLAIN, _SAME = ".planar.onnx", ".onnx", ".same"
"""Entry suffixes: rewritten with planar BGR input, rewritten otherwise, left as it was."""
KEEP = 24
"""Entries kept after a write: the most recently used (several model sets and versions)."""


def cache_dir() -> Path:
    """``$BGCAM_CACHE_DIR/cpu-layout`` or the platform's user cache dir's."""
    env = os.environ.get("BGCAM_CACHE_DIR")
    base = Path(env).expanduser() if env else platformdirs.user_cache_path("bgcam")
    return base / "cpu-layout"


def _rewrite_code() -> bytes:
    """The rewrite's source and onnx's version: what, besides the model, the result depends on."""
    spec = importlib.util.find_spec("bgcam.segment.ortlayout")
    origin = spec.origin if spec is not None else None
    source = Path(origin).read_bytes() if origin else b""
    try:
        version = importlib.metadata.version("onnx")
    except importlib.metadata.PackageNotFoundError:
        version = "?"
    return source + b"\0onnx " + version.encode()


def cache_key(model: bytes) -> str:
    """The key of ``model``'s rewrite (sha256 of the model, the rewrite's code, onnx's version)."""
    h = hashlib.sha256(model)
    h.update(_rewrite_code())
    return h.hexdigest()


def lookup(key: str) -> tuple[bytes | None, bool] | None:
    """The cached rewrite of ``key``: (bytes, planar), (None, False) for a model the rewrite
    leaves as it is, or None when there is no entry."""
    folder = cache_dir()
    for suffix, planar in ((_PLANAR, True), (_PLAIN, False)):
        try:
            data = (folder / f"{key}{suffix}").read_bytes()
        except OSError:
            continue
        _touch(folder / f"{key}{suffix}")
        return data, planar
    same = folder / f"{key}{_SAME}"
    if same.is_file():
        _touch(same)
        return None, False
    return None


def _touch(path: Path) -> None:
    """Mark an entry as just used (its modification time orders the pruning)."""
    try:
        os.utime(path)
    except OSError as exc:
        log.debug("onnx: cannot touch the cached model %s: %s", path.name, exc)


def prune(keep: int = KEEP) -> int:
    """Remove all but the ``keep`` most recently used entries; how many were removed."""
    entries: list[tuple[float, Path]] = []
    try:
        with os.scandir(cache_dir()) as it:
            for entry in it:
                if entry.name.endswith((_PLANAR, _PLAIN, _SAME)) and entry.is_file():
                    entries.append((entry.stat().st_mtime, Path(entry.path)))
    except OSError:
        return 0
    entries.sort(reverse=True)
    removed = 0
    for _, path in entries[keep:]:
        try:
            path.unlink()
            removed += 1
        except OSError as exc:
            log.debug("onnx: cannot remove the old cached model %s: %s", path.name, exc)
    if removed:
        log.debug("onnx: removed %d old cached model(s) from %s", removed, cache_dir())
    return removed


def store(key: str, rewritten: bytes | None, planar: bool) -> None:
    """Keep a rewrite (``None``: the model needs none); a failure is logged at DEBUG only."""
    suffix = _SAME if rewritten is None else _PLANAR if planar else _PLAIN
    try:
        write_atomic(cache_dir() / f"{key}{suffix}", rewritten or b"")
    except OSError as exc:
        log.debug("onnx: cannot cache the rewritten model in %s: %s", cache_dir(), exc)
        return
    prune()


def forget(key: str) -> None:
    """Remove ``key``'s entries (one that onnxruntime could not load)."""
    for suffix in (_PLANAR, _PLAIN, _SAME):
        try:
            (cache_dir() / f"{key}{suffix}").unlink(missing_ok=True)
        except OSError as exc:
            log.debug("onnx: cannot remove the cached model %s: %s", key, exc)
