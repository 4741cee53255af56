"""Decode + prepare a 12-megapixel JPEG for a 224-pixel model: reduced-size (draft) vs full decode.

``Predictor`` decodes with ``min_side = preprocessing.min_side``, which lets PIL decode a JPEG at
1/2, 1/4 or 1/8 scale in the DCT domain (draft mode) as long as the shorter side stays large
enough; the full path decodes every pixel and then resizes. Both go through imgrec.imaging.decode
and Preprocessing.prepare. The test photo is a real one (../shared/data/test-images) upscaled to
4000x3000 and saved as a JPEG, since no 12 MP photo ships with the data.

Usage:
    .venv/bin/python benchmarks/decode_speed.py                  # owl.jpg, 10 rounds
    .venv/bin/python benchmarks/decode_speed.py --photo parrot.jpg --rounds 20 --size 299

Target: draft >= 3x faster than full decode + resize. The load average is printed (shared machine).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_DATA, print_machine


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--photo", default="owl.jpg", help="a photo in ../shared/data/test-images")
    p.add_argument("--width", type=int, default=4000)
    p.add_argument("--height", type=int, default=3000)
    p.add_argument("--quality", type=int, default=90)
    p.add_argument("--size", type=int, default=224, help="model input side")
    p.add_argument("--rounds", type=int, default=10)
    return p.parse_args()


def make_jpeg(photo: Path, width: int, height: int, quality: int) -> bytes:
    """The photo upscaled to width x height (bicubic), encoded as a baseline JPEG."""
    from PIL import Image

    from imgrec.imaging import load_image

    big = Image.fromarray(load_image(photo)).resize((width, height), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    big.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def timed(fn, rounds: int) -> tuple[float, np.ndarray]:  # type: ignore[no-untyped-def]
    """Median seconds of ``fn()`` over ``rounds`` calls (after one warm-up), and its last output."""
    out = fn()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), out


def main() -> None:
    args = parse_args()
    from imgrec.imaging import decode
    from imgrec.transforms.preprocess import Preprocessing

    data = make_jpeg(SHARED_DATA / "test-images" / args.photo, args.width, args.height, args.quality)
    prep = Preprocessing(size=args.size)
    load_before = os.getloadavg()[0]
    full_s, full = timed(lambda: prep.prepare(decode(data)), args.rounds)
    draft_s, draft = timed(lambda: prep.prepare(decode(data, min_side=prep.min_side)), args.rounds)
    decoded = decode(data, min_side=prep.min_side).shape
    diff = np.abs(full.astype(np.int16) - draft.astype(np.int16))
    report = {
        "jpeg": f"{args.width}x{args.height} ({args.width * args.height / 1e6:.1f} MP), {len(data) / 1e6:.2f} MB, "
        f"from {args.photo}",
        "model_input": args.size,
        "draft_decoded_shape": list(decoded),
        "full_ms": round(1000 * full_s, 1),
        "draft_ms": round(1000 * draft_s, 1),
        "speedup": round(full_s / draft_s, 2),
        "target": ">= 3x",
        "prepared_pixels_mean_abs_diff": round(float(diff.mean()), 2),
        "load_average_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    print(json.dumps(report, indent=2))
    print(f"draft decode + prepare is {report['speedup']}x faster than full decode + resize "
          f"({report['full_ms']} ms -> {report['draft_ms']} ms per image)")
    print("machine:")
    print_machine()


if __name__ == "__main__":
    main()
