"""SAM's mask prompt from a rough mask in the image's pixels: the low-resolution logits built the
way SAM's own pipeline maps masks (resize the long side, pad bottom-right, a quarter of the input),
and exactly what ``SamPredictor.predict(mask_input=...)`` hands the prompt encoder and the decoder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.conftest import shared_data_path
from tests.sam_helpers import save_tiny_sam

from imgrec.analyzers.segment import SamSegmenter, load_sam
from imgrec.analyzers.segment.prompts import MASK_EPS, MASK_SIZE, Prompt
from imgrec.errors import UsageError

torch = pytest.importorskip("torch")
pytest.importorskip("segment_anything")


@pytest.fixture(scope="module")
def sam(tmp_path_factory) -> SamSegmenter:
    return load_sam(save_tiny_sam(tmp_path_factory.mktemp("sam") / "tiny.pth"), threads=1)


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    from imgrec.imaging import load_image

    return load_image(shared_data_path("coco128", "images", "train2017", "000000000009.jpg"))  # 640 x 480


def _rough() -> np.ndarray:
    """A block on whole low-resolution cells (the tiny SAM: input 256, cells of 4 input = 10 image
    pixels), so every resampling agrees on its shares: 0 or 1."""
    region = np.zeros((480, 640), bool)
    region[100:300, 200:400] = True
    return region


def _sam_reference(region: np.ndarray, side: int) -> Any:
    """The same mask mapped independently with torch and SAM's own ``ResizeLongestSide`` shape:
    resize to the input size, pad bottom-right, average 4 x 4, logit."""
    import torch.nn.functional as F
    from segment_anything.utils.transforms import ResizeLongestSide

    h, w = ResizeLongestSide.get_preprocess_shape(*region.shape, side)
    t = torch.from_numpy(region.astype(np.float64))[None, None]
    t = F.pad(F.interpolate(t, (h, w), mode="bilinear", align_corners=False), (0, side - w, 0, side - h))
    return torch.logit(F.avg_pool2d(t, 4).clamp(MASK_EPS, 1 - MASK_EPS))[0]


class _Inputs:
    """What the prompt encoder and the mask decoder receive (their keyword arguments)."""

    def __init__(self, model: Any) -> None:
        self.calls: list[dict[str, Any]] = []
        hook = lambda module, args, kwargs: self.calls.append(dict(kwargs))  # noqa: E731
        self.hooks = [m.register_forward_pre_hook(hook, with_kwargs=True)
                      for m in (model.prompt_encoder, model.mask_decoder)]  # fmt: skip

    def __enter__(self) -> _Inputs:
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self.hooks:
            h.remove()


def test_a_rough_mask_reaches_the_decoder_as_sam_predictor_gets_it(sam, image) -> None:
    from segment_anything import SamPredictor

    sam.set_image(image)
    region = _rough()
    given = sam.mask_input(region)
    assert given.shape == (1, 64, 64) and given.dtype == np.float32
    np.testing.assert_allclose(given, _sam_reference(region, 256).numpy(), atol=1e-5)
    assert given[0, 10:30, 20:40].min() > 13 and given[0, 48:].max() < -13  # the block; padding rows 48..63
    with _Inputs(sam.model) as ours:
        found = sam.predict(points=[(320, 240)], mask=region)
    theirs_predictor = SamPredictor(sam.model)
    theirs_predictor.set_image(image)
    with _Inputs(sam.model) as theirs:
        _, _, low = theirs_predictor.predict(point_coords=np.array([(320, 240)]), point_labels=np.array([1]),
                                             mask_input=given, multimask_output=False)  # fmt: skip
    (enc, dec), (enc_ref, dec_ref) = ours.calls, theirs.calls
    assert torch.equal(enc["masks"], enc_ref["masks"]) and enc["masks"].shape == (1, 1, 64, 64)
    for key in ("image_embeddings", "sparse_prompt_embeddings", "dense_prompt_embeddings"):
        assert torch.equal(dec[key], dec_ref[key]), key
    assert np.array_equal(sam.logits[0], low[0]) and len(found) == 1
    assert not np.array_equal(sam.predict(points=[(320, 240)]).instances[0].rle, found.instances[0].rle)


def test_an_uneven_mask_gives_edge_logits_between_the_two(sam, image) -> None:
    sam.set_image(image)
    region = np.zeros((480, 640), np.uint8)
    region[103:297, 205:391] = 255  # nonzero = the object; edges inside cells
    given = sam.mask_input(region)[0]
    assert np.allclose(given.max(), -given.min(), atol=1e-3) and 13 < given.max() < 14
    edges = given[(given > -13) & (given < 13)]
    assert len(edges) > 0 and np.all(np.abs(edges) < 13)
    np.testing.assert_array_equal(sam.mask_input(np.stack([region] * 3, axis=2)), sam.mask_input(region))  # RGB


def test_wrong_masks_are_refused_with_what_fits(sam, image) -> None:
    sam.set_image(image)
    with pytest.raises(UsageError, match=r"The mask is 320x240 but the image is 640x480; .* give a 640x480") as err:
        sam.predict(points=[(320, 240)], mask=np.ones((240, 320), bool))
    assert err.value.code == MASK_SIZE
    with pytest.raises(UsageError, match="not both"):
        sam.predict(points=[(320, 240)], mask=_rough(), mask_input=sam.mask_input(_rough())[0])
    with pytest.raises(UsageError, match="one prompt per box"):
        sam.predict(boxes=[(0, 0, 5, 5)], mask=_rough())
    with pytest.raises(UsageError, match=r"\(H, W\) array"):
        sam.predict(mask=np.ones((4, 480, 640)))
    found = sam.segment([Prompt(region=_rough()), Prompt(points=((320, 240, 1),), region=_rough())])
    assert [i.extra["prompt"] for i in found.instances] == [0, 1]  # a mask alone is a prompt too


def test_mask_prompt_needs_an_image(tmp_path: Path) -> None:
    fresh = load_sam(save_tiny_sam(tmp_path / "tiny.pth"))
    with pytest.raises(UsageError, match="No image set"):
        fresh.mask_input(np.ones((4, 4), bool))
