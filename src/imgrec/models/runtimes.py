"""Runtimes for model files imgrec did not write: ONNX Runtime and LiteRT (TFLite).

A runtime runs one graph on a batch already in the graph's own input format (layout, dtype,
scale) and returns float32 outputs, dequantized where the file is quantized. It can also
return one intermediate tensor (an embedding) next to the output. Nothing here knows about
classes or images: :mod:`imgrec.models.external` does the mapping.

Both runtimes import their library on first use; a missing one raises DependencyError naming
what to install.
"""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imgrec.errors import DependencyError, ModelFileError

RUNTIMES = ("onnx", "tflite")


@dataclass(frozen=True)
class TensorInfo:
    """The one input of a graph: its name, shape (None for a dynamic axis) and numpy dtype."""

    name: str
    shape: tuple[int | None, ...]
    dtype: np.dtype


def runtime_for(path: Path) -> str:
    """"onnx" or "tflite", by the file's own bytes (TFLite's ``TFL3`` identifier) and suffix."""
    head = path.read_bytes()[:8] if path.is_file() else b""
    if head[4:8] == b"TFL3" or path.suffix.lower() == ".tflite":
        return "tflite"
    if path.suffix.lower() == ".onnx":
        return "onnx"
    raise ModelFileError(
        f"{path} is neither an ONNX (.onnx) nor a TFLite (.tflite) model file; those are the formats imgrec imports."
    )


class OnnxRuntime:
    """An ONNX Runtime session over a single-file model (optionally with an embedding output).

    Args:
        path: the ``.onnx`` file (checked: external data must stay next to it).
        threads: intra-op threads (None: one per physical core).
        embedding: name of an intermediate tensor to expose as a second output, or None.
    """

    def __init__(self, path: Path, threads: int | None = None, embedding: str | None = None) -> None:
        from imgrec.models import onnx_backend

        self.path, self.threads, self.embedding = Path(path), threads, embedding
        proto = onnx_backend.read_proto(self.path)
        self.output_name = proto.graph.output[0].name
        if embedding:
            from imgrec.models.onnx_embed import with_embedding_output

            proto = with_embedding_output(proto, embedding)
        self.session = _onnx_session(proto.SerializeToString(), threads, self.path)
        first = self.session.get_inputs()[0]
        shape = tuple(d if isinstance(d, int) else None for d in first.shape)
        self.input = TensorInfo(first.name, shape, np.dtype(_ONNX_TYPES.get(first.type, "float32")))
        out = next(o for o in self.session.get_outputs() if o.name == self.output_name)
        out_shape = tuple(d if isinstance(d, int) else None for d in out.shape)
        self.output = TensorInfo(out.name, out_shape, np.dtype(_ONNX_TYPES.get(out.type, "float32")))

    def final_op(self) -> str:
        """The operation that makes the output, looked through reshapes, casts and (de)quantization,
        in upper case (``"SOFTMAX"``, ``"SIGMOID"``, ``"ARGMAX"``), or ``""``."""
        from imgrec.models.onnx_backend import read_proto

        graph = read_proto(self.path).graph
        producers = {out: n for n in graph.node for out in n.output}
        node = producers.get(self.output_name)
        while node is not None and node.op_type in _THROUGH:
            node = producers.get(node.input[0])
        return "" if node is None else node.op_type.upper()

    def ends_in_softmax(self) -> bool:
        """Whether the output comes from a Softmax (through reshapes and (de)quantization)."""
        return self.final_op() == "SOFTMAX"

    def _session_run(self, names: list[str], x: np.ndarray) -> list[np.ndarray]:
        """``session.run``; a graph with a fixed batch of 1 runs image by image."""
        if self.input.shape[0] != 1 or len(x) == 1:
            return [np.asarray(o, np.float32) for o in self.session.run(names, {self.input.name: x})]
        parts = [self.session.run(names, {self.input.name: x[i : i + 1]}) for i in range(len(x))]
        return [np.concatenate([np.asarray(p[k], np.float32) for p in parts]) for k in range(len(names))]

    def run_all(self, x: np.ndarray) -> list[np.ndarray]:
        """Every graph output (float32), in the file's order."""
        names = [o.name for o in self.session.get_outputs() if o.name != "imgrec_embedding"]
        return self._session_run(names, x)

    def run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The graph's first output (float32) and the embedding (float32 ``(N, D)``) when asked for."""
        names = [self.output_name, *(["imgrec_embedding"] if self.embedding else [])]
        outs = self._session_run(names, x)
        emb = outs[1].reshape(len(x), -1) if self.embedding else None
        return outs[0], emb


_THROUGH = {"DequantizeLinear", "QuantizeLinear", "Reshape", "Flatten", "Squeeze", "Identity", "Cast"}
_ONNX_TYPES = {"tensor(float)": "float32", "tensor(uint8)": "uint8", "tensor(int8)": "int8",
               "tensor(float16)": "float16", "tensor(double)": "float64", "tensor(int64)": "int64",
               "tensor(int32)": "int32"}  # fmt: skip
# TFLite op names -> the ONNX spelling final_op() answers with
_TFLITE_OPS = {"LOGISTIC": "SIGMOID", "ARG_MAX": "ARGMAX"}


