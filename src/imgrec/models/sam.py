"""Segment Anything (SAM) checkpoints: what a file holds, the architecture read from its shapes,
and the model built by the ``segment-anything`` package (extra ``sam``).

A checkpoint is read with ``torch.load(weights_only=True)`` (or safetensors), never unpickled
into code. Its shapes say the architecture: the ViT image encoder's width (patch embedding),
depth (blocks), heads (the relative-position tables hold ``head_dim`` columns), input side
(absolute position embedding), window size and global-attention blocks (the relative-position
table of a windowed block spans ``2 * window - 1`` positions, of a global one ``2 * grid - 1``),
and the mask decoder's sizes. The official ``vit_b``/``vit_l``/``vit_h`` files match SAM's own
``sam_model_registry`` entries, which build them; any other ViT SAM (a distilled or a tiny one)
is built from the package's modules with the sizes read. A MobileSAM file (TinyViT image
encoder, ``image_encoder.layers.*``) is built from timm's ``TinyVit`` with MobileSAM's changes and
the package's prompt encoder and mask decoder (:mod:`imgrec.models.sam_tinyvit`). What cannot be
built is refused with what the file holds: SAM 2 (Hiera), HQ-SAM, the Hugging Face
``transformers`` layout. The decoder's attention heads are not in the weights: SAM's 8 are
assumed (every published SAM uses them).

Example:
    >>> sorted(SAM_FILES), SAM_FILES["vit_b"].url.rsplit("/", 1)[-1]
    (['vit_b', 'vit_h', 'vit_l'], 'sam_vit_b_01ec64.pth')
    >>> STANDARD["vit_b"].embed_dim, STANDARD["vit_b"].global_attn_indexes
    (768, (2, 5, 8, 11))
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imgrec.errors import DependencyError, MissingInputError, ModelFileError, UsageError
from imgrec.models.sam_tinyvit import (
    MOBILE_SAM,
    TINY_VIT_REQUIRED,
    TinyVitConfig,
    build_tiny_vit_encoder,
    is_tiny_vit,
    timm_state,
    tiny_vit_config,
)

log = logging.getLogger(__name__)
SAM_TYPES = ("vit_b", "vit_l", "vit_h")


@dataclass(frozen=True)
class SamFile:
    """An official checkpoint: where it is published and its sha256 (the download is checked)."""

    url: str
    sha256: str
    size: int | None = None


_BASE = "https://dl.fbaipublicfiles.com/segment_anything/"
SAM_FILES: dict[str, SamFile] = {
    "vit_b": SamFile(_BASE + "sam_vit_b_01ec64.pth",
                     "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912", 375_042_383),
    "vit_l": SamFile(_BASE + "sam_vit_l_0b3195.pth",
                     "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622"),
    "vit_h": SamFile(_BASE + "sam_vit_h_4b8939.pth",
                     "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e", 2_564_550_879),
}  # fmt: skip


@dataclass(frozen=True)
class SamConfig:
    """The sizes of a SAM: a ViT image encoder (SAM's defaults are vit_b's) or, with ``tiny_vit``,
    MobileSAM's TinyViT (then the ViT fields are 0 and ``patch_size`` is the encoder's stride).

    Attributes:
        embed_dim: ViT width.
        depth: ViT blocks.
        num_heads: ViT attention heads.
        global_attn_indexes: the blocks attending globally (the others attend in windows).
        img_size: the square input side (1024 for every published SAM).
        patch_size: the ViT patch side.
        window_size: the windowed blocks' window side.
        mlp_ratio: the ViT MLP's hidden width over ``embed_dim``.
        prompt_dim: the neck's output channels = the prompt and mask decoder width.
        decoder_depth: two-way transformer layers of the mask decoder.
        decoder_mlp_dim: their MLP width.
        decoder_heads: their attention heads (not in the weights; 8 in every SAM).
        iou_head_depth: layers of the IoU prediction head.
        iou_head_hidden_dim: its width.
        multimask_outputs: the masks of an ambiguous prompt (3).
        mask_in_chans: channels of the mask-prompt encoder.
        qkv_bias: whether the ViT's qkv projection has a bias.
        use_rel_pos: whether the ViT uses relative positions.
        tiny_vit: the TinyViT encoder's sizes of a MobileSAM (None: a ViT encoder).
    """

    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    global_attn_indexes: tuple[int, ...] = (2, 5, 8, 11)
    img_size: int = 1024
    patch_size: int = 16
    window_size: int = 14
    mlp_ratio: float = 4.0
    prompt_dim: int = 256
    decoder_depth: int = 2
    decoder_mlp_dim: int = 2048
    decoder_heads: int = 8
    iou_head_depth: int = 3
    iou_head_hidden_dim: int = 256
    multimask_outputs: int = 3
    mask_in_chans: int = 16
    qkv_bias: bool = True
    use_rel_pos: bool = True
    tiny_vit: TinyVitConfig | None = None

    @property
    def sam_type(self) -> str | None:
        """``vit_b``/``vit_l``/``vit_h`` when these are an official variant's sizes, else None."""
        return next((name for name, cfg in STANDARD.items() if cfg == self), None)

    @property
    def variant(self) -> str | None:
        """``sam_type``, or ``mobilesam`` (MobileSAM's sizes) / ``tinyvit`` for a TinyViT encoder, else None."""
        if self.tiny_vit is not None:
            return "mobilesam" if self.tiny_vit == MOBILE_SAM else "tinyvit"
        return self.sam_type

    def describe(self) -> str:
        if self.tiny_vit is not None:
            return self.tiny_vit.describe()
        kind = self.sam_type or "a non-standard ViT SAM"
        return (f"{kind} (ViT width {self.embed_dim}, depth {self.depth}, {self.num_heads} heads, "
                f"input {self.img_size})")  # fmt: skip


