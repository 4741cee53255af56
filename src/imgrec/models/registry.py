"""The model registry and factories: ``create_model``, ``list_models``, ``get_model_spec``."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from imgrec.errors import UnknownNameError, did_you_mean
from imgrec.models.base import Loader, ModelSpec
from imgrec.registry import Registry
from imgrec.transforms.preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocessing

MODELS: Registry[ModelSpec] = Registry("model")
LOADERS: Registry[Loader] = Registry("model family")

# Modules that register models when first needed (kept lazy: import stays cheap).
_PROVIDERS = (
    "imgrec.models.classical",
    "imgrec.models.torch_zoo",
    "imgrec.models.onnx_backend",
    "imgrec.models.external",
    "imgrec.models.probe",
    "imgrec.models.torch_detect",
    "imgrec.models.torch_instance",
    "imgrec.models.torch_segment",
    "imgrec.models.yolo",
    "imgrec.models.faces",
    "imgrec.models.face_embed",
)
_loaded = False


def _ensure_loaded() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for mod in _PROVIDERS:
            importlib.import_module(mod)


def lazy(target: str) -> Callable[..., Any]:
    """A callable that imports ``"module:function"`` on first call (keeps torch lazy)."""

    def call(*args: Any, **kwargs: Any) -> Any:
        module, _, fn = target.partition(":")
        return getattr(importlib.import_module(module), fn)(*args, **kwargs)

    call.__name__ = target
    return call


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add a model to the registry (usable by third-party code too)."""
    MODELS.add(spec.name, spec)
    return spec


def get_model_spec(name: str) -> ModelSpec:
    """The spec for ``name``: a registered model, or any timm architecture when timm is installed."""
    _ensure_loaded()
    if name in MODELS:
        return MODELS.get(name)
    if name.startswith(("unet-", "fpn-")):
        from imgrec.models.torch_segment import dynamic_spec

        spec = dynamic_spec(name)
        if spec is not None:
            return spec
    timm_names = _timm_names()
    if name in timm_names:
        from imgrec.models.torch_zoo import timm_spec

        return timm_spec(name)
    raise UnknownNameError(
        f"Unknown model {name!r}.{did_you_mean(name, [*MODELS.names(), *timm_names])} "
        "List them with `imgrec models` (or imgrec.list_models())."
    )


def list_models(pattern: str = "*", include_timm: bool = False, task: str | None = None) -> list[str]:
    """Registered model names matching a shell pattern, e.g. ``list_models("resnet*", task="detect")``.

    Args:
        pattern: shell pattern on the name.
        include_timm: add every timm architecture (classifiers).
        task: only the models of this task ("classify", "detect", "segment"); None: all.

    Example:
        >>> "hog-svm" in list_models("*svm")
        True
        >>> "fasterrcnn_mobilenet_v3_large_fpn" in list_models(task="detect")
        True
    """
    _ensure_loaded()
    names = MODELS.names(pattern)
    if task is not None:
        names = [n for n in names if MODELS.get(n).task == task]
        if task != "classify":
            return names
    if include_timm:
        import fnmatch

        names += sorted({n for n in _timm_names() if fnmatch.fnmatchcase(n, pattern)} - set(names))
    return names


def _timm_names() -> list[str]:
    try:
        import timm
    except ImportError:
        return []
    return list(timm.list_models())


def default_preprocessing(spec: ModelSpec, image_size: int | None = None, grayscale: bool = False) -> Preprocessing:
    """The preprocessing a new model of ``spec`` gets."""
    return Preprocessing(
        size=image_size or spec.default_size,
        crop_pct=1.0,
        interpolation="bilinear",
        mean=spec.mean or IMAGENET_MEAN,
        std=spec.std or IMAGENET_STD,
        grayscale=grayscale,
        resize_mode="letterbox" if spec.task in ("detect", "instance", "segment") else "crop",
    )


def create_model(
    name: str,
    classes: list[str],
    *,
    image_size: int | None = None,
    grayscale: bool = False,
    **model_args: Any,
) -> Any:
    """Build an untrained model by registered name (a Classifier, or a Detector for detect models).

    Args:
        name: a name from :func:`list_models` (or any timm architecture).
        classes: class names.
        image_size: input side in pixels; None = the model's default.
        grayscale: feed the model luma only.
        **model_args: model-specific options (``C=10``, ``pretrained=True``, ``weights=path``).

    Example:
        >>> m = create_model("hog-svm", ["cat", "dog"], image_size=32)
        >>> m.preprocessing.size, m.classes
        (32, ['cat', 'dog'])
    """
    spec = get_model_spec(name)
    prep = default_preprocessing(spec, image_size, grayscale)
    return spec.build(name, classes, prep, **model_args)


def register_loader(family: str, loader: Loader) -> None:
    """Register how a model family is read back from a run directory."""
    LOADERS.add(family, loader)


def get_loader(family: str, task: str | None = None) -> Loader:
    """How runs of ``family`` are read back; a ``"family:task"`` loader wins for that task."""
    _ensure_loaded()
    specific = f"{family}:{task}"
    return LOADERS.get(specific if task and specific in LOADERS else family)
