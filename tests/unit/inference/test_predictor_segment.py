"""``Predictor`` on imported segmentation runs: what the real models find in real photos, masks at
the original resolution, and a 12-megapixel photo in bounded memory."""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path

import pytest
from PIL import Image
from tests.imported_segmenters import DEEPLAB, LANDSCAPE_ONNX, SELFIE, import_segmenter, photo

from imgrec.inference import Predictor
from imgrec.tasks import Segmentation

pytestmark = [pytest.mark.realdata]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("seg-runs")
    return {n: import_segmenter(n, root / n) for n in (SELFIE, LANDSCAPE_ONNX, DEEPLAB)}


def _share(seg: Segmentation, label: str) -> float:
    return float((seg.mask == seg.classes.index(label)).mean())


@pytest.mark.parametrize("model", [SELFIE, LANDSCAPE_ONNX])
def test_the_selfie_segmenters_find_the_people(runs, model):
    found = Predictor.from_run(runs[model]).predict([photo("face.jpg"), photo("grace_hopper.bmp")])
    for seg, size in zip(found, [(512, 355), (512, 600)], strict=True):
        assert isinstance(seg, Segmentation) and seg.image_size == size and seg.mask.shape == size[::-1]
        assert 0.4 < _share(seg, "person") < 0.75  # measured: 0.58 / 0.58 (general), 0.63 / 0.57 (landscape)
        assert seg.probabilities is not None and seg.scores["person"] > 0.8


def test_deeplab_names_people_dogs_and_cats(runs):
    predictor = Predictor.from_run(runs[DEEPLAB])
    grace, pets, cat = predictor.predict([photo("grace_hopper.bmp"), photo("pets.jpg"), photo("cat_720p.jpg")])
    top = lambda seg: max((c for c in seg.present() if c), key=lambda c: (seg.mask == c).sum())  # noqa: E731
    assert grace.classes[top(grace)] == "person" and _share(grace, "person") > 0.5
    assert pets.classes[top(pets)] == "dog" and 0.1 < _share(pets, "dog") < 0.25  # two dogs running
    assert cat.classes[top(cat)] == "cat" and _share(cat, "cat") > 0.3
    assert cat.mask.shape == (720, 1280) and pets.probabilities is None  # an index map: no probabilities
    only = predictor.predict(photo("pets.jpg"), classes=["cat"])[0]
    assert only.present() == [0]


def test_a_12_megapixel_photo_in_bounded_memory_with_full_resolution_masks(runs, tmp_path):
    small = Image.open(photo("face.jpg"))
    big = small.resize((4160, 2884), Image.Resampling.BICUBIC)  # 12.0 megapixels
    buf = io.BytesIO()
    big.save(buf, "JPEG", quality=90)
    path = tmp_path / "big.jpg"
    path.write_bytes(buf.getvalue())
    del big, buf
    predictor = Predictor.from_run(runs[SELFIE])
    (reference,) = predictor.predict(photo("face.jpg"))
    tracemalloc.start()
    try:
        (seg,) = predictor.predict(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seg.image_size == (4160, 2884) and seg.mask.shape == (2884, 4160)
    # the JPEG is decoded at 1/8 scale (the geometry records it); the mask is upsampled once:
    # a 12 MP float32 map (48 MB) + the mask (12 MB), far from the 36 MB RGB + C x 48 MB of naive code
    assert peak < 120 * 2**20, f"peak {peak / 2**20:.0f} MiB"
    assert abs(_share(seg, "person") - _share(reference, "person")) < 0.02
