"""``imgrec.models.importer``: external classifier files become runs that predict like trained ones.

The ONNX files here are built by the tests (a real, if tiny, classifier graph: global average
pool -> linear layer), so every prediction can be checked against numpy arithmetic.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from imgrec.errors import ConfigError, MissingInputError, ModelFileError, UsageError  # noqa: E402
from imgrec.inference import Predictor  # noqa: E402
from imgrec.models import load_model  # noqa: E402
from imgrec.models.importer import ImportOptions, import_model, read_labels  # noqa: E402
from imgrec.models.onnx_embed import penultimate  # noqa: E402

RNG = np.random.default_rng(0)
W = RNG.normal(size=(3, 3)).astype(np.float32)  # (features=channels, classes)
B = np.array([0.1, -0.2, 0.05], np.float32)


def gap_linear(
    path: Path, *, softmax: bool = False, size: int | None = 8, layout: str = "nchw", width: int = 3
) -> Path:
    """A classifier graph: (N,3,H,W) float -> GlobalAveragePool -> Flatten -> Gemm (-> Softmax)."""
    dims = [None, 3, size, size] if layout == "nchw" else [None, size, size, 3]
    nodes = []
    first = "x"
    if layout == "nhwc":
        nodes.append(helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 3, 1, 2]))
        first = "xt"
    weight = np.concatenate([W, RNG.normal(size=(3, width - 3)).astype(np.float32)], axis=1) if width > 3 else W
    bias = np.concatenate([B, np.zeros(width - 3, np.float32)]) if width > 3 else B
    nodes += [
        helper.make_node("GlobalAveragePool", [first], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["features"], axis=1),
        helper.make_node("Gemm", ["features", "w", "b"], ["logits" if softmax else "out"]),
    ]
    if softmax:
        nodes.append(helper.make_node("Softmax", ["logits"], ["out"], axis=1))
    graph = helper.make_graph(
        nodes, "gap", [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [None, width])],
        initializer=[numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def reference_proba(batch: np.ndarray, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), bgr=False) -> np.ndarray:
    x = batch[..., ::-1] if bgr else batch
    x = (x.astype(np.float32) / 255 - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    logits = x.mean(axis=(1, 2)) @ W + B
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture
def labels(tmp_path: Path) -> Path:
    path = tmp_path / "labels.txt"
    path.write_text("red\ngreen\nblue\n", encoding="utf-8")
    return path


def _batch(n: int = 5, size: int = 8) -> np.ndarray:
    return RNG.integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_an_imported_onnx_classifier_predicts_like_its_arithmetic(tmp_path, labels):
    run = import_model(gap_linear(tmp_path / "m.onnx"), ImportOptions(classes=labels), tmp_path / "run")
    meta = json.loads((run / "model.json").read_text())
    assert meta["family"] == "external" and meta["classes"] == ["red", "green", "blue"]
    assert meta["external"]["output"] == "logits" and meta["external"]["layout"] == "nchw"
    assert len(meta["provenance"]["sha256"]) == 64 and meta["provenance"]["imported_from"].endswith("m.onnx")
    model, _ = load_model(run)
    x = _batch()
    np.testing.assert_allclose(model.predict_proba(x), reference_proba(x), rtol=1e-4, atol=1e-6)


def test_bgr_nhwc_softmax_graphs_and_custom_normalization(tmp_path, labels):
    path = gap_linear(tmp_path / "m.onnx", softmax=True, layout="nhwc")
    options = ImportOptions(classes=labels, color="bgr", mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    run = import_model(path, options, tmp_path / "run")
    meta = json.loads((run / "model.json").read_text())
    assert meta["external"]["output"] == "probabilities" and meta["external"]["layout"] == "nhwc"
    model, _ = load_model(run)
    x = _batch()
    want = reference_proba(x, mean=(0.5,) * 3, std=(0.25,) * 3, bgr=True)
    np.testing.assert_allclose(model.predict_proba(x), want, rtol=1e-4, atol=1e-6)


def test_a_dynamic_input_needs_input_size(tmp_path, labels):
    path = gap_linear(tmp_path / "m.onnx", size=None)
    with pytest.raises(UsageError, match="--input-size"):
        import_model(path, ImportOptions(classes=labels), tmp_path / "run")
    run = import_model(path, ImportOptions(classes=labels, input_size=16), tmp_path / "run")
    assert load_model(run)[0].preprocessing.size == 16
    with pytest.raises(UsageError, match="contradicts"):
        import_model(gap_linear(tmp_path / "f.onnx"), ImportOptions(classes=labels, input_size=16), tmp_path / "r2")


def test_background_rows_and_columns(tmp_path, labels):
    with_background = tmp_path / "bg.txt"
    with_background.write_text("background\nred\ngreen\nblue\n")
    run = import_model(gap_linear(tmp_path / "m.onnx"), ImportOptions(classes=with_background), tmp_path / "a")
    assert load_model(run)[0].classes == ["red", "green", "blue"]
    run = import_model(gap_linear(tmp_path / "w.onnx", width=4), ImportOptions(classes=labels), tmp_path / "b")
    model, meta = load_model(run)
    assert meta["external"]["background"] == 0 and model.classes == ["red", "green", "blue"]
    proba = model.predict_proba(_batch())
    assert proba.shape == (5, 3) and np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)


def test_wrong_label_counts_and_hostile_label_files_are_clear_errors(tmp_path, labels):
    model = gap_linear(tmp_path / "m.onnx")
    four = tmp_path / "four.txt"
    four.write_text("a\nb\nc\nd\n")
    with pytest.raises(ModelFileError, match="3 scores per image but the labels list 4"):
        import_model(model, ImportOptions(classes=four), tmp_path / "r")
    binary = tmp_path / "bin.txt"
    binary.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ConfigError, match="not UTF-8"):
        read_labels(binary)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(ConfigError, match="empty"):
        read_labels(empty)
    with pytest.raises(MissingInputError):
        read_labels(tmp_path / "nope.txt")
    with pytest.raises(MissingInputError, match="given comma-separated: --classes background,person"):
        read_labels("person")  # one name is read as a file's path
    with pytest.raises(ConfigError, match="The class list is empty"):
        read_labels(" ")  # was 'Labels file not found: .'
    assert not (tmp_path / "r").exists()


def test_labels_files_with_indices_and_repeated_names():
    assert read_labels(["crane", "owl", "crane"]) == ["crane", "owl", "crane (2)"]


def test_indexed_labels_file(tmp_path):
    path = tmp_path / "l.txt"
    path.write_text("0 person\n1: bicycle\n2  traffic light\n")
    assert read_labels(path) == ["person", "bicycle", "traffic light"]


def test_broken_and_missing_model_files(tmp_path, labels):
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x01" + bytes(RNG.integers(0, 256, 500, dtype=np.uint8)))
    with pytest.raises(ModelFileError):
        import_model(garbage, ImportOptions(classes=labels), tmp_path / "r")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ModelFileError, match="neither an ONNX"):
        import_model(text, ImportOptions(classes=labels), tmp_path / "r")
    with pytest.raises(MissingInputError):
        import_model(tmp_path / "none.onnx", ImportOptions(classes=labels), tmp_path / "r")


def test_a_file_changed_after_import_is_refused(tmp_path, labels):
    run = import_model(gap_linear(tmp_path / "m.onnx"), ImportOptions(classes=labels), tmp_path / "run")
    data = (run / "imported.onnx").read_bytes()
    (run / "imported.onnx").write_bytes(data.replace(np.float32(0.1).tobytes(), np.float32(9.0).tobytes()))
    with pytest.raises(ModelFileError, match="changed since it was imported"):
        load_model(run)


def test_penultimate_embeddings_are_the_classifier_layer_input(tmp_path, labels):
    path = gap_linear(tmp_path / "m.onnx", softmax=True)
    assert penultimate(onnx.load(str(path))) == "features"
    model, _ = load_model(import_model(path, ImportOptions(classes=labels), tmp_path / "run"))
    x = _batch()
    norm = (x.astype(np.float32) / 255 - np.array([0.485, 0.456, 0.406], np.float32)) / np.array(
        [0.229, 0.224, 0.225], np.float32
    )
    np.testing.assert_allclose(model.embed(x), norm.mean(axis=(1, 2)), rtol=1e-4, atol=1e-5)
    assert model.embedding_layer == "features"


def test_predicting_with_a_bare_model_file_says_how_to_import_it(tmp_path):
    path = gap_linear(tmp_path / "m.onnx")
    with pytest.raises(UsageError, match=r"imgrec import .*m\.onnx --task classify --classes"):
        Predictor.from_run(path)


def test_integer_inputs_refuse_mean_and_std(tmp_path, labels):
    from imgrec.models.importer import _preprocessing

    with pytest.raises(UsageError, match="drop --mean"):
        _preprocessing(ImportOptions(mean=(0.5, 0.5, 0.5)), 8, np.dtype(np.uint8), "tflite")
