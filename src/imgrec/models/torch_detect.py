"""torchvision's detectors by name, behind the :class:`~imgrec.models.base.Detector` interface.

Faster R-CNN (MobileNetV3-FPN, ResNet-50-FPN v2), SSD300 VGG16, SSDlite320 MobileNetV3,
RetinaNet ResNet-50-FPN v2 and FCOS ResNet-50-FPN. They take the prepared (letterboxed) uint8
batch every backend takes; their own transform normalizes it with ImageNet's mean/std and is
pinned to the input size, so it never resizes again and boxes stay in input pixels. Their own
score threshold is lowered (0.001) so the ``detect`` task's ``conf`` decides, as for every
backend. Class index 0 is torchvision's background; imgrec's class ``i`` is torchvision's ``i + 1``.

Weights: ``pretrained=True`` downloads the official COCO weights (the file name carries the
first digits of its sha256, which are checked) and reads them without pickle
(``torch.load(weights_only=True)``); ``weights=FILE`` reads a local state dict. Head tensors of
another class count keep their fresh initialization.

Example:
    >>> # det = create_model("fasterrcnn_mobilenet_v3_large_fpn", ["cell"], image_size=320)
    >>> # det.detect(batch)[0].boxes.shape
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imgrec.errors import ConfigError, DependencyError, ModelFileError
from imgrec.files import write_bytes_atomic
from imgrec.models.base import Detector, Loader, ModelSpec
from imgrec.models.registry import register_loader, register_model
from imgrec.transforms.preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocessing

log = logging.getLogger(__name__)
WEIGHTS_FILE = "weights.safetensors"
SCORE_FLOOR = 0.001


@dataclass(frozen=True)
class Arch:
    """A torchvision detector: its builder, weights enum, default input side and head prefixes."""

    builder: str
    weights: str
    size: int
    heads: tuple[str, ...]
    description: str
    params: int
    min_size: int = 64
    task: str = "detect"
    make: Callable[..., Any] | None = None  # a builder of imgrec's own (torchvision has none by this name)


ARCHS: dict[str, Arch] = {
    "fasterrcnn_mobilenet_v3_large_fpn": Arch(
        "fasterrcnn_mobilenet_v3_large_fpn", "FasterRCNN_MobileNet_V3_Large_FPN_Weights", 320,
        ("roi_heads.box_predictor.",), "Faster R-CNN, MobileNetV3 FPN", 19_400_000,
    ),
    "fasterrcnn_resnet50_fpn_v2": Arch(
        "fasterrcnn_resnet50_fpn_v2", "FasterRCNN_ResNet50_FPN_V2_Weights", 640,
        ("roi_heads.box_predictor.",), "Faster R-CNN, ResNet-50 FPN v2", 43_700_000,
    ),
    "ssd300_vgg16": Arch(
        "ssd300_vgg16", "SSD300_VGG16_Weights", 300, ("head.classification_head.",),
        "SSD300, VGG16", 35_600_000, 268,
    ),
    "ssdlite320_mobilenet_v3_large": Arch(
        "ssdlite320_mobilenet_v3_large", "SSDLite320_MobileNet_V3_Large_Weights", 320,
        ("head.classification_head.",), "SSDlite, MobileNetV3", 3_400_000,
    ),
    "retinanet_resnet50_fpn_v2": Arch(
        "retinanet_resnet50_fpn_v2", "RetinaNet_ResNet50_FPN_V2_Weights", 640,
        ("head.classification_head.cls_logits.",), "RetinaNet, ResNet-50 v2", 38_200_000,
    ),
    "fcos_resnet50_fpn": Arch(
        "fcos_resnet50_fpn", "FCOS_ResNet50_FPN_Weights", 640, ("head.classification_head.cls_logits.",),
        "FCOS, ResNet-50 FPN", 32_300_000,
    ),
}  # fmt: skip


# Detector architectures other than torchvision's (imgrec's own, in imgrec.models.yolo), by model
# name: how their runs load. ``load`` below, the "torch:detect" loader, dispatches through it.
ARCH_LOADERS: dict[str, Loader] = {}
# The model class of each task's torchvision architectures (imgrec.models.torch_instance adds
# Mask R-CNN's).
MODEL_CLASSES: dict[str, type[TorchDetector]] = {}


def register_arch_loader(name: str, loader: Loader) -> None:
    """Let ``torch:detect`` runs of model ``name`` load through ``loader(run_dir, meta)``."""
    ARCH_LOADERS[name] = loader


def _detection_module() -> Any:
    try:
        from torchvision.models import detection
    except ImportError as exc:
        raise DependencyError(
            f"torchvision detectors need torch and torchvision ({exc}). Install them with: pip install 'imgrec[torch]'"
        ) from exc
    return detection


class TorchDetector(Detector):
    """A torchvision detector. ``module`` takes a list of float CHW tensors in [0, 1]."""

    family = "torch"

    def __init__(
        self, name: str, classes: list[str], preprocessing: Preprocessing, module: Any,
        model_args: Mapping[str, Any] | None = None,
    ) -> None:  # fmt: skip
        super().__init__(name, classes, preprocessing, model_args)
        self.module = module
        self.batch_size = 16
        self.device: Any = "cpu"

    def to(self, device: Any) -> TorchDetector:
        """Move the module (and the inputs it will get) to ``device``."""
        self.module.to(device)
        self.device = device
        return self

    def tensors(self, batch: np.ndarray) -> list[Any]:
        """A prepared uint8 NHWC batch as the module's list of float CHW tensors in [0, 1]."""
        import torch

        x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device).permute(0, 3, 1, 2).float().div_(255.0)
        return list(x)

    def state_tensors(self) -> dict[str, Any]:
        """The state dict as contiguous CPU tensors (what safetensors stores)."""
        return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in self.module.state_dict().items()}

    def detect(self, batch: np.ndarray) -> list[Any]:
        """Box candidates per image in input pixels (the task applies conf, NMS and max_det)."""
        import torch

        from imgrec.tasks.detect import BoxCandidates

        self.module.eval()
        found = []
        with torch.inference_mode():
            for i in range(0, len(batch), self.batch_size):
                for out in self.module(self.tensors(batch[i : i + self.batch_size])):
                    labels = out["labels"].cpu().numpy().astype(np.int64) - 1
                    keep = labels >= 0  # sigmoid heads (RetinaNet, FCOS) can score the unused background index
                    boxes, scores = out["boxes"].float().cpu().numpy(), out["scores"].float().cpu().numpy()
                    found.append(BoxCandidates(boxes[keep], scores[keep], labels[keep]))
        return found

    def losses(self, batch: np.ndarray, targets: Sequence[Mapping[str, np.ndarray]]) -> dict[str, Any]:
        """Training losses (torchvision's dict) for a batch and its targets (``boxes`` in input
        pixels, ``labels`` as imgrec class indices)."""
        import torch

        self.module.train()
        tv = [{"boxes": torch.as_tensor(np.asarray(t["boxes"], np.float32).reshape(-1, 4), device=self.device),
               "labels": torch.as_tensor(np.asarray(t["labels"], np.int64) + 1, device=self.device)}
              for t in targets]  # fmt: skip
        return dict(self.module(self.tensors(batch), tv))

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


