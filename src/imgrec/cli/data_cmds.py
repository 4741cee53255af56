"""``imgrec data check | split | preview``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from imgrec.cli.output import console, table, to_json, write_text
from imgrec.errors import ImgrecError, MissingInputError

SEVERITY_STYLE = {"error": "red", "warning": "yellow", "info": "cyan"}


def _source_options(p: argparse.ArgumentParser) -> None:
    """``--task`` and ``--classes``: which task to read (COCO: detect, instance, segment), class names."""
    p.add_argument("--task", choices=["detect", "instance", "segment"], default=None,
                   help="read COCO as detect (boxes, default), instance (boxes + masks) or segment (a class per pixel)")
    p.add_argument("--classes", default=None, metavar="NAMES|FILE",
                   help="mask folders / VOC segmentation: class names (a,b,c or a file), instead of classes.txt")


def register(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="inspect, split and preview datasets")
    dsub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    p = dsub.add_parser("check", help="counts, corrupt files, duplicates (also across splits), imbalance, tiny images")
    p.add_argument("data")
    p.add_argument("--out", "--json", dest="out", metavar="FILE", help="write the JSON report to FILE (default: none)")
    p.add_argument("--min-side", type=int, default=16, help="report images with a side under this")
    p.add_argument("--near-dup-distance", type=int, default=4, help="max Hamming distance of perceptual hashes")
    p.add_argument("--splits", help="a split manifest: flag duplicates that cross its splits")
    p.add_argument("--strict", action="store_true", help="exit 65 when errors are found")
    p.add_argument("--format", dest="source_format", default="auto", help="the dataset format (default: detect it)")
    _source_options(p)
    p.set_defaults(func=cmd_check)

    p = dsub.add_parser("split", help="stratified, seeded, reproducible split manifest")
    p.add_argument("data")
    p.add_argument("--val", type=float, default=0.1)
    p.add_argument("--test", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="splits.json")
    p.add_argument("--format", dest="source_format", default="auto", help="the dataset format (default: detect it)")
    _source_options(p)
    p.set_defaults(func=cmd_split)

    p = dsub.add_parser(
        "convert", help="convert labels between COCO JSON, YOLO txt, Pascal VOC XML and mask folders (images + masks)"
    )
    p.add_argument("data", help="the source dataset (format detected, or --from)")
    p.add_argument("--to", required=True, choices=["coco", "yolo", "voc", "masks"], help="the format to write")
    p.add_argument("--mask-encoding", choices=["rle", "polygon"], default="rle",
                   help="masks to COCO: rle (exact, default) or polygon (OpenCV contours; holes stay RLE)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="a new (or empty) folder; it appears only when the whole conversion succeeds")
    p.add_argument(
        "--from", "--format", dest="source_format", default="auto", help="the source format (default: detect it)"
    )
    _source_options(p)
    p.set_defaults(func=cmd_convert)

    p = dsub.add_parser("preview", help="grid image of augmented samples")
    p.add_argument("data")
    p.add_argument("--augment", default="standard", help="none, light, flip, flip-shift, standard or strong")
    p.add_argument("--n", type=int, default=6, help="number of source images")
    p.add_argument("--variants", type=int, default=5, help="augmented copies per image")
    p.add_argument("--size", type=int, default=96, help="cell size in pixels")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="augment_preview.png")
    p.add_argument("--format", dest="source_format", default="auto", help="the dataset format (default: detect it)")
    _source_options(p)
    p.set_defaults(func=cmd_preview)


def _load(path: str, format: str = "auto", args: argparse.Namespace | None = None) -> Any:
    from imgrec.data import load_dataset

    if path != "digits" and not Path(path).exists():
        raise MissingInputError(f"Data not found: {path}")
    task, classes = (getattr(args, "task", None), getattr(args, "classes", None))
    return load_dataset(path, format=format, task=task, classes=classes)


def cmd_check(args: argparse.Namespace) -> int:
    from imgrec.data import check_dataset, load_splits
    from imgrec.errors import DataError

    ds = _load(args.data, args.source_format, args)
    splits = load_splits(ds, args.splits) if args.splits else None
    with console.status(f"checking {len(ds)} images..."):
        report = check_dataset(ds, min_side=args.min_side, near_dup_distance=args.near_dup_distance, splits=splits)
    data = report.to_dict()
    console.print(_counts_table(ds, report.num_boxes, report.pixel_counts, report.class_counts))
    for prob in data.get("problems", []):
        style = SEVERITY_STYLE.get(prob["severity"], "white")
        console.print(f"[{style}]{prob['severity']}[/] {prob['code']}: {prob['message']}")
    if not data.get("problems"):
        console.print("[green]no problems found[/]")
    if args.out:
        write_text(args.out, to_json(data))
        console.print(f"report: {args.out}")
    errors = [p for p in data.get("problems", []) if p["severity"] == "error"]
    if args.strict and errors:
        where = f"; see {args.out}" if args.out else " (listed above)"
        raise DataError(f"{len(errors)} error(s) found in {args.data}{where}.")
    return 0


def _counts_table(ds: Any, num_boxes: int, pixels: dict[str, int] | None = None,
                  images: dict[str, int] | None = None) -> Any:  # fmt: skip
    title = f"{ds.name}: {len(ds)} images, {ds.num_classes} classes"
    if ds.task == "segment":
        total = max(1, sum((pixels or {}).values()))
        rows = [[c, (images or {}).get(c, 0), n, f"{n / total:.2%}"] for c, n in (pixels or {}).items()]
        return table(f"{title} (segment)", ["class", "images", "pixels", "share"], rows)
    if ds.task not in ("detect", "instance"):
        return table(title, ["class", "images"], sorted(ds.class_counts().items()))
    boxes = ds.instance_counts()
    rows = [[c, n, boxes[c]] for c, n in sorted(ds.class_counts().items())]
    return table(f"{title}, {num_boxes} boxes ({ds.task})", ["class", "images", "boxes"], rows)


def cmd_split(args: argparse.Namespace) -> int:
    from imgrec.data import split_dataset
    from imgrec.errors import OutputError

    ds = _load(args.data, args.source_format, args)
    masks = " (reading which classes each mask holds)" if ds.task == "segment" else ""
    with console.status(f"splitting {len(ds)} items{masks}..."):
        splits = split_dataset(ds, val=args.val, test=args.test, seed=args.seed)
    try:
        splits.save(args.out)
    except OSError as exc:
        raise OutputError(f"Cannot write {args.out}: {exc}") from None
    rows = [
        [name, len(part), *[part.class_counts().get(c, 0) for c in ds.classes]]
        for name, part in (("train", splits.train), ("val", splits.val), ("test", splits.test))
    ]
    console.print(table(None, ["split", "images", *ds.classes], rows))
    for note in splits.notes:  # a size other than the fraction's, and why; an empty val/test
        console.print(f"[yellow]{'warning:' if note.empty else 'note'}[/] {note.text}", highlight=False)
    console.print(f"manifest: {args.out}")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from imgrec.data.convert import convert_dataset

    ds = _load(args.data, args.source_format, args)
    with console.status(f"writing {len(ds)} images as {args.to}..."):
        result = convert_dataset(ds, args.to, args.out, mask_encoding=args.mask_encoding)
    console.print(
        f"{args.to}: {result.images} images, {result.boxes} boxes -> {result.out} "
        f"({result.linked} linked, {result.copied} copied)"
    )
    for note in result.notes:
        console.print(f"[yellow]note[/] {note}")
    return 0


def cmd_preview(args: argparse.Namespace) -> int:
    import numpy as np

    from imgrec.imaging.draw import save_png
    from imgrec.transforms import preview_grid

    ds = _load(args.data, args.source_format, args)
    rng = np.random.default_rng(args.seed)
    picks = rng.choice(len(ds), size=min(args.n, len(ds)), replace=False)
    images, boxes = [], []
    masks: list[Any] = []
    for i in picks:
        try:
            img = ds.load(int(i))
            mask = _preview_mask(ds, int(i), img) if ds.task in ("segment", "instance") else None
        except ImgrecError as exc:  # show the rest; say which one failed
            console.print(f"[yellow]skipped[/] {ds.sources[int(i)]}: {exc}")
            continue
        images.append(img)
        masks.append(mask)
        if ds.targets is not None:
            boxes.append(ds.targets[int(i)].boxes)
    grid = preview_grid(
        images,
        args.augment,
        seed=args.seed,
        variants=args.variants,
        cell=args.size,
        boxes=boxes if ds.targets is not None and ds.task == "detect" else None,
        masks=masks if ds.task in ("segment", "instance") else None,
    )
    try:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        save_png(grid, args.out)
    except OSError as exc:
        from imgrec.errors import OutputError

        raise OutputError(f"Cannot write {args.out}: {exc}") from None
    console.print(f"preview: {args.out}")
    return 0


def _preview_mask(ds: Any, i: int, img: Any) -> Any:
    """The item's index mask (instances rendered), checked against its image's size."""
    from imgrec.data.masks import render_objects
    from imgrec.errors import DataError

    mask = ds.load_mask(i) if ds.masks is not None else render_objects(ds.targets[i], (img.shape[1], img.shape[0]))
    if mask.shape != img.shape[:2]:
        raise DataError(f"its mask is {mask.shape[1]}x{mask.shape[0]}, the image {img.shape[1]}x{img.shape[0]}")
    return mask
