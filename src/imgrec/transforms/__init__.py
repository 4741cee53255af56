"""Transforms: preprocessing that travels with a model, and augmentation presets."""

from imgrec.transforms.augment import (
    AUGMENT_PRESETS,
    AugmentConfig,
    Augmenter,
    create_augmenter,
    list_augment_presets,
    preview_grid,
)
from imgrec.transforms.preprocess import Preprocessing

__all__ = [
    "AUGMENT_PRESETS",
    "AugmentConfig",
    "Augmenter",
    "Preprocessing",
    "create_augmenter",
    "list_augment_presets",
    "preview_grid",
]
