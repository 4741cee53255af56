"""Helpers of the face-embedding tests: model files the tests make themselves, a loopback server,
and the real MobileFaceNet imported as a run."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from tests.conftest import shared_data_path


def tiny_onnx(path: Path, *, dim: int = 128, size: int = 112, softmax: bool = False, seed: int = 0) -> Path:
    """A real (small) ONNX model: global average pool of a ``[1, 3, size, size]`` input, then a
    fixed random projection to ``dim`` values (and a softmax when asked: a "classifier")."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(seed).normal(size=(3, dim)).astype(np.float32)
    nodes = [helper.make_node("GlobalAveragePool", ["data"], ["pooled"]),
             helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
             helper.make_node("MatMul", ["flat", "w"], ["proj" if softmax else "fc1"])]  # fmt: skip
    if softmax:
        nodes.append(helper.make_node("Softmax", ["proj"], ["fc1"], axis=1))
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("fc1", TensorProto.FLOAT, [1, dim])], [numpy_helper.from_array(w, "w")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def mobilefacenet_file() -> Path:
    return shared_data_path("models", "face-recognition", "mobilefacenet.onnx")


def yunet_file() -> Path:
    return shared_data_path("models", "yunet", "face_detection_yunet_2023mar.onnx")


def johns() -> Path:
    return shared_data_path("faces-dlib", "johns")


def import_mobilefacenet(out: Path) -> Path:
    """The real MobileFaceNet as an embed run (ImageNet mean/std, arcface-112)."""
    from imgrec.models.importer import ImportOptions, import_model

    return import_model(mobilefacenet_file(), ImportOptions(task="embed", norm="imagenet"), out)


@contextmanager
def serving(payload: bytes, name: str) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 answering every GET with ``payload``; yields the file's URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{name}"
    finally:
        server.shutdown()
        thread.join()
