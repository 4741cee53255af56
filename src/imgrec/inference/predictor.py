"""``Predictor``: a run directory in, typed predictions out — the one way to predict."""

from __future__ import annotations

import glob
import logging
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from imgrec.errors import ImgrecError, MissingInputError, UsageError
from imgrec.imaging import DEFAULT_LIMITS, IMAGE_SUFFIXES, DecodeLimits
from imgrec.imaging.decode import to_rgb_array
from imgrec.models import load_model, read_meta
from imgrec.models.base import Model, check_threads
from imgrec.tasks import Task, get_task, to_predictions
from imgrec.transforms.frame import Geometry
from imgrec.transforms.preprocess import Preprocessing
from imgrec.types import ItemError, Prediction

log = logging.getLogger(__name__)
if TYPE_CHECKING:
    from PIL import Image

ImageInput = Union[str, Path, bytes, np.ndarray, "Image.Image"]


class Predictor:
    """Turns images (paths, bytes or RGB arrays) into :class:`~imgrec.types.Prediction` s.

    The preprocessing recorded in the run is rebuilt from ``model.json``, so predictions
    match what the model saw in training.

    Example:
        >>> # p = Predictor.from_run("runs/hog-svm-1")
        >>> # p.predict(["cat.jpg"], top_k=3)[0].label
    """

    def __init__(
        self, model: Model, meta: dict[str, Any] | None = None, run_dir: Path | None = None,
        batch_size: int | None = None,
    ) -> None:  # fmt: skip
        if batch_size is not None and (isinstance(batch_size, bool) or batch_size < 1):
            raise UsageError(f"batch_size must be >= 1; received {batch_size}.")
        self.model = model
        self.meta = dict(meta or {})
        self.run_dir = run_dir
        self._batch_size = batch_size
        self._task: tuple[str | None, Task] | None = None

    @classmethod
    def from_run(
        cls, path: str | Path, backend: str | None = None, threads: int | None = None, batch_size: int | None = None
    ) -> Predictor:
        """Load the model of a run directory (written by ``imgrec train``).

        Args:
            path: the run directory.
            backend: None or "auto": the ONNX export (``model.onnx``) when the run has one and
                onnxruntime is installed, else the run's own model; or insist on one of
                "torch", "classical", "onnx", "onnx-int8" (``model.int8.onnx``).
            threads: CPU threads for the model's math: ONNX Runtime's intra-op threads, torch's
                (process-wide) thread count, or the classical pipeline's BLAS/OpenMP cap.
                None keeps the defaults (one per physical core). On a machine shared with
                other work (a server's decode threads, other processes) fewer threads are
                often faster: idle threads spin at every parallel step.
            batch_size: images per model call in predict, evaluate and serve; None: the
                task's default (:attr:`batch_size`).

        Raises:
            UsageError: the run has no such backend (the message lists those it has).

        Example:
            >>> # Predictor.from_run("runs/resnet18-1", backend="onnx-int8").model.family
        """
        check_threads(threads)
        model, meta = _load_backend(Path(path), backend, threads)
        return cls(model, meta, Path(path), batch_size)

    @property
    def classes(self) -> list[str]:
        return self.model.classes

    @property
    def preprocessing(self) -> Preprocessing:
        return self.model.preprocessing

    @property
    def name(self) -> str:
        return self.run_dir.name if self.run_dir else self.model.name

    def predict_proba(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities for a prepared uint8 batch ``(N, S, S, 3)`` (classifiers)."""
        predict_proba = getattr(self.model, "predict_proba", None)
        if predict_proba is None:
            raise UsageError(f"{self.name} is a {self.model.task} model; it gives no class probabilities.")
        return np.asarray(predict_proba(batch), dtype=np.float32)

    @property
    def batch_size(self) -> int:
        """Images per model call: the one setting predict, evaluate and serve's micro-batches use."""
        return self._batch_size or self.task.batch_size

    @property
    def task(self) -> Task:
        """The run's task (``model.json``'s ``task``; classify for older runs), looked up once per name."""
        name = self.meta.get("task") or getattr(self.model, "task", None)
        if self._task is None or self._task[0] != name:
            self._task = (name, get_task(name))
        return self._task[1]

    def prepare(self, item: ImageInput, limits: DecodeLimits = DEFAULT_LIMITS) -> np.ndarray:
        """One input as the model's prepared uint8 array, through the path training took.

        Files and bytes go through ``Preprocessing.load`` / ``decode`` (the safe decoder, large
        JPEGs at the reduced scale the preprocessing allows), exactly as in train, evaluate and
        serve; arrays and PIL images are prepared as they are.
        """
        return self.prepare_framed(item, limits)[0]

    def prepare_framed(self, item: ImageInput, limits: DecodeLimits = DEFAULT_LIMITS) -> tuple[np.ndarray, Geometry]:
        """:meth:`prepare`, plus where the image landed in the input (to map boxes back)."""
        prep = self.preprocessing
        if isinstance(item, np.ndarray):
            return prep.prepare_framed(_check_array(item))
        if isinstance(item, bytes | bytearray):
            return prep.decode_framed(bytes(item), limits=limits, name="upload")
        if isinstance(item, str | Path):
            return prep.load_framed(item, limits=limits)
        if is_pil_image(item):
            return prep.prepare_framed(to_rgb_array(item))
        raise UsageError(
            f"Expected an image path, encoded bytes, an RGB uint8 array or a PIL image; received {type(item).__name__}."
        )

    def options(self, **given: Any) -> dict[str, Any]:
        """The task's prediction options, checked (``top_k``/``threshold``; ``conf``/``iou``/...)."""
        options = {**self.task.options(**given), **self.task.model_options(self.model)}
        unknown = [c for c in options.get("classes") or [] if c not in self.classes]
        if unknown:
            shown = ", ".join(self.classes[:12]) + (" ..." if len(self.classes) > 12 else "")
            raise UsageError(f"Unknown class(es) {', '.join(map(repr, unknown))}; {self.name} knows {shown}.")
        return options

    def forward(self, batch: np.ndarray) -> Any:
        """Raw model output for a prepared batch, one entry per image (probability rows, box candidates,
        embedding rows)."""
        return self.task.forward(self.model, batch)

    def postprocess(
        self, raw: Any, geometries: Sequence[Geometry], names: Sequence[str | None], options: dict[str, Any]
    ) -> list[Any]:
        """Raw entries -> typed results (:class:`Prediction`, ``Detections``, ``Embedding``) in original pixels."""
        return self.task.postprocess(raw, geometries, names, self.classes, options)

    def predict(
        self,
        images: ImageInput | Iterable[ImageInput],
        *,
        batch_size: int | None = None,
        limits: DecodeLimits = DEFAULT_LIMITS,
        **options: Any,
    ) -> list[Any]:
        """Predict many images; a bad one becomes an :class:`ItemError`, the rest go on.

        Args:
            images: paths, encoded bytes, RGB uint8 arrays or PIL images; one of them alone
                counts as one input (a ``(N, H, W, 3)`` array as N inputs).
            batch_size: images per model call; None: :attr:`batch_size`.
            limits: byte, pixel and format limits every image is decoded under.
            **options: the task's options. classify: ``top_k`` (classes per image),
                ``threshold`` (below it the label is ``"unknown"``). detect: ``conf``, ``iou``,
                ``max_det``, ``classes``. embed: none.

        Returns:
            One result per input, in order: a :class:`Prediction` (classify), ``Detections``
            (detect) or ``Embedding`` (embed: an L2-normalized vector), or an :class:`ItemError`.
        """
        opts = self.options(**options)
        size = self.batch_size if batch_size is None else batch_size
        if size < 1:
            raise UsageError(f"batch_size must be >= 1; received {size}.")
        out: list[Any] = []
        for chunk in _chunks(as_inputs(images), size):
            out.extend(self._predict_chunk(chunk, opts, limits))
        return out

    def predict_one(self, image: ImageInput, **options: Any) -> Any:
        """Predict one image; raises the decode error instead of returning it."""
        opts = self.options(**options)
        arr, geometry = self.prepare_framed(image)
        return self.postprocess(self.forward(arr[None]), [geometry], [_name(image)], opts)[0]

    def _predict_chunk(self, chunk: Sequence[ImageInput], opts: dict[str, Any], limits: DecodeLimits) -> list[Any]:
        slots: list[Any] = [None] * len(chunk)
        ready, geometries, where = [], [], []
        for i, item in enumerate(chunk):
            try:
                arr, geometry = self.prepare_framed(item, limits)
            except ImgrecError as exc:
                slots[i] = ItemError(code=exc.code, message=str(exc), path=_name(item))
                continue
            ready.append(arr)
            geometries.append(geometry)
            where.append(i)
        if ready:
            names = [_name(chunk[i]) for i in where]
            batch = ready[0][None] if len(ready) == 1 else np.stack(ready)  # one image: a view, no copy
            results = self.postprocess(self.forward(batch), geometries, names, opts)
            for i, result in zip(where, results, strict=True):
                slots[i] = result
        return slots

    def to_predictions(
        self, proba: np.ndarray, names: Sequence[str | None], top_k: int = 1, threshold: float | None = None
    ) -> list[Prediction]:
        """Turn probability rows into predictions (top-k, ``unknown`` under ``threshold``)."""
        return to_predictions(proba, self.classes, names, top_k, threshold)


def _load_backend(path: Path, backend: str | None, threads: int | None) -> tuple[Model, dict[str, Any]]:
    """The run's model through the requested backend (see :meth:`Predictor.from_run`)."""
    from imgrec.models import onnx_backend
    from imgrec.models.exportable import classical_onnx_reason

    if path.is_file() and path.suffix.lower() in MODEL_FILE_SUFFIXES:
        return _load_model_file(path, threads)
    meta = read_meta(path)
    run = path if path.is_dir() else path.parent
    own = str(meta["family"])
    exports = onnx_backend.onnx_files(run)
    choice = backend or "auto"
    if choice == "auto":
        choice = "onnx" if "onnx" in exports and _has_onnxruntime() else own
    if choice == own:
        model, meta = load_model(path, meta)
        if threads is not None:  # None keeps what loading set up (an open session, a recorded cap)
            model.set_threads(threads)
        return model, meta
    if choice not in exports:
        have = ", ".join(map(repr, [own, *exports]))
        missing = f"Backend {choice!r} is not available for {run}; it has: {have}."
        if choice.startswith("onnx") and own == "classical":
            raise UsageError(f"{missing} {classical_onnx_reason(run, str(meta['model']))}", code="not_exportable")
        hint = " Create them with `imgrec export RUN --format onnx [--int8]`." if choice.startswith("onnx") else ""
        raise UsageError(missing + hint)
    return onnx_backend.load_onnx(run, meta, int8=choice == "onnx-int8", threads=threads), meta


MODEL_FILE_SUFFIXES = (".onnx", ".tflite")


def _load_model_file(path: Path, threads: int | None) -> tuple[Model, dict[str, Any]]:
    """An ``imgrec export`` ONNX file predicts directly (it carries its classes and
    preprocessing); any other model file must be imported first, and the error says how."""
    from imgrec.models import onnx_backend

    if path.suffix.lower() == ".onnx":
        session = onnx_backend.open_session(path, threads)
        found = onnx_backend.read_metadata(session)
        if "classes" in found:
            model: Model = onnx_backend.load_task_file(path, found.get("task"), threads, session=session)
            meta = {"model": model.name, "family": model.family, "classes": model.classes, "task": model.task,
                    "preprocessing": model.preprocessing.to_dict(), "files": {"onnx": path.name}}  # fmt: skip
            return model, meta
    raise UsageError(
        f"{path} is a model file, not a run directory, and it does not say what its classes and "
        f"preprocessing are. Import it first:\n  imgrec import {path} --task classify --classes labels.txt "
        f"--out runs/{path.stem}\nthen use runs/{path.stem} wherever a run is expected."
    )


def _has_onnxruntime() -> bool:
    import importlib.util

    found = importlib.util.find_spec("onnxruntime") is not None
    if not found:
        log.info("model.onnx present but onnxruntime is not installed; using the run's own model")
    return found


def as_inputs(images: ImageInput | Iterable[ImageInput]) -> list[ImageInput]:
    """A list of inputs: one path, bytes, image array or PIL image alone is one input."""
    if isinstance(images, str | Path | bytes | bytearray) or is_pil_image(images):
        return [images]  # type: ignore[list-item]
    if isinstance(images, np.ndarray):
        return list(images) if images.ndim == 4 else [images]
    return list(images)  # type: ignore[arg-type]


def is_pil_image(item: object) -> bool:
    """Whether ``item`` is a PIL image (without importing PIL when nobody has)."""
    image_module = sys.modules.get("PIL.Image")
    return image_module is not None and isinstance(item, image_module.Image)


def _check_array(arr: np.ndarray) -> np.ndarray:
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise UsageError(f"Expected an RGB uint8 array (H, W, 3); received {arr.dtype} {arr.shape}.")
    return arr


def _name(item: ImageInput) -> str | None:
    return str(item) if isinstance(item, str | Path) else None


def _chunks(items: list[ImageInput], size: int) -> Iterator[list[ImageInput]]:
    for start in range(0, len(items), max(1, size)):
        yield items[start : start + size]


def collect_images(patterns: Iterable[str | Path]) -> list[str]:
    """Expand files, folders (recursively, image suffixes) and glob patterns, in order.

    A path that does not exist and a pattern that matches nothing raise MissingInputError.

    Example:
        >>> # collect_images(["img1.jpg", "folder/", "*.png"])
    """
    out: list[str] = []
    for pat in patterns:
        p = Path(pat)
        if p.is_dir():
            out += sorted(
                str(f)
                for f in p.rglob("*")
                if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith(".")
            )
        elif p.exists():
            out.append(str(p))
        elif glob.has_magic(str(pat)):
            hits = sorted(glob.glob(str(pat), recursive=True))
            if not hits:
                raise MissingInputError(f"No file matches the pattern {str(pat)!r}.")
            out += [h for h in hits if Path(h).is_file()]
        else:
            raise MissingInputError(f"Input not found: {p}")
    return list(dict.fromkeys(out))
