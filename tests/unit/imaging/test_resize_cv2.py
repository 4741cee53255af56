"""The ``cv2-linear`` interpolation: OpenCV's INTER_LINEAR, as the YOLO family's letterbox."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from imgrec.errors import UsageError
from imgrec.imaging.ops import CV2_LINEAR, INTERPOLATIONS, resample_filter, resize
from imgrec.transforms.preprocess import Preprocessing


def test_cv2_linear_is_opencv_inter_linear() -> None:
    img = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    out = resize(img, (30, 40), CV2_LINEAR)
    assert np.array_equal(out, cv2.resize(img, (40, 30), interpolation=cv2.INTER_LINEAR))
    assert resize(img[:, ::-1], (30, 40), CV2_LINEAR).shape == (30, 40, 3)  # non-contiguous input


def test_cv2_linear_in_a_letterbox_preprocessing() -> None:
    p = Preprocessing.from_dict({"size": 32, "interpolation": CV2_LINEAR, "resize_mode": "letterbox",
                                 "pad_anchor": "topleft", "mean": [0, 0, 0], "std": [1, 1, 1]})  # fmt: skip
    arr, g = p.prepare_framed(np.full((40, 80, 3), 200, np.uint8))
    assert arr.shape == (32, 32, 3) and (arr[:16] == 200).all() and (arr[16:] == 114).all()
    assert g.scale == (0.4, 0.4) and CV2_LINEAR in INTERPOLATIONS


def test_unknown_interpolation_lists_cv2_linear() -> None:
    with pytest.raises(UsageError, match="cv2-linear"):
        resample_filter("cubic")
