"""Whether a model's published pretrained weights can be used offline on this machine.

Listing models must stay fast, and importing timm imports torch (seconds, about a gigabyte).
So for a spec the answer comes from the download caches on disk (the Hugging Face hub cache
and torch.hub's checkpoints folder) without importing either. Once timm is imported anyway
(``imgrec models --all`` lists its architectures), timm's pretrained config gives the exact
answer, including "none" for an architecture timm publishes no weights for.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import sys
from pathlib import Path

from imgrec.models.base import ModelSpec

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")


def weights_status(spec: ModelSpec) -> str:
    """``"not needed"``, ``"cached"`` (usable offline), ``"download"`` (needs the network) or ``"none"``.

    Example:
        >>> from imgrec.models import get_model_spec
        >>> weights_status(get_model_spec("hog-svm"))
        'not needed'
    """
    if "torchvision" in spec.tags:
        return "cached" if _torchvision_cached(spec.name) else "download"
    if "smp" in spec.tags:  # segmentation-models-pytorch encoders: fetched by imgrec.models.segment_nets
        return "download"
    if "faces" in spec.tags and "onnx" in spec.tags:
        return "cached" if _face_file_cached(spec.name) else "download"
    if spec.family != "torch" or spec.timm_name is None:
        return "not needed"
    if "timm" in sys.modules:
        return _status_from_timm(spec.timm_name)
    if importlib.util.find_spec("timm") is None:
        return "none"
    return "cached" if cached_on_disk(spec.timm_name) else "download"


def _torchvision_cached(name: str) -> bool:
    """torchvision's COCO weights as imgrec downloads them: ``<name>_coco-<sha256 prefix>.pth`` in the cache."""
    from imgrec.models.hub import cache_dir

    return any(glob.glob(str(cache_dir() / f"{glob.escape(name)}*.pth")))


def _face_file_cached(name: str) -> bool:
    """A face model's official ONNX file as imgrec downloads it (``hub.file_name`` of its URL)."""
    from imgrec.models.face_embed import EMBEDDER_FILES
    from imgrec.models.faces import FACE_FILES
    from imgrec.models.hub import cache_dir, file_name

    entry = FACE_FILES.get(name) or EMBEDDER_FILES[name]
    return (cache_dir() / file_name(entry.url)).is_file()


def cached_on_disk(timm_name: str) -> bool:
    """Whether timm weights for ``timm_name`` (any pretrained tag) are in a download cache.

    Example:
        >>> cached_on_disk("no_such_architecture_here")
        False
    """
    name = glob.escape(timm_name)
    hub = _hf_cache()
    for folder in (f"models--timm--{name}", f"models--timm--{name}.*"):
        if any(Path(p).name in WEIGHT_FILES for p in glob.glob(str(hub / folder / "snapshots" / "*" / "*"))):
            return True
    checkpoints = _torch_hub() / "checkpoints"
    return any(glob.glob(str(checkpoints / f"{name}[_.-]*")))


def _hf_cache() -> Path:
    try:
        from huggingface_hub import constants
    except ImportError:
        home = os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")) / "huggingface"
        return Path(home).expanduser() / "hub"
    return Path(constants.HF_HUB_CACHE)


def _torch_hub() -> Path:
    home = os.environ.get("TORCH_HOME") or Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")) / "torch"
    return Path(home).expanduser() / "hub"


def _status_from_timm(timm_name: str) -> str:
    import timm

    from imgrec.models.hub import cached_pretrained

    try:
        cfg = timm.get_pretrained_cfg(timm_name)
        if cfg is None or not (cfg.hf_hub_id or cfg.url):
            return "none"
        return "cached" if cached_pretrained(timm_name) is not None else "download"
    except Exception:  # a timm without a default tag for this name
        return "none"