STANDARD: dict[str, SamConfig] = {
    "vit_b": SamConfig(),
    "vit_l": SamConfig(embed_dim=1024, depth=24, num_heads=16, global_attn_indexes=(5, 11, 17, 23)),
    "vit_h": SamConfig(embed_dim=1280, depth=32, num_heads=16, global_attn_indexes=(7, 15, 23, 31)),
}

# Key patterns of SAM checkpoints that cannot be built here -> what they are.
_FOREIGN = (
    (re.compile(r"^image_encoder\.trunk\."), "a SAM 2 checkpoint (Hiera image encoder; needs the sam2 package)"),
    (re.compile(r"^mask_decoder\.(hf_token|hf_mlp|compress_vit_feat)"),
     "an HQ-SAM checkpoint (its mask decoder has extra HQ layers; needs the sam-hq package)"),
    (re.compile(r"^(vision_encoder|prompt_encoder\.shared_embedding)\."),
     "a Hugging Face transformers SamModel (another key layout; use the original .pth file)"),
)  # fmt: skip
_REQUIRED = ("mask_decoder.iou_token.weight", "prompt_encoder.mask_downscaling.0.weight")
_VIT_REQUIRED = ("image_encoder.patch_embed.proj.weight", "image_encoder.pos_embed", "image_encoder.neck.0.weight")


def _require_sam_package() -> None:
    try:
        import segment_anything  # noqa: F401
    except ImportError:
        raise DependencyError("SAM needs the segment-anything package: pip install 'imgrec[sam]'.") from None


def clean_state(state: Mapping[str, Any]) -> dict[str, Any]:
    """Keys without a ``module.`` prefix (a DataParallel save)."""
    return {(k[7:] if k.startswith("module.") else k): v for k, v in state.items()}


def check_sam_state(state: Mapping[str, Any], source: str) -> None:
    """Refuse a file that is not a SAM the package can build, saying what it holds.

    Example:
        >>> try:
        ...     check_sam_state({"conv1.weight": 0, "fc.bias": 0}, "resnet.pth")
        ... except ModelFileError as exc:
        ...     print(str(exc)[:50])
        resnet.pth is not a Segment Anything checkpoint: i
    """
    for pattern, what in _FOREIGN:
        if any(pattern.match(k) for k in state):
            raise ModelFileError(f"{source} holds {what}. Expected an original SAM checkpoint such as "
                                 "sam_vit_b_01ec64.pth (image_encoder.blocks.*, prompt_encoder.*, "
                                 "mask_decoder.*) or MobileSAM's mobile_sam.pt.")  # fmt: skip
    encoder = TINY_VIT_REQUIRED if is_tiny_vit(state) else _VIT_REQUIRED
    missing = [k for k in (*encoder, *_REQUIRED) if k not in state]
    if missing:
        sample = ", ".join(sorted(state)[:4])
        raise ModelFileError(
            f"{source} is not a Segment Anything checkpoint: it lacks {', '.join(missing[:3])} "
            f"({len(state)} tensors such as {sample}). Expected a SAM file such as sam_vit_b_01ec64.pth; "
            "a classifier's or detector's weights cannot be used."
        )