# torchvision's sampling and candidate counts a run may set (``--model-arg NAME=N``), per family.
# Their defaults are tuned for 800-px COCO photos with many objects; on small images with a few
# objects, Faster R-CNN trains about 5x faster with e.g. rpn_post_nms_top_n_train=300 and
# box_batch_size_per_image=64 (benchmarks/detect_train.py).
TUNABLE: dict[str, tuple[str, ...]] = {
    "rcnn": ("rpn_pre_nms_top_n_train", "rpn_post_nms_top_n_train", "rpn_pre_nms_top_n_test",
             "rpn_post_nms_top_n_test", "rpn_batch_size_per_image", "box_batch_size_per_image"),
    "retinanet": ("topk_candidates",),
    "fcos": ("topk_candidates",),
    "ssd": (),
}  # fmt: skip


def _family(name: str) -> str:
    return "rcnn" if "rcnn" in name else next((f for f in ("retinanet", "fcos") if name.startswith(f)), "ssd")


def _tuning(name: str, model_args: Mapping[str, Any]) -> dict[str, int]:
    """The tunable counts in ``model_args`` for ``name``, checked to be integers >= 1."""
    out: dict[str, int] = {}
    for key in TUNABLE[_family(name)]:
        if key in model_args:
            value = model_args[key]
            whole = isinstance(value, int | str) and not isinstance(value, bool) and str(value).isdigit()
            if not whole or int(value) < 1:
                raise ConfigError(f"{name}: {key} must be an integer >= 1; received {value!r}.")
            out[key] = int(value)
    return out


