"""``imgrec models | train | evaluate | compare``."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from imgrec.cli.config_flags import add_config_flags
from imgrec.cli.output import console, table, to_json
from imgrec.config import DataConfig, TrainConfig, load_yaml, parse_overrides
from imgrec.errors import ConfigError, MissingInputError, did_you_mean

# Flags come from the config dataclasses (imgrec.cli.config_flags); these are their dest names.
TRAIN_FLAGS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name not in ("model_args", "pretrained"))
DATA_FLAGS = ("val", "test", "split_seed", "task")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list model names with family, parameters, input size, offline weights")
    p.add_argument("pattern", nargs="?", default="*", help="shell pattern, e.g. 'resnet*'")
    p.add_argument("--all", action="store_true", help="include every timm architecture")
    p.add_argument("--task", choices=("classify", "detect", "instance", "segment", "embed"),
                   help="only the models of this task")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("train", help="train a model on a folder of labeled images")
    _train_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="evaluate a run on its test split or on another folder")
    p.add_argument("run", help="run directory (runs/<model>-<n>)")
    p.add_argument("data", nargs="?", help="labeled images to evaluate on (default: the run's test split)")
    p.add_argument("--top-k", type=int, nargs="+", default=[1, 3, 5])
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("compare", help="leaderboard of runs: accuracy, F1, train time, latency, size")
    p.add_argument("runs", nargs="+", help="run directories")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=cmd_compare)


def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", nargs="?", help="images: class folders, train/val/test layout, .zip, .csv, idx, 'digits'")
    p.add_argument("--model", "-m", help="model name (see `imgrec models`); default hog-svm")
    p.add_argument("--pretrained", action="store_true", default=None, help="start from published weights (online)")
    add_config_flags(p, TrainConfig, skip=("model", "pretrained", "model_args"))
    add_config_flags(p, DataConfig, skip=("max_bad_fraction", "min_side", "seed"))
    p.add_argument("--split-seed", type=int, help="seed of the stratified split, so a split is reproducible")
    p.add_argument("--splits", help="reuse a split manifest from `imgrec data split`")
    p.add_argument("--config", help="YAML file with train:/data: keys (CLI flags win)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any TrainConfig field")
    p.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE", help="model option, e.g. C=10")
    p.add_argument("--out", help="run directory (default runs/<model>-<n>)")
    p.add_argument(
        "--resume",
        metavar="RUN",
        help="continue an interrupted run from its last checkpoint, or extend a finished one with --epochs M",
    )


def build_configs(args: argparse.Namespace) -> tuple[TrainConfig, DataConfig]:
    """defaults <- YAML <- flags <- --set."""
    raw: dict[str, Any] = load_yaml(args.config) if getattr(args, "config", None) else {}
    unknown = set(raw) - {"train", "data"}
    if unknown:
        raise ConfigError(f"Config file keys must be 'train' and 'data'; received {sorted(unknown)}.")
    train_cfg = dict(raw.get("train") or {})
    data_cfg = dict(raw.get("data") or {})
    train_cfg.update({k: getattr(args, k) for k in TRAIN_FLAGS if getattr(args, k, None) is not None})
    if getattr(args, "pretrained", None):
        train_cfg["pretrained"] = True
    data_cfg.update(
        {k.replace("split_", ""): getattr(args, k) for k in DATA_FLAGS if getattr(args, k, None) is not None}
    )
    train_cfg.update(parse_overrides(getattr(args, "set", [])))
    if getattr(args, "model_arg", None):
        train_cfg["model_args"] = {**train_cfg.get("model_args", {}), **_typed(parse_overrides(args.model_arg))}
    return TrainConfig.from_dict(train_cfg), DataConfig.from_dict(data_cfg)


def _typed(values: dict[str, str]) -> dict[str, Any]:
    import yaml

    return {k: yaml.safe_load(v) for k, v in values.items()}


MODEL_COLUMNS = ("model", "task", "family", "params", "input", "pretrained weights", "description")


def cmd_models(args: argparse.Namespace) -> int:
    rows = model_rows(args.pattern, include_timm=args.all, task=getattr(args, "task", None))
    if not rows:
        raise MissingInputError(_no_match(args.pattern, args.all))
    if args.format == "json":
        console.print_json(to_json([dict(zip(MODEL_COLUMNS, r, strict=True)) for r in rows]))
    else:
        console.print(models_table(rows))
    return 0


def model_rows(pattern: str, include_timm: bool = False, task: str | None = None) -> list[list[Any]]:
    """One row per model matching ``pattern`` (and ``task``): the values of :data:`MODEL_COLUMNS`."""
    from imgrec.models import get_model_spec, list_models
    from imgrec.models.offline import weights_status

    rows = []
    for name in list_models(pattern, include_timm=include_timm, task=task):
        spec = get_model_spec(name)
        weights = weights_status(spec)
        rows.append([name, spec.task, spec.family, _params(spec.params), spec.default_size, weights, spec.description])
    return rows


def models_table(rows: list[list[Any]]) -> Any:
    """The ``imgrec models`` listing: one table per task, names whole, descriptions wrapped."""
    from rich.console import Group

    columns = [MODEL_COLUMNS[0], *MODEL_COLUMNS[2:5], "weights", MODEL_COLUMNS[6]]
    tasks = list(dict.fromkeys(r[1] for r in rows))
    tables = [table(f"{t} models" if len(tasks) > 1 else None, columns,
                    [[r[0], *r[2:]] for r in rows if r[1] == t], wrap=("description",)) for t in tasks]  # fmt: skip
    return Group(*tables)


def _no_match(pattern: str, included_timm: bool) -> str:
    from imgrec.models import list_models

    stem = pattern.strip("*?[]") or pattern
    hint = did_you_mean(stem, list_models())
    more = "" if included_timm else " Add --all to search every timm architecture too."
    return f"No model matches {pattern!r}.{hint}{more} List every name with `imgrec models`."


def _params(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.0f}k" if n >= 1e3 else str(n)


def cmd_train(args: argparse.Namespace) -> int:
    from imgrec.cli.progress import RichProgress
    from imgrec.training import train

    if args.resume:
        return _resume(args)
    if not args.data:
        raise ConfigError("train needs the data to train on (a folder, .zip, .csv, idx folder or 'digits').")
    cfg, dcfg = build_configs(args)
    _check_data_arg(args.data)
    console.print(f"training [bold]{cfg.model}[/] on {args.data}")
    run = train(args.data, cfg, data_config=dcfg, out=args.out, splits=args.splits, callbacks=[RichProgress()])
    print_run_summary(run)
    return 0


def _resume(args: argparse.Namespace) -> int:
    """--resume RUN [--epochs M]: finish an interrupted run, extend a finished one, or say why not."""
    from imgrec.cli.progress import RichProgress
    from imgrec.training import read_run_config, train
    from imgrec.training.resume import plan_resume

    _, stored, _ = read_run_config(args.resume)
    plan = plan_resume(args.resume, _resume_config(args, stored))
    console.print(plan.message(), highlight=False)
    if plan.nothing_to_do:
        return 0
    _check_data_arg(plan.data)
    run = train(
        plan.data, plan.config, data_config=plan.data_config, out=args.resume, callbacks=[RichProgress()], resume=True
    )
    print_run_summary(run)
    return 0


def _resume_config(args: argparse.Namespace, stored: TrainConfig) -> TrainConfig:
    """The stored config with the flags given next to --resume (plan_resume refuses most changes)."""
    fixed = [name for name in ("data", "out", "splits", "config", *DATA_FLAGS) if getattr(args, name, None)]
    if fixed:
        flags = ", ".join("DATA" if n == "data" else "--" + n.replace("_", "-") for n in fixed)
        raise ConfigError(
            f"--resume continues {args.resume} with the data, split and output folder it was started with; "
            f"drop {flags} (or start a new run without --resume)."
        )
    changes: dict[str, Any] = {k: getattr(args, k) for k in TRAIN_FLAGS if getattr(args, k, None) is not None}
    if getattr(args, "pretrained", None):
        changes["pretrained"] = True
    changes.update(parse_overrides(getattr(args, "set", [])))
    if getattr(args, "model_arg", None):
        changes["model_args"] = {**stored.model_args, **_typed(parse_overrides(args.model_arg))}
    return stored.replace(**changes)


def _check_data_arg(data: str) -> None:
    from imgrec.errors import MissingInputError

    if data != "digits" and not Path(data).exists():
        raise MissingInputError(f"Data not found: {data}")


def print_run_summary(run: Any) -> None:
    """Metrics per split, the weights kept, warnings, skipped files, and where the report is."""
    from imgrec.evaluation import diagnose
    from imgrec.evaluation.report_sections import kept_weights_text

    detect = run.meta.get("task") in ("detect", "segment", "instance")
    if run.meta.get("task") == "segment":
        rows = [[split, *(m.get(k) for k, _ in SEGMENT_HEADS), m.get("images")] for split, m in run.metrics.items()]
        console.print(table(None, ["split", *(h for _, h in SEGMENT_HEADS), "images"], rows))
    elif run.meta.get("task") == "instance":
        rows = [[split, m.get("map"), m.get("mask_map"), m.get("map50"), m.get("mask_map50"), m.get("images"),
                 m.get("gt_boxes")] for split, m in run.metrics.items()]  # fmt: skip
        console.print(table(None, ["split", "box mAP", "mask mAP", "box mAP@.5", "mask mAP@.5", "images", "objects"],
                            rows))  # fmt: skip
    elif detect:
        rows = [[split, m.get("map"), m.get("map50"), m.get("map75"), m.get("images"), m.get("gt_boxes")]
                for split, m in run.metrics.items()]  # fmt: skip
        console.print(table(None, ["split", "mAP", "mAP@.5", "mAP@.75", "images", "boxes"], rows))
    else:
        rows = [[split, *_headline(m)] for split, m in run.metrics.items()]
        console.print(table(None, ["split", "accuracy", "macro F1", "weighted F1", "images"], rows))
    training = run.meta.get("training") or {}
    console.print(kept_weights_text(training.get("kept_weights"), run.meta.get("family")), highlight=False)
    main = run.metrics.get("test") or run.metrics.get("val")
    if not detect:
        print_findings(diagnose(main, run.history.epochs if run.history else None))
    if run.bad_files:
        console.print(f"[yellow]skipped {len(run.bad_files)} unreadable file(s):[/]")
        for src, msg in run.bad_files[:20]:
            console.print(f"  {src}: {msg}")
    console.print(f"run: [bold]{run.path}[/]  report: {run.report}")


SEGMENT_HEADS = (("miou", "mIoU"), ("pixel_accuracy", "pixel acc."), ("mean_dice", "mean Dice"),
                 ("boundary_f1", "boundary F1"))  # fmt: skip


def print_findings(findings: Any) -> None:
    """Degenerate outcomes (a single predicted class, chance level, NaN loss), in yellow."""
    for f in findings:
        console.print(f"[yellow]warning:[/] {f.message}", highlight=False)


def _headline(m: dict[str, Any]) -> list[Any]:
    return [m.get("accuracy"), m.get("macro_f1"), m.get("weighted", {}).get("f1"), m.get("num_samples")]


def cmd_evaluate(args: argparse.Namespace) -> int:
    from imgrec.evaluation import diagnose, evaluate_run

    result, out_dir = evaluate_run(args.run, args.data, top_k=tuple(args.top_k))
    m = result.metrics
    if "map" in m:
        return _print_detection_eval(result, out_dir, args.format)
    if "miou" in m:
        return _print_segmentation_eval(result, out_dir, args.format)
    findings = diagnose(m)
    if args.format == "json":
        console.print_json(to_json({**m, "warnings": [f.to_dict() for f in findings]}))
        return 0
    topk = m.get("top_k_accuracy", {})
    cols = ["accuracy", *[f"top-{k}" for k in topk], "macro F1", "weighted F1", "images"]
    acc, macro, weighted, n = _headline(m)
    console.print(table(None, cols, [[acc, *topk.values(), macro, weighted, n]]))
    per = m["per_class"]
    rows = [[c, v["precision"], v["recall"], v["f1"], v["support"]] for c, v in per.items()]
    console.print(table("per class", ["class", "precision", "recall", "F1", "support"], rows))
    print_findings(findings)
    if result.bad:
        console.print(f"[yellow]skipped {len(result.bad)} unreadable file(s)[/]")
    console.print(f"report: {out_dir / 'report.html'}")
    return 0


def _print_detection_eval(result: Any, out_dir: Path, fmt: str) -> int:
    m = result.metrics
    if fmt == "json":
        console.print_json(to_json(result.to_dict()))
        return 0
    if "mask_map" in m:  # instance segmentation: box and mask AP side by side
        return _print_instance_eval(result, out_dir)
    console.print(table(None, [h for _, h in AP_HEADS] + ["images", "boxes"],
                        [[m.get(k) for k, _ in AP_HEADS] + [m.get("images"), m.get("gt_boxes")]]))  # fmt: skip
    per = m.get("per_class") or {}
    rows = [[c, v.get("ap"), v.get("ap50"), v.get("gt"), v.get("detections")] for c, v in per.items() if v.get("gt")]
    console.print(table("per class", ["class", "AP", "AP@.5", "boxes", "detections"], rows, key=0))
    if result.bad:
        console.print(f"[yellow]skipped {len(result.bad)} unreadable file(s)[/]")
    console.print(f"report: {out_dir / 'report.html'}")
    return 0


AP_HEADS = (("map", "mAP"), ("map50", "mAP@.5"), ("map75", "mAP@.75"), ("map_small", "small"),
            ("map_medium", "medium"), ("map_large", "large"), ("ar100", "AR@100"))  # fmt: skip


def _print_instance_eval(result: Any, out_dir: Path) -> int:
    m = result.metrics
    rows = [[kind, *(m.get(p + k) for k, _ in AP_HEADS), m.get("images"), m.get(n)]
            for kind, p, n in (("box", "", "gt_boxes"), ("mask", "mask_", "gt_masks"))]  # fmt: skip
    console.print(table(None, ["", *(h for _, h in AP_HEADS), "images", "objects"], rows))
    per = m.get("per_class") or {}
    rows = [[c, v.get("ap"), v.get("mask_ap"), v.get("ap50"), v.get("mask_ap50"), v.get("gt"), v.get("detections")]
            for c, v in per.items() if v.get("gt")]  # fmt: skip
    heads = ["class", "box AP", "mask AP", "box AP@.5", "mask AP@.5", "objects", "detections"]
    console.print(table("per class", heads, rows, key=0))
    if result.bad:
        console.print(f"[yellow]skipped {len(result.bad)} unreadable file(s)[/]")
    console.print(f"report: {out_dir / 'report.html'}")
    return 0


def _print_segmentation_eval(result: Any, out_dir: Path, fmt: str) -> int:
    m = result.metrics
    if fmt == "json":
        console.print_json(to_json(result.to_dict()))
        return 0
    console.print(table(None, [h for _, h in SEGMENT_HEADS] + ["images"],
                        [[m.get(k) for k, _ in SEGMENT_HEADS] + [m.get("images")]]))  # fmt: skip
    per = m.get("per_class") or {}
    rows = [[c, v.get("iou"), v.get("dice"), v.get("boundary_f1"), v.get("pixels")]
            for c, v in per.items() if v.get("iou") is not None]  # fmt: skip
    console.print(table("per class", ["class", "IoU", "Dice", "boundary F1", "pixels"], rows, key=0))
    if result.bad:
        console.print(f"[yellow]skipped {len(result.bad)} unreadable file(s)[/]")
    console.print(f"report: {out_dir / 'report.html'}")
    return 0


LEADERBOARD = {
    "run": "run",
    "fingerprint": "data",
    "split": "split",
    "images": "images",
    "accuracy": "acc",
    "macro_f1": "macro F1",
    "train_seconds": "train s",
    "ms_per_image": "ms/img",
    "size_mb": "MB",
    "params": "params",
}


def cmd_compare(args: argparse.Namespace) -> int:
    from imgrec.evaluation import comparability_warnings, compare_runs

    rows = compare_runs(args.runs)
    warnings = comparability_warnings(rows)
    if args.format == "json":
        console.print_json(to_json({"runs": rows, "warnings": warnings}))
        return 0
    console.print(leaderboard_table(rows))
    for line in warnings:
        console.print(f"[yellow]warning:[/] {line}", highlight=False)
    return 0


def leaderboard_table(rows: list[dict[str, Any]]) -> Any:
    """The compare table: best first; ``data`` is the start of the dataset fingerprint."""
    body = [[_cell(c, r.get(c)) for c in LEADERBOARD] for r in rows]
    return table("leaderboard", list(LEADERBOARD.values()), body)


def _cell(column: str, value: Any) -> Any:
    if column == "params":
        return _params(value)
    if column == "fingerprint" and value is not None:
        return str(value)[:8]
    return value
