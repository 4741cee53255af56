"""The ONNX Runtime backend: ``OnnxClassifier`` over a ``model.onnx`` written by ``imgrec export``.

An imgrec ONNX file takes the *prepared* batch every backend takes — uint8 ``(N, S, S, 3)``
RGB, NHWC — and returns float32 probabilities ``(N, C)``: the mean/std normalization and the
softmax are inside the graph. Its ``metadata_props`` carry what a reader needs without
imgrec's training code (``imgrec.classes`` and ``imgrec.preprocessing`` as JSON, the model
name, the imgrec version, the input layout).

Loading never follows a path out of the model's folder: every tensor stored as external data
must name a file inside that folder, or the file is refused before ONNX Runtime sees it.
onnxruntime (and onnx) are imported on first use; without them a DependencyError names the
``onnx`` extra.

Example:
    >>> # model = load_onnx_file("runs/resnet18-1/model.onnx")
    >>> # model.predict_proba(model.preprocessing.prepare_batch(images)).shape
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from imgrec.errors import DependencyError, MissingInputError, ModelFileError, UsageError
from imgrec.files import write_bytes_atomic
from imgrec.machine import physical_cores
from imgrec.models.base import Classifier
from imgrec.models.registry import register_loader
from imgrec.transforms.preprocess import Preprocessing

log = logging.getLogger(__name__)

ONNX_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
BACKEND_FILES = {"onnx": ONNX_FILE, "onnx-int8": INT8_FILE}
INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"
INPUT_LAYOUT = "NHWC uint8 RGB 0-255, prepared (resized and cropped); normalization inside the graph"
META_PREFIX = "imgrec."


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise DependencyError(
            f"The ONNX backend needs onnxruntime, which is not installed ({exc}). "
            "Install it with: pip install 'imgrec[onnx]'"
        ) from exc
    return onnxruntime


def _onnx() -> Any:
    try:
        import onnx
    except ImportError as exc:
        raise DependencyError(
            f"Reading ONNX files needs the onnx package, which is not installed ({exc}). "
            "Install it with: pip install 'imgrec[onnx]'"
        ) from exc
    return onnx


def session_options(threads: int | None = None) -> Any:
    """Session options: all graph optimizations, sequential, one thread per physical core."""
    ort = _ort()
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = threads or physical_cores()
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # errors only; warnings go through the exceptions we raise
    return opts


# ---------------------------------------------------------------- file safety


def _tensors(graph: Any) -> Iterator[Any]:
    """Every tensor proto of a graph: initializers, sparse ones, attributes, subgraphs."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from _tensors(attr.g)
            for sub in attr.graphs:
                yield from _tensors(sub)


def check_external_data(proto: Any, folder: Path, name: str) -> None:
    """Refuse external-data locations that leave ``folder`` (``../``, absolute paths, links).

    Raises:
        ModelFileError: a tensor names a file outside the model's folder, or one that is missing.
    """
    root = folder.resolve()
    for tensor in _tensors(proto.graph):
        if tensor.data_location != 1:  # TensorProto.EXTERNAL
            continue
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        target = (root / location).resolve()
        if not location or os.path.isabs(location) or root not in target.parents:
            raise ModelFileError(
                f"{name} stores tensor {tensor.name!r} in {location!r}, outside the model's folder "
                f"{folder}. Refusing to load it: an ONNX file may only reference data files next to it."
            )
        if not target.is_file():
            raise ModelFileError(f"{name} needs the external data file {location!r}, which is missing in {folder}.")


def read_proto(path: Path) -> Any:
    """Parse an ONNX file's graph (external data not loaded) and check its data locations."""
    onnx = _onnx()
    if not path.is_file():
        raise MissingInputError(f"ONNX file not found: {path}")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises DecodeError and friends
        raise ModelFileError(
            f"{path} is not a readable ONNX model ({type(exc).__name__}: {exc}). Re-export it."
        ) from None
    check_external_data(proto, path.parent, str(path))
    return proto


