"""Frozen configuration dataclasses, one per stage, each field with a one-line why.

Configs come from defaults, then an optional YAML file, then command-line overrides
(``key=value``). Unknown keys are errors with a suggestion.

Example:
    >>> cfg = TrainConfig.from_dict({"epochs": "3", "optimizer": "sgd"})
    >>> cfg.epochs, cfg.optimizer
    (3, 'sgd')
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from imgrec.errors import ConfigError, MissingInputError, did_you_mean

C = TypeVar("C", bound="_Config")


def _why(text: str, default: Any = dataclasses.MISSING, **kw: Any) -> Any:
    return field(default=default, metadata={"why": text}, **kw)


class _Config:
    """Mixin: building from dicts with validation, and back."""

    @classmethod
    def from_dict(cls: type[C], data: Mapping[str, Any]) -> C:
        """Build from a mapping; strings are converted to the field's type."""
        known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        for key, raw in data.items():
            norm = key.replace("-", "_")
            if norm not in known:
                raise ConfigError(
                    f"Unknown {cls.__name__} key {key!r}.{did_you_mean(norm, known)} "
                    f"Valid keys: {', '.join(sorted(known))}."
                )
            values[norm] = _coerce(raw, hints[norm], f"{cls.__name__}.{norm}")
        obj = cls(**values)
        obj.validate()  # type: ignore[attr-defined]
        return obj

    def replace(self: C, **changes: Any) -> C:
        """A copy with some fields changed (validated like :meth:`from_dict`)."""
        return type(self).from_dict({**self.to_dict(), **changes})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload, no-any-return]

    def validate(self) -> None:
        """Check value ranges; subclasses extend."""

    @classmethod
    def describe(cls) -> dict[str, str]:
        """Field name -> the one-line why."""
        return {f.name: f.metadata.get("why", "") for f in dataclasses.fields(cls)}  # type: ignore[arg-type]


