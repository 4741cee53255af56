from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.conftest import BrightnessClassifier

from imgrec.errors import MissingInputError, UsageError
from imgrec.inference import Predictor, collect_images
from imgrec.transforms.preprocess import Preprocessing
from imgrec.types import ItemError, Prediction


@pytest.fixture
def predictor() -> Predictor:
    return Predictor(BrightnessClassifier("brightness", ["dark", "light"], Preprocessing(size=16)))


def _png(value: int, size=(40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (value,) * 3).save(buf, "PNG")
    return buf.getvalue()


def test_predicts_paths_bytes_and_arrays_with_top_k(predictor, tmp_path):
    (tmp_path / "white.png").write_bytes(_png(250))
    preds = predictor.predict([tmp_path / "white.png", _png(5), np.zeros((9, 9, 3), np.uint8)], top_k=2)
    assert [p.label for p in preds] == ["light", "dark", "dark"]
    first = preds[0]
    assert isinstance(first, Prediction) and first.path == str(tmp_path / "white.png")
    assert [c.label for c in first.top_k] == ["light", "dark"]
    assert first.top_k[0].score >= first.top_k[1].score


def test_threshold_returns_unknown_below_confidence(predictor):
    pred = predictor.predict_one(_png(140), threshold=0.9)
    assert pred.label == "unknown" and pred.is_unknown and pred.score < 0.9
    assert predictor.predict_one(_png(255), threshold=0.9).label == "light"


def test_a_corrupt_image_is_an_error_row_and_the_others_still_predict(predictor, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    good = tmp_path / "good.png"
    good.write_bytes(_png(200))
    out = predictor.predict([bad, good])
    assert isinstance(out[0], ItemError) and out[0].code == "image_invalid"
    assert out[0].to_dict()["error"]["code"] == "image_invalid"
    assert isinstance(out[1], Prediction) and out[1].label == "light"


@pytest.mark.parametrize(("kwargs", "match"), [({"top_k": 0}, "top_k"), ({"threshold": 1.5}, "threshold")])
def test_bad_options_are_usage_errors(predictor, kwargs, match):
    with pytest.raises(UsageError, match=match):
        predictor.predict([_png(1)], **kwargs)


def test_collect_images_expands_folders_and_globs(tmp_path):
    (tmp_path / "a").mkdir()
    for name in ("a/1.png", "a/2.JPG", "a/notes.txt", "b.png", "a/.hidden.png"):
        (tmp_path / name).write_bytes(b"x")
    found = collect_images([tmp_path / "a", str(tmp_path / "*.png")])
    assert [Path(f).name for f in found] == ["1.png", "2.JPG", "b.png"]
    with pytest.raises(MissingInputError, match=r"missing\.png"):
        collect_images([tmp_path / "missing.png"])
    with pytest.raises(MissingInputError, match="pattern"):
        collect_images([str(tmp_path / "*.gif")])


def test_a_single_input_is_one_image_not_one_per_character(predictor, tmp_path):
    path = tmp_path / "owl.png"
    path.write_bytes(_png(250))
    for one in (str(path), path, _png(250), np.full((9, 9, 3), 250, np.uint8), Image.new("RGB", (8, 6), (250,) * 3)):
        preds = predictor.predict(one)
        assert len(preds) == 1 and preds[0].label == "light", type(one)
    assert len(predictor.predict(np.zeros((3, 9, 9, 3), np.uint8))) == 3


def test_pil_images_of_any_mode_are_accepted(predictor):
    images = [Image.new("L", (8, 8), 250), Image.new("RGBA", (8, 8), (0, 0, 0, 255)), Image.new("P", (8, 8))]
    assert [p.label for p in predictor.predict(images)] == ["light", "dark", "dark"]


def test_an_unsupported_input_type_is_an_item_error(predictor):
    (err,) = predictor.predict([12345])  # type: ignore[list-item]
    assert isinstance(err, ItemError) and "received int" in err.message


def test_one_batch_size_setting_drives_predict_and_evaluate(tmp_path):
    from imgrec.data.dataset import ImageDataset
    from imgrec.evaluation import evaluate

    calls: list[int] = []

    class Counting(BrightnessClassifier):
        def predict_proba(self, batch):
            calls.append(len(batch))
            return super().predict_proba(batch)

    model = Counting("brightness", ["dark", "light"], Preprocessing(size=16))
    assert Predictor(model).batch_size == 32  # the classify task's default
    predictor = Predictor(model, batch_size=3)
    predictor.predict([np.full((9, 9, 3), v, np.uint8) for v in range(0, 250, 35)])  # 8 images
    assert calls == [3, 3, 2]
    calls.clear()
    ds = ImageDataset.from_arrays(np.zeros((7, 8, 8), np.uint8), [0] * 7, ["dark", "light"])
    evaluate(predictor, ds)
    assert calls == [3, 3, 1]
    with pytest.raises(UsageError, match="batch_size must be >= 1; received 0"):
        Predictor(model, batch_size=0)