def _onnx_session(model: bytes, threads: int | None, path: Path) -> Any:
    from imgrec.models.onnx_backend import _ort, session_options

    ort = _ort()
    try:
        return ort.InferenceSession(model, session_options(threads), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's pybind errors subclass Exception only
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(f"onnxruntime cannot load {path}: {first}") from None


def _litert() -> Any:
    """The TFLite ``Interpreter`` class: LiteRT, else tflite-runtime, else TensorFlow's."""
    for module in ("ai_edge_litert.interpreter", "tflite_runtime.interpreter", "tensorflow.lite"):
        try:
            return importlib.import_module(module).Interpreter
        except ImportError:
            continue
    raise DependencyError(
        "Running .tflite models needs a TFLite runtime, and none is installed. "
        "Install it with: pip install 'imgrec[tflite]' (the ai-edge-litert package)."
    )


class TFLiteRuntime:
    """A LiteRT interpreter over a ``.tflite`` file; one image per call when the batch is fixed.

    Args:
        path: the ``.tflite`` file.
        threads: interpreter threads (None: one per physical core).
        embedding: index (as a string) of an intermediate tensor to return, or None. Reading
            one needs every tensor kept, so that interpreter runs without the XNNPACK delegate.
    """

    def __init__(self, path: Path, threads: int | None = None, embedding: str | None = None) -> None:
        from imgrec.machine import physical_cores

        self.path, self.threads, self.embedding = Path(path), threads, embedding
        kwargs: dict[str, Any] = {"model_path": str(path), "num_threads": threads or physical_cores()}
        if embedding:
            kwargs["experimental_preserve_all_tensors"] = True
        try:
            with warnings.catch_warnings():  # "preserve_all_tensors is for debugging": we need one tensor
                warnings.simplefilter("ignore", UserWarning)
                self.interp = _litert()(**kwargs)
            self.interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelFileError(f"The TFLite runtime cannot load {path}: {exc}") from None
        inp, self._out = self.interp.get_input_details()[0], self.interp.get_output_details()[0]
        self.input = TensorInfo(inp["name"], tuple(int(d) for d in inp["shape"]), np.dtype(inp["dtype"]))
        self.output = TensorInfo(self._out["name"], tuple(int(d) for d in self._out["shape"]),
                                 np.dtype(self._out["dtype"]))  # fmt: skip
        self._in_index = inp["index"]

    def run_all(self, x: np.ndarray) -> list[np.ndarray]:
        """Every output (dequantized float32) for a batch, image by image."""
        details = self.interp.get_output_details()
        per_image = []
        for one in x:
            self.interp.set_tensor(self._in_index, one[None])
            self.interp.invoke()
            per_image.append([_dequantized(self.interp.get_tensor(d["index"]), d["quantization"]) for d in details])
        return [np.concatenate([outs[k] for outs in per_image]) for k in range(len(details))]

    def run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Outputs for a batch, image by image (TFLite graphs have a fixed batch of 1)."""
        outs, embs = [], []
        for one in x:
            self.interp.set_tensor(self._in_index, one[None])
            self.interp.invoke()
            outs.append(_dequantized(self.interp.get_tensor(self._out["index"]), self._out["quantization"]))
            if self.embedding:
                embs.append(self._tensor(int(self.embedding)).reshape(-1))
        if len(outs) == 1:  # one image: its output as it is (get_tensor copied it; concatenate would again)
            out = outs[0]
        else:
            out = np.concatenate(outs) if outs else np.zeros((0, *self._out["shape"][1:]), np.float32)
        return out, (np.stack(embs) if self.embedding and embs else None)

    def final_op(self) -> str:
        """The last operation before a dequantize or reshape, spelled as :meth:`OnnxRuntime.final_op`
        spells it (``"SOFTMAX"``, ``"SIGMOID"``, ``"ARGMAX"``), or ``""``."""
        ops = [o["op_name"] for o in self.interp._get_ops_details() if o["op_name"] != "DELEGATE"]
        while ops and ops[-1] in ("DEQUANTIZE", "QUANTIZE", "RESHAPE", "SQUEEZE", "CAST"):
            ops.pop()
        return _TFLITE_OPS.get(ops[-1], ops[-1]) if ops else ""

    def ends_in_softmax(self) -> bool:
        """Whether the last operation (before a dequantize or reshape) is a SOFTMAX."""
        return self.final_op() == "SOFTMAX"

    def _tensor(self, index: int) -> np.ndarray:
        detail = next(d for d in self.interp.get_tensor_details() if d["index"] == index)
        return _dequantized(self.interp.get_tensor(index), detail["quantization"])

    def penultimate_tensor(self) -> tuple[str, str]:
        """Index and name of the input of the last FULLY_CONNECTED / CONV_2D op (the classifier layer)."""
        ops = self.interp._get_ops_details()
        for op in reversed(ops):
            if op["op_name"] in ("FULLY_CONNECTED", "CONV_2D"):
                index = int(op["inputs"][0])
                detail = next(d for d in self.interp.get_tensor_details() if d["index"] == index)
                return str(index), str(detail["name"])
        raise ModelFileError(f"{self.path} has no FULLY_CONNECTED or CONV_2D layer to take an embedding from.")


def _dequantized(arr: np.ndarray, quantization: tuple[float, int]) -> np.ndarray:
    scale, zero = quantization
    if scale and np.issubdtype(arr.dtype, np.integer):
        return ((arr.astype(np.float32) - np.float32(zero)) * np.float32(scale)).astype(np.float32)
    return np.asarray(arr, np.float32)


def open_runtime(kind: str, path: Path, threads: int | None = None, embedding: str | None = None) -> Any:
    """An :class:`OnnxRuntime` or :class:`TFLiteRuntime` (``kind`` from :func:`runtime_for`)."""
    if kind == "onnx":
        return OnnxRuntime(path, threads, embedding)
    if kind == "tflite":
        return TFLiteRuntime(path, threads, embedding)
    raise ModelFileError(f"Unknown runtime {kind!r}; expected one of {', '.join(RUNTIMES)}.")
