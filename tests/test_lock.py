"""uv.lock and the Makefile stay in step with pyproject.toml.

`make run` and `make test` install exactly what uv.lock names; pyproject.toml keeps the ranges
for people who `pip install .`. These tests fail when the two drift apart (a range changed or a
dependency added without `make lock`), when a locked artifact has no hash, or when someone turns
the Makefile's install lines back into a plain `pip install -e .`.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LOCK = tomllib.loads((ROOT / "uv.lock").read_text())
PACKAGES: list[dict[str, Any]] = LOCK["package"]


def _declared() -> list[Requirement]:
    project = PYPROJECT["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra, items in project.get("optional-dependencies", {}).items():
        for item in items:
            req = Requirement(item)
            marker = f"({req.marker}) and extra == '{extra}'" if req.marker else None
            req.marker = None
            reqs.append(Requirement(f"{req}; {marker or f'extra == {extra!r}'}"))
    return reqs


def _locked_versions(name: str) -> list[Version]:
    key = canonicalize_name(name)
    return [Version(p["version"]) for p in PACKAGES if canonicalize_name(p["name"]) == key]


def _root() -> dict[str, Any]:
    return next(p for p in PACKAGES if p.get("source", {}).get("editable") == ".")


@pytest.mark.parametrize("req", _declared(), ids=str)
def test_every_declared_dependency_is_locked_within_its_range(req: Requirement) -> None:
    versions = _locked_versions(req.name)
    assert versions, f"{req.name} is declared in pyproject.toml but not in uv.lock: run `make lock`"
    outside = [str(v) for v in versions if not req.specifier.contains(v, prereleases=True)]
    assert not outside, f"uv.lock has {req.name} {outside}, outside {req.specifier}: `make lock`"


def _norm(items: list[dict[str, Any]] | list[Requirement]) -> set[tuple[str, str, str]]:
    out = set()
    for it in items:
        if isinstance(it, Requirement):
            name, spec, marker = it.name, str(it.specifier), str(it.marker or "")
        else:
            name, spec, marker = it["name"], it.get("specifier", ""), it.get("marker", "")
        marker = re.sub(r"\s+", " ", marker.replace('"', "'"))
        out.add((canonicalize_name(name), str(SpecifierSet(spec)), marker))
    return out


def test_lock_was_made_from_this_pyproject() -> None:
    """The ranges uv recorded when it wrote the lock are pyproject's ranges, names and extras."""
    recorded = _root()["metadata"]["requires-dist"]
    declared = {(n, s) for n, s, _ in _norm(_declared())}
    assert {(n, s) for n, s, _ in _norm(recorded)} == declared, "run `make lock`"
    assert LOCK["requires-python"] == PYPROJECT["project"]["requires-python"]


def test_every_locked_artifact_has_a_hash() -> None:
    for pkg in PACKAGES:
        if "editable" in pkg.get("source", {}):
            continue
        artifacts = list(pkg.get("wheels", []))
        if "sdist" in pkg:
            artifacts.append(pkg["sdist"])
        assert artifacts, f"{pkg['name']} {pkg['version']} has no artifact in uv.lock"
        for art in artifacts:
            assert str(art.get("hash", "")).startswith("sha256:"), (pkg["name"], art)


def test_build_backend_is_pinned_within_build_system_requires() -> None:
    pins = {
        canonicalize_name(c["name"]): c["specifier"] for c in LOCK["manifest"]["build-constraints"]
    }
    for item in PYPROJECT["build-system"]["requires"]:
        req = Requirement(item)
        pin = pins.get(canonicalize_name(req.name), "")
        assert pin.startswith("=="), f"{req.name} has no exact build constraint in [tool.uv]"
        assert req.specifier.contains(pin[2:]), f"build constraint {pin} outside {req.specifier}"


@pytest.mark.parametrize(
    "tag",
    ["manylinux_2_28_x86_64", "manylinux_2_28_aarch64", "win_amd64", "macosx_14_0_arm64"],
)
@pytest.mark.parametrize("package", ["numpy", "opencv-contrib-python", "mediapipe"])
def test_core_packages_have_wheels_for_every_promised_platform(package: str, tag: str) -> None:
    """README promises Linux x86_64/aarch64, Windows and macOS (Apple silicon)."""
    arch = tag.rsplit("_", 1)[-1] if not tag.startswith("win") else "amd64"
    os_part = tag.split("_", 1)[0].rstrip("0123456789")
    found = [
        w["url"].rsplit("/", 1)[-1]
        for p in PACKAGES
        if p["name"] == package
        for w in p.get("wheels", [])
    ]
    assert any(os_part in f and arch in f for f in found), f"no {tag} wheel of {package}"


def _recipe(makefile: str, target_re: str) -> str:
    match = re.search(rf"^{target_re}:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert match, f"no rule for {target_re} in the Makefile"
    return match.group(0)


def test_makefile_installs_from_the_lock() -> None:
    makefile = (ROOT / "Makefile").read_text()
    sync = re.search(r"^SYNC :=(.*)$", makefile, re.M)
    assert sync and "sync --locked" in sync.group(1), "SYNC must be `uv sync --locked`"
    for target in (r"\$\(VENV\)/\.installed", r"\$\(VENV\)/\.installed-test"):
        rule = _recipe(makefile, target)
        assert "uv.lock" in rule.splitlines()[0], f"{target} must be remade when uv.lock changes"
        assert "$(SYNC)" in rule, f"{target} must install with $(SYNC)"
    assert not re.search(r"pip install[^\n]*(-e|\s\.)", makefile), "a plain pip install is back"
    boot = (ROOT / "requirements" / "uv.txt").read_text()
    assert re.search(r"^uv==[\d.]+ \\$", boot, re.M) and "--hash=sha256:" in boot
    assert "--require-hashes" in _recipe(makefile, r"\$\(UV\)")
