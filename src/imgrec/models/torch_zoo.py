"""Deep model specs: two small CNNs of our own and the timm architectures asked for first.

Importing this module registers the specs and the ``"torch"`` loader; it does not import
torch or timm (the builders are lazy). Any other timm architecture gets a spec on demand
from :func:`timm_spec`.

Example:
    >>> from imgrec.models import list_models
    >>> "cnn-bn" in list_models("cnn-*") and "resnet18" in list_models("resnet*")
    True
"""

from __future__ import annotations

from imgrec.models.base import ModelSpec
from imgrec.models.registry import lazy, register_loader, register_model

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
INCEPTION = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
SMALL_CNN = ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))

_build = lazy("imgrec.models.torch_classifier:build")

# name -> (timm candidates (first found wins), size, norm, lr, params (10 classes), tags, what)
_TIMM: dict[str, tuple[tuple[str, ...], int, tuple, float, int, tuple[str, ...], str]] = {
    "resnet18": (("resnet18",), 224, IMAGENET, 1e-3, 11_200_000, ("cnn",), "ResNet-18, the classic baseline"),
    "resnet50": (("resnet50",), 224, IMAGENET, 1e-3, 23_500_000, ("cnn",), "ResNet-50"),
    "inception_v3": (("inception_v3",), 299, INCEPTION, 1e-3, 21_800_000, ("cnn",), "Inception v3 (min 75 px)"),
    "mobilenetv3_large_100": (
        ("mobilenetv3_large_100",), 224, IMAGENET, 1e-3, 4_200_000, ("cnn", "mobile"), "MobileNetV3-Large, fast on CPU"
    ),
    "xception": (("legacy_xception", "xception41"), 299, INCEPTION, 1e-3, 20_800_000, ("cnn",), "Xception"),
    "efficientnet_b0": (("efficientnet_b0",), 224, IMAGENET, 1e-3, 4_000_000, ("cnn", "mobile"), "EfficientNet-B0"),
    "vit_small_patch16_224": (
        ("vit_small_patch16_224",), 224, INCEPTION, 5e-4, 21_700_000, ("transformer",), "ViT-S/16"
    ),
    "deit_tiny_patch16_224": (
        ("deit_tiny_patch16_224",), 224, IMAGENET, 5e-4, 5_500_000, ("transformer",), "DeiT-Tiny/16"
    ),
    "swin_tiny_patch4_window7_224": (
        ("swin_tiny_patch4_window7_224",), 224, IMAGENET, 5e-4, 27_500_000, ("transformer",), "Swin-T"
    ),
    "convnext_tiny": (("convnext_tiny",), 224, IMAGENET, 5e-4, 27_800_000, ("cnn",), "ConvNeXt-Tiny"),
}


def _own_specs() -> list[ModelSpec]:
    mean, std = SMALL_CNN
    return [
        ModelSpec(
            name="cnn-small", family="torch", build=_build, default_size=28, default_lr=1e-3,
            params=122_000, mean=mean, std=std, tags=("cnn", "lowres"),
            description="Classic small CNN (Conv32-Pool-Conv64-Pool-Dense64), 28-32 px images",
        ),
        ModelSpec(
            name="cnn-bn", family="torch", build=_build, default_size=32, default_lr=3e-3,
            params=114_000, mean=mean, std=std, tags=("cnn", "lowres"),
            description="Fast conv-BN-ReLU CNN with dropout and grid pooling for small images (28-64 px)",
        ),
    ]


def resolve_timm_name(name: str) -> str:
    """The timm architecture behind a registered name (``"xception"`` -> ``"legacy_xception"``)."""
    entry = _TIMM.get(name)
    if entry is None:
        return name
    import timm

    available = set(timm.list_models())
    return next((c for c in entry[0] if c in available), entry[0][-1])


def timm_spec(name: str) -> ModelSpec:
    """A spec for any timm architecture, with its published input size and mean/std.

    Example:
        >>> timm_spec("resnet34").default_size
        224
    """
    import timm

    cfg = timm.get_pretrained_cfg(name)
    size = int(cfg.input_size[-1]) if cfg is not None else 224
    mean = tuple(cfg.mean) if cfg is not None else IMAGENET[0]
    std = tuple(cfg.std) if cfg is not None else IMAGENET[1]
    transformer = any(k in name for k in ("vit", "deit", "swin", "beit", "eva", "former"))
    return ModelSpec(
        name=name, family="torch", build=_build, default_size=size,
        default_lr=5e-4 if transformer else 1e-3, timm_name=name,
        mean=mean if len(mean) == 3 else IMAGENET[0],  # type: ignore[arg-type]
        std=std if len(std) == 3 else IMAGENET[1],  # type: ignore[arg-type]
        description=f"timm architecture {name}", tags=("timm",),
    )


def _timm_specs() -> list[ModelSpec]:
    specs = []
    for name, (cands, size, (mean, std), lr, params, tags, what) in _TIMM.items():
        specs.append(ModelSpec(
            name=name, family="torch", build=_build, default_size=size, default_lr=lr,
            params=params, timm_name=cands[0], mean=mean, std=std, tags=("timm", *tags),
            description=f"{what} (timm)",
        ))
    return specs


for _spec in (*_own_specs(), *_timm_specs()):
    register_model(_spec)
register_loader("torch", lazy("imgrec.models.torch_classifier:load"))