def open_session(path: str | Path, threads: int | None = None) -> Any:
    """An onnxruntime ``InferenceSession`` for a checked file (CPU, optimized).

    Raises:
        ModelFileError: the file is corrupt, unsafe or not runnable by this onnxruntime.
    """
    p = Path(path)
    read_proto(p)
    ort = _ort()
    try:
        return ort.InferenceSession(str(p), session_options(threads), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's pybind errors subclass Exception only
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(f"onnxruntime cannot load {p}: {first}. Re-export it with `imgrec export`.") from None


# ---------------------------------------------------------------- the classifier


class OnnxClassifier(Classifier):
    """An ONNX Runtime session behind the common classifier interface.

    Attributes:
        session: the ``onnxruntime.InferenceSession``.
        path: the ``.onnx`` file it was loaded from.
        metadata: the file's ``imgrec.*`` metadata (prefix removed).
        batch_size: images per ``session.run`` call.
    """

    family = "onnx"

    def __init__(
        self,
        name: str,
        classes: list[str],
        preprocessing: Preprocessing,
        session: Any,
        path: Path,
        model_args: Mapping[str, Any] | None = None,
        metadata: Mapping[str, str] | None = None,
        batch_size: int = 64,
    ) -> None:
        super().__init__(name, classes, preprocessing, model_args)
        self.session = session
        self.path = Path(path)
        self.metadata = dict(metadata or {})
        self.batch_size = batch_size
        self._params: int | None = None

    @property
    def quantized(self) -> bool:
        """Whether the graph is the int8 export."""
        return self.metadata.get("quantization", "none") != "none"

    def set_threads(self, threads: int | None) -> None:
        """Reopen the session with ``threads`` intra-op threads (None: one per physical core)."""
        super().set_threads(threads)
        self.session = open_session(self.path, threads)

    def predict_proba(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities, float32 ``(N, C)``, for a prepared uint8 batch."""
        x = self._check(batch)
        out = [np.zeros((0, self.num_classes), np.float32)]
        for i in range(0, len(x), self.batch_size):
            (proba,) = self.session.run([OUTPUT_NAME], {INPUT_NAME: x[i : i + self.batch_size]})
            out.append(np.asarray(proba, np.float32))
        return np.concatenate(out)

    def _check(self, batch: np.ndarray) -> np.ndarray:
        s = self.preprocessing.size
        x = np.asarray(batch)
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (s, s, 3):
            raise UsageError(
                f"Expected a prepared uint8 batch (N, {s}, {s}, 3); received {x.dtype} {x.shape}. "
                "Prepare images with model.preprocessing.prepare_batch."
            )
        return np.ascontiguousarray(x)

    def save_weights(self, run_dir: Path) -> dict[str, str]:
        """Copy the ONNX file into ``run_dir`` (single-file models only)."""
        target = Path(run_dir) / self.path.name
        if target.resolve() != self.path.resolve():
            write_bytes_atomic(target, self.path.read_bytes())
        return {"onnx": self.path.name}

    def num_params(self) -> int:
        """Scalars stored in the graph's initializers (int8 weights count one each)."""
        if self._params is None:
            proto = read_proto(self.path)
            self._params = int(sum(int(np.prod(t.dims)) for t in proto.graph.initializer))
        return self._params


def read_metadata(session: Any) -> dict[str, str]:
    """The ``imgrec.*`` entries of a session's model metadata, prefix removed."""
    raw = dict(session.get_modelmeta().custom_metadata_map)
    return {k[len(META_PREFIX) :]: v for k, v in raw.items() if k.startswith(META_PREFIX)}


def _from_metadata(meta: Mapping[str, str], path: Path) -> tuple[str, list[str], Preprocessing]:
    try:
        classes = [str(c) for c in json.loads(meta["classes"])]
        prep = Preprocessing.from_dict(json.loads(meta["preprocessing"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(
            f"{path} lacks imgrec metadata ({type(exc).__name__}: {exc}): it was not written by "
            "`imgrec export`. Expected metadata_props imgrec.classes and imgrec.preprocessing."
        ) from None
    return meta.get("model", path.stem), classes, prep


def load_onnx_file(path: str | Path, threads: int | None = None, session: Any = None) -> OnnxClassifier:
    """Load an ONNX file written by ``imgrec export``; classes and preprocessing come from its metadata.

    ``session``: the file's already opened session, when the caller has one (the file is
    then not parsed again).

    Example:
        >>> # model = load_onnx_file("runs/cnn-bn-1/model.onnx")
    """
    p = Path(path)
    session = open_session(p, threads) if session is None else session
    meta = read_metadata(session)
    name, classes, prep = _from_metadata(meta, p)
    _check_io(session, p, len(classes))
    args = json.loads(meta.get("model_args", "{}") or "{}")
    return OnnxClassifier(name, classes, prep, session, p, model_args=args, metadata=meta)


def _check_io(session: Any, path: Path, num_classes: int) -> None:
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if [i.name for i in inputs] != [INPUT_NAME] or OUTPUT_NAME not in [o.name for o in outputs]:
        raise ModelFileError(
            f"{path} has inputs {[i.name for i in inputs]} and outputs {[o.name for o in outputs]}; "
            f"expected input {INPUT_NAME!r} and output {OUTPUT_NAME!r} (an `imgrec export` file)."
        )
    width = next(o.shape[-1] for o in outputs if o.name == OUTPUT_NAME)
    if isinstance(width, int) and width != num_classes:
        raise ModelFileError(f"{path} outputs {width} classes but its metadata lists {num_classes}.")


def load_onnx(run_dir: Path, meta: dict[str, Any], int8: bool = False, threads: int | None = None) -> Any:
    """Load a run's ONNX export (``model.onnx`` or, with ``int8``, ``model.int8.onnx``).

    Also the loader of the ``"onnx"`` family. The file's classes and preprocessing must match
    ``model.json``, so a stale export is refused instead of giving wrong labels.
    """
    run = Path(run_dir)
    default = INT8_FILE if int8 else str(dict(meta.get("files") or {}).get("onnx", ONNX_FILE))
    path = run / default
    if not path.is_file():
        raise MissingInputError(f"{run} has no {path.name}; create it with `imgrec export {run} --format onnx`.")
    model = load_task_file(path, meta.get("task"), threads)
    if model.classes != [str(c) for c in meta["classes"]] or model.preprocessing != Preprocessing.from_dict(
        meta["preprocessing"]
    ):
        raise ModelFileError(
            f"{path} does not belong to {run}: its classes or preprocessing differ from model.json "
            f"(file: {model.classes}, run: {meta['classes']}). Re-export with `imgrec export {run}`."
        )
    return model


def load_task_file(path: str | Path, task: Any, threads: int | None = None, session: Any = None) -> Any:
    """An ``imgrec export`` file through the loader of ``task`` (a run's, or the file's own
    ``imgrec.task``; None or ``classify``: a classifier). A file of another task is refused.

    Raises:
        ModelFileError: the file is corrupt, foreign, or an export of another task.
    """
    if task in ("detect", "detection", "instance"):
        from imgrec.models.onnx_detect import load_onnx_detector_file

        return load_onnx_detector_file(path, threads, session, task="instance" if task == "instance" else "detect")
    if task in ("segment", "segmentation"):
        from imgrec.models.onnx_segment import load_onnx_segmenter_file

        return load_onnx_segmenter_file(path, threads, session)
    return load_onnx_file(path, threads, session)


def onnx_files(run_dir: str | Path) -> dict[str, Path]:
    """The ONNX exports present in a run: ``{"onnx": path, "onnx-int8": path}`` (either may be absent)."""
    run = Path(run_dir)
    return {backend: run / name for backend, name in BACKEND_FILES.items() if (run / name).is_file()}


register_loader("onnx", load_onnx)
