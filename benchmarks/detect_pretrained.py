"""Imported detectors on coco128: COCO mAP next to the published figures, and speed.

Accuracy: YOLOX-Nano and FastestDet from ../shared/data/models, imported with imgrec's
``import_model`` (``--task detect --layout yolox|fastestdet``), predicted by ``Predictor`` on
all 128 coco128 images with the usual evaluation settings (conf 0.001, NMS IoU 0.65, 100
detections per image), scored by ``imgrec.evaluation.DetectionAccumulator`` against
``annotations/instances_train2017.json`` (read with pycocotools), and by pycocotools' COCOeval
called directly on the same detections (the two must agree). COCO category ids 1-90 map to
the coco80.names order by category name (Darknet spells six of them differently).
coco128 is 128 images of COCO *train2017*, which both models were trained on: expect higher
figures than the published val2017 ones, and a wide spread on so few images.

YOLOX-Nano is run twice: as ``imgrec import`` sets it up (PIL's antialiased bilinear
letterbox) and with ``interpolation="cv2-linear"`` (OpenCV's INTER_LINEAR, what YOLOX's own
letterbox uses).

Speed (YOLOX-Nano, batch 1, one thread: ORT intra-op 1, OpenCV 1 thread), per image, over the
same 128 files: imgrec's stages (decode + letterbox by ``Preprocessing.decode_framed``; the
BGR/float/NCHW input tensor; ``session.run`` alone; postprocess = layout decoding + NMS +
mapping to original pixels), so that "pre + post <= 20% of model time" can be checked; and
imgrec end to end (``Predictor.predict(path)``) against YOLOX's own ONNX Runtime demo
pipeline, written here from its published algorithm (cv2.imread, top-left letterbox with
114 padding, ratio scaling, grid/stride decoding, class-agnostic multiclass NMS in numpy),
interleaved image by image in one run. Both at the demo's settings (score 0.3, NMS 0.45).

Usage:
    .venv/bin/python benchmarks/detect_pretrained.py                 # everything (about a minute)
    .venv/bin/python benchmarks/detect_pretrained.py --skip-speed
    .venv/bin/python benchmarks/detect_pretrained.py --skip-map --passes 5
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_DATA, print_machine

COCO128 = SHARED_DATA / "coco128"
MODELS = SHARED_DATA / "models"
NAMES = MODELS / "labels" / "coco80.names"
YOLOX = MODELS / "yolox-nano" / "yolox_nano.onnx"
DETECTORS: dict[str, tuple[Path, str, float, str, dict[str, Any]]] = {  # file, layout, published, which, options
    "yolox-nano": (YOLOX, "yolox", 0.258, "mAP@[.5:.95] COCO val2017", {}),
    # The same file, letterboxed with OpenCV's INTER_LINEAR as YOLOX's own code does.
    "yolox-nano-cv2": (YOLOX, "yolox", 0.258, "mAP@[.5:.95] COCO val2017", {"interpolation": "cv2-linear"}),
    "fastestdet": (MODELS / "fastestdet" / "fastestdet.onnx", "fastestdet", 0.253, "AP@.5 COCO val2017", {}),
}
DARKNET_NAMES = {"motorbike": "motorcycle", "aeroplane": "airplane", "sofa": "couch",
                 "pottedplant": "potted plant", "diningtable": "dining table", "tvmonitor": "tv"}  # fmt: skip
EVAL = {"conf": 0.001, "iou": 0.65, "max_det": 100}
DEMO = {"conf": 0.3, "iou": 0.45}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(DETECTORS))
    p.add_argument("--limit", type=int, default=None, help="first N images only")
    p.add_argument("--passes", type=int, default=3, help="timed passes over the images (best pass reported)")
    p.add_argument("--skip-map", action="store_true")
    p.add_argument("--skip-speed", action="store_true")
    return p.parse_args()


def quietly(fn: Callable[[], Any]) -> Any:
    with contextlib.redirect_stdout(io.StringIO()):
        return fn()


# ------------------------------------------------------------------------------------------ accuracy


def load_ground_truth() -> tuple[Any, dict[int, int], list[str]]:
    """pycocotools' COCO of the annotations, category id -> coco80 index, and the coco80 names."""
    from pycocotools.coco import COCO

    coco = quietly(lambda: COCO(str(COCO128 / "annotations" / "instances_train2017.json")))
    names = [n.strip() for n in NAMES.read_text().splitlines() if n.strip()]
    index = {DARKNET_NAMES.get(n, n): k for k, n in enumerate(names)}
    cat_to_index = {c["id"]: index[c["name"]] for c in coco.loadCats(coco.getCatIds())}
    if sorted(cat_to_index.values()) != list(range(len(names))):
        raise SystemExit("coco80.names and the COCO categories do not map one to one")
    return coco, cat_to_index, names


