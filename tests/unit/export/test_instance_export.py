"""Instance segmenter (Mask R-CNN) exports: the graph keeps each object's 28 x 28 box-frame mask,
the gate on mask and box AP (its error names both), the int8 refusal, the file predicting alone."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from tests.instance_data import CLASSES, write_instance_coco
from tests.parity_helpers import random_batch
from tests.unit.export.helpers import copy_run

from imgrec.errors import ModelFileError, UsageError
from imgrec.export import export_run
from imgrec.export.detect_export import InstanceParity
from imgrec.models import create_model, save_model

pytest.importorskip("torchvision")
pytest.importorskip("onnxruntime")

MODEL = "maskrcnn_mobilenet_v3_large_fpn"
SIZE = 64  # torchvision's R-CNN transform takes 64 at least


@pytest.fixture(scope="module")
def coco(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four small JPEGs with polygons, a crowd region and a box without a mask (read only)."""
    return write_instance_coco(tmp_path_factory.mktemp("coco") / "data")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained MobileNetV3 Mask R-CNN run (copied per test: exports write into it)."""
    import torch

    torch.manual_seed(0)
    return save_model(create_model(MODEL, CLASSES, image_size=SIZE), tmp_path_factory.mktemp("maskrcnn") / "run")


def _meta(run: Path) -> dict:
    return json.loads((run / "model.json").read_text())


@pytest.mark.slow  # 16 s on 2 cores: the trace alone takes 7 s
def test_the_graph_ends_in_box_frame_masks_and_the_file_predicts_alone(tmp_path, template, coco):
    from imgrec.inference import Predictor
    from imgrec.tasks.instance import Instances

    run = copy_run(template, tmp_path / "run")
    (done,) = export_run(run, data=coco).files
    assert isinstance(done.parity, InstanceParity) and done.gate == "mask and box mAP within 0.5 points"
    assert abs(done.parity.mask_map_drop) <= 0.5 and abs(done.parity.map_drop) <= 0.5 and done.parity.images == 4
    proto = onnx.load(str(run / "model.onnx"))
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["imgrec.task"] == "instance" and "masks [K, 28, 28]" in props["imgrec.output"]
    assert [o.name for o in proto.graph.output] == ["boxes", "scores", "labels", "masks"]
    record = _meta(run)["exports"]["onnx"]
    assert {"reference_mask_map", "candidate_mask_map", "mask_map_drop_points", "map_drop_points"} <= set(record)
    alone = Predictor.from_run(run / "model.onnx")  # the file carries its task, classes and preprocessing
    assert (alone.task.name, type(alone.model).__name__) == ("instance", "OnnxInstanceSegmenter")
    (c,) = alone.model.segment_instances(random_batch(1, SIZE))
    assert c.mask_frame == "box" and c.masks.shape == (len(c.boxes), 28, 28) and set(c.labels) <= {0, 1}
    (found,) = alone.predict(sorted((coco / "images" / "train").glob("*.jpg"))[:1], conf=0.0)
    assert isinstance(found, Instances) and len(found) > 0 and found.instances[0].mask().shape == (48, 64)


def _stand_in_graph(model: object, path: Path, opset: int) -> str:
    """An instance export's inputs and outputs, no network (the gate under test reads figures only)."""
    from onnx import TensorProto, helper

    outputs = {"boxes": (TensorProto.FLOAT, [0, 4]), "scores": (TensorProto.FLOAT, [0]),
               "labels": (TensorProto.INT64, [0]), "masks": (TensorProto.FLOAT, [0, 28, 28])}  # fmt: skip
    nodes = [helper.make_node("Constant", [], [name], value=helper.make_tensor(f"{name}_value", kind, dims, []))
             for name, (kind, dims) in outputs.items()]  # fmt: skip
    image = helper.make_tensor_value_info("image", TensorProto.UINT8, [1, SIZE, SIZE, 3])
    graph = helper.make_graph(nodes, "stand-in", [image],
                              [helper.make_tensor_value_info(n, k, d) for n, (k, d) in outputs.items()])  # fmt: skip
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), str(path))
    return "torchscript"


def test_a_file_outside_the_mask_or_box_gate_is_not_written(tmp_path, template, coco, monkeypatch):
    from imgrec.export import detect_export

    run = copy_run(template, tmp_path / "run")
    monkeypatch.setattr(detect_export, "trace_to_onnx", _stand_in_graph)
    bad = InstanceParity(images=4, reference_map=0.2, candidate_map=0.2, reference_map50=0.4, candidate_map50=0.4,
                         reference_ms=1.0, candidate_ms=1.0, source="test", reference_mask_map=0.33,
                         candidate_mask_map=0.3, reference_mask_map50=0.5, candidate_mask_map50=0.5)  # fmt: skip
    monkeypatch.setattr(detect_export, "detection_parity", lambda *a: bad)
    with pytest.raises(ModelFileError, match=r"mask mAP 0\.3000 against the torch model's 0\.3300 \(\+3\.00 points\) "
                       r"and box mAP 0\.2000 against 0\.2000 \(\+0\.00 points\) on 4 images.*Nothing was written"):
        export_run(run, data=coco)
    assert not (run / "model.onnx").exists() and "exports" not in _meta(run) and not list(run.glob(".export-*"))


def test_int8_and_data_without_masks_are_refused_before_anything_is_written(tmp_path, template):
    from tests.detection_data import write_squares_yolo

    run = copy_run(template, tmp_path / "run")
    with pytest.raises(UsageError, match=r"instance segmenter \(Mask R-CNN\).*without --int8") as err:
        export_run(run, int8=True)
    assert err.value.code == "not_quantizable"
    with pytest.raises(UsageError, match="holds no instance data"):
        export_run(run, data=write_squares_yolo(tmp_path / "squares", n=2))
    assert not (run / "model.onnx").exists() and "exports" not in _meta(run)
