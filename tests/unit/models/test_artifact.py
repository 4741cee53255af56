"""model.json is checked before anything is loaded: its format, version and required entries."""

from __future__ import annotations

import json

import pytest

from imgrec.errors import ModelFileError
from imgrec.models import read_meta

GOOD = {
    "format": "imgrec-model", "format_version": 1, "model": "hog-svm", "family": "classical",
    "classes": ["a", "b"], "preprocessing": {"size": 32}, "files": {},
}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"format": "other"}, "format 'imgrec-model' expected; received 'other'"),
        ({"format_version": 7}, "format version 7; this imgrec reads up to 1"),
        ({"format_version": "1x"}, "format_version must be an integer; received '1x'"),
        ({"format_version": True}, "format_version must be an integer"),
        ({"model": None}, "required entry 'model'"),
    ],
)
def test_a_model_json_of_another_format_or_version_is_refused(tmp_path, change, match):
    meta = {**GOOD, **change}
    meta = {k: v for k, v in meta.items() if v is not None}
    (tmp_path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match=match):
        read_meta(tmp_path)


def test_a_model_json_that_is_not_an_object_is_refused(tmp_path):
    (tmp_path / "model.json").write_text("[1, 2]")
    with pytest.raises(ModelFileError, match="received a JSON list"):
        read_meta(tmp_path)
    assert read_meta(_write(tmp_path / "ok", GOOD))["model"] == "hog-svm"


def _write(folder, meta):  # type: ignore[no-untyped-def]
    folder.mkdir()
    (folder / "model.json").write_text(json.dumps(meta))
    return folder
