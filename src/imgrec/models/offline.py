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

        from imgrec.models.hub import cached_pretrained
    except ImportError:
        return "none"
    try:
        cfg = timm.get_pretrained_cfg(spec.timm_name)
        if cfg is None or not (cfg.hf_hub_id or cfg.url):
            return "none"
        return "cached" if cached_pretrained(spec.timm_name) is not None else "download"
    except Exception:  # a timm without a default tag for this name
        return "none"
