"""``imgrec export RUN --format onnx [--int8]`` and ``imgrec benchmark RUN --backends ... --batch ...``."""

from __future__ import annotations

import argparse
from typing import Any

from imgrec.cli.output import console, table, to_json
from imgrec.errors import UsageError

BACKENDS = ("torch", "classical", "onnx", "onnx-int8")
MAX_INT8_MAP_DROP = 2.0  # the default of imgrec.export.api.MAX_INT8_MAP_DROP (not imported: the CLI starts light)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a trained run to ONNX (fp32, optionally static int8), checked against the source",
        description="Writes RUN/model.onnx (input: prepared uint8 NHWC images; output: probabilities, or boxes "
        "and scores for detectors) and, with --int8, RUN/model.int8.onnx. Each file is compared with its source "
        "on real images (classifiers: top-1 agreement, accuracy drop; detectors: COCO mAP; instance segmenters: "
        "mask and box mAP; segmenters: mIoU) and kept only when it passes; the figures go to model.json under "
        "'exports'.",
    )
    p.add_argument("run", help="run directory (runs/<model>-<n>)")
    p.add_argument("--format", choices=("onnx",), default="onnx", help="export format")
    p.add_argument("--int8", action="store_true", help="also write the static int8 model (QDQ, per-channel)")
    p.add_argument("--data", help="images for the checks (default: the run's validation, else test split)")
    p.add_argument("--calibration", help="images for int8 calibration (default: the run's training split)")
    p.add_argument("--samples", type=int, default=256, help="check images at most (default 256)")
    p.add_argument("--calibration-size", type=int, default=256, help="calibration images at most (default 256)")
    p.add_argument("--min-agreement", type=float, default=0.99, help="fp32 gate: least top-1 agreement (0.99)")
    p.add_argument("--max-drop", type=float, default=1.0, help="int8 gate: most accuracy lost, in points (1.0)")
    p.add_argument("--max-map-drop", type=float, default=MAX_INT8_MAP_DROP,
                   help=f"detectors' int8 gate: most mAP@[.5:.95] lost vs model.onnx, points ({MAX_INT8_MAP_DROP:g})")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--exporter", choices=("auto", "torchscript", "dynamo"), default="auto")
    p.add_argument("--check", action="store_true", help="check the run's existing ONNX files; export nothing")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "benchmark",
        help="inference speed per backend and batch size (p50/p95 latency, images/s, size, accuracy)",
    )
    p.add_argument("run", help="run directory")
    p.add_argument("--data", help="labeled images: time on them and report the task's score (accuracy, mIoU, mAP, "
                   "mask mAP; default: random images, no score)")
    p.add_argument("--backends", help="comma-separated: torch, classical, onnx, onnx-int8 (default: all the run has)")
    p.add_argument("--batch", default="1,8,32", help="comma-separated batch sizes (default 1,8,32)")
    p.add_argument("--limit", type=int, default=1000, help="images of --data to use at most (default 1000)")
    p.add_argument("--iters", type=int, default=30, help="timed calls per measurement at most (default 30)")
    p.add_argument("--seconds", type=float, default=5.0, help="time per measurement at most (default 5)")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls first (default 2)")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--threads", type=int, help="CPU threads for the model math (default: one per physical core)")
    p.set_defaults(func=cmd_benchmark)


def cmd_export(args: argparse.Namespace) -> int:
    from imgrec.export import check_exports, export_run

    if args.check:
        report = check_exports(
            args.run, data=args.data, samples=args.samples, min_agreement=args.min_agreement, max_drop=args.max_drop,
            max_map_drop=args.max_map_drop,
        )
    else:
        if not args.json:
            console.print(f"exporting [bold]{args.run}[/] to {args.format}{' (+ int8)' if args.int8 else ''}")
        report = export_run(
            args.run,
            format=args.format,
            int8=args.int8,
            data=args.data,
            calibration=args.calibration,
            samples=args.samples,
            calibration_size=args.calibration_size,
            min_agreement=args.min_agreement,
            max_drop=args.max_drop,
            opset=args.opset,
            exporter=args.exporter,
            max_map_drop=args.max_map_drop,
        )
    if args.json:
        console.print_json(to_json(report.to_dict()))
    else:
        console.print(export_table(report))
        verb = "checked" if args.check else "written"
        console.print(f"{verb}: " + ", ".join(str(f.path) for f in report.files))
        for note in (n for f in report.files for n in f.notes):
            console.print(f"[yellow]note:[/] {note}")
    return 0