def import_detector(name: str, tmp: Path) -> Path:
    from imgrec.models.importer import ImportOptions, import_model

    file, layout, _, _, extra = DETECTORS[name]
    options = ImportOptions(task="detect", layout=layout, classes=NAMES, **extra)
    return Path(import_model(file, options, tmp / name))


def image_ids(coco: Any, limit: int | None) -> list[int]:
    return sorted(coco.getImgIds())[:limit]


def ground_truth_of(coco: Any, img_id: int, cat_to_index: dict[int, int]) -> dict[str, np.ndarray]:
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[img_id], iscrowd=None))
    xywh = np.asarray([a["bbox"] for a in anns], np.float64).reshape(-1, 4)
    return {"gt_boxes": np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1),
            "gt_labels": np.asarray([cat_to_index[a["category_id"]] for a in anns], np.int64),
            "gt_crowd": np.asarray([bool(a["iscrowd"]) for a in anns], bool),
            "gt_area": np.asarray([a["area"] for a in anns], np.float64)}  # fmt: skip


def evaluate_detector(run: Path, coco: Any, cat_to_index: dict[int, int], names: list[str],
                      limit: int | None) -> tuple[dict[str, Any], list[dict[str, Any]], float]:  # fmt: skip
    """imgrec's metrics, the detections as COCO results, and the predict seconds."""
    from imgrec.evaluation import DetectionAccumulator
    from imgrec.inference import Predictor

    predictor = Predictor.from_run(run, threads=1)
    index_to_cat = {k: c for c, k in cat_to_index.items()}
    acc, results, seconds = DetectionAccumulator(names), [], 0.0
    for img_id in image_ids(coco, limit):
        info = coco.loadImgs([img_id])[0]
        start = time.perf_counter()
        dets = predictor.predict(str(COCO128 / "images" / "train2017" / info["file_name"]), **EVAL)[0]
        seconds += time.perf_counter() - start
        gt = ground_truth_of(coco, img_id, cat_to_index)
        acc.add(str(img_id), gt["gt_boxes"], gt["gt_labels"], gt["gt_crowd"], dets, (info["width"], info["height"]),
                gt_area=gt["gt_area"])  # fmt: skip
        results += [{"image_id": img_id, "category_id": index_to_cat[d.class_id], "score": d.score,
                     "bbox": [d.box[0], d.box[1], d.box[2] - d.box[0], d.box[3] - d.box[1]]}
                    for d in dets.detections]  # fmt: skip
    return acc.compute(), results, seconds


def direct_pycocotools(coco: Any, results: list[dict[str, Any]], limit: int | None) -> np.ndarray:
    """COCOeval's stats, called directly on the COCO file and the same detections."""
    from pycocotools.cocoeval import COCOeval

    def run() -> np.ndarray:
        ev = COCOeval(coco, coco.loadRes(results), "bbox")
        ev.params.imgIds = image_ids(coco, limit)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        return np.asarray(ev.stats)

    return quietly(run)


