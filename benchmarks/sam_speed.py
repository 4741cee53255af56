"""Segment Anything on the CPU: the image embedding, then the time per prompt once it is computed.

For the tiny test SAM (ViT width 64, 2 blocks, input 256), for vit_b (the official
architecture, randomly initialized: no checkpoint is on this machine, and the time does not
depend on the weights' values) and with --mobilesam for MobileSAM (TinyViT-5M encoder, random
weights, the same compute as mobile_sam.pt), with 1 and 2 torch threads, on a COCO128 photo
(640 x 480):
  embedding    median of --repeat image-encoder runs (the embedding cache cleared each time)
  point        one point prompt -> one mask in the original pixels (decoder, upsampling, RLE)
  16 boxes     16 box prompts decoded as one batch, per prompt

Run: .venv/bin/python benchmarks/sam_speed.py [--repeat 3] [--prompts 20] [--skip-vit-b] [--mobilesam]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from imgrec.analyzers.segment import SamSegmenter
from imgrec.models.sam import STANDARD, SamConfig, build_sam, tiny_vit_sam_config
from imgrec.models.sam_tinyvit import MOBILE_SAM

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_machine

PHOTO = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "coco128" / "images" / "train2017"
TINY = SamConfig(embed_dim=64, depth=2, num_heads=2, global_attn_indexes=(1,), img_size=256, window_size=4,
                 prompt_dim=64, decoder_mlp_dim=128, iou_head_hidden_dim=64)  # fmt: skip
MOBILESAM = tiny_vit_sam_config(MOBILE_SAM)


def _median_s(fn, n: int) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def measure(name: str, config: SamConfig, image: Path, threads: int, repeat: int, prompts: int) -> list[str]:
    torch.manual_seed(0)
    sam = SamSegmenter(build_sam(config), config, threads=threads)
    sam.set_image(image)  # warm-up (and the decode, kept out of the figures)
    decoded = sam.image

    def embed() -> None:
        sam._predictor.cache.clear()
        sam.set_image(decoded)

    emb = _median_s(embed, repeat)
    sam.predict(points=[(320, 240)])  # warm-up
    point = _median_s(lambda: sam.predict(points=[(320, 240)]), prompts)
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 300, (16, 2))
    boxes = np.hstack([xy, xy + rng.uniform(40, 170, (16, 2))])  # inside 640 x 480
    batch = _median_s(lambda: sam.predict(boxes=boxes), max(3, prompts // 4)) / 16
    return [name, str(threads), f"{emb * 1000:.0f}", f"{point * 1000:.1f}", f"{batch * 1000:.1f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="embeddings timed per setting")
    parser.add_argument("--prompts", type=int, default=20, help="point prompts timed per setting")
    parser.add_argument("--skip-vit-b", action="store_true")
    parser.add_argument("--mobilesam", action="store_true", help="also MobileSAM (TinyViT encoder, random weights)")
    args = parser.parse_args()
    print_machine()
    image = PHOTO / "000000000009.jpg"
    rows = [["model", "threads", "embedding ms", "point ms", "16 boxes ms/prompt"]]
    configs = [("tiny (test)", TINY)] + ([] if args.skip_vit_b else [("vit_b (random)", STANDARD["vit_b"])])
    configs += [("mobilesam (random)", MOBILESAM)] if args.mobilesam else []
    for name, config in configs:
        for threads in (1, 2):
            rows.append(measure(name, config, image, threads, args.repeat, args.prompts))
            print(" | ".join(rows[-1]), flush=True)
    print()
    print("| " + " | ".join(rows[0]) + " |")
    print("|" + "---|" * len(rows[0]))
    for row in rows[1:]:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
