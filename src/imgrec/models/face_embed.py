"""Pretrained face embedders (family ``"faces"``, task ``embed``): an aligned face crop in, a
128-d vector out, compared by cosine after L2 normalization (the ``embed`` task does it).

- ``dlib-resnet``: dlib's ResNet-29 face embedding (``dlib_face_recognition_resnet_model_v1.dat``
  from the ``face-recognition-models`` package, CC0), on 150 x 150 crops aligned to the
  ``dlib-150`` template (where ``dlib.get_face_chip(img, shape, 150, 0.25)`` puts the landmarks);
  dlib normalizes inside its network (mean 122.782, 117.001, 104.298; divided by 256), which the
  recorded preprocessing states. Nothing is downloaded.
- ``sface``: OpenCV zoo's SFace (``face_recognition_sface_2021dec.onnx``), 112 x 112 RGB crops
  aligned to ``arcface-112``, raw 0..255 values (OpenCV's ``FaceRecognizerSF`` feeds the aligned
  crop unnormalized); ``weights=FILE``, or the official file downloaded once and checked by
  sha256, as the face detectors' (:func:`imgrec.models.faces.resolve_weights`).

Any other ONNX face embedder is imported (``imgrec import FILE --task embed``, family
``external``; :mod:`imgrec.models.importer`).

Example:
    >>> EMBEDDER_FILES["sface"].template, round(DLIB_NORM[1][0], 4)
    ('arcface-112', 1.0039)
    >>> # e = create_model("sface", [], weights="face_recognition_sface_2021dec.onnx")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imgrec.errors import ModelFileError, UsageError
from imgrec.models.base import Embedder, ModelSpec
from imgrec.models.external import ExternalEmbedder, ExternalIO, file_sha256
from imgrec.models.registry import lazy, register_model
from imgrec.transforms.preprocess import Preprocessing

DIM = 128
# dlib's input layer: (x - mean) / 256 on 0..255 values, i.e. mean/255 and 256/255 on 0..1 values.
DLIB_NORM = ((122.782 / 255, 117.001 / 255, 104.298 / 255), (256 / 255, 256 / 255, 256 / 255))
DLIB_FILE = "dlib_face_recognition_resnet_model_v1.dat"


@dataclass(frozen=True)
class EmbedderFile:
    """An official face-embedder file: where it is published, its digest, how it is fed.

    Attributes:
        url: the upstream address.
        sha256: the digest the download must have.
        template: the alignment template of its crops.
        size: its square input side.
        mean: per-channel mean of 0..1 inputs.
        std: per-channel std of 0..1 inputs.
        description: one line for ``imgrec models``.
        params: weights in the file (for listings).
    """

    url: str
    sha256: str
    template: str
    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    description: str
    params: int


EMBEDDER_FILES: dict[str, EmbedderFile] = {
    "sface": EmbedderFile(
        "https://github.com/opencv/opencv_zoo/raw/main/models/face_recognition_sface/face_recognition_sface_2021dec.onnx",
        "0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79", "arcface-112", 112,
        (0.0, 0.0, 0.0), (1 / 255, 1 / 255, 1 / 255), "SFace 2021dec face embedding, 128-d (OpenCV zoo)", 9_650_000,
    ),
}  # fmt: skip


def crop_preprocessing(size: int, mean: Sequence[float], std: Sequence[float]) -> Preprocessing:
    """An embedder's input: the whole (aligned) crop resized to ``size``, no margin cut."""
    return Preprocessing(size=size, crop_pct=1.0, interpolation="bilinear", mean=tuple(mean),  # type: ignore[arg-type]
                         std=tuple(std), resize_mode="crop")  # type: ignore[arg-type]  # fmt: skip


class FaceOnnxEmbedder(ExternalEmbedder):
    """A registered face-embedder ONNX file (family ``"faces"``): rebuilt from its registry entry,
    the run keeping the file as ``<model>.onnx``."""

    family = "faces"


def _check_face_embed_args(name: str, classes: Sequence[str] | None, size: int | None, fixed: int) -> None:
    if classes:
        raise UsageError(f"{name} is a face embedder; it has no classes. Received {list(classes)!r}.")
    if size is not None and size != fixed:
        raise UsageError(f"{name} takes {fixed} px face crops; image_size={size} cannot be used with it.")