def report_accuracy(name: str, m: dict[str, Any], direct: np.ndarray, seconds: float) -> None:
    _, _, published, which, _ = DETECTORS[name]
    diff = float(np.abs(np.asarray(m["stats"]) - direct).max())
    print(f"\n{name}: {m['images']} images, {m['gt_boxes']} boxes (+{m['crowd_boxes']} crowd), "
          f"{m['detections']} detections at conf {EVAL['conf']} / iou {EVAL['iou']} / max_det {EVAL['max_det']}, "
          f"predict {seconds / max(1, m['images']) * 1000:.1f} ms/image")  # fmt: skip
    print(f"  imgrec      mAP@[.5:.95] {m['map']:.4f}  mAP@.5 {m['map50']:.4f}  mAP@.75 {m['map75']:.4f}  "
          f"S/M/L {m['map_small']:.3f}/{m['map_medium']:.3f}/{m['map_large']:.3f}  "
          f"AR@1/10/100 {m['ar1']:.3f}/{m['ar10']:.3f}/{m['ar100']:.3f}")  # fmt: skip
    print(f"  pycocotools mAP@[.5:.95] {direct[0]:.4f}  mAP@.5 {direct[1]:.4f}  (max |difference| over the 12 "
          f"stats: {diff:.1e}{' EQUAL' if diff <= 1e-9 else ' DIFFERENT'})")  # fmt: skip
    print(f"  published   {published:.3f} ({which})")
    best = sorted(((v["ap"], k) for k, v in m["per_class"].items() if v["ap"] is not None), reverse=True)
    print(f"  classes with boxes: {len(best)}; best AP {', '.join(f'{k} {v:.2f}' for v, k in best[:3])}; "
          f"worst {', '.join(f'{k} {v:.2f}' for v, k in best[-3:])}")  # fmt: skip
    worst = ", ".join(f"{w['image_id']} ({w['errors']})" for w in m["worst_images"][:5])
    print(f"  most errors at conf 0.25 (image id, errors): {worst}")


# ------------------------------------------------------------------------------------------ speed


def yolox_demo(session: Any, size: int = 416) -> Callable[..., np.ndarray]:
    """YOLOX's ONNX Runtime demo pipeline, from its published algorithm: rows x1 y1 x2 y2 score class.
    With ``times`` (a dict), adds the seconds of its read+decode, preprocess, model and postprocess."""
    import cv2

    grids, strides = demo_grids(size)
    input_name = session.get_inputs()[0].name

    def predict(path: str, times: dict[str, float] | None = None) -> np.ndarray:
        t0 = time.perf_counter()
        img = cv2.imread(path)
        t1 = time.perf_counter()
        x, ratio = demo_preprocess(img, size)
        t2 = time.perf_counter()
        out = session.run(None, {input_name: x[None]})[0][0]
        t3 = time.perf_counter()
        xy = (out[:, :2] + grids) * strides
        wh = np.exp(out[:, 2:4]) * strides
        boxes = np.concatenate([xy - wh / 2, xy + wh / 2], axis=1) / ratio
        found = demo_nms(boxes, out[:, 4:5] * out[:, 5:], DEMO["iou"], DEMO["conf"])
        if times is not None:
            for key, dt in zip(DEMO_STAGES, (t1 - t0, t2 - t1, t3 - t2, time.perf_counter() - t3), strict=True):
                times[key] = times.get(key, 0.0) + dt
        return found

    return predict


DEMO_STAGES = ("imread", "letterbox+tensor", "model", "postprocess")


