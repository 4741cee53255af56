"""``imgrec import FILE.onnx|FILE.tflite --task classify|detect|segment --classes labels.txt [--out RUN]``;
``--task detect --layout yunet ...``; ``--task embed [--template arcface-112] [--norm imagenet|arcface|raw]``."""

from __future__ import annotations

import argparse

from imgrec.cli.output import console, table
from imgrec.imaging.ops import INTERPOLATIONS

# the keys of imgrec.models.importer.DETECT_PRESETS and NORMS (kept here: the parser stays import-light)
DETECT_LAYOUTS = ("yolox", "yolov5", "yolov8", "fastestdet", "ssd", "ultraface", "yunet")
NORM_NAMES = ("imagenet", "arcface", "raw")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import",
        help="turn an ONNX or TFLite classifier, detector, segmenter or embedder into a run (predict, serve, ... "
        "work on it)",
        description="Import an external model file. What the file says (input shape, dtype, layout, what a "
        "segmenter's output holds) is read from it; give what it cannot say: the class names (classify, detect, "
        "segment), mean/std for float inputs, and for a face embedder (--task embed) its alignment template.",
    )
    p.add_argument("file", help="the model file (.onnx or .tflite)")
    p.add_argument("--task", default="classify", choices=("classify", "detect", "segment", "embed"),
                   help="recognition task")
    p.add_argument("--classes",
                   help="labels file: one class name per line (a background row is fine), or names: "
                        "background,person; voc: Pascal VOC's 21 classes. Required for classify, detect and "
                        "segment, none for embed")
    p.add_argument("--input-size", type=int, help="input side in pixels, when the file's input size is dynamic")
    p.add_argument("--mean", type=_triple, help="mean of 0..1 inputs per channel, e.g. 0.485,0.456,0.406")
    p.add_argument("--std", type=_triple, help="std of 0..1 inputs per channel, e.g. 0.229,0.224,0.225")
    p.add_argument("--norm", choices=tuple(NORM_NAMES), help="named mean/std instead of --mean/--std: imagenet "
                   "(MobileFaceNet), arcface ((x-127.5)/127.5, InsightFace), raw (0..255, OpenCV's SFace)")
    p.add_argument("--template", choices=("arcface-112", "dlib-150"),
                   help="embed: the face alignment template of the embedder's crops (default arcface-112)")
    p.add_argument("--layout", choices=("nchw", "nhwc", *DETECT_LAYOUTS),
                   help="classify: input layout (default: from the input shape); detect: the output layout")
    p.add_argument("--color", choices=("rgb", "bgr"), help="channel order the model expects (default rgb)")
    p.add_argument("--resize", dest="resize_mode", choices=("crop", "letterbox", "stretch"),
                   help="how images fit the input (default: crop; the layout's convention for detect; segment: "
                        "stretch for one-channel models, letterbox for the others)")
    p.add_argument("--output", choices=("probabilities", "logits", "sigmoid", "index"),
                   help="what the output is (default: detected; sigmoid and index: segmenters)")
    p.add_argument("--interpolation", choices=INTERPOLATIONS,
                   help="resize filter (default: bilinear; the layout's for detect; cv2-linear for segment)")
    p.add_argument("--crop-pct", type=float, help="crop: resize to size/crop_pct, centre-crop (default 0.875; "
                   "1.0 for embed)")
    p.add_argument("--name", help="model name recorded in the run (default: the file name)")
    p.add_argument("--out", help="run directory (default runs/<file name>-<n>)")
    p.set_defaults(func=cmd_import)


def _triple(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected three numbers like 0.5,0.5,0.5; received {text!r}") from None
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"expected three comma-separated numbers; received {text!r}")
    return values  # type: ignore[return-value]


def _short(values: list[float]) -> str:
    return ",".join(f"{v:.3g}" for v in values)


def cmd_import(args: argparse.Namespace) -> int:
    from pathlib import Path

    from imgrec.models import read_meta
    from imgrec.models.importer import ImportOptions, import_model
    from imgrec.training.api import next_run_dir

    options = ImportOptions(
        task=args.task, classes=args.classes, input_size=args.input_size, mean=args.mean, std=args.std,
        layout=args.layout, color=args.color, output=args.output, crop_pct=args.crop_pct, name=args.name,
        resize_mode=args.resize_mode, norm=args.norm, template=args.template, interpolation=args.interpolation,
    )  # fmt: skip
    out = args.out or next_run_dir("runs", Path(args.file).stem)
    run = import_model(args.file, options, out)
    meta = read_meta(run)
    ext = meta["external"]
    prep = meta["preprocessing"]
    h, w = ext.get("input_hw") or (prep["size"], prep["size"])
    shape = f"{h}x{w} {ext['layout']} {ext['color']} ({prep.get('resize_mode', 'crop')})"
    rows: list[list[object]] = [
        ["task", meta["task"]], *_described(meta), ["input", shape],
        ["normalization", f"mean {_short(prep['mean'])} std {_short(prep['std'])} on 0..1"],
        ["runtime", ext["runtime"]], ["sha256", ext["sha256"][:16] + "..."],
    ]  # fmt: skip
    console.print(table(None, ["imported", str(args.file)], rows))
    console.print(f"run: [bold]{run}[/]  (try: imgrec predict {run} photo.jpg)")
    return 0


def _described(meta: dict) -> list[list[object]]:
    """The task-specific rows: classes and output, or the embedding's dimension and template."""
    ext = meta["external"]
    if meta["task"] == "embed":
        e = meta["embedding"]
        return [["embedding", f"{e['dim']}-d, L2-normalized, cosine"], ["template", e["template"]]]
    dropped = " (background column dropped)" if ext["background"] is not None else ""
    output = f"{ext['decoder']} boxes" if ext.get("decoder") else ext["output"] + dropped
    if ext.get("mask_layout"):
        output = f"{ext['output']} mask ({ext['mask_layout']})"
    return [["classes", len(meta["classes"])], ["output", output]]
