"""export_run on a real (tiny) trained run: files, metadata, parity, int8, gates, refusals."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from tests.unit.export.helpers import make_classical_run, tamper_head

from imgrec.errors import MissingInputError, ModelFileError, UsageError
from imgrec.export import check_exports, export_run
from imgrec.export.parity import Parity, agreement_gate, drop_gate
from imgrec.inference import Predictor, collect_images


def _props(path: Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def test_export_writes_model_onnx_with_metadata_and_passes_parity(torch_run):
    report = export_run(torch_run)  # checks on the run's own validation split
    path = torch_run / "model.onnx"
    meta = json.loads((torch_run / "model.json").read_text())
    props = _props(path)
    assert json.loads(props["imgrec.classes"]) == meta["classes"] == ["circle", "square", "stripes"]
    assert json.loads(props["imgrec.preprocessing"]) == meta["preprocessing"]
    assert props["imgrec.model"] == "cnn-small" and props["imgrec.imgrec_version"]
    assert props["imgrec.input_layout"].startswith("NHWC uint8") and props["imgrec.quantization"] == "none"
    graph = onnx.load(str(path)).graph
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param  # a named, dynamic batch axis
    parity = report.files[0].parity
    assert parity.top1_agreement == 1.0 and parity.max_abs_error < 1e-4 and "val split" in parity.source
    record = meta["exports"]["onnx"]
    assert record["top1_agreement"] == 1.0 and record["bytes"] == path.stat().st_size
    assert record["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert not list(torch_run.glob(".export-*"))  # the staging folder is gone


def test_predictor_picks_onnx_and_agrees_with_torch(torch_run, shapes_data):
    with pytest.raises(UsageError, match="imgrec export"):
        Predictor.from_run(torch_run, backend="onnx")
    export_run(torch_run, data=shapes_data)
    auto, native = Predictor.from_run(torch_run), Predictor.from_run(torch_run, backend="torch")
    assert auto.model.family == "onnx" and native.model.family == "torch"
    images = collect_images([shapes_data])
    a, b = auto.predict(images, batch_size=7), native.predict(images, batch_size=7)
    assert [p.label for p in a] == [p.label for p in b]
    np.testing.assert_allclose([p.score for p in a], [p.score for p in b], atol=1e-5)
    with pytest.raises(UsageError, match="'torch', 'onnx'"):
        Predictor.from_run(torch_run, backend="onnx-int8")


def test_threads_reach_every_backend(torch_run, shapes_data, tmp_path):
    import torch

    export_run(torch_run, data=shapes_data)
    images = collect_images([shapes_data])[:8]
    before = torch.get_num_threads()
    try:
        native = Predictor.from_run(torch_run, backend="torch", threads=1)
        assert torch.get_num_threads() == 1  # torch has one pool per process
        ort = Predictor.from_run(torch_run, backend="onnx", threads=1)
        assert ort.model.session.get_session_options().intra_op_num_threads == 1
        ort.model.set_threads(2)
        assert ort.model.session.get_session_options().intra_op_num_threads == 2
        assert [p.label for p in ort.predict(images)] == [p.label for p in native.predict(images)]
    finally:
        torch.set_num_threads(before)
    hog = make_classical_run(tmp_path / "hog")
    meta = json.loads((hog / "model.json").read_text())
    meta["model_args"]["threads"] = 2  # a cap recorded in training is kept unless threads are given
    (hog / "model.json").write_text(json.dumps(meta))
    assert Predictor.from_run(hog).model.model_args["threads"] == 2
    assert Predictor.from_run(hog, threads=1).model.model_args["threads"] == 1
    for bad in (0, -2, 1.5, True):
        with pytest.raises(UsageError, match="threads must be an integer"):
            Predictor.from_run(torch_run, threads=bad)  # type: ignore[arg-type]


def test_int8_export_is_quantized_smaller_and_close_to_fp32(torch_run, shapes_data):
    # a one-epoch model has near-tied probabilities, so the drop gate is loose here;
    # the gate itself is tested below
    report = export_run(torch_run, int8=True, data=shapes_data, calibration=shapes_data, max_drop=25)
    fp32, int8 = report.files
    assert int8.backend == "onnx-int8" and int8.reference == "model.onnx"
    assert int8.size_bytes < 0.5 * fp32.size_bytes
    assert int8.parity.top1_agreement >= 0.75 and int8.parity.max_abs_error < 0.2
    props = _props(torch_run / "model.int8.onnx")
    assert props["imgrec.quantization"].startswith("int8-static-qdq-per-channel")
    nodes = onnx.load(str(torch_run / "model.int8.onnx")).graph.node
    assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in nodes}
    # the input preparation stays float (no dequantized tensor feeds it), and so does the softmax
    first_conv = next(i for i, n in enumerate(nodes) if n.op_type == "Conv")
    dequantized = {o for n in nodes if n.op_type == "DequantizeLinear" for o in n.output}
    prep = [n for n in nodes[:first_conv] if n.op_type in ("Cast", "Mul", "Add")]
    assert len(prep) == 3 and not any(set(n.input) & dequantized for n in prep)
    (softmax,) = [n for n in nodes if n.op_type == "Softmax"]
    assert not any(n.op_type == "QuantizeLinear" and softmax.output[0] in n.input for n in nodes)
    model = Predictor.from_run(torch_run, backend="onnx-int8").model
    assert model.quantized  # type: ignore[attr-defined]
    exports = json.loads((torch_run / "model.json").read_text())["exports"]
    assert set(exports) == {"onnx", "onnx-int8"} and exports["onnx-int8"]["calibration_images"] == 36


def test_a_tampered_export_fails_the_check_with_its_figures(torch_run, shapes_data):
    export_run(torch_run, data=shapes_data)
    assert check_exports(torch_run, data=shapes_data).files[0].parity.top1_agreement == 1.0
    tamper_head(torch_run / "model.onnx")
    with pytest.raises(ModelFileError, match="parity check") as err:
        check_exports(torch_run, data=shapes_data)
    message = str(err.value)
    assert "top-1 agreement" in message and "below the required 99.00%" in message
    assert "max abs probability error" in message and "36 images" in message and "imgrec export" in message
    assert err.value.exit_code == 65 and err.value.code == "export_parity_failed"


def _parity(agreement: float, ref: float | None, cand: float | None) -> Parity:
    return Parity(
        images=200,
        max_abs_error=0.1,
        top1_agreement=agreement,
        reference_ms=2.0,
        candidate_ms=1.0,
        reference_accuracy=ref,
        candidate_accuracy=cand,
        source="test images",
    )


def test_an_int8_file_slower_than_fp32_gets_a_note_with_both_timings():
    from dataclasses import replace

    from imgrec.export.api import _int8_notes

    faster = _parity(0.99, 0.9, 0.9)  # 2.0 -> 1.0 ms/image
    assert _int8_notes(faster) == []
    (note,) = _int8_notes(replace(faster, candidate_ms=3.0))
    assert "slower than fp32" in note and "3.00 vs 2.00 ms/image" in note and "imgrec benchmark" in note


def test_gates_raise_with_the_figures_and_pass_within_limits():
    agreement_gate(_parity(0.99, None, None), 0.99, "x", "kept.")
    with pytest.raises(ModelFileError, match=r"98\.50% is below the required 99\.00%"):
        agreement_gate(_parity(0.985, None, None), 0.99, "x", "kept.")
    assert drop_gate(_parity(0.9, 0.9, 0.895), 1.0, "x", "kept.") == pytest.approx(0.5)
    with pytest.raises(ModelFileError, match=r"1\.50 points against the limit of 1\.00") as err:
        drop_gate(_parity(0.95, 0.9, 0.885), 1.0, "x", "kept.")
    assert "accuracy 90.00% -> 88.50%" in str(err.value)
    with pytest.raises(ModelFileError, match=r"3\.00 points"):  # no labels: bounded by the disagreement
        drop_gate(_parity(0.97, None, None), 1.0, "x", "kept.")


def test_classical_runs_are_refused_with_the_reason(tmp_path):
    run = make_classical_run(tmp_path / "hog")
    with pytest.raises(UsageError, match="no ONNX equivalent") as err:
        export_run(run)
    assert "HOG" in str(err.value) and not (run / "model.onnx").exists()


def test_bad_options_and_missing_run_data(torch_run):
    for kwargs in ({"min_agreement": 1.5}, {"max_drop": -1.0}, {"format": "tflite"}, {"samples": 0}):
        with pytest.raises(UsageError):
            export_run(torch_run, **kwargs)  # type: ignore[arg-type]
    (torch_run / "config.json").unlink()
    with pytest.raises(MissingInputError, match="--data"):
        export_run(torch_run)
    with pytest.raises(UsageError, match=r"no model\.onnx"):
        check_exports(torch_run)


def test_a_torchscript_failure_falls_back_to_dynamo_without_printing_the_graph(tmp_path, capfd):
    from imgrec.export.onnx_export import export_torch
    from imgrec.models import create_model

    # 28 px: cnn-bn pools 7x7 features to a 4x4 grid, which the TorchScript exporter refuses
    model = create_model("cnn-bn", ["a", "b"], image_size=28, grayscale=True)
    with pytest.raises(ModelFileError, match=r"TorchScript exporter failed: .*adaptive_avg_pool2d") as err:
        export_torch(model, tmp_path / "ts.onnx", exporter="torchscript")
    assert "%" not in str(err.value)  # the reason, not torch's graph dump
    assert export_torch(model, tmp_path / "auto.onnx") == "dynamo"
    out, errs = capfd.readouterr()
    assert "graph" not in out and "graph" not in errs  # stdout stays clean for --json
