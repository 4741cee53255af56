"""The segmentation networks behind :mod:`imgrec.models.torch_segment`: which library builds each
name, with which options, and where its encoder and head are (for weights and backbones).

Nothing is downloaded at build time: torchvision's builders get ``weights=None`` and smp's
``encoder_weights=None``; ``pretrained`` fetches the encoder explicitly (smp's own encoders: the
file at the commit smp pins, through :func:`imgrec.models.hub.download`; timm encoders: timm's
published weights).

Example:
    >>> arch_for("unet-resnet34").encoder, arch_for("unet-resnet34").stride
    ('resnet34', 32)
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from imgrec.errors import ConfigError, DependencyError, UnknownNameError

log = logging.getLogger(__name__)
HF_ENDPOINT = "https://huggingface.co"


@dataclass(frozen=True)
class SegArch:
    """One segmentation architecture.

    Attributes:
        kind: ``"torchvision"`` or ``"smp"``.
        builder: torchvision's builder function, or smp's class (``Unet``, ``FPN``).
        size: default input side.
        params: parameters with 21 classes (for listings).
        description: one line for ``imgrec models``.
        encoder: smp encoder name (``"resnet18"``, ``"tu-resnet10t"``).
        depth: smp encoder depth (the input must be a multiple of ``2 ** depth``).
        decoder: smp U-Net decoder channels (None: smp's default).
        weights: torchvision's weights enum name.
        heads: state-dict prefixes of the class head (fresh when the class count differs).
        backbone: state-dict prefix of the encoder (``backbone_weights`` fill it).
        backbone_hint: what ``backbone_weights`` should be, for the error message.
        lr: default AdamW learning rate.
    """

    kind: str
    builder: str
    size: int
    params: int | None
    description: str
    encoder: str = ""
    depth: int = 5
    decoder: tuple[int, ...] | None = None
    weights: str = ""
    heads: tuple[str, ...] = ("segmentation_head.",)
    backbone: str = "encoder."
    backbone_hint: str = "the same encoder"
    lr: float = 1e-3

    @property
    def stride(self) -> int:
        return 2**self.depth if self.kind == "smp" else 32


def _tv(builder: str, weights: str, heads: tuple[str, ...], params: int, what: str, hint: str) -> SegArch:
    return SegArch("torchvision", builder, 320, params, what, weights=weights, heads=heads, backbone="backbone.",
                   backbone_hint=hint, lr=3e-4)  # fmt: skip


R50, MNV3 = "a resnet50 classifier", "a torchvision mobilenet_v3_large state dict (features.*)"
ARCHS: dict[str, SegArch] = {
    "deeplabv3_mobilenet_v3_large": _tv("deeplabv3_mobilenet_v3_large", "DeepLabV3_MobileNet_V3_Large_Weights",
                                        ("classifier.4.",), 11_000_000, "DeepLabV3, MobileNetV3-Large (torchvision)",
                                        MNV3),
    "deeplabv3_resnet50": _tv("deeplabv3_resnet50", "DeepLabV3_ResNet50_Weights", ("classifier.4.",), 39_600_000,
                              "DeepLabV3, ResNet-50 (torchvision)", R50),
    "lraspp_mobilenet_v3_large": _tv("lraspp_mobilenet_v3_large", "LRASPP_MobileNet_V3_Large_Weights",
                                     ("classifier.low_classifier.", "classifier.high_classifier."), 3_200_000,
                                     "LR-ASPP, MobileNetV3-Large (torchvision): fast on CPU", MNV3),
    "fcn_resnet50": _tv("fcn_resnet50", "FCN_ResNet50_Weights", ("classifier.4.",), 32_900_000,
                        "FCN, ResNet-50 (torchvision)", R50),
    "unet-resnet18": SegArch("smp", "Unet", 256, 14_300_000, "U-Net, ResNet-18 encoder (segmentation-models-pytorch)",
                             encoder="resnet18", backbone_hint="a resnet18 classifier"),
    "fpn-resnet18": SegArch("smp", "FPN", 256, 13_000_000, "FPN, ResNet-18 encoder (segmentation-models-pytorch)",
                            encoder="resnet18", backbone_hint="a resnet18 classifier"),
    "unet-tiny": SegArch("smp", "Unet", 64, 410_000, "tiny U-Net (ResNet-10-T encoder, 3 levels) for tests",
                         encoder="tu-resnet10t", depth=3, decoder=(32, 16, 8), backbone="encoder.model.",
                         backbone_hint="a resnet10t classifier"),
}  # fmt: skip


def arch_for(name: str) -> SegArch:
    """The architecture of a registered name, or of ``unet-<encoder>`` / ``fpn-<encoder>``.

    Raises:
        UnknownNameError: neither registered nor a known smp encoder or timm architecture.
    """
    if name in ARCHS:
        return ARCHS[name]
    kind, _, encoder = name.partition("-")
    if kind not in ("unet", "fpn") or not encoder:
        raise UnknownNameError(f"Unknown segmentation model {name!r}; expected one of {', '.join(ARCHS)} "
                               "or unet-<encoder> / fpn-<encoder>.")  # fmt: skip
    smp_name = _encoder_name(encoder)
    what = f"{'U-Net' if kind == 'unet' else 'FPN'}, {encoder} encoder (segmentation-models-pytorch)"
    backbone = "encoder.model." if smp_name.startswith("tu-") else "encoder."
    return SegArch("smp", "Unet" if kind == "unet" else "FPN", 256, None, what, encoder=smp_name, backbone=backbone,
                   backbone_hint=f"a {encoder} classifier")  # fmt: skip


def _encoder_name(encoder: str) -> str:
    """smp's own encoder of that name, else timm's architecture through smp's ``tu-`` bridge."""
    smp = _smp()
    if encoder in smp.encoders.encoders:
        return encoder
    import timm

    if encoder in timm.list_models():
        return f"tu-{encoder}"
    raise ConfigError(f"{encoder!r} is neither a segmentation-models-pytorch encoder nor a timm architecture.")


def _smp() -> Any:
    try:
        import segmentation_models_pytorch as smp
    except ImportError as exc:
        raise DependencyError(
            f"U-Net and FPN need segmentation-models-pytorch ({exc}). Install it with: pip install 'imgrec[torch]'"
        ) from exc
    return smp


def make_network(arch: SegArch, num_classes: int, pretrained: bool) -> Any:
    """The untrained network (``pretrained``: smp/timm encoders start from their published weights;
    torchvision's whole-network weights are loaded by the caller)."""
    if arch.kind == "torchvision":
        from torchvision.models import segmentation

        builder = getattr(segmentation, arch.builder)
        return builder(weights=None, weights_backbone=None, num_classes=num_classes, aux_loss=False)
    smp = _smp()
    kwargs: dict[str, Any] = {"encoder_name": arch.encoder, "encoder_weights": None, "encoder_depth": arch.depth,
                              "classes": num_classes}  # fmt: skip
    if arch.decoder is not None:
        kwargs["decoder_channels"] = arch.decoder
    if pretrained and arch.encoder.startswith("tu-"):
        return _timm_pretrained(smp, arch, kwargs)
    net = getattr(smp, arch.builder)(**kwargs)
    if pretrained:
        load_encoder_weights(net, arch.encoder)
    return net


def encoder_url(encoder: str) -> str:
    """Where smp's ImageNet weights of ``encoder`` are, at the commit smp pins.

    Example:
        >>> encoder_url("resnet18").endswith("/model.safetensors")
        True
    """
    settings = _smp().encoders.encoders[encoder]["pretrained_settings"]
    if "imagenet" not in settings:
        raise ConfigError(f"segmentation-models-pytorch publishes no ImageNet weights for {encoder}; "
                          "train from scratch or pass weights=FILE.")  # fmt: skip
    entry = settings["imagenet"]
    endpoint = os.environ.get("HF_ENDPOINT", HF_ENDPOINT).rstrip("/")
    return f"{endpoint}/{entry['repo_id']}/resolve/{entry['revision']}/model.safetensors"


def load_encoder_weights(net: Any, encoder: str) -> None:
    """Download smp's encoder weights (a commit-pinned file) and load them into ``net.encoder``."""
    from imgrec.models.hub import download, match_state, read_state_dict

    url = encoder_url(encoder)
    own = net.encoder.state_dict()
    net.encoder.load_state_dict(match_state(own, read_state_dict(download(url)), set(), url), strict=False)


def _timm_pretrained(smp: Any, arch: SegArch, kwargs: dict[str, Any]) -> Any:
    """A timm encoder with timm's published weights (downloaded by timm when not cached)."""
    from imgrec.models import hub

    timm_name = arch.encoder[3:]
    if hub.cached_pretrained(timm_name) is None and not hub.reachable(hub.pretrained_host(timm_name)):
        from imgrec.errors import MissingInputError

        raise MissingInputError(f"Cannot download pretrained weights for {timm_name}: the weight server is not "
                                "reachable. Train without --pretrained, or pass --backbone-weights RUN.")  # fmt: skip
    with hub.quiet_downloads():
        return getattr(smp, arch.builder)(**{**kwargs, "encoder_weights": "imagenet"})
