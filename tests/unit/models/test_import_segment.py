"""``imgrec import --task segment``: real segmentation files (MediaPipe selfie, DeepLabV3 on Coral),
output-kind detection on small ONNX graphs the tests build (checked against numpy), bad files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import shared_data_path

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from imgrec.errors import MissingInputError, ModelFileError, UsageError  # noqa: E402
from imgrec.inference import Predictor  # noqa: E402
from imgrec.models.importer import ImportOptions, import_model  # noqa: E402

W = np.array([[1.0, -1.0, 0.0], [-1.0, 1.0, 0.5], [0.2, 0.3, -2.0]], np.float32)  # (classes, channels)


def conv_segmenter(path: Path, head: str = "logits", classes: int = 3, hw: tuple[int, int] = (8, 8)) -> Path:
    """(1, 3, h, w) float -> 1x1 Conv (``classes`` channels) -> nothing | Softmax | ArgMax | Sigmoid."""
    weight = W[:classes].reshape(classes, 3, 1, 1)
    nodes = [helper.make_node("Conv", ["x", "w"], ["scores"])]
    out_type, out_dims, last = TensorProto.FLOAT, [1, classes, *hw], "scores"
    if head == "softmax":
        nodes.append(helper.make_node("Softmax", ["scores"], ["out"], axis=1))
    elif head == "argmax":
        nodes.append(helper.make_node("ArgMax", ["scores"], ["out"], axis=1, keepdims=0))
        out_type, out_dims = TensorProto.INT64, [1, *hw]
    elif head == "sigmoid":
        nodes.append(helper.make_node("Sigmoid", ["scores"], ["out"]))
    else:
        nodes.append(helper.make_node("Identity", [last], ["out"]))
    graph = helper.make_graph(
        nodes, "seg", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, *hw])],
        [helper.make_tensor_value_info("out", out_type, out_dims)], initializer=[numpy_helper.from_array(weight, "w")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _import(src: Path, out: Path, **options) -> dict:
    import_model(src, ImportOptions(task="segment", **options), out)
    return json.loads((out / "model.json").read_text())


@pytest.mark.parametrize(
    ("head", "classes", "kind", "layout"),
    [("logits", 3, "logits", "nchw"), ("softmax", 3, "probabilities", "nchw"), ("argmax", 3, "index", "hw"),
     ("sigmoid", 1, "sigmoid", "nchw")],
)  # fmt: skip
def test_output_kind_is_detected_and_recorded(tmp_path, head, classes, kind, layout):
    names = ["a", "b", "c"] if classes == 3 else ["person"]
    meta = _import(conv_segmenter(tmp_path / "m.onnx", head, classes), tmp_path / "run", classes=names)
    assert meta["task"] == "segment"
    assert (meta["external"]["output"], meta["external"]["mask_layout"]) == (kind, layout)
    assert meta["classes"] == (names if classes == 3 else ["background", "person"])
    # one channel: stretch (MediaPipe's way); several: letterbox; NCHW float: ImageNet's mean/std
    assert meta["preprocessing"]["resize_mode"] == ("stretch" if classes == 1 else "letterbox")
    assert meta["preprocessing"]["mean"] == pytest.approx([0.485, 0.456, 0.406])


@pytest.mark.parametrize("head", ["logits", "softmax", "argmax"])
def test_masks_equal_numpy_argmax_of_the_graph(tmp_path, head):
    meta_run = tmp_path / "run"
    _import(conv_segmenter(tmp_path / "m.onnx", head), meta_run, classes=["a", "b", "c"])
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)  # the input's own size: geometry is the identity
    (seg,) = Predictor.from_run(meta_run).predict(image)
    x = (image / 255.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    expected = np.einsum("kc,hwc->khw", W, x).argmax(axis=0)
    assert seg.mask.shape == (8, 8)
    np.testing.assert_array_equal(seg.mask, expected)


def test_non_square_input_keeps_its_height_and_width(tmp_path):
    meta = _import(conv_segmenter(tmp_path / "m.onnx", "sigmoid", 1, hw=(6, 10)), tmp_path / "run",
                   classes="background,fg", resize_mode="letterbox")  # fmt: skip
    assert meta["external"]["input_hw"] == [6, 10]
    assert meta["preprocessing"]["size"] == 10 and meta["preprocessing"]["aspect"] == pytest.approx(10 / 6)
    predictor = Predictor.from_run(tmp_path / "run")
    (seg,) = predictor.predict(np.full((30, 50, 3), 200, np.uint8))
    assert seg.mask.shape == (30, 50) and seg.probabilities is not None
    # prepared straight at the file's 6 x 10 (one resize); square batches are still taken (resized here)
    assert predictor.prepare(np.full((30, 50, 3), 200, np.uint8)).shape == (6, 10, 3)
    for shape in [(2, 6, 10, 3), (2, 10, 10, 3)]:
        assert [r.values.shape for r in predictor.forward(np.zeros(shape, np.uint8))] == [(1, 6, 10)] * 2
    with pytest.raises(UsageError, match=r"\(N, 10, 10, 3\) or \(N, 6, 10, 3\); received uint8 \(1, 10, 6, 3\)"):
        predictor.forward(np.zeros((1, 10, 6, 3), np.uint8))


SELFIE = [("selfie_segmentation.tflite", (256, 256)), ("selfie_segmentation_landscape.tflite", (144, 256)),
          ("selfie_segmentation_landscape.onnx", (144, 256))]  # fmt: skip


@pytest.mark.realdata
@pytest.mark.parametrize(("name", "hw"), SELFIE)
def test_mediapipe_selfie_files_import_as_sigmoid_masks(tmp_path, name, hw):
    if name.endswith(".tflite"):
        pytest.importorskip("ai_edge_litert")
    src = shared_data_path("models", "segmentation", name)
    meta = _import(src, tmp_path / "run", classes="background,person")
    ext, prep = meta["external"], meta["preprocessing"]
    assert (ext["output"], ext["mask_layout"], ext["layout"]) == ("sigmoid", "nhwc", "nhwc")
    assert ext["input_hw"] == (None if hw == (256, 256) else list(hw))
    assert (prep["size"], prep["resize_mode"], prep["mean"], prep["std"]) == (256, "stretch", [0.0] * 3, [1.0] * 3)
    assert meta["provenance"]["sha256"] == ext["sha256"] and len(ext["sha256"]) == 64
    raw = Predictor.from_run(tmp_path / "run").forward(np.zeros((2, 256, 256, 3), np.uint8))
    assert [r.values.shape for r in raw] == [(1, *hw)] * 2 and raw[0].kind == "probabilities"
    assert raw[0].values.min() >= 0.0 and raw[0].values.max() <= 1.0


@pytest.mark.realdata
def test_deeplab_imports_as_an_index_map_with_voc_classes(tmp_path):
    pytest.importorskip("ai_edge_litert")
    src = shared_data_path("models", "segmentation", "deeplabv3_mnv2_pascal_quant.tflite")
    meta = _import(src, tmp_path / "run", classes="voc")
    assert (meta["external"]["output"], meta["external"]["mask_layout"]) == ("index", "hw")
    assert len(meta["classes"]) == 21 and meta["classes"][15] == "person"
    assert meta["preprocessing"]["resize_mode"] == "letterbox" and meta["preprocessing"]["size"] == 513
    stretched = _import(src, tmp_path / "stretch", classes="voc", resize_mode="stretch")
    assert stretched["preprocessing"]["resize_mode"] == "stretch"


@pytest.mark.realdata
@pytest.mark.parametrize(
    "parts", [("mobilenet-tflite", "mobilenet_v2_1.0_224_quant.tflite"),
              ("imagenet-embeddings", "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite")],
)  # fmt: skip
def test_a_file_whose_output_is_no_mask_is_refused(tmp_path, parts):
    pytest.importorskip("ai_edge_litert")
    with pytest.raises(ModelFileError, match=r"not a mask.*--task classify"):
        _import(shared_data_path("models", *parts), tmp_path / "run", classes="a,b")
    assert not (tmp_path / "run").exists()


@pytest.mark.realdata
def test_a_detector_is_not_imported_as_a_segmenter(tmp_path):
    """YOLOX-Nano's [1, 3549, 85] output was read as a 85 x 3549 sigmoid "mask" of its 416 x 416 input."""
    with pytest.raises(ModelFileError, match=r"\[1, 3549, 85\]: a 85x3549 map is not a mask of its 416x416 input"):
        _import(shared_data_path("models", "yolox-nano", "yolox_nano.onnx"), tmp_path / "run", classes="a,b")
    assert not (tmp_path / "run").exists()


