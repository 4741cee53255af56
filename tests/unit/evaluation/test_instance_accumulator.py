"""MaskAccumulator: pycocotools' own segm figures on the same data, and hand-made cases."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from imgrec.data.rle import encode_rle, parse_segmentation
from imgrec.errors import UsageError
from imgrec.evaluation.detection import STAT_NAMES
from imgrec.evaluation.instance import MaskAccumulator
from imgrec.tasks.instance import Instance, Instances

CLASSES = ["cat", "dog", "bird"]
PERFECT = 1.0 - 1e-12  # pycocotools divides by tp + fp + eps


def rect(size: tuple[int, int], x1: int, y1: int, x2: int, y2: int) -> dict:
    """The compressed RLE of a filled rectangle in a (width, height) image."""
    m = np.zeros((size[1], size[0]), bool)
    m[y1:y2, x1:x2] = True
    return encode_rle(m)


def found(size: tuple[int, int], *rows: tuple[dict, float, int]) -> Instances:
    """Instances from (rle, score, class index); the box is the mask's bounding box."""
    out = []
    for rle, score, k in rows:
        x, y, w, h = (float(v) for v in mask_utils.toBbox(rle))
        out.append(Instance((x, y, x + w, y + h), CLASSES[k], score, k, rle, int(mask_utils.area(rle))))
    return Instances(tuple(out), size)


def test_a_perfect_mask_scores_ap_one() -> None:
    acc = MaskAccumulator(CLASSES)
    truth = rect((40, 30), 5, 5, 25, 20)
    acc.add("a", (40, 30), np.array([1]), np.array([False]), [truth], found((40, 30), (truth, 0.9, 1)))
    m = acc.compute()
    assert m["mask_map"] >= PERFECT and m["mask_map50"] >= PERFECT and m["mask_map75"] >= PERFECT
    assert m["per_class"]["dog"]["mask_ap"] >= PERFECT and m["per_class"]["cat"]["mask_ap"] is None
    assert (m["gt_masks"], m["ignored_masks"], m["no_mask"], m["mask_detections"]) == (1, 0, 0, 1)
    assert m["per_image"] == {"image_id": ["a"], "mask_iou": [1.0]}


def test_a_shifted_mask_counts_only_at_the_low_iou_thresholds() -> None:
    # Truth 10x10; prediction the same square 3 px to the right: overlap 70, union 130, IoU 7/13 = 0.538.
    acc = MaskAccumulator(CLASSES)
    size = (30, 20)
    acc.add("a", size, np.array([0]), np.array([False]), [rect(size, 2, 2, 12, 12)],
            found(size, (rect(size, 5, 2, 15, 12), 0.8, 0)))  # fmt: skip
    m = acc.compute()
    assert m["mask_map50"] >= PERFECT and m["mask_map75"] == 0.0
    assert m["mask_map"] == pytest.approx(0.1)  # matched at IoU 0.50 only, of the ten thresholds 0.50..0.95
    assert m["per_class"]["cat"]["mask_ap50"] >= PERFECT and m["per_class"]["cat"]["mask_ap"] == pytest.approx(0.1)
    assert m["per_image"]["mask_iou"] == [pytest.approx(7 / 13, abs=1e-6)]
    assert m["worst_mask_images"] == [{"image_id": "a", "mask_iou": round(7 / 13, 6)}]


def test_a_missed_object_halves_recall() -> None:
    acc = MaskAccumulator(CLASSES)
    size = (100, 100)
    truth = [rect(size, 10, 10, 40, 40), rect(size, 60, 60, 90, 90)]
    acc.add("a", size, np.array([0, 0]), np.array([False, False]), truth, found(size, (truth[0], 0.8, 0)))
    m = acc.compute()
    assert m["mask_map50"] == pytest.approx(51 / 101)  # precision 1 up to recall 0.5 on COCO's 101 points
    assert m["mask_ar100"] == pytest.approx(0.5)
    assert m["per_image"]["mask_iou"] == [0.5]


def test_crowd_regions_and_objects_without_a_mask_are_ignored() -> None:
    acc = MaskAccumulator(CLASSES)
    size = (100, 100)
    truth = [rect(size, 0, 0, 20, 20), rect(size, 50, 50, 100, 100), None]
    boxes = np.array([[0, 0, 20, 20], [50, 50, 100, 100], [0, 60, 40, 100]], np.float64)
    pred = found(size, (truth[0], 0.9, 0), (rect(size, 60, 60, 70, 70), 0.95, 0),  # inside the crowd region
                 (rect(size, 5, 70, 30, 90), 0.97, 0))  # inside the object without a mask  # fmt: skip
    acc.add("a", size, np.array([0, 0, 0]), np.array([False, True, False]), truth, pred, gt_boxes=boxes)
    m = acc.compute()
    assert m["mask_map"] >= PERFECT
    assert (m["gt_masks"], m["ignored_masks"], m["no_mask"]) == (1, 2, 1)
    assert m["per_image"]["mask_iou"] == [1.0]


