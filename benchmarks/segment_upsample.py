"""Segmentation postprocessing on a 12-megapixel photo: ways to bring (C, h, w) scores to full size.

Prints, for C classes predicted at h x w over a letterboxed input: wall time and peak traced
memory (tracemalloc: numpy and OpenCV outputs) of
  per-class   imgrec's way: one bilinear warp per class straight to full size, running argmax;
  all-at-once every class upsampled to (C, H, W) float32, then argmax;
  nearest     argmax at the model's resolution, then nearest neighbour to full size;
and how many pixels 'nearest' labels differently from the bilinear argmax; then the instance
task's way for Mask R-CNN: ``--objects`` 28 x 28 maps, each pasted over its box straight into the
original's pixels and kept as a compressed RLE (time and peak per photo).

Run: .venv/bin/python benchmarks/segment_upsample.py [--classes 21] [--map 513] [--width 4000 --height 3000]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import cv2
import numpy as np

from imgrec.tasks.upsample import argmax_upsampled, map_matrix
from imgrec.transforms import Preprocessing


def _scores(c: int, side: int) -> np.ndarray:
    """Smooth class fields (blobs), like a real model's logits."""
    rng = np.random.default_rng(0)
    small = rng.normal(size=(c, 17, 17)).astype(np.float32) * 4
    return np.stack([cv2.resize(s, (side, side), interpolation=cv2.INTER_CUBIC) for s in small])


def _all_at_once(scores: np.ndarray, g) -> np.ndarray:
    w, h = g.original
    m = map_matrix(g, *scores.shape[1:])
    full = np.stack([cv2.warpAffine(s, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                    borderMode=cv2.BORDER_REPLICATE) for s in scores])  # fmt: skip
    return full.argmax(axis=0).astype(np.uint8)


def _nearest(scores: np.ndarray, g) -> np.ndarray:
    return g.mask_to_original(scores.argmax(axis=0).astype(np.uint8))


def _instances(n: int, g) -> int:
    """``n`` objects of Mask R-CNN's kind (a 28 x 28 map over a box) through the instance task."""
    from imgrec.tasks.instance import INSTANCE, InstanceCandidates

    rng = np.random.default_rng(1)
    xy = rng.uniform(0, g.size * 0.7, (n, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(8, g.size * 0.3, (n, 2))], axis=1).astype(np.float32)
    maps = np.stack([cv2.GaussianBlur(rng.random((28, 28)).astype(np.float32), (0, 0), 3) * 2 for _ in range(n)])
    cands = InstanceCandidates(boxes, rng.random(n), np.zeros(n, np.int64), maps, mask_frame="box")
    (found,) = INSTANCE.postprocess([cands], [g], [None], ["object"], INSTANCE.options(conf=0.0, iou=1.0, max_det=n))
    return len(found)


def _measure(fn, *args):
    tracemalloc.start()
    t = time.perf_counter()
    out = fn(*args)
    dt = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, dt, peak


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--classes", type=int, default=21)
    ap.add_argument("--map", type=int, default=513, help="the model's output side (over the input)")
    ap.add_argument("--width", type=int, default=4000)
    ap.add_argument("--height", type=int, default=3000)
    ap.add_argument("--objects", type=int, default=100, help="instance masks pasted (Mask R-CNN's 28 x 28 maps)")
    args = ap.parse_args()
    _, g = Preprocessing(size=args.map, resize_mode="letterbox").prepare_framed(np.zeros((30, 40, 3), np.uint8))
    g = type(g)(original=(args.width, args.height), scale=(args.map / args.width,) * 2,
                offset=g.offset, size=args.map)  # fmt: skip
    scores = _scores(args.classes, args.map)
    print(f"{args.classes} classes at {args.map}x{args.map} -> {args.width}x{args.height}")
    ref, dt, peak = _measure(argmax_upsampled, scores, g)
    print(f"per-class    {dt * 1000:8.0f} ms  peak {peak / 2**20:8.1f} MiB")
    full, dt, peak = _measure(_all_at_once, scores, g)
    print(f"all-at-once  {dt * 1000:8.0f} ms  peak {peak / 2**20:8.1f} MiB  same labels: {np.array_equal(full, ref)}")
    near, dt, peak = _measure(_nearest, scores, g)
    print(f"nearest      {dt * 1000:8.0f} ms  peak {peak / 2**20:8.1f} MiB  "
          f"differs from bilinear on {(near != ref).mean():.2%} of the pixels")  # fmt: skip
    kept, dt, peak = _measure(_instances, args.objects, g)
    print(f"instances    {dt * 1000:8.0f} ms  peak {peak / 2**20:8.1f} MiB  {kept} masks pasted into RLEs "
          f"({dt * 1000 / max(kept, 1):.1f} ms each)")  # fmt: skip


if __name__ == "__main__":
    main()
