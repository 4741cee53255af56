"""imgrec.files.staged_folder: a whole output folder appears complete or not at all."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import imgrec.files as files
from imgrec.errors import OutputError
from imgrec.files import staged_folder


def test_an_error_inside_the_block_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), staged_folder(tmp_path / "out") as tmp:
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_an_empty_folder_is_filled_even_where_rename_over_a_folder_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    real_replace = os.replace
    calls = {"n": 0}

    def like_ntfs(src: str, dst: str) -> None:
        calls["n"] += 1
        if calls["n"] == 1 and os.path.isdir(dst):
            raise PermissionError(13, "Access is denied")
        real_replace(src, dst)

    monkeypatch.setattr(files.os, "replace", like_ntfs)
    with staged_folder(out) as tmp:
        (tmp / "a.txt").write_text("a")
    assert (out / "a.txt").read_text() == "a" and [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_folder_filled_meanwhile_is_kept_and_the_staging_removed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(OutputError, match=f"Cannot write {out}"), staged_folder(out) as tmp:
        (tmp / "a.txt").write_text("a")
        out.mkdir()
        (out / "theirs.txt").write_text("keep")
    assert (out / "theirs.txt").read_text() == "keep" and [p.name for p in tmp_path.iterdir()] == ["out"]
