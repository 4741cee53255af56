"""Semantic segmenters by name, behind the :class:`~imgrec.models.base.Segmenter` interface.

torchvision's ``deeplabv3_mobilenet_v3_large``, ``deeplabv3_resnet50``,
``lraspp_mobilenet_v3_large``, ``fcn_resnet50`` and segmentation-models-pytorch's U-Net and
FPN (``unet-resnet18``, ``fpn-resnet18``, ``unet-tiny`` for tests, and ``unet-<encoder>`` /
``fpn-<encoder>`` for any smp encoder or timm architecture). Every one takes the prepared
(letterboxed) uint8 batch every backend takes, normalizes it with ImageNet's mean/std and gives
``(C, S, S)`` logits per image; the ``segment`` task brings them to the original pixels.

Weights (the network never downloads at build time unless asked):

- ``pretrained=True``: torchvision's COCO-with-VOC-labels weights (the file name carries the first
  digits of its sha256, which are checked); smp encoders: the ImageNet encoder weights at the
  commit smp pins; timm encoders: timm's published weights. Heads of another class count keep
  their fresh initialization.
- ``weights=FILE`` (or URL): a state dict of the whole network.
- ``backbone_weights=RUN``: the encoder from a classification run (a timm ``resnet18`` run fits
  ``unet-resnet18`` key for key) or a state dict file.

Example:
    >>> from imgrec.models import list_models
    >>> {"unet-resnet18", "deeplabv3_mobilenet_v3_large"} <= set(list_models(task="segment"))
    True
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from imgrec.errors import ConfigError, ModelFileError, UsageError
from imgrec.files import write_bytes_atomic
from imgrec.models.base import ModelSpec, Segmenter
from imgrec.models.registry import register_loader, register_model
from imgrec.models.segment_nets import ARCHS, SegArch, arch_for, make_network
from imgrec.transforms.preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocessing

log = logging.getLogger(__name__)
WEIGHTS_FILE = "weights.safetensors"
OPTIONS = ("pretrained", "weights", "backbone_weights")
DYNAMIC = re.compile(r"^(unet|fpn)-(.+)$")


class TorchSegmenter(Segmenter):
    """A torch segmentation network. ``module`` takes normalized float NCHW; :meth:`logits` gives
    ``(N, C, S, S)`` scores whatever the network returns (torchvision's dict included)."""

    family = "torch"

    def __init__(
        self, name: str, classes: list[str], preprocessing: Preprocessing, module: Any, arch: SegArch,
        model_args: Mapping[str, Any] | None = None,
    ) -> None:  # fmt: skip
        super().__init__(name, classes, preprocessing, model_args)
        self.module, self.arch = module, arch
        self.batch_size = 8
        self.device: Any = "cpu"

    def to(self, device: Any) -> TorchSegmenter:
        """Move the network (and the inputs it will get) to ``device``."""
        self.module.to(device)
        self.device = device
        return self

    def normalize(self, batch: Any) -> Any:
        """A prepared uint8 NHWC batch (array or tensor) -> normalized float32 NCHW on :attr:`device`."""
        import torch

        if isinstance(batch, np.ndarray):
            batch = torch.from_numpy(np.ascontiguousarray(batch))
        x = batch.to(self.device).permute(0, 3, 1, 2).float()
        mean = torch.tensor(self.preprocessing.mean, device=x.device).view(1, 3, 1, 1) * 255.0
        std = torch.tensor(self.preprocessing.std, device=x.device).view(1, 3, 1, 1) * 255.0
        return ((x - mean) / std).contiguous()

    def logits(self, x: Any) -> Any:
        """``(N, C, S, S)`` scores for a normalized batch (the network's main output)."""
        out = self.module(x)
        return out["out"] if isinstance(out, Mapping) else out

    def segment(self, batch: np.ndarray) -> list[np.ndarray]:
        """float32 ``(C, S, S)`` logits per image, in eval mode without autograd."""
        import torch

        self.module.eval()
        found: list[np.ndarray] = []
        with torch.inference_mode():
            for i in range(0, len(batch), self.batch_size):
                found += list(self.logits(self.normalize(batch[i : i + self.batch_size])).float().cpu().numpy())
        return found

    def train_mode(self) -> None:
        self.module.train()

    def state_tensors(self) -> dict[str, Any]:
        """The state dict as contiguous CPU tensors (what safetensors stores)."""
        return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in self.module.state_dict().items()}

    def set_threads(self, threads: int | None) -> None:
        super().set_threads(threads)
        if threads is not None:
            import torch

            torch.set_num_threads(threads)

    def save_weights(self, run_dir: Path) -> dict[str, str]:
        from safetensors.torch import save

        write_bytes_atomic(Path(run_dir) / WEIGHTS_FILE, save(self.state_tensors(), {"format": "pt"}))
        return {"weights": WEIGHTS_FILE}

    def num_params(self) -> int:
        return sum(p.numel() for p in self.module.parameters())