def test_wrong_class_counts_and_options_are_refused(tmp_path):
    logits = conv_segmenter(tmp_path / "l.onnx")
    with pytest.raises(ModelFileError, match="3 class channels but the labels list 2"):
        _import(logits, tmp_path / "a", classes="a,b")
    with pytest.raises(UsageError, match="one \\(sigmoid\\) channel: 2 classes"):
        _import(conv_segmenter(tmp_path / "s.onnx", "sigmoid", 1), tmp_path / "b", classes="a,b,c")
    with pytest.raises(ModelFileError, match="class indices up to"):
        _import(conv_segmenter(tmp_path / "i.onnx", "argmax"), tmp_path / "c", classes=["only"])
    with pytest.raises(UsageError, match="whole image"):
        _import(logits, tmp_path / "d", classes="a,b,c", resize_mode="crop")
    with pytest.raises(UsageError, match="--output sigmoid is for one-channel"):
        _import(logits, tmp_path / "e", classes="a,b,c", output="sigmoid")
    with pytest.raises(MissingInputError):
        _import(tmp_path / "absent.onnx", tmp_path / "f", classes="a,b,c")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model at all" * 10)
    with pytest.raises(ModelFileError):
        _import(junk, tmp_path / "g", classes="a,b,c")
    assert not any((tmp_path / d / "model.json").exists() for d in "abcdefg")
