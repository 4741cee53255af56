"""``import_model``: an external classifier, detector, segmenter or embedder file (ONNX, TFLite)
becomes a run directory.

The run holds a copy of the file and a ``model.json`` with its provenance (source path and
sha256), classes, preprocessing and the input/output mapping (:class:`ExternalIO`), so
predict, evaluate, benchmark, serve and compare use it like a trained run. What the file
itself says (input shape, dtype, layout) is read from it; what it cannot say (class names,
mean/std) comes from the options, with the conventions of each format as defaults.

Embedders (``task="embed"``, face embedders above all) have no classes: their one output,
flattened to ``(N, D)``, is the embedding. They record the face alignment template their crops
are warped onto and the input normalization (``mean``/``std``, or a ``norm`` preset from
:data:`NORMS`: MobileFaceNet takes ``imagenet``, InsightFace's ArcFace files ``arcface``,
OpenCV's SFace ``raw``). A file whose output is class probabilities is refused as an embedder
(it is a classifier: import it with ``task="classify"``); one giving logits is accepted, its
logits are then the vector.

Example:
    >>> # import_model("mobilenet_v2_1.0_224_quant.tflite", classes="imagenet_labels_1001.txt",
    >>> #              out="runs/mobilenet-v2")
    >>> # import_model("mobilefacenet.onnx", ImportOptions(task="embed", norm="imagenet"), "runs/mfn")
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from imgrec.errors import ConfigError, MissingInputError, ModelFileError, OutputError, UsageError
from imgrec.models.artifact import META_FILE, save_model
from imgrec.models.external import (
    ExternalClassifier,
    ExternalDetector,
    ExternalEmbedder,
    ExternalIO,
    file_sha256,
    to_probabilities,
)
from imgrec.models.runtimes import TensorInfo, open_runtime, runtime_for
from imgrec.transforms.preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocessing

log = logging.getLogger(__name__)
TASKS = ("classify", "detect", "segment", "embed")
# Input normalizations of common files (mean, std of 0..1 inputs): MobileFaceNet (foamliu) takes
# ImageNet's, InsightFace's ArcFace files (x - 127.5) / 127.5, OpenCV's SFace raw 0..255 values.
NORMS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "imagenet": (IMAGENET_MEAN, IMAGENET_STD),
    "arcface": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    "raw": ((0.0, 0.0, 0.0), (1 / 255, 1 / 255, 1 / 255)),
}
DEFAULT_TEMPLATE = "arcface-112"
TENSOR_LAYOUTS = ("nchw", "nhwc")
# Input conventions of the detector layouts (what the upstream demos feed); options override them.
DETECT_PRESETS: dict[str, dict[str, Any]] = {
    "yolox": {"resize_mode": "letterbox", "pad_anchor": "topleft", "color": "bgr", "mean": (0.0,) * 3,
              "std": (1 / 255,) * 3, "interpolation": "cv2-linear"},
    "yolov5": {"resize_mode": "letterbox", "color": "rgb", "mean": (0.0,) * 3, "std": (1.0,) * 3,
               "interpolation": "cv2-linear"},
    "yolov8": {"resize_mode": "letterbox", "color": "rgb", "mean": (0.0,) * 3, "std": (1.0,) * 3,
               "interpolation": "cv2-linear"},
    "fastestdet": {"resize_mode": "stretch", "color": "bgr", "mean": (0.0,) * 3, "std": (1.0,) * 3,
                   "interpolation": "box"},
    "ssd": {"resize_mode": "stretch", "color": "rgb", "mean": (127 / 255,) * 3, "std": (128 / 255,) * 3},
    "ultraface": {"resize_mode": "stretch", "color": "rgb", "mean": (127 / 255,) * 3, "std": (128 / 255,) * 3,
                  "interpolation": "cv2-linear"},
    "yunet": {"resize_mode": "letterbox", "pad_anchor": "topleft", "pad_value": 0, "color": "bgr",
              "mean": (0.0,) * 3, "std": (1 / 255,) * 3, "interpolation": "cv2-linear"},
}  # fmt: skip
_PRESET_ONLY = ("pad_anchor", "pad_value")  # preprocessing entries that are no ImportOptions field
BACKGROUND_NAMES = ("background", "__background__", "???")
MAX_LABELS_BYTES = 16 * 1024 * 1024
_INDEXED = re.compile(r"^\s*\d+\s*[:\s]\s*(\S.*)$")


@dataclass(frozen=True)
class ImportOptions:
    """What the file cannot say about itself. None means: read it from the file or use the default.

    Attributes:
        task: the recognition task: "classify", "detect", "segment" or "embed".
        classes: a labels file (one name per line) or the names themselves (none for embed);
            ``"voc"``: Pascal VOC's 21 segmentation classes (background first).
        input_size: the square input side, when the file's input is dynamic.
        mean: per-channel mean of 0..1 inputs (float inputs only).
        std: per-channel std of 0..1 inputs (float inputs only).
        layout: the input tensor layout "nchw" or "nhwc" (default: from the input shape); for
            ``task="detect"``, the output layout instead (:data:`DETECT_PRESETS`: yolox,
            yolov5, yolov8, fastestdet, ssd, ultraface, yunet), which also sets that family's
            input conventions.
        color: "rgb" (default) or "bgr".
        output: "probabilities" or "logits" (segment also "sigmoid", "index"); default detected
            by running the model (classify, segment).
        crop_pct: resize the shorter side to ``size / crop_pct``, then centre-crop (default:
            0.875 for classify, 1.0 for embed: an aligned face crop is used whole).
        interpolation: resize filter (default bilinear).
        resize_mode: "crop", "letterbox" or "stretch" (default: crop; the layout's for detect;
            segment: stretch for one-channel models, letterbox for the others).
        name: the model name recorded (default: the file's stem). For an embedder it is the
            embedder's identity in face collections: give each different file its own name.
        norm: a named mean/std pair (:data:`NORMS`) instead of ``mean`` and ``std``.
        template: embed: the face alignment template of its crops (default ``arcface-112``).
    """

    task: str = "classify"
    classes: str | Path | Sequence[str] | None = None
    input_size: int | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    layout: str | None = None
    color: str | None = None
    output: str | None = None
    crop_pct: float | None = None
    interpolation: str | None = None
    name: str | None = None
    resize_mode: str | None = None
    norm: str | None = None
    template: str | None = None

    def resolved(self) -> ImportOptions:
        """The options with the named normalization and the detector layout's conventions
        filled in where none was given."""
        if self.norm is not None:
            if self.norm not in NORMS:
                raise UsageError(f"Unknown --norm {self.norm!r}; expected one of {', '.join(NORMS)}.")
            if self.mean is not None or self.std is not None:
                raise UsageError(f"--norm {self.norm} sets mean and std; drop --mean/--std (or --norm).")
            mean, std = NORMS[self.norm]
            return replace(self, norm=None, mean=mean, std=std).resolved()
        if self.template is not None and self.task != "embed":
            raise UsageError(f"--template is the alignment template of a face embedder (--task embed); "
                             f"received it with --task {self.task}.")  # fmt: skip
        if self.task != "detect":
            return self
        if self.layout not in DETECT_PRESETS:
            raise UsageError(f"--task detect needs --layout, one of {', '.join(DETECT_PRESETS)}; "
                             f"received {self.layout!r}.")  # fmt: skip
        preset = DETECT_PRESETS[self.layout]
        given = {k: v for k, v in preset.items() if getattr(self, k, None) is None}
        return replace(self, **{k: v for k, v in given.items() if k not in _PRESET_ONLY})


def import_model(path: str | Path, options: ImportOptions, out: str | Path) -> Path:
    """Import ``path`` into the run directory ``out`` and return it.

    Raises:
        MissingInputError: the file or the labels file does not exist.
        ModelFileError: the file is not a model the runtime can run, or its outputs do not
            match the classes (or, for ``task="segment"``, are not a mask).
        UsageError: an option contradicts the file (wrong layout, no size for a dynamic input).
        OutputError: ``out`` already holds a run.
    """
    run = _check_out(Path(out))
    model, record = build_import(path, options)
    save_model(model, run, record)
    log.info("imported %s into %s (%d classes)", path, run, len(model.classes))
    return run


def build_import(path: str | Path, options: ImportOptions) -> tuple[Any, dict[str, Any]]:
    """The imported model of ``path`` and its ``model.json`` record, without writing a run
    (``imgrec cutout --weights FILE`` predicts with it directly). Raises as :func:`import_model`."""
    src = Path(path)
    if not src.is_file():
        raise MissingInputError(f"Model file not found: {src}")
    if options.task not in TASKS:
        raise UsageError(f"imgrec import supports --task {', '.join(TASKS)}; received {options.task!r}.")
    options = options.resolved()
    kind = runtime_for(src)
    runtime = open_runtime(kind, src, threads=1)
    layout, size, input_hw = _geometry(runtime.input, options, src)
    if options.task == "embed":
        prep = _preprocessing(options, size, runtime.input.dtype, kind)
        return _import_embedder(src, options, runtime, prep, layout, kind)
    labels = read_labels(options.classes)
    io = ExternalIO(runtime=kind, file=f"imported.{kind}", layout=layout, color=options.color or "rgb",
                    sha256=file_sha256(src), imported_from=str(src.resolve()), input_hw=input_hw)  # fmt: skip
    name = options.name or src.stem
    model: Any
    if options.task == "segment":
        from imgrec.models.import_segment import build_segmenter

        model = build_segmenter(src, name, options, io, size, runtime.input.dtype, labels)
        io = model.io
    elif options.task == "detect":
        prep = _preprocessing(options, size, runtime.input.dtype, kind)
        io, classes = replace(io, decoder=options.layout), _without_background(labels)
        model = ExternalDetector(name, classes, prep, io, src)
        _check_detector(model, src)
    else:
        prep = _preprocessing(options, size, runtime.input.dtype, kind)
        io, classes = _fit_outputs(io, runtime, prep, labels, options.output, src)
        model = ExternalClassifier(name, classes, prep, io, src)
    return model, _record(io, kind)


def _record(io: ExternalIO, kind: str) -> dict[str, Any]:
    return {"external": io.to_dict(),
            "provenance": {"imported_from": io.imported_from, "sha256": io.sha256, "runtime": kind}}  # fmt: skip


def _import_embedder(
    src: Path, options: ImportOptions, runtime: Any, prep: Preprocessing, layout: str, kind: str
) -> tuple[Any, dict[str, Any]]:
    """An embedder run: no classes; the output's width is the dimension; the template is recorded."""
    from imgrec.imaging.align import get_template

    if options.classes is not None:
        raise UsageError("An embedder has no classes; drop --classes for --task embed.")
    template = options.template or DEFAULT_TEMPLATE
    get_template(template)
    if options.mean is None and options.std is None and not np.issubdtype(runtime.input.dtype, np.integer):
        log.warning("%s: no --mean/--std/--norm given; using ImageNet's (MobileFaceNet's convention). ArcFace "
                    "files take --norm arcface, OpenCV's SFace --norm raw.", src)  # fmt: skip
    io = ExternalIO(runtime=kind, file=f"imported.{kind}", layout=layout, color=options.color or "rgb",
                    sha256=file_sha256(src), imported_from=str(src.resolve()))  # fmt: skip
    dim = check_embedder_output(runtime, prep, io, src)
    log.info("imported %s as an embedder (%d-d, template %s)", src, dim, template)
    return ExternalEmbedder(options.name or src.stem, prep, io, src, template=template, dim=dim), _record(io, kind)


def check_embedder_output(runtime: Any, prep: Preprocessing, io: ExternalIO, src: Path) -> int:
    """Run the file on two random images: one output, a vector per image that is no probability
    row (a classifier's). Returns the vector's length."""
    from imgrec.models.external import model_input

    rng = np.random.default_rng(0)
    batch = rng.integers(0, 256, (2, prep.size, prep.size, 3), dtype=np.uint8)
    outputs = runtime.run_all(model_input(batch, prep, io, runtime.input.dtype))
    if len(outputs) != 1:
        raise ModelFileError(f"{src} gives {len(outputs)} outputs; an embedder gives one, a vector per image "
                             "(is it a detector? import it with --task detect).")  # fmt: skip
    raw = np.asarray(outputs[0])
    width = int(np.prod(raw.shape[1:])) if raw.ndim >= 2 else 0
    if raw.ndim < 2 or width < 2 or sorted(raw.shape[1:])[:-1] != [1] * (raw.ndim - 2):
        raise ModelFileError(f"{src}'s output has shape {list(raw.shape)}; an embedder gives a vector per image "
                             "([N, D], or [N, D, 1, 1]).")  # fmt: skip
    rows = raw.reshape(len(raw), width)
    if not np.isfinite(rows).all():
        raise ModelFileError(f"{src} gives NaN or infinite values on random images; the file is broken.")
    if _output_kind(rows, runtime.ends_in_softmax()) == "probabilities":
        raise ModelFileError(
            f"{src} gives class probabilities ({width} per image, summing to 1): it is a classifier, not an "
            "embedder. Import it with --task classify --classes labels.txt; its penultimate-layer features "
            "are what `imgrec` uses for visual search."
        )
    return width


def _check_out(run: Path) -> Path:
    if (run / META_FILE).exists():
        raise OutputError(f"{run} already holds a model; choose another --out or delete it.")
    return run


def _geometry(info: TensorInfo, options: ImportOptions, src: Path) -> tuple[str, int, tuple[int, int] | None]:
    """Layout, square input side and (for a detector with a fixed non-square input) the file's
    own ``(height, width)``, from the file's input shape and the options."""
    shape = info.shape
    if len(shape) != 4:
        raise ModelFileError(f"{src}'s input {info.name!r} has shape {shape}; an image classifier takes 4-d input.")
    given = options.layout if options.layout in TENSOR_LAYOUTS else None
    layout = given or ("nchw" if shape[1] == 3 else "nhwc" if shape[3] == 3 else None)
    if layout not in ("nchw", "nhwc"):
        raise UsageError(f"Cannot tell the layout of {src}'s input {shape}; pass --layout nchw or nhwc.")
    h, w = (shape[2], shape[3]) if layout == "nchw" else (shape[1], shape[2])
    channels = shape[1] if layout == "nchw" else shape[3]
    if channels not in (3, None):
        raise UsageError(f"{src}'s input {shape} has {channels} channels in layout {layout}; expected 3.")
    fixed = {d for d in (h, w) if d is not None}
    if len(fixed) == 2 and options.task in ("detect", "segment"):
        return layout, max(fixed), (int(h), int(w))  # type: ignore[arg-type]
    if len(fixed) == 2:
        raise UsageError(f"{src} takes {h}x{w} inputs; imgrec imports classifiers with square inputs only "
                         "(detectors and segmenters may take any fixed size).")  # fmt: skip
    size = fixed.pop() if fixed else options.input_size
    if size is None:
        raise UsageError(f"{src}'s input size is dynamic ({shape}); pass --input-size, e.g. --input-size 224.")
    if options.input_size is not None and options.input_size != size:
        raise UsageError(f"{src} takes {size}x{size} inputs; --input-size {options.input_size} contradicts it.")
    return layout, int(size), None


def _preprocessing(options: ImportOptions, size: int, dtype: np.dtype, kind: str) -> Preprocessing:
    """Integer inputs carry their normalization in the file; float ones need mean/std."""
    if np.issubdtype(dtype, np.integer):
        if options.mean is not None or options.std is not None:
            raise UsageError(f"The file takes {dtype} pixels (its quantization normalizes them); drop --mean/--std.")
        mean, std = (0.0, 0.0, 0.0), (1 / 255, 1 / 255, 1 / 255)
    else:
        default = (IMAGENET_MEAN, IMAGENET_STD) if kind == "onnx" else ((0.5,) * 3, (0.5,) * 3)
        mean, std = options.mean or default[0], options.std or default[1]
    preset = DETECT_PRESETS.get(str(options.layout), {}) if options.task == "detect" else {}
    crop_pct = options.crop_pct if options.crop_pct is not None else 1.0 if options.task == "embed" else 0.875
    record = {"size": size, "crop_pct": crop_pct, "interpolation": options.interpolation or "bilinear",
              "mean": list(mean), "std": list(std), "resize_mode": options.resize_mode or "crop",
              "pad_anchor": preset.get("pad_anchor", "center"), "pad_value": preset.get("pad_value", 114)}  # fmt: skip
    try:
        return Preprocessing.from_dict(record)
    except ModelFileError:
        raise UsageError(f"Invalid preprocessing options: {record}.") from None


def read_labels(classes: str | Path | Sequence[str] | None) -> list[str]:
    """Class names from a labels file (one per line, ``index name`` lines accepted), a list, a
    comma-separated string (``"background,person"``) or ``"voc"`` (Pascal VOC's 21 classes).

    Repeated names get a ``" (2)"`` suffix (ImageNet has two "crane"s), so every class is distinct.
    """
    if classes is None:
        raise UsageError("imgrec import needs the class names: --classes labels.txt (one name per line).")
    if isinstance(classes, str) and classes == "voc" and not Path(classes).exists():
        from imgrec.data.voc_seg import VOC_CLASSES

        return list(VOC_CLASSES)
    if isinstance(classes, str) and not classes.strip():  # Path("") is the current folder
        raise ConfigError("The class list is empty; expected names (--classes background,person) or a labels file.")
    if isinstance(classes, str) and "," in classes and not Path(classes).exists():
        classes = classes.split(",")
    if isinstance(classes, str | Path):
        names = _labels_file(Path(classes))
    else:
        names = [str(c).strip() for c in classes]
    if not names or any(not n for n in names):
        raise ConfigError("The class list is empty or has empty names.")
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n} ({seen[n]})")
    return out