def test_no_predictions_and_no_objects() -> None:
    acc = MaskAccumulator(CLASSES)
    size = (20, 20)
    acc.add("a", size, np.array([0]), np.array([False]), [rect(size, 1, 1, 9, 9)], found(size))
    m = acc.compute()
    assert m["mask_map"] == 0.0 and m["per_image"]["mask_iou"] == [0.0]
    empty = MaskAccumulator(CLASSES)
    empty.add("a", size, np.zeros(0), np.zeros(0), [], found(size, (rect(size, 1, 1, 9, 9), 0.9, 0)))
    m = empty.compute()
    assert m["mask_map"] is None and m["worst_mask_images"] == [] and m["per_image"]["mask_iou"] == [None]


def test_a_failed_add_leaves_nothing_behind() -> None:
    acc = MaskAccumulator(CLASSES)
    size = (20, 20)
    with pytest.raises(UsageError, match="10x20"):
        acc.add("a", size, np.array([0]), np.array([False]), [rect(size, 1, 1, 9, 9)],
                found(size, (rect((10, 20), 1, 1, 9, 9), 0.9, 0)))  # fmt: skip
    assert len(acc) == 0
    acc.add("a", size, np.array([0]), np.array([False]), [rect(size, 1, 1, 9, 9)], found(size))
    assert len(acc) == 1


S = (20, 20)
COW = Instance((1, 1, 2, 2), "cow", 0.5, -1, rect(S, 1, 1, 2, 2))


@pytest.mark.parametrize(
    "call",
    [
        lambda a: a.add("a", S, np.array([0]), np.zeros(1), [rect((20, 10), 1, 1, 5, 5)], found(S)),  # size
        lambda a: a.add("a", S, np.array([7]), np.zeros(1), [rect(S, 1, 1, 5, 5)], found(S)),  # label
        lambda a: a.add("a", S, np.array([0, 1]), np.zeros(1), [rect(S, 1, 1, 5, 5)], found(S)),  # lengths
        lambda a: a.add("a", S, np.array([0]), np.zeros(1), [None], found(S)),  # no mask and no box
        lambda a: a.add("a", S, np.array([0]), np.zeros(1), [{"size": [20, 20], "counts": [400]}], found(S)),
        lambda a: a.add("a", S, np.zeros(0), np.zeros(0), [], found((9, 9))),  # prediction for another image
        lambda a: a.add("a", S, np.zeros(0), np.zeros(0), [], Instances((COW,), S)),  # a class not given
        lambda a: a.compute(),
    ],
)
def test_bad_input_raises_usage_error(call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UsageError):
        call(MaskAccumulator(CLASSES))


def test_an_image_id_twice_is_refused() -> None:
    acc = MaskAccumulator(CLASSES)
    acc.add("a", S, np.zeros(0), np.zeros(0), [], found(S))
    with pytest.raises(UsageError, match="twice"):
        acc.add("a", S, np.zeros(0), np.zeros(0), [], found(S))


# --- pycocotools on COCO JSON files, directly, against the accumulator -------------------------------


def random_case(seed: int, images: int = 10) -> tuple[list[dict], list[dict], list[dict]]:
    """Images (some empty), polygon objects (some crowd RLEs) and results (moved copies, noise)."""
    rng = np.random.default_rng(seed)
    imgs, anns, res = [], [], []
    for i in range(1, images + 1):
        w, h = int(rng.integers(60, 160)), int(rng.integers(60, 160))
        imgs.append({"id": i, "width": w, "height": h, "file_name": f"{i}.jpg"})
        for _ in range(int(rng.integers(0, 5)) if i % 4 else 0):
            x, y = rng.uniform(0, w * 0.6), rng.uniform(0, h * 0.6)
            bw, bh = rng.uniform(4, w - x), rng.uniform(4, h - y)
            poly = [x, y, x + bw, y + rng.uniform(0, bh / 2), x + bw * rng.uniform(0.3, 1), y + bh, x, y + bh]
            crowd = int(rng.random() < 0.15)
            seg = _polygon_rle(poly, h, w) if crowd else [poly]
            k = int(rng.integers(1, 4))
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": k, "segmentation": seg, "iscrowd": crowd,
                         "area": float(bw * bh * rng.uniform(0.4, 1.0)), "bbox": [x, y, bw, bh]})  # fmt: skip
            if rng.random() < 0.85:
                dx, dy = rng.normal(0, 0.1 * bw), rng.normal(0, 0.1 * bh)
                moved = [v + (dx if j % 2 == 0 else dy) for j, v in enumerate(poly)]
                kk = k if rng.random() < 0.85 else int(rng.integers(1, 4))
                res.append({"image_id": i, "category_id": kk, "score": float(rng.random()),
                            "segmentation": _polygon_rle(moved, h, w)})  # fmt: skip
        for _ in range(int(rng.integers(0, 3))):
            x, y = rng.uniform(0, w - 8), rng.uniform(0, h - 8)
            noise = [x, y, x + 8, y, x + 8, y + 8, x, y + 8]
            res.append({"image_id": i, "category_id": int(rng.integers(1, 4)), "score": float(rng.random() * 0.6),
                        "segmentation": _polygon_rle(noise, h, w)})  # fmt: skip
    return imgs, anns, res


