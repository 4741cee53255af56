"""The YOLO-style detector behind the :class:`~imgrec.models.base.Detector` interface.

``YoloDetector`` is a :class:`~imgrec.models.torch_detect.TorchDetector` (same ``to``,
``device``, ``module``, ``state_tensors``, ``save_weights``, ``num_params``, ``set_threads``)
whose ``module`` is a :class:`~imgrec.models.yolo.net.YoloNet` taking normalized float NCHW.
``detect`` keeps each cell's best class (scores are per-class sigmoids), the ``PRE_NMS`` best
cells per image, in input pixels, through the ``xyxy-scores`` decoder of
:mod:`imgrec.tasks.decoders` (the one its ONNX export uses too); ``losses`` runs the task-aligned assigner
(:mod:`imgrec.models.yolo.assign`).

Weights: ``pretrained=True`` loads timm's published backbone weights (downloaded when online;
offline the error says to pass a file); ``weights=FILE`` reads a local state dict: a whole
detector's (``backbone.``/``neck.``/``head.`` keys; head tensors of another class count stay
fresh) or a backbone's alone (a timm classifier of the same architecture, e.g. an imgrec
classification run's ``weights.safetensors``); ``backbone_weights=RUN|FILE`` (what ``imgrec train
--backbone-weights`` passes) reads the same way, a run folder standing for its weights file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from imgrec.errors import ConfigError, ModelFileError
from imgrec.models import hub
from imgrec.models.torch_detect import WEIGHTS_FILE, TorchDetector
from imgrec.models.yolo.assign import detection_losses
from imgrec.models.yolo.net import YoloNet, feature_info
from imgrec.tasks.decoders import decode
from imgrec.transforms.preprocess import Preprocessing

MIN_SIZE = 64
ARCH_KEYS = ("backbone", "width", "head_convs")
WEIGHT_KEYS = ("pretrained", "weights", "backbone_weights")  # where the starting weights come from
VARIANTS: dict[str, dict[str, Any]] = {
    "yolo-n": {"backbone": "mobilenetv4_conv_small", "width": 64, "head_convs": 1},
    "yolo-s": {"backbone": "cs3darknet_s", "width": 96, "head_convs": 2},
}
OUT_INDICES = (2, 3, 4)


class YoloDetector(TorchDetector):
    """imgrec's one-stage anchor-free detector (see the package docstring).

    ``layout`` names the :mod:`imgrec.tasks.decoders` layout of :meth:`dense_outputs`: the
    torch model and its ONNX export decode the same two tensors with the same numpy code.
    """

    layout = "xyxy-scores"

    def normalize(self, batch: np.ndarray) -> torch.Tensor:
        """A prepared uint8 NHWC batch as normalized float NCHW on the model's device."""
        return self.normalize_tensor(torch.from_numpy(np.ascontiguousarray(batch)).to(self.device))

    def normalize_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 NHWC tensor -> normalized float NCHW (also the first step of the ONNX graph)."""
        x = x.permute(0, 3, 1, 2).float()
        mean = torch.tensor(self.preprocessing.mean, device=x.device).view(1, 3, 1, 1) * 255.0
        std = torch.tensor(self.preprocessing.std, device=x.device).view(1, 3, 1, 1) * 255.0
        return (x - mean) / std

    def dense_outputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every cell's box (N, A, 4) x1 y1 x2 y2 in input pixels and class probabilities (N, A, C)."""
        boxes, logits, _ = self.module(x)
        return boxes.float(), logits.float().sigmoid()

    def detect(self, batch: np.ndarray) -> list[Any]:
        """Box candidates per image in input pixels (the task applies conf, NMS and max_det)."""
        self.module.eval()
        found: list[Any] = []
        with torch.inference_mode():
            for i in range(0, len(batch), self.batch_size):
                boxes, scores = self.dense_outputs(self.normalize(batch[i : i + self.batch_size]))
                found += decode(self.layout, [boxes.cpu().numpy(), scores.cpu().numpy()], self.preprocessing.size,
                                self.num_classes)  # fmt: skip
        return found

    def losses(self, batch: np.ndarray, targets: Sequence[Mapping[str, np.ndarray]]) -> dict[str, Any]:
        """``loss_cls`` and ``loss_box`` for a batch and its targets (``boxes`` x1 y1 x2 y2 in
        input pixels, ``labels`` class indices)."""
        self.module.train()
        boxes, logits, points = self.module(self.normalize(batch))
        gts = [torch.as_tensor(np.asarray(t["boxes"], np.float32).reshape(-1, 4), device=self.device) for t in targets]
        labels = [torch.as_tensor(np.asarray(t["labels"], np.int64).reshape(-1), device=self.device) for t in targets]
        return detection_losses(boxes, logits, points, gts, labels)


# ---------------------------------------------------------------- building