def demo_preprocess(img: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    import cv2

    padded = np.full((size, size, 3), 114, np.uint8)
    ratio = min(size / img.shape[0], size / img.shape[1])
    nh, nw = int(img.shape[0] * ratio), int(img.shape[1] * ratio)
    padded[:nh, :nw] = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(padded.transpose(2, 0, 1), np.float32), ratio


def demo_grids(size: int) -> tuple[np.ndarray, np.ndarray]:
    grids, strides = [], []
    for s in (8, 16, 32):
        n = size // s
        xv, yv = np.meshgrid(np.arange(n), np.arange(n))
        grids.append(np.stack((xv, yv), 2).reshape(-1, 2))
        strides.append(np.full((n * n, 1), s))
    return np.concatenate(grids).astype(np.float32), np.concatenate(strides).astype(np.float32)


def demo_nms(boxes: np.ndarray, scores: np.ndarray, nms_thr: float, score_thr: float) -> np.ndarray:
    """Class-agnostic multiclass NMS: best class per box, score threshold, greedy NMS."""
    cls = scores.argmax(1)
    best = scores[np.arange(len(cls)), cls]
    keep = best > score_thr
    if not keep.any():
        return np.zeros((0, 6), np.float32)
    b, s, c = boxes[keep], best[keep], cls[keep]
    order = demo_greedy(b, s, nms_thr)
    return np.concatenate([b[order], s[order, None], c[order, None].astype(np.float32)], axis=1)


def demo_greedy(boxes: np.ndarray, scores: np.ndarray, thr: float) -> list[int]:
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order, keep = scores.argsort()[::-1], []
    while order.size:
        i = int(order[0])
        keep.append(i)
        w = np.maximum(0.0, np.minimum(x2[i], x2[order[1:]]) - np.maximum(x1[i], x1[order[1:]]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[order[1:]]) - np.maximum(y1[i], y1[order[1:]]) + 1)
        inter = w * h
        iou = inter / (areas[i] + areas[order[1:]] - inter)
        order = order[1:][iou <= thr]
    return keep


def stage_times(predictor: Any, paths: list[str], conf: float, iou: float) -> dict[str, float]:
    """Mean seconds per image of imgrec's stages at batch 1."""
    from imgrec.imaging.decode import decode_sized
    from imgrec.tasks.decoders import decode

    model, prep = predictor.model, predictor.preprocessing
    session, names = model.runtime.session, [o.name for o in model.runtime.session.get_outputs()]
    opts = predictor.options(conf=conf, iou=iou)
    blobs = [Path(p).read_bytes() for p in paths]
    t = dict.fromkeys(("decode+letterbox", "input tensor", "model", "postprocess", "jpeg"), 0.0)
    for path, data in zip(paths, blobs, strict=True):
        tj = time.perf_counter()
        decode_sized(data, min_side=prep.min_side, name=path)  # the decoding alone, for reference
        t["jpeg"] += time.perf_counter() - tj
        t0 = time.perf_counter()
        arr, geometry = prep.decode_framed(data, name=path)
        t1 = time.perf_counter()
        x = model._input(arr[None])
        t2 = time.perf_counter()
        outputs = session.run(names, {model.runtime.input.name: x})
        t3 = time.perf_counter()
        cands = decode(str(model.io.decoder), outputs, prep.size, model.num_classes)
        predictor.postprocess(cands, [geometry], [path], opts)
        t4 = time.perf_counter()
        for key, dt in zip(list(t)[:4], (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            t[key] += dt
    return {k: v / len(paths) for k, v in t.items()}


def demo_stage_times(demo: Callable[..., np.ndarray], paths: list[str], passes: int) -> dict[str, float]:
    """The demo's stages, mean seconds per image, best pass."""
    runs = []
    for _ in range(passes):
        times: dict[str, float] = {}
        for path in paths:
            demo(path, times)
        runs.append({k: v / len(paths) for k, v in times.items()})
    return {k: min(r[k] for r in runs) for k in DEMO_STAGES}


def end_to_end(predictor: Any, demo: Callable[..., np.ndarray], paths: list[str]) -> tuple[float, float]:
    """Mean seconds per image, imgrec then the demo, alternating image by image."""
    ours = theirs = 0.0
    for path in paths:
        t0 = time.perf_counter()
        predictor.predict(path, **DEMO)
        t1 = time.perf_counter()
        demo(path)
        t2 = time.perf_counter()
        ours, theirs = ours + t1 - t0, theirs + t2 - t1
    return ours / len(paths), theirs / len(paths)


def agreement(predictor: Any, demo: Callable[..., np.ndarray], paths: list[str]) -> tuple[int, int, float]:
    """Detections of each pipeline, and the share of the demo's that imgrec also finds (same class, IoU >= 0.9)."""
    from imgrec.tasks.boxes import box_iou

    ours = theirs = found = 0
    for path in paths:
        d = predictor.predict(path, **DEMO)[0]
        ref = demo(path)
        ours, theirs = ours + len(d), theirs + len(ref)
        if len(d) and len(ref):
            same = ref[:, 5].astype(np.int64)[:, None] == d.class_ids[None, :]
            found += int(((box_iou(ref[:, :4], d.boxes) >= 0.9) & same).any(axis=1).sum())
    return ours, theirs, found / max(1, theirs)


def speed(name: str, run: Path, paths: list[str], passes: int) -> None:
    import cv2
    import onnxruntime as ort

    from imgrec.inference import Predictor

    cv2.setNumThreads(1)
    predictor = Predictor.from_run(run, threads=1)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = 1, 1
    demo = yolox_demo(ort.InferenceSession(str(YOLOX), opts, providers=["CPUExecutionProvider"]))
    for path in paths[:4]:  # warm-up
        predictor.predict(path, **DEMO)
        demo(path)
    print(f"\nSpeed, {name} ({predictor.preprocessing.interpolation}), batch 1, 1 thread, {len(paths)} coco128 "
          f"files, best of {passes} passes (ms/image):")  # fmt: skip
    stages = [stage_times(predictor, paths, DEMO["conf"], DEMO["iou"]) for _ in range(passes)]
    best = {k: min(s[k] for s in stages) for k in stages[0]}
    evals = [stage_times(predictor, paths, EVAL["conf"], EVAL["iou"])["postprocess"] for _ in range(passes)]
    pre, post, model = best["decode+letterbox"] + best["input tensor"], best["postprocess"], best["model"]
    for k in ("decode+letterbox", "jpeg", "input tensor", "model", "postprocess"):
        label = "  of which JPEG decode" if k == "jpeg" else k
        print(f"  {label:<23} {best[k] * 1000:7.2f}")
    print(f"  postprocess at conf {EVAL['conf']} / iou {EVAL['iou']} (evaluation): {min(evals) * 1000:.2f}")
    print(f"  pre + post = {(pre + post) * 1000:.2f} ms = {(pre + post) / model:.1%} of model time (target <= 20%); "
          f"without the JPEG decode {(pre + post - best['jpeg']) / model:.1%}")  # fmt: skip
    theirs_t = demo_stage_times(demo, paths, passes)
    theirs_extra = theirs_t["imread"] + theirs_t["letterbox+tensor"] + theirs_t["postprocess"]
    print(f"  demo pipeline: {', '.join(f'{k} {v * 1000:.2f}' for k, v in theirs_t.items())}; pre + post = "
          f"{theirs_extra / theirs_t['model']:.1%} of its model time")  # fmt: skip
    runs = [end_to_end(predictor, demo, paths) for _ in range(passes)]
    ours, theirs = min(r[0] for r in runs), min(r[1] for r in runs)
    print(f"  end to end: imgrec Predictor.predict {ours * 1000:.2f}  |  YOLOX ORT demo pipeline {theirs * 1000:.2f}  "
          f"|  imgrec / demo = {ours / theirs:.3f}")  # fmt: skip
    n_ours, n_theirs, share = agreement(predictor, demo, paths)
    print(f"  detections at score {DEMO['conf']}: imgrec {n_ours}, demo {n_theirs}; "
          f"{share:.1%} of the demo's found by imgrec (same class, IoU >= 0.9)")  # fmt: skip


def main() -> None:
    args = parse_args()
    print("Machine:")
    print_machine()
    print(f"  load average: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    coco, cat_to_index, names = load_ground_truth()
    with tempfile.TemporaryDirectory() as tmp:
        runs = {name: import_detector(name, Path(tmp)) for name in args.models.split(",")}
        if not args.skip_map:
            for name, run in runs.items():
                m, results, seconds = evaluate_detector(run, coco, cat_to_index, names, args.limit)
                report_accuracy(name, m, direct_pycocotools(coco, results, args.limit), seconds)
        files = [coco.loadImgs([i])[0]["file_name"] for i in image_ids(coco, args.limit)]
        paths = [str(COCO128 / "images" / "train2017" / f) for f in files]
        for name in [] if args.skip_speed else [n for n in runs if DETECTORS[n][0] == YOLOX]:
            speed(name, runs[name], paths, args.passes)
    print(f"\nload average at the end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
