"""Whether a model's published pretrained weights can be used offline on this machine."""

from __future__ import annotations

from imgrec.models.base import ModelSpec


def weights_status(spec: ModelSpec) -> str:
    """``"not needed"``, ``"cached"`` (usable offline), ``"download"`` (needs the network) or ``"none"``.

    Example:
        >>> from imgrec.models import get_model_spec
        >>> weights_status(get_model_spec("hog-svm"))
        'not needed'
    """
    if spec.family != "torch" or spec.timm_name is None:
        return "not needed"
    try:
        import timm
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return "none"
    try:
        cfg = timm.models.get_pretrained_cfg(spec.timm_name)
    except Exception:  # older timm raise on names without a default tag
        cfg = None
    hub_id = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
    if not hub_id:
        return "none"
    for filename in ("model.safetensors", "pytorch_model.bin"):
        hit = try_to_load_from_cache(hub_id, filename)
        if isinstance(hit, str):
            return "cached"
    return "download"
