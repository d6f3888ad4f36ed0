"""``check_output``: every output path is checked alike, before any work, with a fix."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bgcam.errors import OutputError
from bgcam.outpath import check_output


def test_missing_folder_of_the_output_is_created(tmp_path: Path) -> None:
    target = tmp_path / "a" / "stats.json"
    assert check_output(target, what="--stats-json") == target
    assert target.parent.is_dir() and not target.exists()


def test_only_the_outputs_own_folder_is_created(tmp_path: Path) -> None:
    """A typo higher up (`-o /data/typo/x/out.mp4`) is an error, not new folders."""
    with pytest.raises(OutputError, match="does not exist"):
        check_output(tmp_path / "a" / "b" / "stats.json", what="--stats-json")
    assert not (tmp_path / "a").exists()


def test_a_folder_output_gets_its_parent_only(tmp_path: Path) -> None:
    target = tmp_path / "runs" / "masks"
    check_output(target, what="--masks", kind="folder")
    assert target.parent.is_dir() and not target.exists()


@pytest.mark.parametrize(
    ("make", "given", "kind", "expected"),
    [
        (lambda d: (d / "f").touch(), "f/stats.json", "file", "a file is in the way of its folder"),
        (lambda d: (d / "out").mkdir(), "out", "file", "is an existing folder, not a file"),
        (lambda d: (d / "m").touch(), "m", "folder", "is an existing file, not a folder"),
    ],
)
def test_unusable_paths_name_the_users_path_and_a_fix(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make: object,
    given: str,
    kind: str,
    expected: str,
) -> None:
    make(tmp_path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OutputError) as err:
        check_output(given, what="--stats-json", kind=kind)
    assert expected in err.value.message
    assert f"--stats-json {given}" in err.value.message
    assert err.value.hint and ".partial" not in err.value.message


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o555)
    with pytest.raises(OutputError, match="not writable") as err:
        check_output(folder / "out.mp4", what="-o")
    assert err.value.hint and "chmod" in err.value.hint
