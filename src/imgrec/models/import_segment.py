"""Importing a segmentation file (``imgrec import FILE --task segment``): what its output is.

The file is run once on a random image, and its first output read:

- the layout: ``[1, h, w]`` (``"hw"``), ``[1, h, w, C]`` (``"nhwc"``) or ``[1, C, h, w]``
  (``"nchw"``; the input's layout decides when both could be); a map smaller than
  :data:`MIN_MASK_SIDE` on a side, or an output of rank 2, is not a mask (a classifier's or an
  embedding's output) and is refused, and so is a map whose sides are not in the input's
  proportions (a detector's ``[1, boxes, 4 + classes]``);
- the kind: ``"index"`` (an integer output, or the graph ends in ArgMax: DeepLabV3 on Coral),
  ``"sigmoid"`` (one channel, the graph ends in a sigmoid or its values lie in [0, 1]:
  MediaPipe's selfie segmenter), ``"probabilities"`` (C channels ending in a softmax, or summing
  to 1) or ``"logits"``;
- the classes: as many as channels; one channel is background + foreground (a lone name gets
  ``background`` in front); an index map's values must name classes.

Defaults that the file cannot state: float NHWC inputs take values in [0, 1] (TF / MediaPipe),
float NCHW inputs ImageNet's mean/std (PyTorch exports); one-channel (sigmoid) models are fed
the image stretched to their input (MediaPipe's own convention), the others letterboxed (VOC
models were trained and evaluated on padded, undistorted images), padded with gray 128; the
resize is OpenCV's bilinear (``cv2-linear``: what the upstream demos use, 20x faster than PIL's
antialiased one; JPEGs are decoded at a reduced scale first, which limits its aliasing). Every
choice is recorded in ``model.json`` (``preprocessing``, ``external``) and can be overridden
(``--resize``, ``--mean/--std``, ``--output``).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from imgrec.errors import ModelFileError, UsageError
from imgrec.models.external import ExternalIO
from imgrec.models.external_segment import ExternalSegmenter
from imgrec.transforms.preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocessing

log = logging.getLogger(__name__)
MIN_MASK_SIDE = 4
MAX_ASPECT_CHANGE = 2.0  # a mask's height/width may differ from the input's by this factor at most
SEGMENT_RESIZE = ("stretch", "letterbox")
PAD_GRAY = 128


def build_segmenter(
    src: Path, name: str, options: Any, io: ExternalIO, size: int, dtype: np.dtype, labels: list[str]
) -> ExternalSegmenter:
    """The imported segmenter of ``src`` (run once to read its output), ready to save.

    Args:
        src: the model file.
        name: the model name to record.
        options: the :class:`~imgrec.models.importer.ImportOptions`.
        io: the input mapping read from the file (runtime, layout, colour, ``input_hw``).
        size: the square side imgrec prepares.
        dtype: the file's input dtype.
        labels: the class names given.
    """
    if options.resize_mode not in (None, *SEGMENT_RESIZE):
        raise UsageError(f"A segmenter must see the whole image: --resize stretch or letterbox; "
                         f"received {options.resize_mode!r}.")  # fmt: skip
    prep = _preprocessing(options, size, io, dtype, "stretch")
    probe = ExternalSegmenter(name, labels, prep, replace(io, mask_layout="hw"), src)
    raw = _probe(probe)
    mask_layout, channels = _layout(raw.shape, io.layout, src)
    _check_aspect(raw.shape, mask_layout, io.input_hw or (size, size), src)
    kind = _kind(options.output, probe.runtime.output.dtype, probe.runtime.final_op(), raw, mask_layout, channels)
    classes = _classes(labels, channels, kind, raw, src)
    mode = options.resize_mode or ("stretch" if channels == 1 and kind != "index" else "letterbox")
    io = replace(io, output=kind, mask_layout=mask_layout)
    return ExternalSegmenter(name, classes, _preprocessing(options, size, io, dtype, mode), io, src)


def _preprocessing(options: Any, size: int, io: ExternalIO, dtype: np.dtype, mode: str) -> Preprocessing:
    if np.issubdtype(dtype, np.integer):
        if options.mean is not None or options.std is not None:
            raise UsageError(f"The file takes {dtype} pixels (its quantization normalizes them); drop --mean/--std.")
        mean, std = (0.0, 0.0, 0.0), (1 / 255, 1 / 255, 1 / 255)
    else:
        default = ((0.0,) * 3, (1.0,) * 3) if io.layout == "nhwc" else (IMAGENET_MEAN, IMAGENET_STD)
        mean, std = options.mean or default[0], options.std or default[1]
    h, w = io.input_hw or (size, size)
    return Preprocessing(size=size, crop_pct=1.0, interpolation=options.interpolation or "cv2-linear", mean=mean,
                         std=std, resize_mode=mode, pad_value=PAD_GRAY, aspect=w / h)  # fmt: skip


def _probe(model: ExternalSegmenter) -> np.ndarray:
    rng = np.random.default_rng(0)
    s = model.preprocessing.size
    raw, _ = model.runtime.run(model._input(rng.integers(0, 256, (1, s, s, 3), dtype=np.uint8)))
    return np.asarray(raw)


def _layout(shape: tuple[int, ...], input_layout: str, src: Path) -> tuple[str, int]:
    """The output's axes and channel count; refuses outputs that are no per-pixel map."""
    dims = tuple(int(d) for d in shape[1:])
    if len(dims) == 2 and min(dims) >= MIN_MASK_SIDE:
        return "hw", 1
    if len(dims) == 3:
        nhwc_ok = min(dims[0], dims[1]) >= MIN_MASK_SIDE
        nchw_ok = min(dims[1], dims[2]) >= MIN_MASK_SIDE
        if nhwc_ok and (input_layout == "nhwc" or not nchw_ok):
            return "nhwc", dims[2]
        if nchw_ok:
            return "nchw", dims[0]
    raise ModelFileError(
        f"{src}'s output has shape {list(shape)}: not a mask (a map of at least {MIN_MASK_SIDE}x{MIN_MASK_SIDE} "
        "pixels: [1, h, w], [1, h, w, C] or [1, C, h, w]). A classifier's scores or an embedding are imported "
        "with --task classify; a detector with --task detect."
    )


