"""Detection ONNX files written by ``imgrec export``: ``OnnxDetector`` (family ``onnx``, task ``detect``)
and ``OnnxInstanceSegmenter`` (task ``instance``: Mask R-CNN).

Two kinds of detection graph, told apart by the ``imgrec.layout`` metadata entry:

- no layout (torchvision's detectors): one prepared image, uint8 ``image`` ``[1, S, S, 3]``
  (letterboxed, as every backend gets it) in; ``boxes`` ``[K, 4]`` x1 y1 x2 y2 in input pixels,
  ``scores`` ``[K]`` and ``labels`` ``[K]`` (torchvision's numbering: imgrec's class + 1) out,
  torchvision's own postprocessing inside the graph.
- ``layout = NAME`` (imgrec's ``yolo-n``/``yolo-s``: ``xyxy-scores``): a prepared batch
  ``[N, S, S, 3]`` in; the dense ``boxes`` ``[N, A, 4]`` and ``scores`` ``[N, A, C]`` out, decoded
  here by :func:`imgrec.tasks.decoders.decode` with that layout, the very code the torch model
  decodes its own outputs with.

An instance graph (``imgrec.task = instance``) is the torchvision kind with a fourth output,
``masks`` ``[K, 28, 28]``: each object's mask probabilities over its own box, what
:meth:`~imgrec.models.torch_instance.TorchInstanceSegmenter.segment_instances` keeps (the graph
stops before torchvision pastes the masks into the image), so both backends hand the same
``InstanceCandidates(mask_frame="box")`` to the ``instance`` task.

The metadata (``imgrec.task``, classes, preprocessing) make the file self-describing, like a
classifier export; the task then applies conf, NMS and max_det (and pastes the masks) as for
every backend.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from imgrec.errors import ModelFileError, UsageError
from imgrec.files import write_bytes_atomic
from imgrec.models.base import Detector
from imgrec.models.onnx_backend import INPUT_NAME, _from_metadata, open_session, read_metadata, read_proto
from imgrec.transforms.preprocess import Preprocessing

OUTPUTS = ("boxes", "scores", "labels")
DENSE_OUTPUTS = ("boxes", "scores")
INSTANCE_OUTPUTS = (*OUTPUTS, "masks")
TASKS = ("detect", "instance")
LABEL_OFFSET = 1
DENSE_BATCH = 16  # images per session call for dense graphs (their batch axis is dynamic)


class OnnxDetector(Detector):
    """An exported detector under ONNX Runtime, one image per call."""

    family = "onnx"

    def __init__(
        self, name: str, classes: list[str], preprocessing: Preprocessing, session: Any, path: Path,
        model_args: Mapping[str, Any] | None = None, metadata: Mapping[str, str] | None = None,
    ) -> None:  # fmt: skip
        super().__init__(name, classes, preprocessing, model_args)
        self.session, self.path, self.metadata = session, Path(path), dict(metadata or {})
        self.layout: str | None = self.metadata.get("layout") or None

    @property
    def quantized(self) -> bool:
        """Whether the graph is an int8 export."""
        return self.metadata.get("quantization", "none") != "none"

    def detect(self, batch: np.ndarray) -> list[Any]:
        """Box candidates per image in input pixels."""
        x = self._checked(batch)
        return self._dense(x) if self.layout else self._postprocessed(x)

    def _checked(self, batch: np.ndarray) -> np.ndarray:
        s = self.preprocessing.size
        x = np.asarray(batch)
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (s, s, 3):
            raise UsageError(f"Expected a prepared uint8 batch (N, {s}, {s}, 3); received {x.dtype} {x.shape}.")
        return x

    def _dense(self, x: np.ndarray) -> list[Any]:
        """Dense graphs: a batch at a time, decoded by the file's layout."""
        from imgrec.tasks.decoders import decode

        found: list[Any] = []
        for i in range(0, len(x), DENSE_BATCH):
            outs = self.session.run(list(DENSE_OUTPUTS), {INPUT_NAME: np.ascontiguousarray(x[i : i + DENSE_BATCH])})
            found += decode(str(self.layout), outs, self.preprocessing.size, self.num_classes)
        return found

    def _postprocessed(self, x: np.ndarray) -> list[Any]:
        """torchvision graphs: one image at a time, boxes/scores/labels already final."""
        from imgrec.tasks.detect import BoxCandidates

        return [BoxCandidates(boxes, scores, labels) for boxes, scores, labels in self._per_image(x, OUTPUTS)]

    def _per_image(self, x: np.ndarray, names: tuple[str, ...]) -> list[list[np.ndarray]]:
        """Each image's outputs ``names`` (boxes, scores, labels first), the objects torchvision
        labels background left out and the labels turned into imgrec's class indices."""
        found: list[list[np.ndarray]] = []
        for one in x:
            boxes, scores, labels, *rest = self.session.run(list(names), {INPUT_NAME: np.ascontiguousarray(one[None])})
            lab = np.asarray(labels, np.int64) - LABEL_OFFSET
            keep = lab >= 0
            found.append([np.asarray(boxes, np.float32).reshape(-1, 4)[keep], np.asarray(scores, np.float32)[keep],
                          lab[keep], *(np.asarray(r, np.float32)[keep] for r in rest)])  # fmt: skip
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


