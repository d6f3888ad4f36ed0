"""The rewritten models' disk cache: a second start reads it (no onnx import), gives the same
masks, survives a damaged entry and an unwritable cache folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from bgcam.config import SegmentConfig
from bgcam.frame import ShrunkFrame
from bgcam.segment import layoutcache
from bgcam.segment.onnx import OnnxSegmenter, for_cpu_layout

ROOT = Path(__file__).resolve().parents[2]

# A fresh interpreter builds the segmenter and says whether it had to import onnx.
_PROBE = """
import sys
from bgcam.config import SegmentConfig
from bgcam.segment.onnx import OnnxSegmenter
cfg = SegmentConfig.model_validate({"segmenter": "onnx", "providers": ["CPU"], "roi": False})
OnnxSegmenter(cfg, (1280, 720)).close()
print("onnx imported" if "onnx" in sys.modules else "onnx not imported")
"""


def _cfg() -> SegmentConfig:
    return SegmentConfig.model_validate({"segmenter": "onnx", "providers": ["CPU"], "roi": False})


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BGCAM_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "cpu-layout"


def _mask(seg: OnnxSegmenter, image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    frame = cv2.resize(image, (1280, 720), interpolation=cv2.INTER_AREA)
    return seg.segment(ShrunkFrame(frame)).copy()


def _probe(env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=ROOT,
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return out.stdout.strip()


def test_a_second_start_reads_the_cache_without_importing_onnx(
    model_dir: Path, cache: Path
) -> None:
    env = {"BGCAM_CACHE_DIR": str(cache.parent), "BGCAM_MODEL_DIR": str(model_dir)}
    assert _probe(env) == "onnx imported"
    assert [p.suffixes[-2:] for p in cache.iterdir()] == [[".planar", ".onnx"]]
    assert _probe(env) == "onnx not imported"


def test_cached_and_fresh_rewrites_give_the_same_masks(
    model_dir: Path, cache: Path, astronaut: npt.NDArray[np.uint8]
) -> None:
    first = OnnxSegmenter(_cfg(), (1280, 720))  # rewrites and stores
    cached = OnnxSegmenter(_cfg(), (1280, 720))  # reads the entry
    try:
        assert len(list(cache.iterdir())) == 1
        np.testing.assert_array_equal(_mask(first, astronaut), _mask(cached, astronaut))
    finally:
        first.close()
        cached.close()


def test_a_damaged_entry_is_rewritten(
    model_dir: Path, cache: Path, astronaut: npt.NDArray[np.uint8]
) -> None:
    good = OnnxSegmenter(_cfg(), (1280, 720))
    (entry,) = cache.iterdir()
    want = entry.read_bytes()
    entry.write_bytes(want[: len(want) // 3])  # cut short, as by a full disk
    again = OnnxSegmenter(_cfg(), (1280, 720))
    try:
        np.testing.assert_array_equal(_mask(good, astronaut), _mask(again, astronaut))
        assert entry.read_bytes() == want  # the entry is whole again
    finally:
        good.close()
        again.close()


def test_an_unwritable_cache_only_costs_the_rewrite(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would be")
    monkeypatch.setenv("BGCAM_CACHE_DIR", str(blocker))
    seg = OnnxSegmenter(_cfg(), (1280, 720))
    seg.close()
    assert blocker.is_file()


def test_the_key_follows_the_model_and_a_model_left_alone_is_remembered(cache: Path) -> None:
    assert layoutcache.cache_key(b"a") != layoutcache.cache_key(b"b")
    key = layoutcache.cache_key(b"plain")
    assert layoutcache.lookup(key) is None
    layoutcache.store(key, None, False)
    assert layoutcache.lookup(key) == (None, False)
    layoutcache.forget(key)
    assert layoutcache.lookup(key) is None


def test_a_model_onnx_cannot_read_is_not_cached(tmp_path: Path, cache: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model at all")
    assert for_cpu_layout(junk, "junk.onnx") == (str(junk), False, None)
    assert not cache.exists()


def test_old_entries_are_pruned_and_a_read_keeps_its_entry(cache: Path) -> None:
    keys = [layoutcache.cache_key(bytes([i])) for i in range(layoutcache.KEEP + 5)]
    for i, key in enumerate(keys):
        layoutcache.store(key, b"model %d" % i, True)
        os.utime(cache / f"{key}.planar.onnx", (1000.0 + i, 1000.0 + i))  # stored in this order
    assert len(list(cache.iterdir())) == layoutcache.KEEP  # the five oldest went
    assert not (cache / f"{keys[4]}.planar.onnx").exists()
    # Reading the oldest entry makes it the most recent: the next write removes others.
    assert layoutcache.lookup(keys[5]) == (b"model 5", True)
    layoutcache.store(layoutcache.cache_key(b"new"), None, False)
    left = {p.name.split(".")[0] for p in cache.iterdir()}
    assert len(left) == layoutcache.KEEP
    assert keys[5] in left and layoutcache.cache_key(b"new") in left
    assert keys[6] not in left  # the least recently used went
    assert layoutcache.lookup(keys[-1]) == (b"model %d" % (len(keys) - 1), True)


def test_pruning_an_unreadable_cache_is_quiet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BGCAM_CACHE_DIR", str(tmp_path / "missing"))
    assert layoutcache.prune() == 0
