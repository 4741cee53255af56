"""Hostile label files give a clear DatasetError or per-file issues: never a traceback or a hang."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from tests.detection_data import voc_xml, write_coco, write_jpeg, write_voc, write_yolo

from imgrec.data import labelio, load_dataset
from imgrec.data.labelio import LabelLimits
from imgrec.errors import DatasetError


def _coco_file(tmp_path: Path, text: str | bytes) -> Path:
    root = write_coco(tmp_path / "coco")
    f = root / "annotations" / "instances_train.json"
    f.write_bytes(text if isinstance(text, bytes) else text.encode())
    return root


def _coco_with(tmp_path: Path, **changes: object) -> Path:
    root = write_coco(tmp_path / "coco")
    f = root / "annotations" / "instances_train.json"
    doc = json.loads(f.read_text())
    doc.update(changes)
    f.write_text(json.dumps(doc))
    return root


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[" * 200_000 + "]" * 200_000, "nests JSON too deeply"),
        ('{"images": [], "categories": [], "annotations": [NaN]}', "NaN is not a number"),
        ('{"images": [{"id": ' + "9" * 20_000 + "}]}", "cannot be used"),
        ("{not json", "not valid JSON"),
        (b'{"images": "\xff\xfe"}', "not UTF-8"),
        ('{"images": {}, "categories": []}', "expected an object with lists"),
        ("[1, 2, 3]", "expected an object with lists"),
    ],
)
def test_coco_unparsable_files_raise_dataset_error(tmp_path: Path, text: str | bytes, match: str) -> None:
    root = _coco_file(tmp_path, text)
    with pytest.raises(DatasetError, match=match):
        load_dataset(root)


def test_coco_size_limit_is_checked_before_parsing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_coco(tmp_path / "coco")
    monkeypatch.setattr(labelio, "LABEL_LIMITS", LabelLimits(max_json_bytes=100))
    monkeypatch.setattr(labelio.json, "loads", lambda *a, **k: pytest.fail("parsed a file over the limit"))
    with pytest.raises(DatasetError, match=r"the limit is 0\.0 MB") as err:
        load_dataset(root)
    assert err.value.code == "labels_too_large"


def test_coco_wrong_types_become_issues(tmp_path: Path) -> None:
    anns = [
        {"image_id": 100, "category_id": 3, "bbox": "1,2,3,4"},
        {"image_id": 100, "category_id": 3, "bbox": [1, 2, -3, 4]},
        {"image_id": 100, "category_id": 3, "bbox": ["__inf__", 2, 3, 4]},
        {"image_id": 100, "category_id": 3, "bbox": [True, 2, 3, 4]},
        {"image_id": 100, "category_id": 3, "bbox": [1e300, 2, 3, 4]},
        {"image_id": "x", "category_id": 3, "bbox": [1, 2, 3, 4]},
        "not an object",
        {"image_id": 100, "category_id": [3], "bbox": [1, 2, 3, 4]},
    ]
    text = json.dumps(
        {"images": [{"id": 100, "file_name": "a.jpg"}], "annotations": anns, "categories": [{"id": 3, "name": "cat"}]}
    )
    root = _coco_file(tmp_path, text.replace('"__inf__"', "1e400"))
    ds = load_dataset(root)
    assert [i.code for i in ds.issues if i.code != "unlabeled_image"] == [
        "bad_box",
        "bad_box",
        "bad_box",
        "bad_box",
        "bad_box",
        "unknown_image",
        "bad_box",
        "unknown_class",
    ]
    assert len(ds) == 1 and len(ds.targets[0]) == 0


def test_coco_bad_categories_raise(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="integer 'id' and a string 'name'"):
        load_dataset(_coco_with(tmp_path, categories=[{"id": "3", "name": "cat"}]))


def test_coco_boxes_per_image_are_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(labelio, "LABEL_LIMITS", LabelLimits(max_boxes=50))
    anns = [{"image_id": 100, "category_id": 3, "bbox": [1, 1, 2, 2]} for _ in range(500)]
    ds = load_dataset(_coco_with(tmp_path, annotations=anns))
    capped = [i for i in ds.issues if i.code == "too_many_boxes"]
    assert len(capped) == 1 and "more than 50 boxes" in capped[0].message
    assert max(len(t) for t in ds.targets) == 50


def _yolo(tmp_path: Path, lines: str | bytes) -> Path:
    root = tmp_path / "y"
    write_jpeg(root / "images" / "a.jpg", (100, 50))
    (root / "labels").mkdir(parents=True)
    data = lines if isinstance(lines, bytes) else lines.encode()
    (root / "labels" / "a.txt").write_bytes(data)
    (root / "data.yaml").write_text("names: [cat, dog]\n")
    return root


def test_yolo_bad_lines_are_issues_with_line_numbers(tmp_path: Path) -> None:
    lines = [
        "0 0.5 0.5 0.2 0.2",  # 1 ok
        "0 nan 0.5 0.1 0.1",  # 2
        "0 inf 0.5 0.1 0.1",  # 3
        "0 1e309 0.5 0.1 0.1",  # 4
        "0 0.5 0.5 -0.1 0.1",  # 5 negative width
        "x 0.5 0.5 0.1 0.1",  # 6
        "7 0.5 0.5 0.1 0.1",  # 7 unknown class
        "0 0.5",  # 8
        "",  # 9 blank: ignored
        "1 0.1 0.1 0.3 0.1 0.3 0.4",  # 10 polygon -> its box
        "1e400 0.5 0.5 0.1 0.1",  # 11 class not an integer
    ]
    ds = load_dataset(_yolo(tmp_path, "\n".join(lines) + "\n"))
    found = [(i.code, i.line) for i in ds.issues]
    assert found == [
        ("unparsable_line", 2),
        ("unparsable_line", 3),
        ("unparsable_line", 4),
        ("bad_box", 5),
        ("unparsable_line", 6),
        ("unknown_class", 7),
        ("unparsable_line", 8),
        ("unparsable_line", 11),
    ]
    t = ds.targets[0]
    assert t.labels.tolist() == [0, 1] and t.origins.tolist() == [1, 10]
    assert t.boxes[1].tolist() == pytest.approx([10.0, 5.0, 30.0, 20.0])


def test_yolo_non_utf8_label_is_an_issue(tmp_path: Path) -> None:
    ds = load_dataset(_yolo(tmp_path, b"0 0.5 0.5 0.1 0.1\n\xff\xfe\x00garbage\n"))
    assert [i.code for i in ds.issues] == ["unreadable_labels"] and "not UTF-8" in ds.issues[0].message
    assert len(ds.targets[0]) == 0


def test_yolo_a_million_boxes_does_not_hang(tmp_path: Path) -> None:
    root = _yolo(tmp_path, "0 0.5 0.5 0.1 0.1\n" * 1_000_000)
    started = time.perf_counter()
    ds = load_dataset(root)
    assert time.perf_counter() - started < 20
    assert [i.code for i in ds.issues] == ["unreadable_labels"] and "the limit is" in ds.issues[0].message


def test_yolo_boxes_per_image_are_capped(tmp_path: Path) -> None:
    root = _yolo(tmp_path, "0 0.5 0.5 0.1 0.1\n" * 20_000)
    ds = load_dataset(root)
    assert len(ds.targets[0]) == labelio.LABEL_LIMITS.max_boxes
    assert [(i.code, i.line) for i in ds.issues] == [("too_many_boxes", 10_001)]


def test_yolo_hostile_yaml(tmp_path: Path) -> None:
    root = write_yolo(tmp_path / "y")
    (root / "data.yaml").write_text("names: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(DatasetError, match="not readable YAML"):
        load_dataset(root)
    (root / "data.yaml").write_text("names: {0: a, 5: b}\n")
    with pytest.raises(DatasetError, match=r"mapping 0\.\.N-1"):
        load_dataset(root)


_BOMB = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    "<annotation><filename>&lol3;</filename></annotation>"
)
_EXTERNAL = '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><annotation>&x;</annotation>'


@pytest.mark.parametrize(
    ("xml", "match"),
    [
        (_BOMB, "refused for safety"),
        (_EXTERNAL, "refused for safety"),
        ("<annotation><object>", "not well-formed"),
        ("<a>" * 100_000 + "</a>" * 100_000, ""),  # deep nesting: parsed or refused, never a crash
        (b"<annotation>\xff\xfe</annotation>", "not well-formed"),
    ],
)
def test_voc_hostile_xml_is_a_per_file_issue(tmp_path: Path, xml: str | bytes, match: str) -> None:
    root = write_voc(tmp_path / "voc")
    f = root / "Annotations" / "a.xml"
    f.write_bytes(xml if isinstance(xml, bytes) else xml.encode())
    ds = load_dataset(root)
    assert "a.jpg" not in {Path(s).name for s in ds.sources} or not match
    if match:
        issue = next(i for i in ds.issues if i.file == str(f))
        assert issue.code == "unreadable_labels" and match in issue.message


def test_voc_size_limit_and_bad_boxes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_voc(tmp_path / "voc")
    bad = [("cat", "abc", "1", "2", "3", 0), ("cat", "5", "5", "1", "1", 0), ("cat", "1e999", "1", "2", "3", 0)]
    (root / "Annotations" / "d.xml").write_text(voc_xml("d.jpg", (32, 32), bad))
    ds = load_dataset(root)
    assert [i.code for i in ds.issues] == ["bad_box", "bad_box", "bad_box"]
    monkeypatch.setattr(labelio, "LABEL_LIMITS", LabelLimits(max_xml_bytes=10))
    ds = load_dataset(root)
    assert len(ds) == 0 and {i.code for i in ds.issues} == {"unreadable_labels", "unlabeled_image"}
