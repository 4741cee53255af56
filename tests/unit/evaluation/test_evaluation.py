from __future__ import annotations

import numpy as np
import pytest

import imgrec.evaluation
from imgrec.data.dataset import ImageDataset, materialize
from imgrec.errors import DatasetError, UsageError
from imgrec.evaluation import EvalResult, evaluate, evaluate_arrays, evaluate_classifier


@pytest.fixture
def folder_with_corrupt_file(image_folder):
    (image_folder / "circle" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated garbage")
    return image_folder


def test_evaluate_lists_the_corrupt_file_and_evaluates_the_rest(
    folder_with_corrupt_file, shapes_model, as_dataset
):
    ds = as_dataset(folder_with_corrupt_file)
    assert len(ds) == 61
    result = evaluate(shapes_model, ds, batch_size=16)
    assert isinstance(result, EvalResult)
    assert [s for s, _ in result.bad] == [str(folder_with_corrupt_file / "circle" / "broken.png")]
    assert result.bad[0][1]  # a message saying why
    assert result.metrics["num_samples"] == 60 == len(result.sources) == len(result.y_true)
    assert not any(s.endswith("broken.png") for s in result.sources)
    assert result.proba.shape == (60, 3) and result.proba.dtype == np.float32
    assert result.metrics["accuracy"] > 0.5  # a fitted model on easy shapes, not chance
    assert result.seconds >= result.ms_per_image / 1000 > 0
    assert result.to_dict()["bad_files"][0]["source"].endswith("broken.png")


def test_evaluate_maps_dataset_classes_onto_the_model_order(image_folder, shapes_model, as_dataset):
    ds = as_dataset(image_folder)
    reordered = ImageDataset(
        classes=ds.classes[::-1], labels=2 - ds.labels, sources=ds.sources, root=ds.root
    )
    a, b = evaluate(shapes_model, ds), evaluate(shapes_model, reordered, workers=1)
    np.testing.assert_array_equal(a.y_true, b.y_true)
    assert a.metrics == b.metrics and a.classes == shapes_model.classes


def test_chunked_evaluation_gives_the_same_result(folder_with_corrupt_file, shapes_model,
                                                  as_dataset):
    ds = as_dataset(folder_with_corrupt_file)
    whole, chunked = evaluate(shapes_model, ds), evaluate(shapes_model, ds, chunk_size=7)
    assert chunked.metrics == whole.metrics and chunked.sources == whole.sources
    assert chunked.bad == whole.bad and len(chunked.bad) == 1
    assert set(chunked.error_images) == set(whole.error_images) != set()
    for row, img in whole.error_images.items():
        np.testing.assert_array_equal(chunked.error_images[row], img)


def test_evaluate_arrays_equals_evaluate(image_folder, shapes_model, as_dataset):
    ds = as_dataset(image_folder)
    mat = materialize(ds, shapes_model.preprocessing)
    direct = evaluate_arrays(shapes_model, mat.images, mat.labels, ds.classes, batch_size=7)
    full = evaluate(shapes_model, ds)
    assert direct.metrics == full.metrics
    assert direct.sources[0] == "[0]" and direct.bad == []
    wrong = direct.confident_errors()
    assert set(direct.error_images) == set(wrong.tolist())
    conf = direct.proba[wrong, direct.y_pred[wrong]]
    assert np.all(np.diff(conf) <= 0)  # most confident first
    assert np.all(direct.y_pred[wrong] != direct.y_true[wrong])


def test_unknown_classes_and_unreadable_datasets_raise(tmp_path, shapes_model):
    other = ImageDataset.from_arrays(np.zeros((2, 8, 8), np.uint8), [0, 1], ["circle", "hexagon"])
    with pytest.raises(DatasetError, match="'hexagon'"):
        evaluate(shapes_model, other)
    (tmp_path / "x.png").write_bytes(b"not an image")
    broken = ImageDataset(classes=["circle"], labels=np.array([0]),
                          sources=[str(tmp_path / "x.png")])
    with pytest.raises(DatasetError, match="every file failed"):
        evaluate(shapes_model, broken)
    with pytest.raises(DatasetError, match="empty"):
        evaluate(shapes_model, broken.subset([]))
    with pytest.raises(UsageError, match="batch_size"):
        evaluate_arrays(shapes_model, np.zeros((1, 32, 32, 3), np.uint8), [0], ["circle"],
                        batch_size=0)


def test_public_names_are_functions_in_either_import_order() -> None:
    """``imgrec.train`` / ``imgrec.evaluate`` stay the functions after their packages are imported
    (the packages are ``imgrec.training`` / ``imgrec.evaluation``: no name is shadowed)."""
    import subprocess
    import sys

    code = (
        "import imgrec, inspect\n"
        "f = imgrec.evaluate; t = imgrec.train\n"
        "import imgrec.evaluation.report, imgrec.training.loop\n"
        "assert inspect.isfunction(imgrec.evaluate) and imgrec.evaluate is f, imgrec.evaluate\n"
        "assert inspect.isfunction(imgrec.train) and imgrec.train is t, imgrec.train\n"
        "import types, imgrec.evaluation as e, imgrec.training as tr\n"
        "assert type(e) is types.ModuleType and type(tr) is types.ModuleType\n"
    )
    for first in ("", "import imgrec.training, imgrec.evaluation\n"):
        done = subprocess.run([sys.executable, "-c", first + code], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr


def test_evaluate_dispatches_on_the_task(image_folder, shapes_model, as_dataset):
    ds = as_dataset(image_folder).subset(range(0, 60, 6))
    assert imgrec.evaluate(shapes_model, ds).metrics == evaluate_classifier(shapes_model, ds).metrics


def test_works_with_the_predictor(image_folder, shapes_model, as_dataset):
    from imgrec.inference import Predictor

    ds = as_dataset(image_folder)
    via_predictor = evaluate(Predictor(shapes_model, meta={}, run_dir=None), ds)
    assert via_predictor.metrics == evaluate(shapes_model, ds).metrics
