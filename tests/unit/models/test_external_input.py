"""External models' input tensor: written channel by channel, the same values as the plain expression."""

from __future__ import annotations

import numpy as np
import pytest

from imgrec.models.external import ExternalIO, model_input
from imgrec.transforms.preprocess import Preprocessing


@pytest.mark.parametrize("color", ["rgb", "bgr"])
@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
@pytest.mark.parametrize("norm", [((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)), ((0, 0, 0), (1 / 255,) * 3)])
def test_float_input_is_bitwise_the_plain_expression(color: str, layout: str, norm: tuple) -> None:  # type: ignore[type-arg]
    prep = Preprocessing(size=24, mean=norm[0], std=norm[1])
    io = ExternalIO(runtime="onnx", file="m.onnx", layout=layout, color=color)
    batch = np.random.default_rng(0).integers(0, 256, (3, 24, 24, 3), dtype=np.uint8)
    x = batch[..., ::-1] if color == "bgr" else batch
    mean, std = np.asarray(prep.mean, np.float32), np.asarray(prep.std, np.float32)
    want = (x.astype(np.float32) / np.float32(255.0) - mean) / std
    want = np.ascontiguousarray(want.transpose(0, 3, 1, 2) if layout == "nchw" else want)
    got = model_input(batch, prep, io, np.dtype(np.float32))
    assert got.dtype == np.float32 and got.flags.c_contiguous and np.array_equal(got, want)
    assert model_input(batch, prep, io, np.dtype(np.float16)).dtype == np.float16