def export_table(report: Any) -> Any:
    """One column per exported file, one row per figure (narrow enough for a terminal)."""
    files = report.files
    if files and hasattr(files[0].parity, "reference_mask_map"):
        return _figures_table(report, INSTANCE_FIGURES)
    if files and hasattr(files[0].parity, "reference_map"):
        return _figures_table(report, DETECTION_FIGURES)
    if files and hasattr(files[0].parity, "reference_miou"):
        return _figures_table(report, SEGMENTATION_FIGURES)
    return _figures_table(report, CLASSIFIER_FIGURES, ms_digits=3)


Figures = list[tuple[str, Any]]
CLASSIFIER_FIGURES: Figures = [
    ("top-1 agreement", lambda f: f.parity.top1_agreement),
    ("max abs prob error", lambda f: f"{f.parity.max_abs_error:.2e}"),
    ("accuracy (reference)", lambda f: f.parity.reference_accuracy),
    ("accuracy", lambda f: f.parity.candidate_accuracy),
    ("drop (points)", lambda f: None if f.parity.accuracy_drop is None else round(f.parity.accuracy_drop, 2)),
]
SEGMENTATION_FIGURES: Figures = [
    ("mIoU (reference)", lambda f: round(f.parity.reference_miou, 4)),
    ("mIoU", lambda f: round(f.parity.candidate_miou, 4)),
    ("pixel acc. (reference)", lambda f: round(f.parity.reference_pixel_accuracy, 4)),
    ("pixel acc.", lambda f: round(f.parity.candidate_pixel_accuracy, 4)),
    ("drop (points)", lambda f: round(f.parity.miou_drop, 2)),
]
INSTANCE_FIGURES: Figures = [
    ("mask mAP (reference)", lambda f: round(f.parity.reference_mask_map, 4)),
    ("mask mAP", lambda f: round(f.parity.candidate_mask_map, 4)),
    ("mask drop (points)", lambda f: round(f.parity.mask_map_drop, 2)),
    ("box mAP (reference)", lambda f: round(f.parity.reference_map, 4)),
    ("box mAP", lambda f: round(f.parity.candidate_map, 4)),
    ("box drop (points)", lambda f: round(f.parity.map_drop, 2)),
]
DETECTION_FIGURES: Figures = [
    ("mAP (reference)", lambda f: round(f.parity.reference_map, 4)),
    ("mAP", lambda f: round(f.parity.candidate_map, 4)),
    ("mAP@.5 (reference)", lambda f: round(f.parity.reference_map50, 4)),
    ("mAP@.5", lambda f: round(f.parity.candidate_map50, 4)),
    ("drop (points)", lambda f: round(f.parity.map_drop, 2)),
]


def _figures_table(report: Any, figures: Figures, ms_digits: int = 2) -> Any:
    """One column per written file, one row per figure (the export gate's table): the task's
    ``figures`` between the file's size and source and the times and the gate."""
    rows: Figures = [
        ("size MB", lambda f: round(f.size_bytes / 1e6, 3)),
        ("compared with", lambda f: f.reference),
        ("images", lambda f: f.parity.images),
        *figures,
        ("ms/image (reference)", lambda f: round(f.parity.reference_ms, ms_digits)),
        ("ms/image", lambda f: round(f.parity.candidate_ms, ms_digits)),
        ("gate passed", lambda f: f.gate),
    ]
    files = report.files
    title = f"export of {report.run_dir} (source weights {report.source_bytes / 1e6:.3f} MB)"
    cells = [[name, *[get(f) for f in files]] for name, get in rows]
    return table(title, ["figure", *[f.path.name for f in files]], cells)