def _labels_file(path: Path) -> list[str]:
    if not path.is_file():
        raise MissingInputError(f"Labels file not found: {path}. Class names themselves are given comma-separated: "
                                f"--classes background,{path.name}.")  # fmt: skip
    if path.stat().st_size > MAX_LABELS_BYTES:
        raise ConfigError(f"{path} is {path.stat().st_size / 1e6:.0f} MB; a labels file is one class name per line.")
    try:
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8-sig").splitlines()]
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text; expected one class name per line.") from None
    lines = [ln for ln in lines if ln]
    if lines and all(_INDEXED.match(ln) for ln in lines):
        lines = [_INDEXED.match(ln).group(1).strip() for ln in lines]  # type: ignore[union-attr]
    return lines


def _without_background(labels: list[str]) -> list[str]:
    return labels[1:] if _is_background(labels, 0) else labels


def _check_detector(model: ExternalDetector, src: Path) -> None:
    """Run the detector once: its outputs must decode with the layout and the class count."""
    rng = np.random.default_rng(0)
    size = model.preprocessing.size
    found = model.detect(rng.integers(0, 256, (1, size, size, 3), dtype=np.uint8))
    if len(found) != 1:
        raise ModelFileError(f"{src} decoded with layout {model.io.decoder!r} gave {len(found)} results for 1 image.")