class OnnxInstanceSegmenter(OnnxDetector):
    """An exported Mask R-CNN under ONNX Runtime, one image per call: each object's box, score,
    class and its 28 x 28 mask probabilities over the box."""

    task = "instance"

    def segment_instances(self, batch: np.ndarray) -> list[Any]:
        """Candidates per image in input pixels, each mask over its own box (``mask_frame="box"``)."""
        from imgrec.tasks.instance import InstanceCandidates

        found = self._per_image(self._checked(batch), INSTANCE_OUTPUTS)
        return [InstanceCandidates(boxes, scores, labels, masks, mask_frame="box")
                for boxes, scores, labels, masks in found]  # fmt: skip

    def detect(self, batch: np.ndarray) -> list[Any]:
        """Box candidates only (what a detection evaluation of this model reads)."""
        from imgrec.tasks.detect import BoxCandidates

        return [BoxCandidates(c.boxes, c.scores, c.labels) for c in self.segment_instances(batch)]


def load_onnx_detector_file(
    path: str | Path, threads: int | None = None, session: Any = None, *, task: str | None = None
) -> OnnxDetector:
    """Load a detection or instance-segmentation ONNX file written by ``imgrec export``
    (``session``: its already opened session; ``task``: the one the file must name, None: either).

    Returns:
        An :class:`OnnxInstanceSegmenter` for an instance export, else an :class:`OnnxDetector`.
    """
    p = Path(path)
    session = open_session(p, threads) if session is None else session
    meta = read_metadata(session)
    wanted = (task,) if task else TASKS
    if meta.get("task") not in wanted:
        found = f"task={meta['task']}" if meta.get("task") else "no task (a classifier, or not an imgrec export)"
        raise ModelFileError(f"{p} is not an imgrec {' or '.join(wanted)} export: its metadata name {found}. "
                             "Export the run again with `imgrec export RUN`.")  # fmt: skip
    instance = meta["task"] == "instance"
    _check_outputs(session, p, None if instance else meta.get("layout") or None, instance)
    name, classes, prep = _from_metadata(meta, p)
    args = json.loads(meta.get("model_args", "{}") or "{}")
    kind = OnnxInstanceSegmenter if instance else OnnxDetector
    return kind(name, classes, prep, session, p, model_args=args, metadata=meta)


def _check_outputs(session: Any, path: Path, layout: str | None, instance: bool = False) -> None:
    """The input and outputs a detection export of ``layout`` (None: torchvision's), or an
    instance export, must have."""
    from imgrec.tasks.decoders import DECODERS

    if layout is not None and layout not in DECODERS:
        raise ModelFileError(f"{path} names the output layout {layout!r}, which this imgrec does not know; "
                             f"known: {', '.join(sorted(DECODERS))}. Upgrade imgrec or export again.")  # fmt: skip
    wanted = INSTANCE_OUTPUTS if instance else DENSE_OUTPUTS if layout else OUTPUTS
    names = [o.name for o in session.get_outputs()]
    if [i.name for i in session.get_inputs()] != [INPUT_NAME] or not set(wanted) <= set(names):
        what = "instance segmenter" if instance else "detector"
        raise ModelFileError(f"{path} has outputs {names}; expected {', '.join(wanted)} (an `imgrec export` "
                             f"{what}).")  # fmt: skip
