"""Segmenters imported from model files (ONNX, TFLite): family ``"external"``, task ``segment``.

The file runs on the prepared uint8 batch every backend takes (converted to the file's input by
:func:`imgrec.models.external.model_input`, resized to a fixed non-square input when the file has
one); its first output is read per image as ``model.json``'s ``external`` record says:

- ``mask_layout``: ``"nhwc"`` (TF, MediaPipe: ``[1, h, w, C]``), ``"nchw"`` (PyTorch exports:
  ``[1, C, h, w]``) or ``"hw"`` (``[1, h, w]``: an index map, or one channel without its axis);
- ``output``: ``"index"`` (argmax inside the graph: DeepLabV3 on Coral), ``"sigmoid"`` (one
  foreground probability: MediaPipe's selfie segmenter), ``"probabilities"`` or ``"logits"``
  (``C`` scores, or one channel of logits).

Each image's map becomes a :class:`~imgrec.tasks.SegmentOutput` saying what it holds, and the
``segment`` task does the rest (upsampling to the original's pixels, argmax or threshold), as for
every other segmentation backend.

Example:
    >>> io = ExternalIO(runtime="onnx", file="m.onnx", output="sigmoid", mask_layout="nhwc")
    >>> out = mask_output(np.full((4, 6, 1), 0.9, np.float32), io)
    >>> out.kind, out.values.shape
    ('probabilities', (1, 4, 6))
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from imgrec.errors import ModelFileError
from imgrec.models.base import Segmenter
from imgrec.models.external import ExternalIO, _ExternalFile
from imgrec.tasks.segment import SegmentOutput
from imgrec.transforms.preprocess import Preprocessing


def mask_output(raw: np.ndarray, io: ExternalIO) -> SegmentOutput:
    """One image's output (batch axis removed) as a :class:`SegmentOutput` over the model input."""
    values = np.asarray(raw)
    if io.mask_layout == "nhwc":
        values = values.transpose(2, 0, 1)
    elif io.mask_layout == "hw":
        values = values[None]
    if io.output == "index":
        return SegmentOutput(np.rint(values[0]).astype(np.int64), "index")
    kind = "probabilities" if io.output in ("sigmoid", "probabilities") else "logits"
    return SegmentOutput(np.ascontiguousarray(values, np.float32), kind)


class ExternalSegmenter(_ExternalFile, Segmenter):
    """An imported ONNX or TFLite segmenter behind the common interface.

    Attributes:
        io: how batches map onto the file and how its output reads (:class:`ExternalIO`).
        path: the model file (inside the run folder once imported).
        runtime: the :mod:`imgrec.models.runtimes` runtime running it.
    """

    family = "external"

    def __init__(
        self, name: str, classes: list[str], preprocessing: Preprocessing, io: ExternalIO, path: Path,
        model_args: Mapping[str, Any] | None = None, threads: int | None = None,
    ) -> None:  # fmt: skip
        super().__init__(name, classes, preprocessing, model_args)
        if io.mask_layout is None:
            raise ModelFileError(f"{path}: an imported segmenter needs its output layout (external.mask_layout).")
        self._open(io, path, threads)

    def segment(self, batch: np.ndarray) -> list[SegmentOutput]:
        """One :class:`SegmentOutput` per image of a prepared uint8 batch."""
        if len(batch) == 0:
            return []
        raw, _ = self.runtime.run(self._input(batch))
        return [mask_output(r, self.io) for r in raw]


__all__ = ["ExternalSegmenter", "mask_output"]