def _is_background(labels: list[str], i: int) -> bool:
    return i == 0 and labels[0].strip().lower() in BACKGROUND_NAMES


def _fit_outputs(
    io: ExternalIO, runtime: Any, prep: Preprocessing, labels: list[str], output: str | None, src: Path
) -> tuple[ExternalIO, list[str]]:
    """Match the output width to the labels (a background column or label) and detect logits vs
    probabilities; returns the mapping and the class names."""
    from dataclasses import replace

    from imgrec.models.external import model_input

    rng = np.random.default_rng(0)
    batch = rng.integers(0, 256, (2, prep.size, prep.size, 3), dtype=np.uint8)
    raw, _ = runtime.run(model_input(batch, prep, io, runtime.input.dtype))
    width = int(np.prod(raw.shape[1:]))
    background = _is_background(labels, 0)
    classes = labels[1:] if background else labels
    if width == len(classes) + 1:
        io = replace(io, background=0)
        log.warning("%s has %d outputs for %d classes: output 0 is taken as background", src, width, len(classes))
    elif width != len(classes):
        raise ModelFileError(
            f"{src} gives {width} scores per image but the labels list {len(classes)} classes"
            f"{' (after the background row)' if background else ''}; expected as many classes as outputs "
            "(or one fewer, when output 0 is background)."
        )
    return replace(io, output=output or _output_kind(raw, runtime.ends_in_softmax())), classes


def _output_kind(raw: np.ndarray, softmax: bool) -> str:
    """"probabilities" when the graph ends in a softmax, or its rows look like probabilities
    (in [0, 1], summing to 1 within the rounding of a uint8 output)."""
    rows = raw.reshape(len(raw), -1)
    in_range = rows.min() >= -1e-6 and rows.max() <= 1 + 1e-6
    return "probabilities" if in_range and (softmax or np.allclose(rows.sum(axis=1), 1.0, atol=0.05)) else "logits"


__all__ = ["NORMS", "ImportOptions", "build_import", "import_model", "read_labels", "to_probabilities"]
