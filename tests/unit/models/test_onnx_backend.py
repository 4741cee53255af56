"""OnnxClassifier on hand-made ONNX graphs: predicting, metadata, safety of external data, bad files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from imgrec.errors import MissingInputError, ModelFileError, UsageError  # noqa: E402
from imgrec.models import load_model, save_model  # noqa: E402
from imgrec.models.onnx_backend import (  # noqa: E402
    OnnxClassifier,
    load_onnx,
    load_onnx_file,
    onnx_files,
    physical_cores,
    session_options,
)
from imgrec.transforms.preprocess import Preprocessing  # noqa: E402

SIZE = 4
CLASSES = ["cat", "dog", "owl"]


def _graph(weights: TensorProto) -> onnx.GraphProto:
    """uint8 NHWC -> flatten -> MatMul -> Softmax, like an imgrec export."""
    feat = SIZE * SIZE * 3
    shape = numpy_helper.from_array(np.array([-1, feat], np.int64), "shape")
    nodes = [
        helper.make_node("Cast", ["image"], ["xf"], to=TensorProto.FLOAT),
        helper.make_node("Reshape", ["xf", "shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "W"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    x = helper.make_tensor_value_info("image", TensorProto.UINT8, ["batch", SIZE, SIZE, 3])
    y = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", len(CLASSES)])
    return helper.make_graph(nodes, "tiny", [x], [y], initializer=[weights, shape])


def make_onnx(path: Path, *, metadata: bool = True, external: str | None = None) -> Path:
    """Write a tiny imgrec-style ONNX file; ``external`` stores W in that (relative) location."""
    w = np.random.default_rng(0).normal(size=(SIZE * SIZE * 3, len(CLASSES))).astype(np.float32) / 50
    weights = numpy_helper.from_array(w, "W")
    if external is not None:
        target = path.parent / external if not os.path.isabs(external) else Path(external)
        target.write_bytes(w.tobytes())
        weights.ClearField("raw_data")
        weights.data_location = TensorProto.EXTERNAL
        weights.external_data.add(key="location", value=external)
    model = helper.make_model(_graph(weights), opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if metadata:
        prep = Preprocessing(size=SIZE).to_dict()
        for key, value in {"classes": json.dumps(CLASSES), "preprocessing": json.dumps(prep), "model": "tiny"}.items():
            model.metadata_props.add(key=f"imgrec.{key}", value=value)
    path.write_bytes(model.SerializeToString())
    return path


def batch(n: int) -> np.ndarray:
    return np.random.default_rng(n).integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8)


def test_loads_metadata_and_predicts_probabilities(tmp_path):
    model = load_onnx_file(make_onnx(tmp_path / "model.onnx"))
    assert isinstance(model, OnnxClassifier) and model.family == "onnx"
    assert model.classes == CLASSES and model.preprocessing == Preprocessing(size=SIZE) and model.name == "tiny"
    for n in (1, 5, 70):  # dynamic batch, and more than one inner batch of 64
        p = model.predict_proba(batch(n))
        assert p.shape == (n, 3) and p.dtype == np.float32
        np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    assert model.predict_proba(batch(0)).shape == (0, 3)
    assert model.num_params() == SIZE * SIZE * 3 * 3 + 2


def test_wrong_input_shape_or_dtype_is_a_usage_error(tmp_path):
    model = load_onnx_file(make_onnx(tmp_path / "model.onnx"))
    with pytest.raises(UsageError, match=r"\(N, 4, 4, 3\)"):
        model.predict_proba(np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(UsageError, match="float32"):
        model.predict_proba(np.zeros((2, SIZE, SIZE, 3), np.float32))


def test_external_data_inside_the_folder_loads(tmp_path):
    model = load_onnx_file(make_onnx(tmp_path / "model.onnx", external="weights.bin"))
    assert model.predict_proba(batch(2)).shape == (2, 3)


@pytest.mark.parametrize("location", ["../secret.bin", "sub/../../secret.bin"])
def test_external_data_leaving_the_folder_is_refused(tmp_path, location):
    folder = tmp_path / "models"
    (folder / "sub").mkdir(parents=True)
    path = make_onnx(folder / "model.onnx", external=location)  # the outside file exists and is valid
    assert (tmp_path / "secret.bin").is_file()
    with pytest.raises(ModelFileError, match="outside the model's folder"):
        load_onnx_file(path)


def test_absolute_and_symlinked_external_data_are_refused(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    outside = tmp_path / "elsewhere.bin"
    with pytest.raises(ModelFileError, match="outside"):
        load_onnx_file(make_onnx(folder / "abs.onnx", external=str(outside)))
    make_onnx(folder / "plain.onnx", external="../linked-target.bin")  # writes the target outside
    (folder / "link.bin").symlink_to(tmp_path / "linked-target.bin")
    proto = onnx.load(str(folder / "plain.onnx"), load_external_data=False)
    proto.graph.initializer[0].external_data[0].value = "link.bin"
    (folder / "linked.onnx").write_bytes(proto.SerializeToString())
    with pytest.raises(ModelFileError, match="outside"):
        load_onnx_file(folder / "linked.onnx")


def test_corrupt_or_foreign_files_are_model_file_errors(tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"\x08\x07garbage that is not a protobuf" * 10)
    with pytest.raises(ModelFileError, match=r"model\.onnx"):
        load_onnx_file(bad)
    with pytest.raises(ModelFileError, match="imgrec metadata"):
        load_onnx_file(make_onnx(tmp_path / "plain.onnx", metadata=False))
    with pytest.raises(MissingInputError):
        load_onnx_file(tmp_path / "absent.onnx")


def test_run_loader_refuses_a_stale_export_and_reports_missing_files(tmp_path):
    make_onnx(tmp_path / "model.onnx")
    meta = {"classes": CLASSES, "preprocessing": Preprocessing(size=SIZE).to_dict(), "files": {}}
    assert load_onnx(tmp_path, meta).classes == CLASSES
    assert onnx_files(tmp_path) == {"onnx": tmp_path / "model.onnx"}
    with pytest.raises(ModelFileError, match="does not belong"):
        load_onnx(tmp_path, {**meta, "classes": ["cat", "dog", "bird"]})
    with pytest.raises(MissingInputError, match="imgrec export"):
        load_onnx(tmp_path, meta, int8=True)


def test_an_onnx_classifier_saves_as_a_run_and_loads_back(tmp_path):
    (tmp_path / "src").mkdir()
    model = load_onnx_file(make_onnx(tmp_path / "src" / "model.onnx"))
    run = save_model(model, tmp_path / "run")
    meta = json.loads((run / "model.json").read_text())
    assert meta["family"] == "onnx" and meta["files"] == {"onnx": "model.onnx"}
    back, _ = load_model(run)
    assert isinstance(back, OnnxClassifier)
    np.testing.assert_allclose(back.predict_proba(batch(3)), model.predict_proba(batch(3)), rtol=1e-6)


def test_session_uses_physical_cores_one_inter_op_thread_and_sequential_execution():
    import onnxruntime as ort

    cores = physical_cores()
    assert 1 <= cores <= (os.cpu_count() or 1)
    opts = session_options()
    assert opts.intra_op_num_threads == cores and opts.inter_op_num_threads == 1
    assert opts.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert opts.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
