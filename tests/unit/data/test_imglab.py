"""data.imglab.read_imglab: dlib's XML boxes, hostile XML, bad boxes and unsafe paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imgrec.data.imglab import read_imglab
from imgrec.errors import DatasetError, MissingInputError

XML = """<?xml version='1.0' encoding='ISO-8859-1'?>
<?xml-stylesheet type='text/xsl' href='image_metadata_stylesheet.xsl'?>
<dataset><name>t</name><images>
  <image file='a.jpg'>
    <box top='10' left='20' width='30' height='40'/>
    <box top='1' left='2' width='3' height='4' ignore='1'/>
    <box top='x' left='2' width='3' height='4'/>
    <box top='5' left='5' width='0' height='4'/>
  </image>
  <image file='sub/b.jpg'/>
  <image file='../../etc/passwd'><box top='1' left='1' width='2' height='2'/></image>
</images></dataset>
"""


def test_boxes_ignore_flags_bad_boxes_and_unsafe_paths(tmp_path: Path) -> None:
    (tmp_path / "set.xml").write_text(XML, encoding="latin-1")
    ds = read_imglab(tmp_path / "set.xml")
    assert ds.task == "detect" and ds.classes == ["face"] and len(ds) == 2
    assert ds.sources == [str(tmp_path / "a.jpg"), str(tmp_path / "sub" / "b.jpg")]
    np.testing.assert_array_equal(ds.targets[0].boxes, [[20, 10, 50, 50], [2, 1, 5, 5]])
    assert ds.targets[0].crowd.tolist() == [False, True] and len(ds.targets[1]) == 0
    assert sorted(i.code for i in ds.issues) == ["bad_box", "bad_box", "unsafe_path"]


def test_not_imglab_missing_and_entity_bombs_are_refused(tmp_path: Path) -> None:
    with pytest.raises(MissingInputError):
        read_imglab(tmp_path / "none.xml")
    (tmp_path / "voc.xml").write_text("<annotation><object/></annotation>")
    with pytest.raises(DatasetError, match="not dlib imglab XML"):
        read_imglab(tmp_path / "voc.xml")
    bomb = '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa">]><dataset><images>&a;</images></dataset>'
    (tmp_path / "bomb.xml").write_text(bomb)
    with pytest.raises(DatasetError, match="refused for safety"):
        read_imglab(tmp_path / "bomb.xml")


def test_reads_dlibs_own_face_sets(shared_data) -> None:
    faces = shared_data("faces-dlib", "faces")
    test, train = read_imglab(faces / "testing.xml"), read_imglab(faces / "training.xml")
    assert (len(test), len(train)) == (5, 4) and not test.issues and not train.issues
    assert sum(len(t) for t in test.targets) + sum(len(t) for t in train.targets) == 43
    assert all(Path(s).is_file() for s in [*test.sources, *train.sources])
