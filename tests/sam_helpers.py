"""A tiny Segment Anything built with the segment-anything package's own modules (random, seeded
weights): ViT width 64, 2 blocks (one windowed, one global), input 256, decoder width 64; and a
tiny MobileSAM-layout one (TinyViT encoder), saved under MobileSAM's tensor names.

The weights mean nothing, but every shape and every path of SAM is there, so loading, prompts,
geometry and the automatic mask generator are tested in a second, without a real checkpoint.
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path
from typing import Any

TINY = {"embed_dim": 64, "depth": 2, "num_heads": 2, "img_size": 256, "window": 4, "global": (1,), "dim": 64}


def tiny_sam(seed: int = 0) -> Any:
    """The tiny SAM module (eval mode), built independently of imgrec's code."""
    import torch
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    torch.manual_seed(seed)
    t, grid = TINY, TINY["img_size"] // 16
    encoder = ImageEncoderViT(img_size=t["img_size"], patch_size=16, embed_dim=t["embed_dim"], depth=t["depth"],
                              num_heads=t["num_heads"], out_chans=t["dim"], qkv_bias=True,
                              norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), use_rel_pos=True,
                              window_size=t["window"], global_attn_indexes=t["global"])  # fmt: skip
    prompt = PromptEncoder(embed_dim=t["dim"], image_embedding_size=(grid, grid),
                           input_image_size=(t["img_size"], t["img_size"]), mask_in_chans=16)  # fmt: skip
    transformer = TwoWayTransformer(depth=2, embedding_dim=t["dim"], mlp_dim=128, num_heads=8)
    decoder = MaskDecoder(transformer_dim=t["dim"], transformer=transformer, num_multimask_outputs=3, iou_head_depth=3,
                          iou_head_hidden_dim=64)  # fmt: skip
    sam = Sam(image_encoder=encoder, prompt_encoder=prompt, mask_decoder=decoder,
              pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375])  # fmt: skip
    with torch.no_grad():  # relative positions start at zero; give them values so a wrong layout shows
        for name, p in sam.named_parameters():
            if "rel_pos" in name:
                p.normal_(0, 0.5)
    return sam.eval()


def save_tiny_sam(path: Path, seed: int = 0) -> Path:
    """Save the tiny SAM's state dict as ``.pth`` (torch.save) or ``.safetensors``."""
    return save_state(tiny_sam(seed).state_dict(), path)


# A tiny MobileSAM-layout SAM: TinyViT widths 8/16/24/32, depths 1/1/2/1, heads 1/2/4, windows 5/8/4,
# MLP x3, MBConv x2, decoder width 32 (input 1024: a TinyViT SAM's side is not in its weights).
TINY_VIT = {"embed_dims": (8, 16, 24, 32), "depths": (1, 1, 2, 1), "num_heads": (1, 2, 4), "window_sizes": (5, 8, 4),
            "mlp_ratio": 3.0, "mbconv_expand_ratio": 2.0, "local_conv_size": 3, "out_chans": 32}  # fmt: skip


def mobile_sam_name(name: str) -> str:
    """timm's TinyVit name of a tensor -> MobileSAM's (the mapping written backwards, apart from imgrec's)."""
    name = name.replace("patch_embed.conv1.", "patch_embed.seq.0.").replace("patch_embed.conv2.", "patch_embed.seq.2.")
    name = re.sub(r"stages\.(\d+)\.downsample\.", lambda m: f"layers.{int(m[1]) - 1}.downsample.", name)
    return re.sub(r"stages\.(\d+)\.blocks\.", r"layers.\1.blocks.", name).replace(".conv.weight", ".c.weight")


def tiny_mobile_sam(seed: int = 0) -> Any:
    """The tiny TinyViT SAM (eval mode): imgrec's encoder builder, segment-anything's other modules;
    batch-norm statistics and attention biases random, so a wrong mapping shows."""
    import torch
    from segment_anything.modeling import MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    from imgrec.models.sam_tinyvit import TinyVitConfig, build_tiny_vit_encoder

    torch.manual_seed(seed)
    encoder = build_tiny_vit_encoder(TinyVitConfig(**TINY_VIT))  # type: ignore[arg-type]
    prompt = PromptEncoder(embed_dim=32, image_embedding_size=(64, 64), input_image_size=(1024, 1024), mask_in_chans=16)
    transformer = TwoWayTransformer(depth=2, embedding_dim=32, mlp_dim=64, num_heads=8)
    decoder = MaskDecoder(transformer_dim=32, transformer=transformer, num_multimask_outputs=3, iou_head_depth=3,
                          iou_head_hidden_dim=32)  # fmt: skip
    sam = Sam(image_encoder=encoder, prompt_encoder=prompt, mask_decoder=decoder,
              pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375])  # fmt: skip
    with torch.no_grad():
        for name, t in sam.state_dict(keep_vars=True).items():
            if name.endswith(("attention_biases", "bn.bias", "running_mean")):
                t.normal_(0, 1.0)
            elif name.endswith(("bn.weight", "running_var")):
                t.uniform_(0.5, 1.5)
    return sam.eval()


def tiny_mobile_sam_state(seed: int = 0) -> dict[str, Any]:
    """The tiny TinyViT SAM's state dict as MobileSAM saves it (with its unused classifier head)."""
    import torch

    state = {mobile_sam_name(k): v for k, v in tiny_mobile_sam(seed).state_dict().items()}
    gen = torch.Generator().manual_seed(seed)
    head = {"norm_head.weight": (32,), "norm_head.bias": (32,), "head.weight": (10, 32), "head.bias": (10,)}
    return state | {f"image_encoder.{k}": torch.randn(shape, generator=gen) for k, shape in head.items()}


def save_state(state: dict[str, Any], path: Path) -> Path:
    """Save a state dict as ``.pth`` (torch.save) or ``.safetensors``."""
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)
    return path
