"""The torch backend: ``TorchClassifier`` around an ``nn.Module``, its builder and its loader.

Imported only when a torch model is built or loaded (torch_zoo registers lazy builders).

Example:
    >>> import numpy as np
    >>> from imgrec.models import create_model
    >>> m = create_model("cnn-bn", ["a", "b", "c"], image_size=16)
    >>> m.predict_proba(np.zeros((2, 16, 16, 3), np.uint8)).shape
    (2, 3)
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from imgrec.errors import ConfigError, ImgrecError, MissingInputError, ModelFileError
from imgrec.files import write_bytes_atomic
from imgrec.models import hub
from imgrec.models.base import Classifier
from imgrec.transforms.preprocess import Preprocessing

log = logging.getLogger(__name__)
WEIGHTS_FILE = "weights.safetensors"
OWN_NETS = ("cnn-small", "cnn-bn")
ARCH_ARGS = {"dropout", "in_chans", "drop_path_rate"}
SOURCE_ARGS = {"pretrained", "weights"}


class TorchClassifier(Classifier):
    """A torch ``nn.Module`` behind the common classifier interface.

    Attributes:
        module: maps normalized float NCHW batches to logits.
        device: where ``module`` lives (``torch.device``).
        batch_size: images per forward pass in :meth:`predict_proba`.
    """

    family = "torch"

    def __init__(
        self,
        name: str,
        classes: list[str],
        preprocessing: Preprocessing,
        module: nn.Module,
        model_args: Mapping[str, Any] | None = None,
        batch_size: int = 128,
    ) -> None:
        super().__init__(name, classes, preprocessing, model_args)
        self.module = module
        self.batch_size = batch_size
        self.device = torch.device("cpu")
        self.in_chans = int(self.model_args.get("in_chans", 3))
        self._frozen = False

    def to(self, device: str | torch.device) -> TorchClassifier:
        """Move the network to ``device``; returns self."""
        self.device = torch.device(device)
        self.module.to(self.device)
        return self

    def normalize(self, batch: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 NHWC batch -> normalized float32 NCHW tensor on :attr:`device`.

        A 1-channel network takes channel 0 (prepared grayscale images repeat luma 3 times).
        """
        if isinstance(batch, np.ndarray) and not batch.flags.writeable:
            batch = batch.copy()  # torch warns about read-only arrays (np.frombuffer, mmap)
        x = torch.as_tensor(batch).to(self.device, non_blocking=True)
        if x.ndim != 4 or x.shape[-1] != 3:
            raise ConfigError(f"Expected a prepared (N, H, W, 3) batch; received shape {tuple(x.shape)}.")
        c = self.in_chans
        mean = torch.tensor(self.preprocessing.mean[:c], device=self.device).view(1, c, 1, 1)
        std = torch.tensor(self.preprocessing.std[:c], device=self.device).view(1, c, 1, 1)
        x = x[..., :c].permute(0, 3, 1, 2).float().div_(255.0)
        return ((x - mean) / std).contiguous()

    def set_threads(self, threads: int | None) -> None:
        """Set torch's intra-op threads. Torch has one pool per process: this applies to all its models."""
        super().set_threads(threads)
        if threads is not None:
            torch.set_num_threads(threads)

    def predict_proba(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities, float32 ``(N, C)``, computed in eval mode without autograd."""
        self.module.eval()
        out = [np.zeros((0, self.num_classes), np.float32)]
        with torch.inference_mode():
            for i in range(0, len(batch), self.batch_size):
                logits = self.module(self.normalize(batch[i : i + self.batch_size]))
                out.append(torch.softmax(logits.float(), dim=1).cpu().numpy())
        return np.concatenate(out)

    def embed(self, batch: np.ndarray) -> np.ndarray:
        """Penultimate-layer features ``float32 (N, D)``: the input of the classifier head."""
        head = _heads(self.module)[-1]
        captured: list[torch.Tensor] = []
        hook = head.register_forward_hook(lambda _m, args, _out: captured.append(args[0].flatten(1)))
        self.module.eval()
        out = [np.zeros((0, 0), np.float32)]
        try:
            with torch.inference_mode():
                for i in range(0, len(batch), self.batch_size):
                    captured.clear()
                    self.module(self.normalize(batch[i : i + self.batch_size]))
                    out.append(captured[-1].float().cpu().numpy())
        finally:
            hook.remove()
        return np.concatenate(out[1:]) if len(out) > 1 else out[0]

    @property
    def embedding_layer(self) -> str:
        """The layer :meth:`embed` reads: the input of the classifier head."""
        names = [name for name, _ in _named_heads(self.module)]
        return f"input of {names[-1] if names else 'the classifier head'}"

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The state dict as contiguous CPU tensors (what safetensors stores)."""
        return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in self.module.state_dict().items()}

    def save_weights(self, run_dir: Path) -> dict[str, str]:
        from safetensors.torch import save

        write_bytes_atomic(Path(run_dir) / WEIGHTS_FILE, save(self.state_tensors(), {"format": "pt"}))
        return {"weights": WEIGHTS_FILE}

    def num_params(self) -> int:
        return sum(p.numel() for p in self.module.parameters())

    def head_parameters(self) -> list[nn.Parameter]:
        """Parameters of the classifier head."""
        return [p for m in _heads(self.module) for p in m.parameters()]

    def backbone_parameters(self) -> list[nn.Parameter]:
        """Every parameter outside the head."""
        head = {id(p) for p in self.head_parameters()}
        return [p for p in self.module.parameters() if id(p) not in head]

    def head_names(self) -> set[str]:
        """State-dict keys of the head (parameters and buffers)."""
        return {f"{prefix}.{k}" for prefix, m in _named_heads(self.module) for k in m.state_dict()}

    def freeze_backbone(self, frozen: bool = True) -> None:
        """Train only the head (``True``) or everything (``False``)."""
        self._frozen = frozen
        for p in self.backbone_parameters():
            p.requires_grad_(not frozen)

    @property
    def backbone_frozen(self) -> bool:
        return self._frozen

    def train_mode(self) -> None:
        """Training mode; a frozen backbone stays in eval mode (fixed BatchNorm statistics)."""
        self.module.train(not self._frozen)
        for h in _heads(self.module):
            h.train()