def _module(name: str, num_classes: int, size: int, tuning: Mapping[str, int] | None = None) -> Any:
    """The torchvision module, untrained, its transform pinned to ``size``, thresholds opened."""
    arch = ARCHS[name]
    builder = arch.make or getattr(_detection_module(), arch.builder)
    kwargs: dict[str, Any] = {"weights": None, "weights_backbone": None, "num_classes": num_classes + 1,
                              **(tuning or {})}  # fmt: skip
    if "rcnn" in name:
        kwargs.update(min_size=size, max_size=size, box_score_thresh=SCORE_FLOOR, box_detections_per_img=300)
    elif name.startswith(("retinanet", "fcos")):
        kwargs.update(min_size=size, max_size=size, score_thresh=SCORE_FLOOR, detections_per_img=300)
    else:  # SSD family: a fixed-size transform
        kwargs.update(score_thresh=SCORE_FLOOR, detections_per_img=300)
    module = builder(**kwargs)
    if hasattr(module, "transform"):
        module.transform.min_size, module.transform.max_size = (size,), size
        if hasattr(module.transform, "fixed_size") and module.transform.fixed_size is not None:
            module.transform.fixed_size = (size, size)
    return module


def build(name: str, classes: list[str], preprocessing: Preprocessing, **model_args: Any) -> TorchDetector:
    """``ModelSpec.build``: an untrained detector, or with ``pretrained``/``weights`` loaded."""
    known = ("pretrained", "weights", "backbone_weights", *TUNABLE[_family(name)])
    unknown = sorted(set(model_args) - {*known, "dropout"})
    if unknown:
        raise ConfigError(f"{name} takes the options {', '.join(known)}; received unknown {', '.join(unknown)}.")
    tuning = _tuning(name, model_args)
    least = ARCHS[name].min_size
    if preprocessing.size < least:
        raise ConfigError(f"{name} needs inputs of at least {least} pixels; received image_size={preprocessing.size}.")
    module = _module(name, len(classes), preprocessing.size, tuning)
    model = MODEL_CLASSES[ARCHS[name].task](name, classes, preprocessing, module, tuning)  # model.json keeps the tuning
    if model_args.get("pretrained"):
        _load_into(model, _pretrained_state(name), f"{name} COCO weights")
    elif model_args.get("weights"):
        from imgrec.models.hub import download, is_url, read_state_dict

        source = str(model_args["weights"])
        path = download(source) if is_url(source) else Path(source)
        _load_into(model, read_state_dict(path), source)
    if model_args.get("backbone_weights"):
        load_backbone(model, str(model_args["backbone_weights"]))
    return model


BODY = "backbone.body."
PREFIXES = ("", "features.", BODY, "module.", "backbone.")