def arch_args(name: str, model_args: Mapping[str, Any]) -> dict[str, Any]:
    """The architecture options (backbone, width, head_convs): the variant's, overridden by ``model_args``."""
    unknown = sorted(set(model_args) - set(ARCH_KEYS) - set(WEIGHT_KEYS))
    if unknown:
        raise ConfigError(f"{name} takes the options {', '.join(ARCH_KEYS + WEIGHT_KEYS)}; "
                          f"received unknown {', '.join(unknown)}.")  # fmt: skip
    args = {**VARIANTS[name], **{k: model_args[k] for k in ARCH_KEYS if model_args.get(k) is not None}}
    for key in ("width", "head_convs"):
        value = args[key]
        if isinstance(value, bool) or not str(value).isdigit() or not 1 <= int(value) <= 1024:
            raise ConfigError(f"{name}: {key} must be an integer from 1 to 1024; received {value!r}.")
        args[key] = int(value)
    args["backbone"] = str(args["backbone"])
    return args


def _backbone(name: str, pretrained: bool) -> torch.nn.Module:
    import timm

    if name not in timm.list_models():
        from imgrec.errors import did_you_mean

        raise ConfigError(f"Unknown timm backbone {name!r}.{did_you_mean(name, timm.list_models())} "
                          "Pick a timm CNN, e.g. mobilenetv4_conv_small, cs3darknet_s, resnet18.")  # fmt: skip
    kw: dict[str, Any] = {"features_only": True, "out_indices": OUT_INDICES}
    if pretrained:
        from imgrec.models.torch_classifier import _timm_pretrained

        return _timm_pretrained(name, kw)
    try:
        return timm.create_model(name, pretrained=False, **kw)
    except (RuntimeError, TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"timm cannot build {name} as a feature backbone (features_only, out_indices "
                          f"{OUT_INDICES}): {exc}. Pick a CNN backbone.") from None  # fmt: skip


def make_net(args: Mapping[str, Any], num_classes: int, pretrained: bool = False) -> YoloNet:
    """The network of ``args`` (from :func:`arch_args`)."""
    backbone = _backbone(args["backbone"], pretrained)
    if len(feature_info(backbone).channels()) != 3:
        raise ConfigError(f"The backbone {args['backbone']} does not give three feature levels.")
    return YoloNet(backbone, num_classes, args["width"], args["head_convs"])


def build(name: str, classes: list[str], preprocessing: Preprocessing, **model_args: Any) -> YoloDetector:
    """``ModelSpec.build``: an untrained detector, or with ``pretrained``/``weights`` loaded."""
    args = arch_args(name, model_args)
    pretrained = bool(model_args.get("pretrained"))
    weights = model_args.get("weights") or model_args.get("backbone_weights")
    if sum(bool(v) for v in (pretrained, model_args.get("weights"), model_args.get("backbone_weights"))) > 1:
        raise ConfigError("Give one of pretrained=True, weights=FILE or backbone_weights=RUN|FILE; received several.")
    if preprocessing.size < MIN_SIZE:
        raise ConfigError(
            f"{name} needs inputs of at least {MIN_SIZE} pixels; received image_size={preprocessing.size}."
        )
    model = YoloDetector(name, classes, preprocessing, make_net(args, len(classes), pretrained), args)
    if weights:
        source = str(weights)
        load_weights_file(model, _weights_path(source), source)
    return model


def _weights_path(source: str) -> Path:
    """A URL (downloaded), an imgrec run folder (its weights file) or a state dict file."""
    if hub.is_url(source):
        return hub.download(source)
    path = Path(source)
    if path.is_dir():
        from imgrec.models.artifact import read_meta

        return path / str(dict(read_meta(path).get("files") or {}).get("weights", WEIGHTS_FILE))
    return path


def load_weights_file(model: YoloDetector, path: Path, source: str) -> None:
    """Initialize from a whole detector's state dict, or a backbone's alone."""
    state = hub.read_state_dict(path)
    if any(hub._strip(k).startswith("backbone.") for k in state):
        own = model.module.state_dict()
        heads = {k for k in own if ".cls_pred." in k}
        model.module.load_state_dict(hub.match_state(own, state, heads, source), strict=False)
        return
    backbone = model.module.backbone
    own = backbone.state_dict()
    backbone.load_state_dict(hub.match_state(own, state, set(), source), strict=False)


def load(run_dir: Path, meta: dict[str, Any]) -> YoloDetector:
    """Rebuild the architecture recorded in model.json (no download) and read its weights strictly."""
    from safetensors.torch import load_file

    name, classes = str(meta["model"]), [str(c) for c in meta["classes"]]
    args = arch_args(name, dict(meta.get("model_args") or {}))
    prep = Preprocessing.from_dict(meta["preprocessing"])
    model = YoloDetector(name, classes, prep, make_net(args, len(classes)), args)
    path = Path(run_dir) / str(dict(meta.get("files") or {}).get("weights", WEIGHTS_FILE))
    try:
        model.module.load_state_dict(load_file(str(path)), strict=True)
    except (OSError, RuntimeError, ValueError) as exc:
        raise ModelFileError(f"{path} does not fit {name} ({args['backbone']}, width {args['width']}) with "
                             f"{len(classes)} classes: {str(exc).splitlines()[0]}") from None  # fmt: skip
    return model
