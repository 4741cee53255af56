"""Imported segmenters: imgrec end to end against the plain runtime, one thread, on real photos.

Models (../shared/data/models/segmentation): MediaPipe's selfie segmenter (general TFLite,
landscape ONNX and TFLite) and DeepLabV3 MobileNetV2 (Coral, TFLite), each imported with
``import_model(FILE, ImportOptions(task="segment", ...))`` and its defaults (selfie: stretch;
DeepLab: letterbox, padded gray).

Per photo of ../shared/data/test-images (decoded once beforehand: decode excluded), ms of
  imgrec   ``Predictor.predict(array)``: prepare (resize) -> forward -> postprocess, a full
           resolution mask (``Segmentation``) at the end;
  plain    the same file under onnxruntime / LiteRT directly with the minimal upstream-style
           pre/post: cv2.resize to the input (stretch), scale to [0, 1] (selfie; DeepLab takes
           uint8), run, cv2.resize back (bilinear probability, then > 0.5; DeepLab: nearest on
           the index map).
Both with one thread (ORT intra-op 1, LiteRT num_threads 1, cv2.setNumThreads(1)), interleaved
image by image, who goes first alternating; the median per image over ``--passes`` passes is
kept, then summed over the photos. ``ratio`` = plain / imgrec (>= 1.0: imgrec is not slower).
``agree``: share of pixels with the same class in both masks.

``--isolated N``: each pipeline alone in its own process instead (the same photos, ``--passes``,
median per image), N process pairs per model with the order alternating (imgrec first, then
plain first, ...); the ratio of each pair is printed, then their median. Two pipelines in one
process disturb each other (shared heap and caches: the same plain pipeline run twice in a row
is 2-5% faster the second time); alone they are measured as a user runs them.

Run: .venv/bin/python benchmarks/segment_import.py [--passes 5] [--isolated 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_DATA, print_machine

SEG = SHARED_DATA / "models" / "segmentation"
MODELS = {  # name: file, classes
    "selfie (TFLite)": ("selfie_segmentation.tflite", "background,person"),
    "selfie landscape (ONNX)": ("selfie_segmentation_landscape.onnx", "background,person"),
    "selfie landscape (TFLite)": ("selfie_segmentation_landscape.tflite", "background,person"),
    "DeepLabV3 (TFLite)": ("deeplabv3_mnv2_pascal_quant.tflite", "voc"),
}


def plain_runner(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    """The file under its runtime with upstream-style pre/post: image in, (H, W) class mask out."""
    if path.suffix == ".onnx":
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = 1, 1
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        inp = session.get_inputs()[0]
        h, w = inp.shape[1:3]
        run = lambda x: session.run(None, {inp.name: x})[0]  # noqa: E731
        dtype = np.float32
    else:
        from ai_edge_litert.interpreter import Interpreter

        interp = Interpreter(model_path=str(path), num_threads=1)
        interp.allocate_tensors()
        d_in, d_out = interp.get_input_details()[0], interp.get_output_details()[0]
        h, w = d_in["shape"][1:3]
        dtype = d_in["dtype"]

        def run(x: np.ndarray) -> np.ndarray:
            interp.set_tensor(d_in["index"], x)
            interp.invoke()
            return interp.get_tensor(d_out["index"])

    def predict(image: np.ndarray) -> np.ndarray:
        x = cv2.resize(image, (int(w), int(h)), interpolation=cv2.INTER_LINEAR)
        x = x[None].astype(np.float32) / np.float32(255) if dtype == np.float32 else x[None]
        out = run(x)[0]
        size = (image.shape[1], image.shape[0])
        if out.ndim == 2:  # an index map (argmax inside the graph)
            return cv2.resize(out.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
        prob = cv2.resize(out[..., 0].astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
        return (prob > 0.5).astype(np.uint8)

    return predict


def measure(
    fns: dict[str, Callable[[np.ndarray], Any]], images: list[np.ndarray], passes: int
) -> dict[str, list[float]]:
    """Median ms per image for each function, interleaved image by image. Who goes first alternates
    (pass + image even: as given, odd: reversed): the first to run on an image is measured slower
    (the same plain pipeline twice in a row: the second 2-5% faster on the selfie models)."""
    times: dict[str, list[list[float]]] = {k: [[] for _ in images] for k in fns}
    names = list(fns)
    for p in range(passes):
        for i, image in enumerate(images):
            for name in names if (p + i) % 2 == 0 else names[::-1]:
                t = time.perf_counter()
                fns[name](image)
                times[name][i].append((time.perf_counter() - t) * 1000)
    return {k: [statistics.median(v) for v in per] for k, per in times.items()}


def photos() -> list[np.ndarray]:
    from imgrec.imaging import load_image

    files = sorted((SHARED_DATA / "test-images").glob("*.*"))
    return [load_image(p) for p in files if p.suffix.lower() in (".jpg", ".bmp", ".png")]


def one_pipeline(label: str, which: str, passes: int) -> float:
    """ms per image of one pipeline alone in this process (sum over the photos of the median per photo)."""
    from imgrec.inference import Predictor
    from imgrec.models.importer import ImportOptions, import_model

    cv2.setNumThreads(1)
    file, classes = MODELS[label]
    images = photos()
    with tempfile.TemporaryDirectory() as tmp:
        if which == "imgrec":
            run = import_model(SEG / file, ImportOptions(task="segment", classes=classes), Path(tmp) / file)
            predictor = Predictor.from_run(run, threads=1)
            fn: Callable[[np.ndarray], Any] = lambda im: predictor.predict(im)[0].mask  # noqa: E731
        else:
            fn = plain_runner(SEG / file)
        for im in images[:2]:  # warm-up
            fn(im)
        ms = measure({which: fn}, images, passes)[which]
    return sum(ms) / len(images)


def isolated(passes: int, pairs: int) -> None:
    """Each pipeline in its own process, ``pairs`` pairs per model, the order alternating."""
    print("| model | imgrec ms/image | plain ms/image | ratio per pair | median ratio |")
    print("|---|---|---|---|---|")
    for label in MODELS:
        ratios, ours, theirs = [], [], []
        for k in range(pairs):
            order = ("imgrec", "plain") if k % 2 == 0 else ("plain", "imgrec")
            got = {}
            for which in order:
                cmd = [sys.executable, __file__, "--worker", which, "--model", label, "--passes", str(passes)]
                got[which] = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
            ours.append(got["imgrec"])
            theirs.append(got["plain"])
            ratios.append(got["plain"] / got["imgrec"])
        each = ", ".join(f"{r:.2f}" for r in ratios)
        print(f"| {label} | {statistics.median(ours):.2f} | {statistics.median(theirs):.2f} | {each} | "
              f"**{statistics.median(ratios):.2f}** |", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--isolated", type=int, default=0, help="process pairs per model (0: both in this process)")
    parser.add_argument("--worker", choices=("imgrec", "plain"), help=argparse.SUPPRESS)
    parser.add_argument("--model", choices=list(MODELS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(one_pipeline(args.model, args.worker, args.passes)))
        return
    from imgrec.inference import Predictor
    from imgrec.models.importer import ImportOptions, import_model

    cv2.setNumThreads(1)
    print_machine()
    images = photos()
    print(f"{len(images)} photos: " + ", ".join(f"{im.shape[1]}x{im.shape[0]}" for im in images))
    if args.isolated:
        isolated(args.passes, args.isolated)
        return
    print("| model | imgrec ms/image | plain ms/image | ratio plain/imgrec | agree |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for label, (file, classes) in MODELS.items():
            run = import_model(SEG / file, ImportOptions(task="segment", classes=classes), Path(tmp) / file)
            predictor = Predictor.from_run(run, threads=1)
            plain = plain_runner(SEG / file)
            ours = lambda im, p=predictor: p.predict(im)[0].mask  # noqa: E731
            for im in images[:2]:  # warm-up
                ours(im), plain(im)
            ms = measure({"imgrec": ours, "plain": plain}, images, args.passes)
            agree = np.mean([float((ours(im) == plain(im)).mean()) for im in images])
            a, b = sum(ms["imgrec"]) / len(images), sum(ms["plain"]) / len(images)
            print(f"| {label} | {a:.2f} | {b:.2f} | **{b / a:.2f}** | {100 * agree:.1f}% |", flush=True)


if __name__ == "__main__":
    main()