def build_sface(
    name: str, classes: Sequence[str] | None = None, preprocessing: Preprocessing | None = None, *,
    weights: str | Path | None = None, threads: int | None = None, image_size: int | None = None,
) -> FaceOnnxEmbedder:  # fmt: skip
    """SFace from its ONNX file (``weights``, or the official one downloaded and sha256-checked)."""
    from imgrec.models.faces import resolve_weights

    entry = EMBEDDER_FILES[name]
    given = image_size if image_size is not None else (preprocessing.size if preprocessing else None)
    _check_face_embed_args(name, classes, given, entry.size)
    path = resolve_weights(name, weights, entry)
    io = ExternalIO(runtime="onnx", file=f"{name}.onnx", layout="nchw", color="rgb", sha256=file_sha256(path),
                    imported_from=str(path))  # fmt: skip
    prep = crop_preprocessing(entry.size, entry.mean, entry.std)
    try:
        model = FaceOnnxEmbedder(name, prep, io, path, template=entry.template, dim=DIM, threads=threads)
    except ModelFileError as exc:
        raise ModelFileError(f"{path} is not a {name} file that ONNX Runtime can run: {exc}") from None
    _check_file(model, entry, path)
    return model


def _check_file(model: FaceOnnxEmbedder, entry: EmbedderFile, path: Path) -> None:
    """The file must take ``[N, 3, size, size]`` and give one ``[N, 128]`` output."""
    shape = tuple(model.runtime.input.shape)
    outputs = model.runtime.session.get_outputs()
    width = outputs[0].shape[-1] if len(outputs) == 1 else None
    if shape[1:] != (3, entry.size, entry.size) or width != DIM:
        raise ModelFileError(f"{path} is not a {model.name} file: it takes {list(shape)} and gives "
                             f"{[o.shape for o in outputs]}; {model.name} takes [1, 3, {entry.size}, {entry.size}] "
                             f"and gives [1, {DIM}]. Pass the right weights file.")  # fmt: skip


class DlibEmbedder(Embedder):
    """dlib's ResNet face embedding on ``dlib-150`` crops (family ``"faces"``; its file comes with
    the ``face-recognition-models`` package, nothing to save)."""

    family = "faces"
    template = "dlib-150"

    def __init__(
        self, name: str, classes: list[str], preprocessing: Preprocessing, model_args: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(name, classes, preprocessing, model_args)
        self._net: Any = None
        self._sha256: str | None = None

    @property
    def dim(self) -> int:
        return DIM

    def embed(self, batch: np.ndarray) -> np.ndarray:
        """dlib's descriptors (``compute_face_descriptor`` on each aligned 150 x 150 crop)."""
        x = np.asarray(batch)
        s = self.preprocessing.size
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (s, s, 3):
            raise UsageError(f"Expected a prepared uint8 batch (N, {s}, {s}, 3); received {x.dtype} {x.shape}.")
        if not len(x):
            return np.zeros((0, DIM), np.float32)
        if self._net is None:
            self._net = _dlib_net()
        found = self._net.compute_face_descriptor([np.ascontiguousarray(img) for img in x])
        return np.asarray([np.asarray(v) for v in found], np.float32).reshape(len(x), DIM)

    def identity(self) -> dict[str, Any]:
        """The sha256 of dlib's network file (read once)."""
        if self._sha256 is None:
            from imgrec.models.face_classical import dlib_model_file

            self._sha256 = file_sha256(dlib_model_file(DLIB_FILE))
        return {"sha256": self._sha256}

    def save_weights(self, run_dir: Path) -> dict[str, str]:
        """Nothing to write: the network's file comes with its package."""
        return {}

    def num_params(self) -> int:
        return 5_600_000


def _dlib_net() -> Any:
    from imgrec.models.face_classical import _dlib, dlib_model_file

    return _dlib().face_recognition_model_v1(str(dlib_model_file(DLIB_FILE)))


def build_dlib_resnet(
    name: str, classes: Sequence[str] | None = None, preprocessing: Preprocessing | None = None, **model_args: Any
) -> DlibEmbedder:
    """``dlib-resnet`` (checks at build time that dlib and its model file are installed)."""
    from imgrec.models.face_classical import _dlib, dlib_model_file

    unknown = sorted(set(model_args) - {"threads"})
    if unknown:
        raise UsageError(f"{name} takes no options; received {', '.join(unknown)}.")
    _check_face_embed_args(name, classes, preprocessing.size if preprocessing else None, 150)
    _dlib()
    dlib_model_file(DLIB_FILE)
    return DlibEmbedder(name, [], crop_preprocessing(150, *DLIB_NORM))


def _register() -> None:
    for name, entry in EMBEDDER_FILES.items():
        register_model(ModelSpec(name=name, family="faces", description=entry.description, default_size=entry.size,
                                 build=build_sface, params=entry.params, task="embed",
                                 tags=("faces", "pretrained-only", "onnx")))  # fmt: skip
    register_model(ModelSpec(name="dlib-resnet", family="faces", default_size=150, task="embed",
                             description="dlib ResNet face embedding, 128-d (faces extra)",
                             build=lazy("imgrec.models.face_embed:build_dlib_resnet"), params=5_600_000,
                             tags=("faces", "pretrained-only", "classical")))  # fmt: skip


_register()