def _check_aspect(shape: tuple[int, ...], layout: str, input_hw: tuple[int, int], src: Path) -> None:
    """A mask covers the input: its sides keep the input's proportions (within :data:`MAX_ASPECT_CHANGE`).
    A detector's ``[1, boxes, 4 + classes]`` output (YOLOX: ``[1, 3549, 85]``) is no such map."""
    dims = tuple(int(d) for d in shape[1:])
    h, w = dims[1:3] if layout == "nchw" else dims[:2]
    change = (h / w) / (input_hw[0] / input_hw[1])
    if not 1 / MAX_ASPECT_CHANGE <= change <= MAX_ASPECT_CHANGE:
        raise ModelFileError(
            f"{src}'s output has shape {list(shape)}: a {w}x{h} map is not a mask of its {input_hw[1]}x{input_hw[0]} "
            "input (the sides are in other proportions). A detector is imported with --task detect; a "
            "classifier with --task classify."
        )


def _kind(given: str | None, dtype: np.dtype, final_op: str, raw: np.ndarray, layout: str, channels: int) -> str:
    if given is not None:
        if given == "sigmoid" and channels != 1:
            raise UsageError(f"--output sigmoid is for one-channel outputs; this file gives {channels} channels.")
        return given
    if np.issubdtype(dtype, np.integer) or final_op == "ARGMAX":
        return "index"
    in_range = bool(raw.min() >= -1e-6 and raw.max() <= 1 + 1e-6)
    if channels == 1:
        return "sigmoid" if final_op == "SIGMOID" or in_range else "logits"
    axis = 3 if layout == "nhwc" else 1
    sums_to_one = in_range and np.allclose(raw.sum(axis=axis), 1.0, atol=0.02)
    return "probabilities" if final_op == "SOFTMAX" or sums_to_one else "logits"


def _classes(labels: list[str], channels: int, kind: str, raw: np.ndarray, src: Path) -> list[str]:
    if kind == "index":
        top = int(np.rint(raw).max()) if raw.size else 0
        if top >= len(labels):
            raise ModelFileError(f"{src} gives class indices up to {top} but the labels list {len(labels)} classes; "
                                 "give every class the model knows, background first.")  # fmt: skip
        return labels
    if channels == 1:
        if len(labels) == 1:
            log.info("%s gives one channel: classes are background, %s", src, labels[0])
            return ["background", *labels]
        if len(labels) != 2:
            raise UsageError(f"{src} gives one (sigmoid) channel: 2 classes, background and the foreground "
                             f"(e.g. --classes background,person); received {len(labels)}.")  # fmt: skip
        return labels
    if len(labels) != channels:
        raise ModelFileError(f"{src} gives {channels} class channels but the labels list {len(labels)} classes; "
                             "give one name per channel, background included.")  # fmt: skip
    return labels
