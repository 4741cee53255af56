"""MediaPipe's selfie segmenter, the default model of ``imgrec cutout`` (background removal).

The official file (256 x 256 float NHWC in [0, 1], one sigmoid "person" channel) is published in
the MediaPipe repository; :data:`SELFIE_FILE` pins it to a commit and its sha256. It is used from
a local file (``weights=``), from the download cache when an earlier download put it there, or
downloaded when asked (``download=True``): nothing touches the network otherwise. The file goes
through the same import as ``imgrec import FILE --task segment`` (output kind, preprocessing),
in memory, without writing a run.

Example:
    >>> SELFIE_FILE.sha256[:12], SELFIE_CLASSES
    ('8d13b7fae74a', ['background', 'person'])
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imgrec.errors import MissingInputError, UsageError

SELFIE_CLASSES = ["background", "person"]


@dataclass(frozen=True)
class PublishedFile:
    """A model file published upstream: its address and the digest a download must have."""

    url: str
    sha256: str
    name: str
    description: str


SELFIE_FILE = PublishedFile(
    "https://github.com/google-ai-edge/mediapipe/raw/8b57bf879b419173b26277d220b643dac0402334/"
    "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite",
    "8d13b7fae74af625c641226813616a2117bd6bca19eb3b75574621fc08557f27",
    "selfie_segmentation.tflite",
    "MediaPipe selfie segmentation (general, 256 x 256), Apache-2.0",
)


def selfie_file(weights: str | Path | None = None, *, download: bool = False) -> Path:
    """The selfie segmenter's file: ``weights``, else the cached download, else (``download=True``)
    the official file fetched and checked by sha256.

    Raises:
        MissingInputError: ``weights`` does not exist, or the download failed.
        UsageError: no file and no download asked for (the message says which file to pass).
    """
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise MissingInputError(f"Weights file not found: {path}. Pass MediaPipe's {SELFIE_FILE.name} itself.")
        return path
    from imgrec.models.hub import cache_dir, file_name
    from imgrec.models.hub import download as fetch

    cached = cache_dir() / file_name(SELFIE_FILE.url)
    if download or cached.is_file():
        try:
            return fetch(SELFIE_FILE.url, sha256=SELFIE_FILE.sha256)
        except MissingInputError as exc:
            raise MissingInputError(f"{exc} Or give the file itself: --weights {SELFIE_FILE.name}.") from None
    raise UsageError(
        f"No segmentation model: pass --model RUN (an imported or trained segment run), or --weights "
        f"{SELFIE_FILE.name} (MediaPipe's selfie segmenter, {SELFIE_FILE.url}), or --download to fetch that file "
        "(checked by its sha256)."
    )


def selfie_segmenter(
    weights: str | Path | None = None, *, download: bool = False, threads: int | None = None
) -> tuple[Any, dict[str, Any]]:
    """The selfie segmenter (an :class:`~imgrec.models.external_segment.ExternalSegmenter`) and its
    ``model.json``-like record, ready for ``Predictor(model, meta)``."""
    from imgrec.models.importer import ImportOptions, build_import

    path = selfie_file(weights, download=download)
    options = ImportOptions(task="segment", classes=SELFIE_CLASSES, name="selfie-segmentation")
    model, record = build_import(path, options)
    if list(model.classes) != SELFIE_CLASSES or model.io.output != "sigmoid":
        raise UsageError(f"{path} is not a selfie segmenter (one sigmoid person channel); its output is "
                         f"{model.io.output} for {len(model.classes)} classes. Use --model RUN for "
                         "other models.")  # fmt: skip
    if threads is not None:
        model.set_threads(threads)
    meta = {"model": model.name, "family": model.family, "task": "segment", "classes": list(model.classes),
            "preprocessing": model.preprocessing.to_dict(), **record}  # fmt: skip
    return model, meta


__all__ = ["SELFIE_CLASSES", "SELFIE_FILE", "PublishedFile", "selfie_file", "selfie_segmenter"]
