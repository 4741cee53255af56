"""``evaluate_segmentation`` measures at each image's own resolution through the Predictor: its
figures equal scikit-learn's on the masks ``Predictor.predict`` gives and the masks on disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, jaccard_score
from tests.segmentation_data import write_few_class_masks

from imgrec.data import load_dataset
from imgrec.errors import DatasetError
from imgrec.evaluation import evaluate, evaluate_segmentation, write_segmentation_report
from imgrec.inference import Predictor
from imgrec.models import create_model

torch = pytest.importorskip("torch")
pytest.importorskip("segmentation_models_pytorch")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Predictor, object]:
    from tests.parity_helpers import random_batch, settle_batchnorm

    root = write_few_class_masks(tmp_path_factory.mktemp("seg") / "m", ("person", "car"), n=5)
    torch.manual_seed(0)
    model = create_model("unet-tiny", ["background", "person", "car"], image_size=64)
    settle_batchnorm(model.module, model.normalize(random_batch(4, 64)))  # untrained, but not one class everywhere
    return Predictor(model, {"task": "segment"}), load_dataset(root)


def test_figures_match_scikit_learn_on_the_original_pixels(setup) -> None:
    predictor, ds = setup
    result = evaluate(predictor, ds)  # imgrec.evaluate dispatches on the task
    # One call, so the model sees the batches evaluate does (a batch of 1 may move a near-tie pixel).
    preds = [r.mask for r in predictor.predict(list(ds.sources))]
    truth = [ds.load_mask(i) for i in range(len(ds))]
    assert all(p.shape == t.shape for p, t in zip(preds, truth, strict=True))  # each image's own size
    y, p = np.concatenate([t.ravel() for t in truth]), np.concatenate([q.ravel() for q in preds])
    keep = y != 255
    y, p = y[keep], p[keep]
    m = result.metrics
    np.testing.assert_array_equal(m["confusion"]["matrix"], confusion_matrix(y, p, labels=[0, 1, 2]))
    seen = np.union1d(np.unique(y), np.unique(p))
    iou = jaccard_score(y, p, labels=seen, average=None)
    assert m["miou"] == pytest.approx(iou.mean(), abs=1e-6)
    assert m["pixel_accuracy"] == pytest.approx(np.mean(y == p), abs=1e-6)
    assert m["images"] == 5 and len(m["worst_images"]) == 5 and m["boundary_f1"] is not None
    assert [w["miou"] for w in m["worst_images"]] == sorted(w["miou"] for w in m["worst_images"])


def test_classes_are_matched_by_name_and_a_wrong_dataset_is_refused(setup, tmp_path: Path) -> None:
    predictor, ds = setup
    swapped = ds.subset(np.arange(len(ds)))
    swapped.classes = ["background", "car", "person"]  # same masks, names in another order
    a = evaluate_segmentation(predictor, ds, boundary=False)
    b = evaluate_segmentation(predictor, swapped, boundary=False)
    assert a.metrics["per_class"]["person"]["pixels"] == b.metrics["per_class"]["car"]["pixels"]
    with pytest.raises(DatasetError, match=r"does not know.*'dog'"):
        other = ds.subset(np.arange(len(ds)))
        other.classes = ["background", "person", "dog"]
        evaluate_segmentation(predictor, other)
    digits = load_dataset("digits")
    with pytest.raises(DatasetError, match="without masks"):
        evaluate_segmentation(predictor, digits)


def test_the_report_has_the_detection_reports_shape(setup, tmp_path: Path) -> None:
    predictor, ds = setup
    result = evaluate_segmentation(predictor, ds)
    history = [{"epoch": 1, "lr": 1e-3, "ce_loss": 1.0, "train_loss": 1.0, "val_miou": 0.1},
               {"epoch": 2, "lr": 1e-3, "ce_loss": 0.8, "train_loss": 0.8, "val_miou": 0.2}]  # fmt: skip
    meta = {"model": "unet-tiny", "data": {"name": "m"}}
    path = write_segmentation_report(tmp_path, meta=meta, results={"test": result}, history=history, dataset=ds,
                                     predictor=predictor)  # fmt: skip
    html = path.read_text()
    for title in ("Summary", "Per class (test)", "Pixel confusion", "Worst images", "Training"):
        assert title in html
    assert html.count("data:image/png;base64") >= 2 + 5  # confusion, curves, 5 worst images
    assert (tmp_path / "metrics.json").is_file()