def sam_config(state: Mapping[str, Any]) -> SamConfig:
    """The architecture of a SAM state dict, read from its tensor shapes (see the module doc)."""
    decoder = _decoder_sizes(state)
    if is_tiny_vit(state):
        return tiny_vit_sam_config(tiny_vit_config(state), **decoder)
    patch = state["image_encoder.patch_embed.proj.weight"].shape
    embed_dim, patch_size = int(patch[0]), int(patch[2])
    depth = 1 + max(_indices(state, r"image_encoder\.blocks\.(\d+)\."))
    grid = int(state["image_encoder.pos_embed"].shape[1])
    found = [state.get(f"image_encoder.blocks.{i}.attn.rel_pos_h") for i in range(depth)]
    rel = [r for r in found if r is not None]
    use_rel = len(rel) == depth
    spans = [int(r.shape[0]) for r in rel] if use_rel else []
    heads = embed_dim // int(rel[0].shape[1]) if use_rel else max(1, embed_dim // 64)
    global_idx = tuple(i for i, s in enumerate(spans) if s == 2 * grid - 1)
    windowed = [s for s in spans if s != 2 * grid - 1]
    return SamConfig(
        embed_dim=embed_dim, depth=depth, num_heads=heads, global_attn_indexes=global_idx,
        img_size=grid * patch_size, patch_size=patch_size, window_size=(windowed[0] + 1) // 2 if windowed else 0,
        mlp_ratio=int(state["image_encoder.blocks.0.mlp.lin1.weight"].shape[0]) / embed_dim,
        prompt_dim=int(state["image_encoder.neck.0.weight"].shape[0]),
        qkv_bias="image_encoder.blocks.0.attn.qkv.bias" in state, use_rel_pos=use_rel, **decoder,
    )  # fmt: skip


def tiny_vit_sam_config(tiny: TinyVitConfig = MOBILE_SAM, **decoder: Any) -> SamConfig:
    """The config of a SAM with this TinyViT encoder (default MobileSAM's) and decoder sizes
    (default SAM's); the ViT fields are 0.

    Example:
        >>> tiny_vit_sam_config().describe()
        'MobileSAM (TinyViT widths 64/128/160/320, depths 2/2/6/2, input 1024)'
    """
    return SamConfig(embed_dim=0, depth=0, num_heads=0, global_attn_indexes=(), img_size=tiny.img_size,
                     window_size=0, mlp_ratio=0.0, qkv_bias=False, use_rel_pos=False, tiny_vit=tiny,
                     prompt_dim=tiny.out_chans, **decoder)  # fmt: skip


def _decoder_sizes(state: Mapping[str, Any]) -> dict[str, Any]:
    """The prompt encoder's and mask decoder's sizes (the same for every image encoder)."""
    return {
        "decoder_depth": len(_indices(state, r"mask_decoder\.transformer\.layers\.(\d+)\.")),
        "decoder_mlp_dim": int(state["mask_decoder.transformer.layers.0.mlp.lin1.weight"].shape[0]),
        "iou_head_depth": len(_indices(state, r"mask_decoder\.iou_prediction_head\.layers\.(\d+)\.")),
        "iou_head_hidden_dim": int(state["mask_decoder.iou_prediction_head.layers.0.weight"].shape[0]),
        "multimask_outputs": int(state["mask_decoder.mask_tokens.weight"].shape[0]) - 1,
        "mask_in_chans": 4 * int(state["prompt_encoder.mask_downscaling.0.weight"].shape[0]),
    }


def _indices(state: Mapping[str, Any], pattern: str) -> set[int]:
    return {int(m.group(1)) for k in state if (m := re.match(pattern, k))}


def build_sam(config: SamConfig) -> Any:
    """A fresh (randomly initialized) SAM of these sizes, in eval mode: the package's registry
    entry for an official variant, else the package's modules with these sizes."""
    _require_sam_package()
    if config.sam_type is not None:
        from segment_anything import sam_model_registry

        return sam_model_registry[config.sam_type]().eval()
    return _build_modules(config).eval()


def _build_modules(c: SamConfig) -> Any:
    from functools import partial

    import torch
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    grid = c.img_size // c.patch_size
    encoder = build_tiny_vit_encoder(c.tiny_vit) if c.tiny_vit is not None else ImageEncoderViT(
        img_size=c.img_size, patch_size=c.patch_size, embed_dim=c.embed_dim, depth=c.depth, num_heads=c.num_heads,
        mlp_ratio=c.mlp_ratio, out_chans=c.prompt_dim, qkv_bias=c.qkv_bias,
        norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), use_rel_pos=c.use_rel_pos,
        window_size=c.window_size, global_attn_indexes=c.global_attn_indexes,
    )  # fmt: skip
    prompt = PromptEncoder(embed_dim=c.prompt_dim, image_embedding_size=(grid, grid),
                           input_image_size=(c.img_size, c.img_size), mask_in_chans=c.mask_in_chans)  # fmt: skip
    transformer = TwoWayTransformer(depth=c.decoder_depth, embedding_dim=c.prompt_dim, mlp_dim=c.decoder_mlp_dim,
                                    num_heads=c.decoder_heads)  # fmt: skip
    decoder = MaskDecoder(transformer_dim=c.prompt_dim, transformer=transformer,
                          num_multimask_outputs=c.multimask_outputs, iou_head_depth=c.iou_head_depth,
                          iou_head_hidden_dim=c.iou_head_hidden_dim)  # fmt: skip
    return Sam(image_encoder=encoder, prompt_encoder=prompt, mask_decoder=decoder,
               pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375])  # fmt: skip


