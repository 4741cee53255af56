"""Device choice, optimizer with weight-decay groups, learning-rate setting, mixed precision."""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from imgrec.config import TrainConfig
from imgrec.errors import ConfigError
from imgrec.models.torch_classifier import TorchClassifier

SGD_LR_SCALE = 10.0  # SGD wants a larger step than AdamW for the same model


def pick_device(spec: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; ``"cpu"``, ``"cuda"``, ``"cuda:N"`` as asked.

    Example:
        >>> pick_device("cpu")
        device(type='cpu')
    """
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise ConfigError(f"Unknown device {spec!r}; expected 'auto', 'cpu', 'cuda' or 'cuda:N'.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"Device {spec!r} was asked for, but no CUDA GPU is available. Use device='cpu'.")
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"Device {spec!r} is not supported; expected 'auto', 'cpu' or 'cuda[:N]'.")
    return device


def default_lr(name: str, optimizer: str) -> float:
    """The model's default learning rate (for AdamW; ten times that for SGD)."""
    from imgrec.models.registry import get_model_spec

    lr = get_model_spec(name).default_lr
    return lr * SGD_LR_SCALE if optimizer == "sgd" else lr


def param_groups(model: TorchClassifier, weight_decay: float) -> list[dict[str, Any]]:
    """Two groups: matrices and kernels decay; biases, norm weights and embeddings do not."""
    skip = set(getattr(model.module, "no_weight_decay", lambda: set())())
    decay: list[torch.nn.Parameter] = []
    plain: list[torch.nn.Parameter] = []
    for name, p in model.module.named_parameters():
        no_decay = p.ndim <= 1 or name in skip or name.split(".")[0] in skip
        (plain if no_decay else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]


def make_optimizer(model: TorchClassifier, cfg: TrainConfig, lr: float) -> torch.optim.Optimizer:
    """AdamW or SGD (Nesterov momentum) over all parameters; frozen ones are simply skipped."""
    groups = param_groups(model, cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0)
    return torch.optim.AdamW(groups, lr=lr)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


class Amp:
    """Mixed precision on CUDA: bf16 autocast where supported, else fp16 with a GradScaler.

    On CPU (or with ``enabled=False``) it is a no-op and training runs in float32.
    """

    def __init__(self, device: torch.device, enabled: bool) -> None:
        self.device = device
        self.enabled = bool(enabled) and device.type == "cuda"
        bf16 = self.enabled and torch.cuda.is_bf16_supported()
        self.dtype = torch.bfloat16 if bf16 else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.enabled and not bf16)

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.dtype)

    def backward_and_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler.is_enabled():
            self.scaler.scale(loss).backward()
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            loss.backward()
            optimizer.step()
