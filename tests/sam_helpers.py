"""A tiny Segment Anything built with the segment-anything package's own modules (random, seeded
weights): ViT width 64, 2 blocks (one windowed, one global), input 256, decoder width 64.

The weights mean nothing, but every shape and every path of SAM is there, so loading, prompts,
geometry and the automatic mask generator are tested in a second, without a real checkpoint.
"""

from __future__ import annotations

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
    import torch

    state = tiny_sam(seed).state_dict()
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)
    return path