def cmd_benchmark(args: argparse.Namespace) -> int:
    from imgrec.evaluation.speed import benchmark_run

    backends = _backends(args.run, args.backends)
    batches = _ints(args.batch, "--batch")
    images, labels, dataset, source = _bench_images(args)
    result = benchmark_run(
        args.run,
        backends,
        batch_sizes=batches,
        images=images,
        labels=labels,
        dataset=dataset,
        source=source,
        warmup=args.warmup,
        max_iters=args.iters,
        max_seconds=args.seconds,
        threads=args.threads,
    )
    if args.format == "json":
        console.print_json(to_json(result.to_dict()))
        return 0
    console.print(benchmark_table(result))
    m = result.machine
    console.print(
        f"machine: {m['cpu']}, {m['physical_cores']} physical / {m['logical_cores']} logical cores, "
        f"load {m.get('load_average', '-')}; onnxruntime threads {m['onnxruntime_threads']}"
        + (f", torch threads {m['torch_threads']}" if "torch_threads" in m else "")
        + f"; images: {result.images}"
    )
    return 0


BENCH_COLUMNS = ("backend", "batch", "p50 ms", "p95 ms", "images/s", "calls", "model MB")


def benchmark_table(result: Any) -> Any:
    """One row per backend and batch size; the last column is the task's score (accuracy, mIoU, mAP, mask mAP)."""
    metric = result.rows[0].metric if result.rows else "accuracy"
    rows = [
        [r.backend, r.batch, r.p50_ms, r.p95_ms, r.images_per_s, r.iterations, r.model_mb, r.score]
        for r in result.rows
    ]
    return table(f"inference speed of {result.run}", [*BENCH_COLUMNS, metric], rows)


def _backends(run: str, given: str | None) -> list[str]:
    """The requested backends, or every backend the run has (its own model first)."""
    if given:
        names = [b.strip() for b in given.split(",") if b.strip()]
        unknown = [b for b in names if b not in (*BACKENDS, "auto")]
        if unknown:
            raise UsageError(f"Unknown backend(s) {', '.join(unknown)}; choose from {', '.join(BACKENDS)}.")
        return names
    from imgrec.models import read_meta
    from imgrec.models.onnx_backend import onnx_files

    return [str(read_meta(run)["family"]), *onnx_files(run)]


def _ints(text: str, flag: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"{flag} takes comma-separated integers like 1,8,32; received {text!r}.") from None
    if not values or min(values) < 1:
        raise UsageError(f"{flag} takes integers >= 1; received {text!r}.")
    return values


def _bench_images(args: argparse.Namespace) -> tuple[Any, Any, Any, str]:
    """Prepared images, with labels (classifiers) or the labeled dataset they came from (the other
    tasks), from --data; or (None, None, None, 'random')."""
    if not args.data:
        return None, None, None, "random noise (give --data for real images and a score)"
    from imgrec.export.samples import from_folder, task_samples
    from imgrec.models import read_meta
    from imgrec.transforms.preprocess import Preprocessing

    if args.limit < 1:
        raise UsageError(f"--limit must be >= 1; received {args.limit}.")
    meta = read_meta(args.run)
    prep = Preprocessing.from_dict(meta["preprocessing"])
    task = meta.get("task") or "classify"
    if task in ("detect", "instance", "segment"):
        samples, subset = task_samples(_task_dataset(args.run, args.data, task), prep, args.limit)
        return samples.images, None, subset, f"{len(samples)} labeled images from {samples.source}"
    samples = from_folder(args.data, prep, [str(c) for c in meta["classes"]], args.limit)
    return samples.images, samples.labels, None, samples.describe()


def _task_dataset(run: str, data: str, task: str) -> Any:
    """--data as the dataset a ``task`` run is scored on (refused when it holds no such labels)."""
    from pathlib import Path

    if task == "segment":
        from imgrec.export.segment_export import check_dataset

        return check_dataset(Path(run), data)[0]
    from imgrec.export.detect_export import check_dataset as check_boxes

    return check_boxes(Path(run), data, task)[0]