def sam_weights(weights: str | Path | None, sam_type: str | None = None, *, download: bool = False) -> Path:
    """The local checkpoint: ``weights`` when given, else (``download=True``) the official file of
    ``sam_type`` (default vit_b), downloaded once into the cache and checked by sha256."""
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise MissingInputError(f"SAM checkpoint not found: {path}. Pass the .pth or .safetensors file itself.")
        return path
    if not download:
        raise UsageError("SAM needs its checkpoint: --weights FILE (weights=FILE in Python), or --download "
                         "(download=True) to fetch the official sam_vit_b_01ec64.pth (375 MB, "
                         "sha256-checked).")  # fmt: skip
    return fetch_sam_file(SAM_FILES[_check_type(sam_type or "vit_b")])


def fetch_sam_file(entry: SamFile) -> Path:
    """Download ``entry`` into the weights cache (once; kept only when its sha256 matches)."""
    from imgrec.models.hub import download

    try:
        return download(entry.url, sha256=entry.sha256)
    except MissingInputError as exc:
        raise MissingInputError(f"{exc} Or download {entry.url} yourself and pass --weights FILE.") from None


def _check_type(sam_type: str) -> str:
    if sam_type not in SAM_TYPES:
        raise UsageError(f"Unknown SAM type {sam_type!r}; expected one of {', '.join(SAM_TYPES)}.")
    return sam_type


def load_sam_model(path: str | Path, sam_type: str | None = None) -> tuple[Any, SamConfig]:
    """Build SAM from a checkpoint and load its weights (strictly: every tensor must fit).

    Args:
        path: a ``.pth``/``.pt`` (read with ``weights_only=True``) or ``.safetensors`` state dict:
            SAM's own layout (ViT) or MobileSAM's (TinyViT, renamed to timm's modules).
        sam_type: insist on ``vit_b``/``vit_l``/``vit_h`` (default: what the shapes say).

    Returns:
        The ``segment_anything`` ``Sam`` module (eval mode, CPU) and its sizes.
    """
    from imgrec.models.hub import read_state_dict

    _require_sam_package()
    state = clean_state(read_state_dict(path))
    check_sam_state(state, str(path))
    try:
        config = sam_config(state)
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        raise ModelFileError(f"{path} looks like SAM but its shapes do not fit SAM's modules ({exc}).") from None
    if sam_type is not None and config.sam_type != _check_type(sam_type):
        raise ModelFileError(f"{path} holds {config.describe()}, not {sam_type}; drop --sam-type or pass the "
                             f"{sam_type} checkpoint ({SAM_FILES[sam_type].url.rsplit('/', 1)[-1]}).")  # fmt: skip
    model = build_sam(config)
    if config.tiny_vit is None:
        _load_strict(model, state, str(path))
    else:
        _load_strict(model, timm_state(state), f"{path} (TinyViT tensors under timm's names: MobileSAM's "
                                               "layers.N.blocks are stages.N.blocks)")  # fmt: skip
    return model, config


def _load_strict(model: Any, state: Mapping[str, Any], source: str) -> None:
    own = model.state_dict()
    wrong = [k for k, v in state.items() if k in own and tuple(own[k].shape) != tuple(v.shape)]
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if wrong or missing or unexpected:
        raise ModelFileError(
            f"{source} does not fit the SAM its shapes describe: {len(missing)} missing tensors {missing[:3]}, "
            f"{len(unexpected)} unexpected {unexpected[:3]}, {len(wrong)} of another shape {wrong[:3]}. "
            "The file is truncated or edited, or a SAM variant the segment-anything package cannot build."
        )
    model.load_state_dict(dict(state), strict=True)


def config_dict(config: SamConfig) -> dict[str, Any]:
    """The sizes as a JSON-ready dict (with ``sam_type``)."""
    return {"sam_type": config.sam_type, **dataclasses.asdict(config)}