def _coerce(raw: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        is_none = raw is None or (isinstance(raw, str) and raw.lower() in ("none", "null", ""))
        if is_none and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(raw, inner[0], where)
    if origin is typing.Literal:
        if raw not in args:
            raise ConfigError(
                f"{where} must be one of {', '.join(map(repr, args))}; received {raw!r}."
                f"{did_you_mean(str(raw), map(str, args))}"
            )
        return raw
    if hint is bool:
        if isinstance(raw, str):
            low = raw.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ConfigError(f"{where} expects true/false; received {raw!r}.")
        return bool(raw)
    if hint in (int, float, str):
        try:
            if hint is int and isinstance(raw, float) and not raw.is_integer():
                raise ValueError
            return hint(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{where} expects {hint.__name__}; received {raw!r}.") from None
    if origin in (dict, Mapping) or hint is dict:
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where} expects a mapping; received {raw!r}.")
        return dict(raw)
    return raw


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


@dataclass(frozen=True)
class DataConfig(_Config):
    """How a dataset is split and checked."""

    val: float = _why("fraction held out for validation when the data is not pre-split", 0.1)
    test: float = _why("fraction held out for the final test when not pre-split", 0.1)
    seed: int = _why("seed of the stratified split, so a split is reproducible", 0)
    max_bad_fraction: float = _why("stop when more than this fraction of files is unreadable", 0.05)
    min_side: int = _why("images with a side under this many pixels are reported as tiny", 16)
    cache: str = _why(
        "prepared images in memory between epochs: auto (a split of at most 2 GiB and 40% of free memory), "
        "ram, or off (decoded again each epoch by worker threads)", "auto",
    )
    workers: int = _why("image decoding threads", 4)
    task: typing.Literal["classify", "detect", "instance", "segment"] | None = _why(
        "what the labels are where the source holds several (COCO: detect, instance or segment); "
        "None: the format's own, or segment for a segmentation model", None,
    )

    def validate(self) -> None:
        _check(
            0 <= self.val < 1 and 0 <= self.test < 1 and self.val + self.test < 1,
            f"val and test must be fractions in [0, 1) that sum below 1; received val={self.val}, test={self.test}.",
        )
        _check(0 <= self.max_bad_fraction <= 1, "max_bad_fraction must be in [0, 1].")
        _check(self.cache in ("auto", "ram", "off"), f"cache must be auto, ram or off; received {self.cache!r}.")
        _check(self.workers >= 1, f"workers must be >= 1; received {self.workers}.")


# what a classical model (fitted in one pass, no optimizer, no epochs) takes from TrainConfig
CLASSICAL_FIELDS = ("model", "image_size", "num_threads", "model_args")
PROBE_FIELDS = ("model", "backbone", "num_threads", "model_args")  # linear-probe: no epochs, no image size


@dataclass(frozen=True)
class TrainConfig(_Config):
    """Everything the training loop needs besides the data."""

    model: str = _why("registered model name (see `imgrec models`)", "hog-svm")
    epochs: int = _why("passes over the training data (deep models)", 10)
    batch_size: int = _why("images per optimisation step", 64)
    optimizer: typing.Literal["adamw", "sgd"] = _why("AdamW is forgiving; SGD+momentum for long schedules", "adamw")
    lr: float | None = _why("peak learning rate; None picks the model's default", None)
    weight_decay: float = _why("decoupled L2 penalty against overfitting", 0.05)
    momentum: float = _why("SGD momentum", 0.9)
    warmup_epochs: float = _why("linear warm-up before the cosine decay, avoids early blow-ups", 1.0)
    label_smoothing: float = _why("soften one-hot targets; helps calibration and noisy labels", 0.0)
    dropout: float | None = _why("dropout before the classifier; None keeps the model's default", None)
    class_weights: typing.Literal["none", "auto"] = _why(
        "'auto' weights the loss by inverse class frequency for imbalanced data", "none"
    )
    early_stopping: int = _why("stop after this many epochs without improvement of `monitor`; 0 = off", 0)
    monitor: typing.Literal[
        "val_accuracy", "val_loss", "val_macro_f1", "val_map", "val_map50", "val_mask_map", "val_mask_map50",
        "val_miou", "val_pixel_accuracy",
    ] = _why(
        "validation figure that picks the best checkpoint", "val_accuracy"
    )
    augment: typing.Literal["none", "light", "flip", "flip-shift", "standard", "strong"] = _why(
        "augmentation preset for training images", "light"
    )
    image_size: int | None = _why("model input side in pixels; None = model default, capped at the data's size", None)
    pretrained: bool = _why("start from published pretrained weights (downloads when online)", False)
    weights: str | None = _why("local pretrained weights (.safetensors or a .pth state dict)", None)
    freeze: typing.Literal["none", "backbone"] = _why("train only the classifier head when 'backbone'", "none")
    backbone: str | None = _why("linear-probe: the run or imported model whose embeddings the head learns", None)
    backbone_weights: str | None = _why(
        "detectors and segmenters: start the backbone from this classification run or file", None
    )
    mosaic: float = _why(
        "one-stage detectors and semantic segmenters: probability that a training image is a mosaic of four", 0.0
    )
    dice_loss: float = _why("segmenters: weight of a soft Dice loss added to the pixel cross-entropy; 0 = off", 0.0)
    head_epochs: int = _why("two-stage fine-tuning: first train the head alone for this many epochs", 0)
    seed: int = _why("seed for weights, shuffling and augmentation: same seed, same metrics on CPU", 0)
    device: str = _why("'auto', 'cpu', 'cuda' or 'cuda:N'", "auto")
    amp: bool = _why("mixed precision on a GPU (ignored on CPU)", True)
    num_threads: int | None = _why("CPU threads for math; None = all cores", None)
    model_args: dict[str, Any] = field(
        default_factory=dict,
        metadata={"why": "extra keyword arguments for the model factory (e.g. C=10)"},
    )

    @classmethod
    def fields_for(cls, family: str | None) -> list[str]:
        """The fields that have an effect on a model of this family (all for an unknown one).

        Example:
            >>> TrainConfig.fields_for("classical")
            ['model', 'image_size', 'num_threads', 'model_args']
        """
        names = [f.name for f in dataclasses.fields(cls)]
        applied = {"classical": CLASSICAL_FIELDS, "probe": PROBE_FIELDS}.get(family or "")
        return [n for n in names if n in applied] if applied else names

    def validate(self) -> None:
        _check(self.epochs >= 1, f"epochs must be >= 1; received {self.epochs}.")
        _check(self.batch_size >= 1, f"batch_size must be >= 1; received {self.batch_size}.")
        _check(self.lr is None or self.lr > 0, f"lr must be > 0; received {self.lr}.")
        _check(0 <= self.label_smoothing < 1, "label_smoothing must be in [0, 1).")
        _check(self.dropout is None or 0 <= self.dropout < 1, "dropout must be in [0, 1).")
        _check(self.head_epochs >= 0 and self.early_stopping >= 0, "head_epochs and early_stopping must be >= 0.")
        _check(0.0 <= self.mosaic <= 1.0, f"mosaic is a probability in [0, 1]; received {self.mosaic}.")
        _check(self.dice_loss >= 0, f"dice_loss is a weight >= 0; received {self.dice_loss}.")
        _check(
            self.image_size is None or self.image_size >= 8,
            f"image_size must be >= 8 pixels; received {self.image_size}.",
        )


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file into a dict (safe loader: no code runs)."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise MissingInputError(f"Config file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"Config file {p} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"Config file {p} must hold a mapping of keys; received {type(data).__name__}.")
    return data


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    """Turn ``["epochs=3", "lr=0.01"]`` into a dict; malformed items raise ConfigError."""
    out: dict[str, str] = {}
    for item in pairs:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"Override {item!r} must look like key=value.")
        out[key.strip()] = value.strip()
    return out