def _polygon_rle(poly: list[float], h: int, w: int) -> dict:
    return _rle_json(mask_utils.merge(mask_utils.frPyObjects([poly], h, w)))


def _rle_json(rle: dict) -> dict:
    return {"size": list(rle["size"]), "counts": rle["counts"].decode("ascii")}


def direct_cocoeval(tmp_path: Path, gt_json: dict, res: list[dict]) -> COCOeval:
    (tmp_path / "gt.json").write_text(json.dumps(gt_json))
    (tmp_path / "res.json").write_text(json.dumps(res))
    cocogt = COCO(str(tmp_path / "gt.json"))
    ev = COCOeval(cocogt, cocogt.loadRes(str(tmp_path / "res.json")), "segm")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return ev


def feed(acc: MaskAccumulator, imgs: list[dict], anns: list[dict], res: list[dict], label_of: dict[int, int]) -> None:
    """Every image of a COCO file into the accumulator, segmentations read as imgrec reads them."""
    for im in imgs:
        size, hw = (im["width"], im["height"]), (im["height"], im["width"])
        mine = [a for a in anns if a["image_id"] == im["id"]]
        masks = [parse_segmentation(a["segmentation"], hw).rle() for a in mine]
        pred = tuple(
            Instance((0.0, 0.0, 1.0, 1.0), acc.classes[label_of[r["category_id"]]], r["score"],
                     label_of[r["category_id"]], r["segmentation"])
            for r in res if r["image_id"] == im["id"]
        )  # fmt: skip
        acc.add(str(im["id"]), size, np.asarray([label_of[a["category_id"]] for a in mine]),
                np.asarray([bool(a["iscrowd"]) for a in mine]), masks, Instances(pred, size),
                gt_area=np.asarray([a["area"] for a in mine]))  # fmt: skip


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_figures_equal_pycocotools_on_json_files(tmp_path: Path, seed: int) -> None:
    imgs, anns, res = random_case(seed)
    categories = [{"id": k + 1, "name": n} for k, n in enumerate(CLASSES)]
    ev = direct_cocoeval(tmp_path, {"images": imgs, "annotations": anns, "categories": categories}, res)
    acc = MaskAccumulator(CLASSES)
    feed(acc, imgs, anns, res, {k + 1: k for k in range(3)})
    m = acc.compute()
    assert 0.05 < ev.stats[0] < 0.95  # a case with something to rank
    assert np.abs(np.asarray(m["mask_stats"]) - ev.stats).max() <= 1e-9
    expected = [v if v > -1 else None for v in ev.stats]
    assert [m[f"mask_{name}"] for name in STAT_NAMES] == pytest.approx(expected, abs=1e-9)
    for k, name in enumerate(CLASSES):
        p = ev.eval["precision"][:, :, k, 0, -1]
        assert m["per_class"][name]["mask_ap"] == pytest.approx(p[p > -1].mean(), abs=1e-9)


@pytest.mark.realdata
def test_figures_equal_pycocotools_on_coco128(tmp_path: Path, shared_data) -> None:  # type: ignore[no-untyped-def]
    """The real annotations (polygons, RLE crowds, segmentation areas) with each non-crowd mask moved as results."""
    data = json.loads(shared_data("coco128", "annotations", "instances_train2017.json").read_text())
    sizes = {im["id"]: (im["height"], im["width"]) for im in data["images"]}
    rng = np.random.default_rng(0)
    res = []
    for a in data["annotations"]:
        if a["iscrowd"]:
            continue
        h, w = sizes[a["image_id"]]
        m = parse_segmentation(a["segmentation"], (h, w)).decode()
        moved = np.roll(m, tuple(int(v) for v in rng.integers(-3, 4, 2)), axis=(0, 1))
        res.append({"image_id": a["image_id"], "category_id": a["category_id"], "score": float(rng.random()),
                    "segmentation": _rle_json(encode_rle(moved))})  # fmt: skip
    ev = direct_cocoeval(tmp_path, data, res)
    classes = [c["name"] for c in data["categories"]]
    acc = MaskAccumulator(classes)
    feed(acc, data["images"], data["annotations"], res, {c["id"]: k for k, c in enumerate(data["categories"])})
    m = acc.compute()
    assert len(acc) == 128 and m["ignored_masks"] == 10
    assert np.abs(np.asarray(m["mask_stats"]) - ev.stats).max() <= 1e-9
