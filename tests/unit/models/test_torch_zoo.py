"""Deep model specs: registered lazily (no torch at import), timm names on demand."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from imgrec.models import get_model_spec, list_models
from imgrec.models.torch_zoo import _TIMM

ASKED_FIRST = [
    "cnn-small",
    "cnn-bn",
    "resnet18",
    "resnet50",
    "inception_v3",
    "mobilenetv3_large_100",
    "xception",
    "efficientnet_b0",
    "vit_small_patch16_224",
    "deit_tiny_patch16_224",
    "swin_tiny_patch4_window7_224",
    "convnext_tiny",
]


def test_listing_models_does_not_import_torch() -> None:
    code = "import sys, imgrec.models as m; m.list_models(); print('torch' in sys.modules, 'timm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_the_models_users_ask_for_first_are_registered() -> None:
    names = set(list_models())
    assert set(ASKED_FIRST) <= names
    for name in ASKED_FIRST:
        spec = get_model_spec(name)
        assert spec.family == "torch" and spec.default_lr > 0 and len(spec.mean or ()) == 3
    assert get_model_spec("inception_v3").default_size == 299
    assert get_model_spec("inception_v3").mean == (0.5, 0.5, 0.5)
    assert get_model_spec("cnn-small").default_size == 28


def test_timm_names_resolve_in_this_timm() -> None:
    timm = pytest.importorskip("timm")
    from imgrec.models.torch_zoo import resolve_timm_name

    available = set(timm.list_models())
    assert all(resolve_timm_name(name) in available for name in _TIMM)
    assert resolve_timm_name("xception") in ("legacy_xception", "xception41")


def test_any_timm_architecture_gets_a_spec_and_builds() -> None:
    timm = pytest.importorskip("timm")
    from imgrec.models import create_model

    spec = get_model_spec("resnet10t")
    size = timm.get_pretrained_cfg("resnet10t").input_size[-1]
    assert (spec.timm_name, spec.default_size, spec.family) == ("resnet10t", size, "torch")
    model = create_model("resnet10t", ["a", "b"], image_size=32)
    assert model.predict_proba(np.zeros((1, 32, 32, 3), np.uint8)).shape == (1, 2)
