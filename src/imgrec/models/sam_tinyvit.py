"""MobileSAM checkpoints: SAM with a TinyViT image encoder, built from timm's ``TinyVit`` and the
``segment-anything`` package's neck, prompt encoder and mask decoder (extra ``sam``).

MobileSAM (Zhang et al. 2023) distils SAM's ViT into TinyViT-5M and keeps SAM's prompt encoder
and mask decoder. Its encoder is timm's TinyViT with these changes (read in MobileSAM's
``mobile_sam/modeling/tiny_vit_sam.py``), which :func:`build_tiny_vit_encoder` makes:

- the input is SAM's 1024 x 1024 (not 224), and the window attention pads to its windows;
- the patch merging into the last stage has stride 1, so the last stage stays at 1/16 of the
  input (64 x 64) instead of 1/32;
- no classifier: the features go through SAM's neck (1x1 conv, LayerNorm2d, 3x3 conv,
  LayerNorm2d, no biases) to ``[B, 256, 64, 64]``. The file's classifier head
  (``image_encoder.norm_head.*``, ``image_encoder.head.*``) is read and dropped.

The sizes are read from the file's shapes, so any TinyViT SAM of this layout builds: the widths
(the patch embedding and each patch merging), the depths (blocks per stage), per attention stage
the heads and the window side (a block's ``attention_biases`` table is ``(heads, window**2)``),
the MLP and MBConv expansions, the local convolution's kernel and the neck's width. The input side
is not in the weights: 1024, as in every MobileSAM. A file of another layout (not 4 stages, widths
that the heads do not divide) is refused with what it holds.

MobileSAM's keys differ from timm's (:func:`timm_key`): ``layers.N.blocks`` are
``stages.N.blocks``; the patch merging that ends MobileSAM's layer N starts timm's stage N+1;
``patch_embed.seq.0/2`` are ``patch_embed.conv1/conv2``; a conv+BN pair's ``c`` is ``conv``. The
``attention_bias_idxs`` buffers (fixed offsets, recomputed by timm) are dropped when present.

Example:
    >>> timm_key("image_encoder.layers.0.downsample.conv2.c.weight")
    'image_encoder.stages.1.downsample.conv2.conv.weight'
    >>> timm_key("image_encoder.patch_embed.seq.2.bn.running_mean")
    'image_encoder.patch_embed.conv2.bn.running_mean'
    >>> timm_key("image_encoder.head.weight") is None
    True
    >>> MOBILE_SAM.describe()
    'MobileSAM (TinyViT widths 64/128/160/320, depths 2/2/6/2, input 1024)'
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from imgrec.errors import ModelFileError

PREFIX = "image_encoder."
TINY_VIT_KEY = re.compile(r"^image_encoder\.(layers\.|patch_embed\.seq\.)")
TINY_VIT_REQUIRED = ("image_encoder.patch_embed.seq.0.c.weight", "image_encoder.patch_embed.seq.2.c.weight",
                     "image_encoder.layers.1.blocks.0.attn.attention_biases",
                     "image_encoder.neck.0.weight")  # fmt: skip
STAGES = 4


@dataclass(frozen=True)
class TinyVitConfig:
    """The sizes of a TinyViT SAM image encoder (MobileSAM's are :data:`MOBILE_SAM`).

    Attributes:
        embed_dims: each stage's width (stage 0 is convolutional, the others attend in windows).
        depths: each stage's blocks.
        num_heads: the attention heads of stages 1, 2, 3.
        window_sizes: the window side of stages 1, 2, 3.
        mlp_ratio: the attention blocks' MLP width over the stage's width.
        mbconv_expand_ratio: stage 0's MBConv expansion.
        local_conv_size: the depthwise convolution between attention and MLP.
        out_chans: the neck's width = SAM's prompt and decoder width.
        img_size: the square input side (not in the weights: 1024 for every MobileSAM).
    """

    embed_dims: tuple[int, ...]
    depths: tuple[int, ...]
    num_heads: tuple[int, ...]
    window_sizes: tuple[int, ...]
    mlp_ratio: float = 4.0
    mbconv_expand_ratio: float = 4.0
    local_conv_size: int = 3
    out_chans: int = 256
    img_size: int = 1024

    def describe(self) -> str:
        kind = "MobileSAM" if self == MOBILE_SAM else "a TinyViT SAM"
        return (f"{kind} (TinyViT widths {'/'.join(map(str, self.embed_dims))}, depths "
                f"{'/'.join(map(str, self.depths))}, input {self.img_size})")  # fmt: skip


MOBILE_SAM = TinyVitConfig(embed_dims=(64, 128, 160, 320), depths=(2, 2, 6, 2), num_heads=(4, 5, 10),
                           window_sizes=(7, 14, 7))  # fmt: skip


def is_tiny_vit(state: Mapping[str, Any]) -> bool:
    """Whether a SAM state dict holds a TinyViT (MobileSAM) image encoder."""
    return any(TINY_VIT_KEY.match(k) for k in state)


def timm_key(key: str) -> str | None:
    """The name in the model built here of a MobileSAM tensor, or None for one that is dropped
    (the unused classifier head, the recomputed ``attention_bias_idxs``). Other keys are kept."""
    if not key.startswith(PREFIX):
        return key
    name = key[len(PREFIX):]
    if name.startswith(("norm_head.", "head.")) or name.endswith(".attention_bias_idxs"):
        return None
    name = re.sub(r"^patch_embed\.seq\.0\.", "patch_embed.conv1.", name)
    name = re.sub(r"^patch_embed\.seq\.2\.", "patch_embed.conv2.", name)
    name = re.sub(r"^layers\.(\d+)\.blocks\.", r"stages.\1.blocks.", name)
    name = re.sub(r"^layers\.(\d+)\.downsample\.", lambda m: f"stages.{int(m.group(1)) + 1}.downsample.", name)
    name = re.sub(r"\.c\.(weight)$", r".conv.\1", name)
    return PREFIX + name


def timm_state(state: Mapping[str, Any]) -> dict[str, Any]:
    """A MobileSAM state dict renamed for the model built here (see :func:`timm_key`)."""
    return {new: v for k, v in state.items() if (new := timm_key(k)) is not None}


def tiny_vit_config(state: Mapping[str, Any]) -> TinyVitConfig:
    """The encoder sizes of a MobileSAM state dict, read from its shapes (see the module doc)."""
    stages = 1 + max(_indices(state, r"layers\.(\d+)\."))
    if stages != STAGES:
        raise ModelFileError(f"the TinyViT encoder has {stages} stages (image_encoder.layers.*); expected "
                             f"{STAGES} as in MobileSAM")  # fmt: skip
    dims = (_shape(state, "patch_embed.seq.2.c.weight")[0],
            *(_shape(state, f"layers.{i}.downsample.conv1.c.weight")[0] for i in range(stages - 1)))  # fmt: skip
    depths = tuple(1 + max(_indices(state, rf"layers\.{i}\.blocks\.(\d+)\.")) for i in range(stages))
    tables = [_shape(state, f"layers.{i}.blocks.0.attn.attention_biases") for i in range(1, stages)]
    config = TinyVitConfig(
        embed_dims=dims, depths=depths, num_heads=tuple(t[0] for t in tables),
        window_sizes=tuple(math.isqrt(t[1]) for t in tables),
        mlp_ratio=_shape(state, "layers.1.blocks.0.mlp.fc1.weight")[0] / dims[1],
        mbconv_expand_ratio=_shape(state, "layers.0.blocks.0.conv1.c.weight")[0] / dims[0],
        local_conv_size=_shape(state, "layers.1.blocks.0.local_conv.c.weight")[-1],
        out_chans=_shape(state, "neck.0.weight")[0],
    )  # fmt: skip
    _check(config, tables)
    return config


def _check(config: TinyVitConfig, tables: list[tuple[int, ...]]) -> None:
    rows = zip(config.embed_dims[1:], config.num_heads, config.window_sizes, tables, strict=True)
    for i, (dim, heads, window, table) in enumerate(rows, start=1):
        if window * window != table[1] or heads < 1 or dim % heads:
            raise ModelFileError(f"stage {i}'s attention bias table is {table[0]} x {table[1]}: expected heads "
                                 f"dividing its width {dim} by a square window count")  # fmt: skip
    if config.local_conv_size % 2 == 0:
        raise ModelFileError(f"the local convolution is {config.local_conv_size} wide; expected an odd kernel")


def _shape(state: Mapping[str, Any], name: str) -> tuple[int, ...]:
    return tuple(int(n) for n in state[PREFIX + name].shape)


def _indices(state: Mapping[str, Any], pattern: str) -> set[int]:
    return {int(m.group(1)) for k in state if (m := re.match(re.escape(PREFIX) + pattern, k))}


def build_tiny_vit_encoder(config: TinyVitConfig) -> Any:
    """A fresh TinyViT SAM image encoder: timm's ``TinyVit`` stem and stages (its classifier head
    left out) with MobileSAM's stride-1 last merging, then SAM's neck, as one ``nn.Sequential``
    (``patch_embed``, ``stages``, ``neck``) that maps ``[B, 3, S, S]`` to ``[B, out_chans, S/16,
    S/16]`` and carries ``img_size`` = S as SAM's ``Sam``/``SamPredictor`` expect."""
    from collections import OrderedDict

    from segment_anything.modeling.common import LayerNorm2d
    from timm.models.tiny_vit import TinyVit
    from torch import nn

    c = config
    vit: Any = TinyVit(num_classes=0, embed_dims=c.embed_dims, depths=c.depths, num_heads=(1, *c.num_heads),
                  window_sizes=(1, *c.window_sizes), mlp_ratio=c.mlp_ratio, drop_path_rate=0.0,
                  mbconv_expand_ratio=c.mbconv_expand_ratio, local_conv_size=c.local_conv_size)  # fmt: skip
    vit.stages[-1].downsample.conv2.conv.stride = (1, 1)  # MobileSAM: the last stage stays at 1/16
    width = c.out_chans
    neck = nn.Sequential(nn.Conv2d(c.embed_dims[-1], width, 1, bias=False), LayerNorm2d(width),
                         nn.Conv2d(width, width, 3, padding=1, bias=False), LayerNorm2d(width))  # fmt: skip
    encoder: Any = nn.Sequential(OrderedDict(patch_embed=vit.patch_embed, stages=vit.stages, neck=neck))
    encoder.img_size = c.img_size
    return encoder
