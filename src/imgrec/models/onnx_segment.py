"""Segmentation ONNX files written by ``imgrec export``: ``OnnxSegmenter`` (family ``onnx``, task ``segment``).

The graph takes what every backend takes, a prepared uint8 batch ``image`` ``[N, S, S, 3]``
(normalization inside), and gives ``logits`` ``[N, C, S, S]``; the metadata (``imgrec.task =
segment``, classes, preprocessing) make the file self-describing, and the ``segment`` task turns
the logits into a :class:`~imgrec.tasks.segment.Segmentation` exactly as for the torch model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from imgrec.errors import ModelFileError, UsageError
from imgrec.files import write_bytes_atomic
from imgrec.models.base import Segmenter
from imgrec.models.onnx_backend import INPUT_NAME, _from_metadata, open_session, read_metadata, read_proto
from imgrec.transforms.preprocess import Preprocessing

LOGITS = "logits"
BATCH = 4  # images per session call (the logits of a batch are C x S x S floats each)


class OnnxSegmenter(Segmenter):
    """An exported segmenter under ONNX Runtime."""

    family = "onnx"

    def __init__(
        self, name: str, classes: list[str], preprocessing: Preprocessing, session: Any, path: Path,
        model_args: Mapping[str, Any] | None = None, metadata: Mapping[str, str] | None = None,
    ) -> None:  # fmt: skip
        super().__init__(name, classes, preprocessing, model_args)
        self.session, self.path, self.metadata = session, Path(path), dict(metadata or {})

    def segment(self, batch: np.ndarray) -> list[np.ndarray]:
        """float32 ``(C, S, S)`` logits per image."""
        s = self.preprocessing.size
        x = np.asarray(batch)
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (s, s, 3):
            raise UsageError(f"Expected a prepared uint8 batch (N, {s}, {s}, 3); received {x.dtype} {x.shape}.")
        found: list[np.ndarray] = []
        for i in range(0, len(x), BATCH):
            (logits,) = self.session.run([LOGITS], {INPUT_NAME: np.ascontiguousarray(x[i : i + BATCH])})
            found += list(np.asarray(logits, np.float32))
        return found

    def set_threads(self, threads: int | None) -> None:
        super().set_threads(threads)
        self.session = open_session(self.path, threads)

    def save_weights(self, run_dir: Path) -> dict[str, str]:
        target = Path(run_dir) / self.path.name
        if target.resolve() != self.path.resolve():
            write_bytes_atomic(target, self.path.read_bytes())
        return {"onnx": self.path.name}

    def num_params(self) -> int:
        return int(sum(int(np.prod(t.dims)) for t in read_proto(self.path).graph.initializer))


def is_segmenter(metadata: Mapping[str, str]) -> bool:
    """Whether an imgrec ONNX file's metadata names the segment task."""
    return metadata.get("task") == "segment"


def load_onnx_segmenter_file(path: str | Path, threads: int | None = None, session: Any = None) -> OnnxSegmenter:
    """Load a segmentation ONNX file written by ``imgrec export`` (``session``: its already opened session)."""
    p = Path(path)
    session = open_session(p, threads) if session is None else session
    meta = read_metadata(session)
    if not is_segmenter(meta):
        raise ModelFileError(f"{p} is not an imgrec segmentation export (its metadata do not name task=segment).")
    names = [o.name for o in session.get_outputs()]
    if [i.name for i in session.get_inputs()] != [INPUT_NAME] or LOGITS not in names:
        raise ModelFileError(f"{p} has outputs {names}; expected {LOGITS!r} (an `imgrec export` segmenter).")
    name, classes, prep = _from_metadata(meta, p)
    args = json.loads(meta.get("model_args", "{}") or "{}")
    return OnnxSegmenter(name, classes, prep, session, p, model_args=args, metadata=meta)