def _heads(module: nn.Module) -> list[nn.Module]:
    get = getattr(module, "get_classifier", None)
    if get is None:
        raise ConfigError(f"{type(module).__name__} has no get_classifier(); cannot find its head.")
    head = get()
    return list(head) if isinstance(head, tuple | list) else [head]


def _named_heads(module: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    wanted = {id(h) for h in _heads(module)}
    for name, sub in module.named_modules():
        if id(sub) in wanted and name:
            yield name, sub


# ---------------------------------------------------------------- building


def build(name: str, classes: list[str], preprocessing: Preprocessing, **model_args: Any) -> TorchClassifier:
    """Build a torch classifier; the ``ModelSpec.build`` of every torch model.

    Args:
        name: registered name or timm architecture.
        classes: class names (the head size).
        preprocessing: input size and normalization.
        **model_args: ``pretrained`` (download published weights), ``weights`` (a local
            .safetensors/.pth file or an http(s) URL), ``dropout``, ``in_chans`` (1 or 3;
            default 1 for our small CNNs on grayscale data), ``drop_path_rate`` (timm).
    """
    _check_options(name, model_args)
    arch = _arch_args(name, preprocessing, model_args)
    pretrained, weights = bool(model_args.get("pretrained")), model_args.get("weights")
    if pretrained and weights:
        raise ConfigError("Give either pretrained=True or weights=FILE, not both.")
    module, resized = _make_module(name, len(classes), preprocessing.size, arch, pretrained)
    model = TorchClassifier(name, classes, preprocessing, module, arch)
    if resized:
        _check_size(model)
    if weights:
        load_weights_file(model, str(weights))
    return model


def _check_options(name: str, model_args: Mapping[str, Any]) -> None:
    unknown = set(model_args) - ARCH_ARGS - SOURCE_ARGS
    if unknown:
        raise ConfigError(
            f"Unknown option(s) for {name}: {', '.join(sorted(unknown))}. "
            f"Valid: {', '.join(sorted(ARCH_ARGS | SOURCE_ARGS))}."
        )


def _arch_args(name: str, prep: Preprocessing, args: Mapping[str, Any]) -> dict[str, Any]:
    own = name in OWN_NETS
    in_chans = int(args.get("in_chans") or (1 if own and prep.grayscale else 3))
    if in_chans not in (1, 3):
        raise ConfigError(f"in_chans must be 1 or 3; received {in_chans}.")
    out: dict[str, Any] = {"in_chans": in_chans}
    if args.get("dropout") is not None:
        out["dropout"] = float(args["dropout"])
    if args.get("drop_path_rate") is not None:
        if own:
            raise ConfigError(f"drop_path_rate applies to timm models, not {name}.")
        out["drop_path_rate"] = float(args["drop_path_rate"])
    return out


def _make_module(
    name: str, num_classes: int, size: int, arch: dict[str, Any], pretrained: bool
) -> tuple[nn.Module, bool]:
    """The network, and whether it runs at a size other than its published one."""
    from imgrec.models import torch_nets

    if name in OWN_NETS and pretrained:
        raise ConfigError(_NO_PUBLISHED.format(name=name))
    if name == "cnn-small":
        return torch_nets.CnnSmall(num_classes, arch["in_chans"], size, arch.get("dropout", 0.0)), False
    if name == "cnn-bn":
        return torch_nets.CnnBn(num_classes, arch["in_chans"], arch.get("dropout", 0.2)), False
    return _make_timm(name, num_classes, size, arch, pretrained)


_NO_PUBLISHED = "{name} has no published pretrained weights; train it from scratch or pass weights=FILE."


def _make_timm(
    name: str, num_classes: int, size: int, arch: dict[str, Any], pretrained: bool
) -> tuple[nn.Module, bool]:
    import timm

    from imgrec.models.torch_zoo import resolve_timm_name

    timm_name = resolve_timm_name(name)
    kw: dict[str, Any] = {"num_classes": num_classes, "in_chans": arch["in_chans"]}
    if "dropout" in arch:
        kw["drop_rate"] = arch["dropout"]
    if "drop_path_rate" in arch:
        kw["drop_path_rate"] = arch["drop_path_rate"]
    cfg = timm.get_pretrained_cfg(timm_name)
    resized = cfg is None or size != cfg.input_size[-1]
    if resized:
        kw["img_size"] = size
    module = _timm_pretrained(timm_name, kw) if pretrained else _timm_create(timm_name, kw, False)
    return module, resized


def _timm_create(timm_name: str, kw: dict[str, Any], pretrained: bool) -> nn.Module:
    import timm

    try:
        return timm.create_model(timm_name, pretrained=pretrained, **kw)
    except TypeError as exc:
        if "img_size" not in kw or "img_size" not in str(exc):
            raise ConfigError(f"timm cannot build {timm_name} with {kw}: {exc}") from None
        kw = {k: v for k, v in kw.items() if k != "img_size"}  # CNNs take any size as is
        return timm.create_model(timm_name, pretrained=pretrained, **kw)


def _timm_pretrained(timm_name: str, kw: dict[str, Any]) -> nn.Module:
    cached = hub.cached_pretrained(timm_name)
    if cached is not None:  # timm adapts head, channels and position embeddings itself
        return _timm_create(timm_name, {**kw, "pretrained_cfg_overlay": {"file": str(cached)}}, True)
    if not hub.reachable(hub.pretrained_host(timm_name)):
        raise MissingInputError(
            f"Cannot download pretrained weights for {timm_name}: the weight server is not "
            "reachable (offline?). Give a local file instead: weights=FILE (CLI: --weights FILE), "
            "a .safetensors or .pth state dict of this architecture."
        )
    with hub.quiet_downloads():
        try:
            return _timm_create(timm_name, kw, pretrained=True)
        except (OSError, RuntimeError) as exc:
            raise MissingInputError(
                f"Downloading pretrained weights for {timm_name} failed: {exc}. "
                "Retry, or pass weights=FILE (CLI: --weights FILE)."
            ) from None


def _check_size(model: TorchClassifier) -> None:
    """Fail early, with the fix, when the input size is too small for the architecture."""
    size = model.preprocessing.size
    try:
        model.predict_proba(np.zeros((1, size, size, 3), np.uint8))
    except RuntimeError as exc:
        raise ConfigError(
            f"{model.name} cannot take {size}x{size} images ({str(exc).splitlines()[0]}). Use a larger image_size."
        ) from None


# ---------------------------------------------------------------- weights


def load_weights_file(model: TorchClassifier, source: str) -> None:
    """Initialize ``model`` from a local state-dict file or an http(s) URL (transfer learning).

    Head tensors whose shape differs (another class count) are skipped and the head keeps its
    fresh initialization; a file that fills less than half of the backbone is rejected.
    """
    path = hub.download(source) if hub.is_url(source) else Path(source)
    if not path.is_file():
        raise MissingInputError(f"Weights file not found: {path}")
    load_state(model.module, hub.read_state_dict(path), source=str(path))


def load_state(module: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Copy the matching tensors of ``state`` into ``module`` (see :func:`hub.match_state`)."""
    heads = {f"{p}.{k}" for p, m in _named_heads(module) for k in m.state_dict()}
    module.load_state_dict(hub.match_state(module.state_dict(), state, heads, source), strict=False)


# ---------------------------------------------------------------- loading a run


def load(run_dir: Path, meta: dict[str, Any]) -> TorchClassifier:
    """The ``"torch"`` loader: rebuild the architecture (no download) and load its weights strictly."""
    from imgrec.models.registry import get_model_spec

    name, classes = str(meta["model"]), [str(c) for c in meta["classes"]]
    prep = Preprocessing.from_dict(meta["preprocessing"])
    args = {k: v for k, v in dict(meta.get("model_args") or {}).items() if k not in SOURCE_ARGS}
    path = Path(run_dir) / str(dict(meta["files"]).get("weights", WEIGHTS_FILE))
    state = hub.read_state_dict(path)
    spec = get_model_spec(name)
    if spec.build.__name__ != __name__ + ":build":  # a third-party torch spec: its own builder
        model = spec.build(name, classes, prep, **args)
        if not isinstance(model, TorchClassifier):
            raise ModelFileError(f"model.json names {name!r}, which does not build a torch model.")
        _load_strict(model.module, state, path, name)
        return model
    _check_options(name, args)
    arch = _arch_args(name, prep, args)
    module = _module_from_state(name, len(classes), prep.size, arch, state, path)
    return TorchClassifier(name, classes, prep, module, arch)


def _module_from_state(
    name: str, num_classes: int, size: int, arch: dict[str, Any], state: Mapping[str, torch.Tensor], path: Path
) -> nn.Module:
    """Build on the meta device (no wasted random init) and assign the saved tensors.

    Architectures with computed, unsaved buffers (Swin's attention indices) are built normally.
    """
    try:
        with torch.device("meta"):
            module, _ = _make_module(name, num_classes, size, arch, pretrained=False)
    except ImgrecError:
        raise
    except (RuntimeError, NotImplementedError, TypeError, ValueError):  # not meta-friendly
        module = None
    if module is not None:
        _load_strict(module, state, path, name, assign=True)
        if not any(t.is_meta for t in itertools.chain(module.parameters(), module.buffers())):
            return module
    module, _ = _make_module(name, num_classes, size, arch, pretrained=False)
    _load_strict(module, state, path, name)
    return module


def _load_strict(
    module: nn.Module, state: Mapping[str, torch.Tensor], path: Path, name: str, assign: bool = False
) -> None:
    try:
        module.load_state_dict(state, strict=True, assign=assign)
    except RuntimeError as exc:
        raise ModelFileError(
            f"{path} does not match the {name} architecture recorded in model.json: "
            f"{str(exc).splitlines()[0]} The run folder may be damaged or mixed with another run."
        ) from None