def build(name: str, classes: list[str], preprocessing: Preprocessing, **model_args: Any) -> TorchSegmenter:
    """``ModelSpec.build``: an untrained segmenter, or with ``pretrained`` / ``weights`` /
    ``backbone_weights`` loaded."""
    unknown = sorted(set(model_args) - {*OPTIONS, "dropout"})
    if unknown:
        raise ConfigError(f"{name} takes the options {', '.join(OPTIONS)}; received unknown {', '.join(unknown)}.")
    if model_args.get("pretrained") and model_args.get("weights"):
        raise ConfigError("Give either pretrained=True or weights=FILE, not both.")
    if len(classes) < 2:
        raise ConfigError(f"A segmenter needs at least 2 classes (e.g. background and one object); "
                          f"received {len(classes)}.")  # fmt: skip
    arch = arch_for(name)
    _check_size(name, arch, preprocessing.size)
    pretrained = bool(model_args.get("pretrained"))
    module = make_network(arch, len(classes), pretrained)
    model = TorchSegmenter(name, classes, preprocessing, module, arch)
    if pretrained and arch.kind == "torchvision":
        _load_into(model, _torchvision_state(arch), f"{name} COCO weights")
    elif model_args.get("weights"):
        from imgrec.models.hub import download, is_url, read_state_dict

        source = str(model_args["weights"])
        _load_into(model, read_state_dict(download(source) if is_url(source) else Path(source)), source)
    if model_args.get("backbone_weights"):
        load_backbone(model, str(model_args["backbone_weights"]))
    return model


def _check_size(name: str, arch: SegArch, size: int) -> None:
    if size < arch.stride:
        raise ConfigError(f"{name} needs inputs of at least {arch.stride} pixels; received image_size={size}.")
    if arch.kind == "smp" and size % arch.stride:
        raise ConfigError(f"{name} needs an image_size that is a multiple of {arch.stride} (its encoder halves "
                          f"the input {arch.stride.bit_length() - 1} times); received {size}. "
                          f"Try {max(arch.stride, round(size / arch.stride) * arch.stride)}.")  # fmt: skip


def _torchvision_state(arch: SegArch) -> dict[str, Any]:
    """torchvision's published weights, downloaded into the weights cache, sha256 prefix checked."""
    from torchvision.models import segmentation

    from imgrec.models.hub import download_prefixed, read_state_dict

    return read_state_dict(download_prefixed(getattr(segmentation, arch.weights).DEFAULT.url))


def _load_into(model: TorchSegmenter, state: Mapping[str, Any], source: str) -> None:
    from imgrec.models.hub import match_state

    own = model.module.state_dict()
    heads = {k for k in own if k.startswith(model.arch.heads)}
    model.module.load_state_dict(match_state(own, state, heads, source), strict=False)


SOURCE_PREFIXES = ("", "features.", "backbone.", "backbone.body.", "encoder.", "encoder.model.", "model.", "module.")


def load_backbone(model: TorchSegmenter, source: str) -> int:
    """Start the encoder from a classification run (or a state dict file); returns the tensors loaded.

    Raises:
        ModelFileError: fewer than 90% of the encoder's tensors are in the file with the right
            shapes (another architecture).
    """
    from imgrec.models.hub import best_prefix_fit, read_state_dict

    path = Path(source)
    if path.is_dir():  # an imgrec run: its weights file
        from imgrec.models.artifact import read_meta

        path = path / str(dict(read_meta(path).get("files") or {}).get("weights", WEIGHTS_FILE))
    prefix = model.arch.backbone
    own = {k[len(prefix) :]: v for k, v in model.module.state_dict().items() if k.startswith(prefix)}
    best = best_prefix_fit(own, read_state_dict(path), SOURCE_PREFIXES)
    if len(best) < 0.9 * len(own):
        raise ModelFileError(
            f"{source} fills {len(best)} of the {len(own)} encoder tensors of {model.name}: it is another "
            f"architecture. {model.name} takes a run of {model.arch.backbone_hint}."
        )
    model.module.load_state_dict({prefix + k: v for k, v in best.items()}, strict=False)
    log.info("%s: encoder from %s (%d tensors)", model.name, source, len(best))
    return len(best)


def load(run_dir: Path, meta: dict[str, Any]) -> TorchSegmenter:
    """Loader of torch segmentation runs: rebuild the network and read ``weights.safetensors``."""
    from imgrec.models.hub import read_state_dict

    name, classes = str(meta["model"]), [str(c) for c in meta["classes"]]
    prep = Preprocessing.from_dict(meta["preprocessing"])
    arch = arch_for(name)
    model = TorchSegmenter(name, classes, prep, make_network(arch, len(classes), False), arch,
                           meta.get("model_args") or {})  # fmt: skip
    files = dict(meta.get("files") or {})
    state = read_state_dict(Path(run_dir) / str(files.get("weights", WEIGHTS_FILE)))  # a broken file: ModelFileError
    try:
        model.module.load_state_dict(state, strict=True)
    except (RuntimeError, ValueError) as exc:
        raise ModelFileError(f"{run_dir}: the weights do not fit {name} with {len(classes)} classes: {exc}") from None
    return model


def spec_for(name: str, arch: SegArch) -> ModelSpec:
    """The registry entry of one segmentation architecture."""
    return ModelSpec(
        name=name, family="torch", description=arch.description, default_size=arch.size, build=build,
        params=arch.params, mean=IMAGENET_MEAN, std=IMAGENET_STD, tags=("segment", arch.kind), task="segment",
        default_lr=arch.lr,
    )  # fmt: skip


def dynamic_spec(name: str) -> ModelSpec | None:
    """A spec for ``unet-<encoder>`` / ``fpn-<encoder>`` (smp encoder or timm name), else None."""
    if not DYNAMIC.match(name):
        return None
    try:
        return spec_for(name, arch_for(name))
    except UsageError:
        return None


def _register() -> None:
    for name, arch in ARCHS.items():
        register_model(spec_for(name, arch))
    register_loader("torch:segment", load)


_register()
