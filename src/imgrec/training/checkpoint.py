"""Resumable checkpoints in safetensors, written atomically (temp file, fsync, rename).

``checkpoints/last.safetensors`` holds everything needed to resume in ONE file, so a crash
can never pair weights with the wrong bookkeeping: model tensors (``model.*``), optimizer
tensors (``optim.<param>.<name>``), torch RNG states (``rng.*``), and in the safetensors
metadata (``imgrec_state``, JSON) the epoch, step, best score, history, numpy and Python RNG
states and the optimizer's hyper-parameters. ``checkpoints/state.json`` is a readable copy of
that JSON, written after it. ``checkpoints/best.safetensors`` holds the best model weights.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from imgrec.errors import MissingInputError, ModelFileError
from imgrec.files import write_bytes_atomic, write_json_atomic
from imgrec.models.torch_classifier import TorchClassifier

CHECKPOINTS = "checkpoints"
LAST = "last.safetensors"
BEST = "best.safetensors"
STATE = "state.json"
META_KEY = "imgrec_state"


@dataclass
class TrainState:
    """Loop bookkeeping that survives a restart.

    Attributes:
        epoch: epochs completed.
        step: optimizer steps completed (drives the learning-rate schedule).
        best_score: best value of the monitored figure so far, higher is better (``val_loss``
            is stored negated; without validation data it is the epoch number); None before any.
        best_epoch: 1-based epoch of ``best_score`` (0 = none yet).
        history: the per-epoch rows so far.
        interrupted: the checkpoint was written on Ctrl-C (possibly mid-epoch; the
            unfinished epoch is run again on resume, starting from the saved weights).
    """

    epoch: int = 0
    step: int = 0
    best_score: float | None = None
    best_epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    interrupted: bool = False


def save_checkpoint(
    folder: Path,
    model: TorchClassifier,
    optimizer: torch.optim.Optimizer,
    state: TrainState,
    rng: np.random.Generator,
    scaler: Any = None,
) -> Path:
    """Write ``last.safetensors`` (and its readable ``state.json``); return its path."""
    from safetensors.torch import save

    tensors = {f"model.{k}": v for k, v in model.state_tensors().items()}
    optim_tensors, optim_plain = _split_optimizer(optimizer)
    tensors.update(optim_tensors)
    tensors.update(_torch_rng())
    record = {
        "model": model.name,
        "classes": model.classes,
        "train": asdict(state),
        "optimizer": optim_plain,
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
        "numpy_rng": rng.bit_generator.state,
        "python_rng": random.getstate(),
    }
    path = Path(folder) / LAST
    write_bytes_atomic(path, save(tensors, {META_KEY: json.dumps(record)}))
    write_json_atomic(Path(folder) / STATE, {k: v for k, v in record.items() if not k.endswith("_rng")})
    return path


def save_best(folder: Path, model: TorchClassifier) -> None:
    """Write the model weights to ``best.safetensors``."""
    from safetensors.torch import save

    write_bytes_atomic(Path(folder) / BEST, save(model.state_tensors(), {"format": "pt"}))


def load_best(folder: Path, model: TorchClassifier) -> bool:
    """Load ``best.safetensors`` into ``model`` if it exists; return whether it did."""
    from safetensors.torch import load_file

    path = Path(folder) / BEST
    if not path.is_file():
        return False
    model.module.load_state_dict(load_file(str(path), device=str(model.device)))
    return True


def load_checkpoint(
    folder: Path,
    model: TorchClassifier,
    optimizer: torch.optim.Optimizer,
    rng: np.random.Generator,
    scaler: Any = None,
) -> TrainState:
    """Restore model, optimizer, RNG states (and AMP scaler) from ``last.safetensors``."""
    from safetensors import safe_open

    path = Path(folder) / LAST
    if not path.is_file():
        raise MissingInputError(f"Nothing to resume: {path} does not exist. Start a new run instead.")
    try:
        with safe_open(str(path), framework="pt") as fh:
            record = json.loads(fh.metadata()[META_KEY])
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 (safe_open is no dict)
    except Exception as exc:  # safetensors/JSON errors: the file is damaged or foreign
        raise ModelFileError(f"{path} is not a readable imgrec checkpoint: {exc}") from None
    _check_same_model(path, record, model)
    model.module.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    _restore_optimizer(optimizer, tensors, record["optimizer"])
    _restore_rng(tensors, record, rng)
    if scaler is not None and record.get("scaler"):
        scaler.load_state_dict(record["scaler"])
    return TrainState(**record["train"])


def _check_same_model(path: Path, record: dict[str, Any], model: TorchClassifier) -> None:
    if record.get("model") != model.name or list(record.get("classes", [])) != model.classes:
        raise ModelFileError(
            f"{path} belongs to a {record.get('model')!r} run with classes {record.get('classes')}; "
            f"this run trains {model.name!r} with {model.classes}. Resume with the same model and data."
        )


def _split_optimizer(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    plain: dict[str, dict[str, Any]] = {}
    for idx, entry in sd["state"].items():
        for name, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{idx}.{name}"] = value.detach().to("cpu", copy=True).contiguous()
            else:
                plain.setdefault(str(idx), {})[name] = value
    return tensors, {"param_groups": sd["param_groups"], "plain": plain}


def _restore_optimizer(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], info: dict[str, Any]
) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    for idx, values in info["plain"].items():
        state.setdefault(int(idx), {}).update(values)
    groups = [{**g, "betas": tuple(g["betas"])} if "betas" in g else g for g in info["param_groups"]]
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def _torch_rng() -> dict[str, torch.Tensor]:
    out = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out.update({f"rng.cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    return out


def _restore_rng(tensors: dict[str, torch.Tensor], record: dict[str, Any], rng: np.random.Generator) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    keys = sorted((k for k in tensors if k.startswith("rng.cuda.")), key=lambda k: int(k.rsplit(".", 1)[1]))
    cuda = [tensors[k] for k in keys]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[: torch.cuda.device_count()])
    rng.bit_generator.state = record["numpy_rng"]
    version, internal, gauss = record["python_rng"]
    random.setstate((version, tuple(internal), gauss))
