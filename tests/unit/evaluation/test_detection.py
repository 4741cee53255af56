"""DetectionAccumulator: pycocotools' own figures on the same data, and hand-made cases."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from imgrec.errors import UsageError
from imgrec.evaluation.detection import STAT_NAMES, DetectionAccumulator
from imgrec.tasks.detect import Detection, Detections

CLASSES = ["cat", "dog", "bird"]
PERFECT = 1.0 - 1e-12  # pycocotools divides by tp + fp + eps


def dets(size: tuple[int, int], *rows: tuple[float, float, float, float, float, int]) -> Detections:
    found = tuple(Detection((x1, y1, x2, y2), CLASSES[k], s, k) for x1, y1, x2, y2, s, k in rows)
    return Detections(found, size)


def gt(*rows: tuple[float, float, float, float, int, bool]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = np.asarray([r[:4] for r in rows], np.float64).reshape(-1, 4)
    return a, np.asarray([r[4] for r in rows], np.int64), np.asarray([r[5] for r in rows], bool)


def test_one_perfect_box_scores_ap_one() -> None:
    acc = DetectionAccumulator(CLASSES)
    acc.add("a", *gt((10, 10, 60, 50, 1, False)), dets((100, 80), (10, 10, 60, 50, 0.9, 1)), (100, 80))
    m = acc.compute()
    assert m["map"] >= PERFECT and m["map50"] >= PERFECT and m["map75"] >= PERFECT
    assert m["per_class"]["dog"]["ap"] >= PERFECT and m["per_class"]["cat"]["ap"] is None
    assert m["confusion"]["matrix"][1][1] == 1 and sum(map(sum, m["confusion"]["matrix"])) == 1
    assert m["worst_images"] == [] and m["per_image"]["misses"] == [0]


def test_a_miss_halves_recall_and_is_counted() -> None:
    acc = DetectionAccumulator(CLASSES)
    boxes = gt((10, 10, 40, 40, 0, False), (60, 60, 90, 90, 0, False))
    acc.add("a", *boxes, dets((100, 100), (10, 10, 40, 40, 0.8, 0)), (100, 100))
    m = acc.compute()
    assert m["map50"] == pytest.approx(51 / 101)  # precision 1 up to recall 0.5 on COCO's 101 points
    assert m["ar100"] == pytest.approx(0.5)
    assert m["confusion"]["matrix"][0][3] == 1  # (cat, background): a miss
    assert m["worst_images"] == [{"image_id": "a", "errors": 1, "false_positives": 0, "misses": 1, "wrong_class": 0}]


def test_crowd_region_is_neither_missed_nor_a_false_positive() -> None:
    acc = DetectionAccumulator(CLASSES)
    boxes = gt((0, 0, 20, 20, 0, False), (50, 50, 100, 100, 0, True))
    pred = dets((100, 100), (0, 0, 20, 20, 0.9, 0), (60, 60, 70, 70, 0.95, 0))  # second one inside the crowd
    acc.add("a", *boxes, pred, (100, 100))
    m = acc.compute()
    assert m["map"] >= PERFECT
    assert (m["gt_boxes"], m["crowd_boxes"]) == (1, 1)
    assert m["per_image"]["false_positives"] == [0] and m["per_image"]["misses"] == [0]
    assert sum(map(sum, m["confusion"]["matrix"])) == 1


def test_class_swap_fills_the_off_diagonal_cell() -> None:
    acc = DetectionAccumulator(CLASSES)
    acc.add("a", *gt((10, 10, 50, 50, 0, False)), dets((64, 64), (11, 10, 50, 50, 0.7, 2)), (64, 64))
    m = acc.compute()
    matrix = np.asarray(m["confusion"]["matrix"])
    assert matrix[0, 2] == 1 and matrix.sum() == 1
    assert m["confusion"]["labels"][-1] == "background"
    assert m["per_class"]["cat"]["ap"] == 0.0 and m["per_class"]["bird"]["ap"] is None
    assert m["per_image"]["wrong_class"] == [1]


def test_an_image_without_boxes_counts() -> None:
    acc = DetectionAccumulator(CLASSES)
    acc.add("a", *gt((10, 10, 50, 50, 0, False)), dets((64, 64), (10, 10, 50, 50, 0.5, 0)), (64, 64))
    acc.add("empty", *gt(), dets((64, 64), (5, 5, 30, 30, 0.9, 0)), (64, 64))
    m = acc.compute()
    assert m["images"] == 2
    assert m["map50"] == pytest.approx(0.5, abs=1e-9)  # the better-scored detection is a false positive
    assert m["confusion"]["matrix"][3][0] == 1  # (background, cat)
    assert m["worst_images"][0]["image_id"] == "empty"


def test_confusion_ignores_detections_under_conf() -> None:
    acc = DetectionAccumulator(CLASSES, conf=0.5)
    acc.add("a", *gt((10, 10, 50, 50, 0, False)), dets((64, 64), (10, 10, 50, 50, 0.9, 0), (0, 0, 5, 5, 0.1, 1)),
            (64, 64))  # fmt: skip
    m = acc.compute()
    assert np.asarray(m["confusion"]["matrix"]).sum() == 1 and m["detections"] == 2


def test_no_detections_and_no_boxes() -> None:
    acc = DetectionAccumulator(CLASSES)
    acc.add("a", *gt((10, 10, 50, 50, 0, False)), dets((64, 64)), (64, 64))
    assert acc.compute()["map"] == 0.0
    empty = DetectionAccumulator(CLASSES)
    empty.add("a", *gt(), dets((64, 64), (1, 1, 9, 9, 0.9, 0)), (64, 64))
    assert empty.compute()["map"] is None


def test_precision_recall_curves_at_iou_half() -> None:
    acc = DetectionAccumulator(CLASSES)
    acc.add("a", *gt((10, 10, 40, 40, 0, False), (60, 60, 90, 90, 0, False)),
            dets((100, 100), (10, 10, 40, 40, 0.8, 0), (0, 60, 20, 80, 0.7, 0)), (100, 100))  # fmt: skip
    curves = acc.compute()["pr_curves"]
    assert len(curves["recall"]) == 101 and curves["precision"]["dog"] is None
    cat = np.asarray(curves["precision"]["cat"])
    assert cat[:51] == pytest.approx(1.0) and (cat[51:] == 0).all()
    assert curves["scores"]["cat"][0] == pytest.approx(0.8)


@pytest.mark.parametrize(
    "call",
    [
        lambda a: a.add("a", np.zeros((1, 3)), np.zeros(1), np.zeros(1, bool), dets((9, 9)), (9, 9)),
        lambda a: a.add("a", np.array([[5, 5, 1, 1]]), np.zeros(1), np.zeros(1, bool), dets((9, 9)), (9, 9)),
        lambda a: a.add("a", np.array([[1, 1, 5, 5]]), np.array([7]), np.zeros(1, bool), dets((9, 9)), (9, 9)),
        lambda a: a.add("a", np.array([[1, 1, 5, 5]]), np.zeros(2), np.zeros(1, bool), dets((9, 9)), (9, 9)),
        lambda a: a.add("a", *gt(), dets((9, 9)), (8, 9)),
        lambda a: a.add("a", *gt(), Detections((Detection((1, 1, 2, 2), "cow", 0.5),), (9, 9)), (9, 9)),
        lambda a: a.compute(),
    ],
)
def test_bad_input_raises_usage_error(call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UsageError):
        call(DetectionAccumulator(CLASSES))


def test_an_image_id_twice_is_refused() -> None:
    acc = DetectionAccumulator(CLASSES)
    acc.add("a", *gt(), dets((9, 9)), (9, 9))
    with pytest.raises(UsageError, match="twice"):
        acc.add("a", *gt(), dets((9, 9)), (9, 9))


def test_detections_without_class_id_are_found_by_label() -> None:
    acc = DetectionAccumulator(CLASSES)
    acc.add("a", *gt((1, 1, 8, 8, 2, False)), Detections((Detection((1, 1, 8, 8), "bird", 0.5),), (9, 9)), (9, 9))
    assert acc.compute()["per_class"]["bird"]["ap"] >= PERFECT


# --- pycocotools on COCO JSON files, directly, against the accumulator -------------------------------


def random_case(seed: int, images: int = 12) -> tuple[list[dict], list[dict], list[dict]]:
    """Images (some empty), boxes (some crowd) and detections (jittered matches, wrong classes, noise)."""
    rng = np.random.default_rng(seed)
    imgs, anns, res = [], [], []
    for i in range(1, images + 1):
        w, h = int(rng.integers(200, 640)), int(rng.integers(200, 480))
        imgs.append({"id": i, "width": w, "height": h, "file_name": f"{i}.jpg"})
        for _ in range(int(rng.integers(0, 6)) if i % 5 else 0):
            bw, bh = rng.uniform(4, w / 2), rng.uniform(4, h / 2)
            x, y = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
            crowd = int(rng.random() < 0.1)
            k = int(rng.integers(1, 4))
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": k, "bbox": [x, y, bw, bh],
                         "area": bw * bh * rng.uniform(0.5, 1.0), "iscrowd": crowd})  # fmt: skip
            if rng.random() < 0.8:
                jitter = rng.normal(0, 0.08, 4) * [bw, bh, bw, bh]
                kk = k if rng.random() < 0.85 else int(rng.integers(1, 4))
                res.append({"image_id": i, "category_id": kk, "bbox": _clip(np.asarray([x, y, bw, bh]) + jitter, w, h),
                            "score": float(rng.random())})  # fmt: skip
        for _ in range(int(rng.integers(0, 4))):
            bw, bh = rng.uniform(4, w / 3), rng.uniform(4, h / 3)
            box = [rng.uniform(0, w - bw), rng.uniform(0, h - bh), bw, bh]
            res.append({"image_id": i, "category_id": int(rng.integers(1, 4)), "bbox": box,
                        "score": float(rng.random() * 0.6)})  # fmt: skip
    return imgs, anns, res


def _clip(b: np.ndarray, w: int, h: int) -> list[float]:
    x1, y1 = max(0.0, b[0]), max(0.0, b[1])
    x2, y2 = min(float(w), b[0] + max(b[2], 1.0)), min(float(h), b[1] + max(b[3], 1.0))
    return [float(x1), float(y1), float(x2 - x1), float(y2 - y1)]


def direct_cocoeval(tmp_path: Path, gt_json: dict, res: list[dict]) -> COCOeval:
    (tmp_path / "gt.json").write_text(json.dumps(gt_json))
    (tmp_path / "res.json").write_text(json.dumps(res))
    cocogt = COCO(str(tmp_path / "gt.json"))
    ev = COCOeval(cocogt, cocogt.loadRes(str(tmp_path / "res.json")), "bbox")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return ev


def feed(acc: DetectionAccumulator, imgs: list[dict], anns: list[dict], res: list[dict],
         label_of: dict[int, int]) -> None:  # fmt: skip
    """Every image of a COCO file into the accumulator, boxes as x1 y1 x2 y2."""
    for im in imgs:
        mine = [a for a in anns if a["image_id"] == im["id"]]
        xyxy = np.asarray([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in mine)], np.float64)
        found = tuple(
            Detection((x, y, x + w, y + h), acc.classes[k], r["score"], k)
            for r in res
            if r["image_id"] == im["id"]
            for x, y, w, h in [r["bbox"]]
            for k in [label_of[r["category_id"]]]
        )
        size = (im["width"], im["height"])
        acc.add(str(im["id"]), xyxy.reshape(-1, 4), np.asarray([label_of[a["category_id"]] for a in mine]),
                np.asarray([bool(a["iscrowd"]) for a in mine]), Detections(found, size), size,
                gt_area=np.asarray([a["area"] for a in mine]))  # fmt: skip


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_figures_equal_pycocotools_on_json_files(tmp_path: Path, seed: int) -> None:
    imgs, anns, res = random_case(seed)
    categories = [{"id": k + 1, "name": n} for k, n in enumerate(CLASSES)]
    ev = direct_cocoeval(tmp_path, {"images": imgs, "annotations": anns, "categories": categories}, res)
    acc = DetectionAccumulator(CLASSES)
    feed(acc, imgs, anns, res, {k + 1: k for k in range(3)})
    m = acc.compute()
    assert np.abs(np.asarray(m["stats"]) - ev.stats).max() <= 1e-9
    assert [m[name] for name in STAT_NAMES] == pytest.approx([v if v > -1 else None for v in ev.stats], abs=1e-9)
    for k, name in enumerate(CLASSES):
        p = ev.eval["precision"][:, :, k, 0, -1]
        assert m["per_class"][name]["ap"] == pytest.approx(p[p > -1].mean(), abs=1e-9)


@pytest.mark.realdata
def test_figures_equal_pycocotools_on_coco128(tmp_path: Path, shared_data) -> None:  # type: ignore[no-untyped-def]
    """The real annotations (RLE crowds, segmentation areas, empty images) with jittered boxes as detections."""
    path = shared_data("coco128", "annotations", "instances_train2017.json")
    data = json.loads(path.read_text())
    rng = np.random.default_rng(0)
    res = []
    for a in data["annotations"]:
        x, y, w, h = np.asarray(a["bbox"]) + rng.normal(0, 0.05, 4) * (a["bbox"][2:] * 2)
        res.append({"image_id": a["image_id"], "category_id": a["category_id"], "score": float(rng.random()),
                    "bbox": [float(x), float(y), float(max(w, 1.0)), float(max(h, 1.0))]})  # fmt: skip
    ev = direct_cocoeval(tmp_path, data, res)
    classes = [c["name"] for c in data["categories"]]
    acc = DetectionAccumulator(classes)
    feed(acc, data["images"], data["annotations"], res, {c["id"]: k for k, c in enumerate(data["categories"])})
    m = acc.compute()
    assert m["images"] == 128 and m["crowd_boxes"] == 10
    assert np.abs(np.asarray(m["stats"]) - ev.stats).max() <= 1e-9
