"""Models: the registry, ``create_model``, backends, and the artifact format."""

from imgrec.models.artifact import load_model, read_meta, save_model
from imgrec.models.base import Classifier, ModelSpec
from imgrec.models.registry import (
    create_model,
    get_model_spec,
    list_models,
    register_loader,
    register_model,
)

__all__ = [
    "Classifier",
    "ModelSpec",
    "create_model",
    "get_model_spec",
    "list_models",
    "load_model",
    "read_meta",
    "register_loader",
    "register_model",
    "save_model",
]
