"""Named feature sets: the extractors (or unions of them) that classical models are built on."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from imgrec.errors import UnknownNameError, did_you_mean
from imgrec.features.bovw import BagOfVisualWords
from imgrec.features.color import ColorHistogram, PixelFeatures
from imgrec.features.hog import HOGFeatures
from imgrec.features.lbp import LBPFeatures

HOG_OPTIONS = {
    "orientations": 9,
    "pixels_per_cell": None,
    "cells_per_block": 2,
    "signed": False,
    "color": False,
}
LBP_OPTIONS = {"n_points": 8, "radius": 1.0, "grid": 4}
COLOR_OPTIONS = {"bins": (8, 3, 3), "space": "hsv", "grid": 2}
BOVW_OPTIONS = {
    "descriptor": "sift",
    "n_words": 256,
    "step": None,
    "patch_size": None,
    "detect": False,
    "random_state": 0,
}


def _pick(options: Mapping[str, Any], keys: Mapping[str, Any]) -> dict[str, Any]:
    return {k: options[k] for k in keys}


def _hog(o: Mapping[str, Any]) -> Any:
    return HOGFeatures(**_pick(o, HOG_OPTIONS))


def _lbp(o: Mapping[str, Any]) -> Any:
    return LBPFeatures(**_pick(o, LBP_OPTIONS))


def _color(o: Mapping[str, Any]) -> Any:
    opts = _pick(o, COLOR_OPTIONS)
    return ColorHistogram(**{**opts, "bins": tuple(opts["bins"])})


def _bovw(o: Mapping[str, Any]) -> Any:
    return BagOfVisualWords(**_pick(o, BOVW_OPTIONS))


def _hog_pixels(o: Mapping[str, Any]) -> Any:
    from sklearn.pipeline import FeatureUnion

    return FeatureUnion([("hog", _hog(o)), ("pixels", PixelFeatures(pool=o["pixel_pool"]))])


def _hog_lbp_color(o: Mapping[str, Any]) -> Any:
    from sklearn.pipeline import FeatureUnion

    return FeatureUnion([("hog", _hog(o)), ("lbp", LBPFeatures()), ("color", ColorHistogram())])


# name -> (options with defaults, builder)
FEATURE_SETS: dict[str, tuple[dict[str, Any], Callable[[Mapping[str, Any]], Any]]] = {
    "hog": (HOG_OPTIONS, _hog),
    "lbp": (LBP_OPTIONS, _lbp),
    "color": (COLOR_OPTIONS, _color),
    "bovw": (BOVW_OPTIONS, _bovw),
    "hog+pixels": ({**HOG_OPTIONS, "pixel_pool": 1}, _hog_pixels),
    "hog+lbp+color": (HOG_OPTIONS, _hog_lbp_color),
}


def feature_options(name: str) -> dict[str, Any]:
    """The options of a feature set and their defaults."""
    return dict(_lookup(name)[0])


def build_features(name: str, options: Mapping[str, Any] | None = None) -> Any:
    """An unfitted extractor (or FeatureUnion) for a named set; parameters are checked.

    Example:
        >>> build_features("hog", {"orientations": 12})
        HOGFeatures(orientations=12)
    """
    defaults, builder = _lookup(name)
    features = builder({**defaults, **(options or {})})
    parts = [t for _, t in features.transformer_list] if hasattr(features, "transformer_list") else [features]
    for part in parts:
        part.check_params()
    return features


def _lookup(name: str) -> tuple[dict[str, Any], Callable[[Mapping[str, Any]], Any]]:
    if name not in FEATURE_SETS:
        raise UnknownNameError(
            f"Unknown feature set {name!r}.{did_you_mean(name, FEATURE_SETS)} Known: {', '.join(FEATURE_SETS)}."
        )
    return FEATURE_SETS[name]
