"""imgrec data check writes a report only where asked."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import make_image_folder

from imgrec.cli.main import main


def test_no_flag_writes_nothing_and_mentions_no_file(tmp_path, monkeypatch, capsys) -> None:
    data = make_image_folder(tmp_path / "shapes", per_class=3, size=16)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(["data", "check", str(data)]) == 0
    out = capsys.readouterr().out
    assert list(work.iterdir()) == []
    assert "data_check.json" not in out and "report:" not in out


def test_json_flag_writes_the_report_there(tmp_path, capsys) -> None:
    data = make_image_folder(tmp_path / "shapes", per_class=3, size=16)
    for flag in ("--json", "--out"):
        target = tmp_path / f"check{flag}.json"
        assert main(["data", "check", str(data), flag, str(target)]) == 0
        assert "problems" in json.loads(target.read_text()) and str(target) in capsys.readouterr().out
    assert not Path("data_check.json").exists()