def load_backbone(model: TorchDetector, source: str) -> int:
    """Start the detector's backbone from a classification run (or a state dict file).

    A timm ``resnet50`` run fits the ResNet-50 detectors key for key; a torchvision-style
    ``features.*`` state dict fits the MobileNetV3 ones. Returns how many tensors were loaded.

    Raises:
        ModelFileError: fewer than 90% of the backbone's tensors are in the file with the
            right shapes (another architecture).
    """
    from imgrec.models.hub import best_prefix_fit, read_state_dict

    path = Path(source)
    if path.is_dir():  # an imgrec run: its weights file
        from imgrec.models.artifact import read_meta

        path = path / str(dict(read_meta(path).get("files") or {}).get("weights", WEIGHTS_FILE))
    own = {k[len(BODY) :]: v for k, v in model.module.state_dict().items() if k.startswith(BODY)}
    best = best_prefix_fit(own, read_state_dict(path), PREFIXES)
    if len(best) < 0.9 * len(own):
        raise ModelFileError(
            f"{source} fills {len(best)} of the {len(own)} backbone tensors of {model.name}: it is another "
            "architecture. ResNet-50 detectors take a resnet50 run; MobileNetV3 ones a torchvision mobilenet_v3_large "
            "state dict."
        )
    model.module.load_state_dict({BODY + k: v for k, v in best.items()}, strict=False)
    log.info("%s: backbone from %s (%d tensors)", model.name, source, len(best))
    return len(best)


def _pretrained_state(name: str) -> dict[str, Any]:
    """The official COCO weights, downloaded into the weights cache; sha256 prefix checked."""
    from imgrec.models.hub import download_prefixed, read_state_dict

    weights = getattr(_detection_module(), ARCHS[name].weights).DEFAULT
    return read_state_dict(download_prefixed(weights.url))


def _load_into(model: TorchDetector, state: Mapping[str, Any], source: str) -> None:
    from imgrec.models.hub import match_state

    own = model.module.state_dict()
    heads = {k for k in own if k.startswith(ARCHS[model.name].heads)}
    model.module.load_state_dict(match_state(own, state, heads, source), strict=False)


def load(run_dir: Path, meta: dict[str, Any]) -> TorchDetector:
    """Loader of torch detection runs: rebuild the architecture and read ``weights.safetensors``."""
    from imgrec.models.hub import read_state_dict

    name, classes = str(meta["model"]), [str(c) for c in meta["classes"]]
    if name in ARCH_LOADERS:
        return ARCH_LOADERS[name](run_dir, meta)  # type: ignore[return-value]
    if name not in ARCHS:
        raise ModelFileError(f"{run_dir}: unknown detector architecture {name!r}.")
    prep = Preprocessing.from_dict(meta["preprocessing"])
    args = dict(meta.get("model_args") or {})
    module = _module(name, len(classes), prep.size, _tuning(name, args))
    model = MODEL_CLASSES[ARCHS[name].task](name, classes, prep, module, args)
    files = dict(meta.get("files") or {})
    state = read_state_dict(Path(run_dir) / str(files.get("weights", WEIGHTS_FILE)))  # a broken file: ModelFileError
    try:
        model.module.load_state_dict(state, strict=True)
    except (RuntimeError, ValueError) as exc:
        raise ModelFileError(f"{run_dir}: the weights do not fit {name} with {len(classes)} classes: {exc}") from None
    return model


def register_archs(archs: Mapping[str, Arch], task: str) -> None:
    """Register torchvision architectures of ``task`` as models; their runs load through :func:`load`."""
    for name, arch in archs.items():
        ARCHS[name] = arch
        register_model(ModelSpec(
            name=name, family="torch", description=arch.description, default_size=arch.size, build=build,
            params=arch.params, mean=IMAGENET_MEAN, std=IMAGENET_STD, tags=(task, "torchvision"), task=task,
            default_lr=3e-4,
        ))  # fmt: skip
    register_loader(f"torch:{task}", load)


MODEL_CLASSES["detect"] = TorchDetector
register_archs(dict(ARCHS), "detect")
