"""One path for segmentation: ``imgrec predict``, the Predictor on a path, on bytes and on a
decoded array, and ``imgrec serve`` give identical masks on real JPEGs (the classify version
is test_one_path.py). A command that decoded a JPEG at another scale, or resized another way,
would move mask edges."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from tests.imported_segmenters import DEEPLAB, SELFIE, import_segmenter, photo

from imgrec.cli.main import main
from imgrec.inference import Predictor
from imgrec.serve import ServeConfig, create_app

pytestmark = [pytest.mark.realdata]
mask_utils = pytest.importorskip("pycocotools.mask")
PHOTOS = ("face.jpg", "pets.jpg", "cat_720p.jpg")


def _masks(entry: dict, size: tuple[int, int]) -> dict[str, np.ndarray]:
    w, h = size
    return {s["label"]: mask_utils.decode({"size": [h, w], "counts": s["rle"]["counts"].encode()})
            for s in entry["segments"]}  # fmt: skip


@pytest.mark.parametrize("model", [SELFIE, DEEPLAB])
def test_predict_predictor_bytes_path_and_serve_agree(model, tmp_path, capsys):
    run = import_segmenter(model, tmp_path / "run")
    files = [photo(n) for n in PHOTOS]
    predictor = Predictor.from_run(run)
    on_paths = predictor.predict(files)
    on_bytes = predictor.predict([f.read_bytes() for f in files])
    for a, b in zip(on_paths, on_bytes, strict=True):
        np.testing.assert_array_equal(a.mask, b.mask)
    assert main(["predict", str(run), *map(str, files), "--format", "json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    with TestClient(create_app({"m": predictor}, ServeConfig())) as client:
        parts = [("files", (f.name, f.read_bytes(), "image/jpeg")) for f in files]
        served = client.post("/v1/models/m/predict", files=parts).json()["predictions"]
    for seg, row, entry in zip(on_paths, cli, served, strict=True):
        expected = seg.to_dict()["segments"]
        assert row["segments"] == expected and [{**s} for s in entry["segments"]] == expected
        for label, m in _masks(entry, seg.image_size).items():
            np.testing.assert_array_equal(m, seg.mask == seg.classes.index(label))
    assert any(s["label"] in ("person", "dog", "cat") for row in cli for s in row["segments"])
