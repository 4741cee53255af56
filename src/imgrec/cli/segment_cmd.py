"""``imgrec segment``: promptable segmentation with Segment Anything (SAM).

- ``imgrec segment photo.jpg --points 320,240 [--points 100,100:0] [--box 10,10,200,300] [--mask rough.png]
  --model sam --weights sam_vit_b_01ec64.pth [--multimask]``: one mask for the points, box and rough
  mask together (three candidates with ``--multimask``); several ``--box`` without points: one mask
  per box. ``--mask``: a PNG in the image's pixels, nonzero = the object (SAM's mask prompt).
- ``imgrec segment photos/ --boxes-from runs/<det-run> --model sam --weights FILE``: the detector's
  boxes as prompts; each mask keeps the detector's label and score.
- ``imgrec segment photos/ --everything --model sam --weights FILE``: every object.

Output: ``--format table|json`` (COCO RLE per mask), ``--save DIR`` overlays, ``--masks DIR`` index
PNGs. Inputs are files, folders, globs, URLs and ``-`` like ``predict``; each input that can be
segmented is, the others are error rows. Exit code 0; 66 when the only failures are missing
inputs; 2 when they are all prompts that do not fit their image (a point outside it, a mask of
another size); 65 otherwise (a corrupt --mask file: 65 before anything runs).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any

from imgrec.analyzers.segment.prompts import MISFITS
from imgrec.cli.inputs import Fetching, Source, failures_exit_code, gather
from imgrec.cli.instances_output import emit_instances, save_masks, save_overlays
from imgrec.cli.output import add_max_pixels, console, error_console
from imgrec.errors import ImgrecError, UsageError
from imgrec.types import ItemError

EXIT_USAGE, EXIT_BAD_DATA, EXIT_MISSING = 2, 65, 66
MODELS = ("sam",)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("segment", help="outline objects with Segment Anything: from points or boxes, a detection "
                       "run's boxes, or everything")  # fmt: skip
    p.add_argument("inputs", nargs="+", help="image files, folders, quoted glob patterns, http(s) URLs, or -")
    p.add_argument("--model", default="sam", choices=MODELS, help="the promptable segmenter (sam)")
    p.add_argument("--weights", metavar="FILE", help="SAM checkpoint (.pth or .safetensors), e.g. sam_vit_b_01ec64.pth "
                   "or MobileSAM's mobile_sam.pt")  # fmt: skip
    p.add_argument("--sam-type", choices=("vit_b", "vit_l", "vit_h"), help="insist on this SAM (default: read from "
                   "the file); with --download, the file to fetch (vit_b)")  # fmt: skip
    p.add_argument("--download", action="store_true", help="without --weights: download the official checkpoint "
                   "once (sha256-checked)")  # fmt: skip
    g = p.add_argument_group("prompts (x, y in the image's pixels)")
    g.add_argument("--points", action="append", metavar="X,Y[:L]", help="a point on the object (L=1, default) or on "
                   "the background (L=0); repeat for more points")  # fmt: skip
    g.add_argument("--box", action="append", metavar="X1,Y1,X2,Y2", help="a box around the object; several boxes "
                   "(without points): one mask each")  # fmt: skip
    g.add_argument("--mask", metavar="FILE", help="a rough mask of the object: a PNG of the image's size, nonzero "
                   "pixels = the object (SAM's mask prompt); alone or with --points and one --box")  # fmt: skip
    g.add_argument("--multimask", action="store_true", help="SAM's three candidate masks per prompt, best IoU first")
    d = p.add_argument_group("boxes from a detection run")
    d.add_argument("--boxes-from", metavar="RUN", help="a detection run whose boxes are the prompts")
    d.add_argument("--conf", type=float, help="the detector's least box score (default 0.25)")
    d.add_argument("--iou", type=float, help="the detector's NMS IoU (0.45)")
    d.add_argument("--classes", help="keep these detected classes only, comma-separated: person,dog")
    e = p.add_argument_group("segment everything")
    e.add_argument("--everything", action="store_true", help="every object: a grid of point prompts")
    e.add_argument("--points-per-side", type=int, help="the grid (32: 32 x 32 points)")
    e.add_argument("--pred-iou-thresh", type=float, help="least predicted IoU kept (0.88)")
    e.add_argument("--stability-score-thresh", type=float, help="least stability score kept (0.95)")
    e.add_argument("--min-mask-region-area", type=int, help="remove holes and islands below this area (0: off)")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--out", help="write the output to this file instead of the terminal")
    p.add_argument("--save", metavar="DIR", help="also write each image with its masks drawn into DIR")
    p.add_argument("--masks", metavar="DIR", help="also write each image's masks as an index PNG into DIR")
    p.add_argument("--threads", type=int, help="CPU threads for the model math (default: torch's)")
    add_max_pixels(p)
    p.set_defaults(func=cmd_segment, allow_private_urls=False, url_timeout=10.0)


def cmd_segment(args: argparse.Namespace) -> int:
    from imgrec.analyzers.segment import load_sam
    from imgrec.cli.predict_cmd import decode_limits

    run = _mode(args)  # checks the flags before anything is loaded
    sam = load_sam(args.weights, sam_type=args.sam_type, download=args.download, threads=args.threads)
    limits = decode_limits(args)
    how = Fetching(limits, getattr(sys.stdin, "buffer", None), args.allow_private_urls, args.url_timeout)
    sources = gather(args.inputs, how)
    segment = run(sam, limits)
    results = [_one(segment, s) for s in sources]
    emit_instances(results, args, console)
    items = {s.name: s.item for s in sources if s.item is not None}
    if args.save:
        save_overlays(results, items, args.save, error_console, limits)  # stderr: stdout may be the JSON
    if args.masks:
        save_masks(results, args.masks, error_console)
    return _exit_code(results, sources)


def _one(segment: Any, s: Source) -> Any:
    if s.error is not None:
        return ItemError(code=s.error.code, message=str(s.error), path=s.name)
    try:
        return dataclasses.replace(segment(s.item), path=s.name)
    except ImgrecError as exc:
        return ItemError(code=exc.code, message=str(exc), path=s.name)


def _mode(args: argparse.Namespace) -> Any:
    """The function segmenting one input, for the one mode the flags ask for."""
    prompts = bool(args.points or args.box or args.mask)
    everything, detect = args.everything, args.boxes_from is not None
    if prompts + everything + detect != 1:
        raise UsageError("Say what to segment, one way: --points/--box/--mask (prompts), --boxes-from RUN (a "
                         "detection run's boxes) or --everything.")  # fmt: skip
    _refuse(args, not detect, ("conf", "iou", "classes"), "--boxes-from")
    _refuse(args, not everything, ("points_per_side", "pred_iou_thresh", "stability_score_thresh",
                                   "min_mask_region_area"), "--everything")  # fmt: skip
    if args.multimask and not prompts:
        raise UsageError("--multimask goes with --points/--box/--mask prompts.")
    if everything:
        return _everything(args)
    return _detect(args) if detect else _prompts(args)


def _refuse(args: argparse.Namespace, refuse: bool, names: tuple[str, ...], mode: str) -> None:
    given = [f"--{n.replace('_', '-')}" for n in names if getattr(args, n) is not None]
    if refuse and given:
        raise UsageError(f"{', '.join(given)} go(es) with {mode}.")


def _prompts(args: argparse.Namespace) -> Any:
    from imgrec.analyzers.segment import Prompt, parse_box, parse_point

    points = tuple(parse_point(t) for t in args.points or [])
    boxes = [parse_box(t) for t in args.box or []]
    if len(boxes) > 1 and (points or args.mask):
        what = "Points" if points else "A mask"
        raise UsageError(f"{what} and several boxes: give them with one --box (one prompt), or boxes alone "
                         "(one mask each).")  # fmt: skip
    region = _read_mask(args) if args.mask else None
    one = Prompt(points, boxes[0] if boxes else None, region=region)
    prompts = [Prompt(box=b) for b in boxes] if len(boxes) > 1 else [one]

    def run(sam: Any, limits: Any) -> Any:
        def one(item: Any) -> Any:
            sam.set_image(item, limits)
            return sam.segment(prompts, multimask=args.multimask)

        return one

    return run


def _read_mask(args: argparse.Namespace) -> Any:
    """``--mask FILE`` through the safe mask decoder (lossless formats only): nonzero = the object."""
    from imgrec.analyzers.segment.prompts import as_region
    from imgrec.cli.predict_cmd import decode_limits
    from imgrec.imaging.masks import load_mask

    region = as_region(load_mask(args.mask, limits=decode_limits(args)).values)
    if region is None or not region.any():
        raise UsageError(f"--mask {args.mask} has no nonzero pixel: nothing marks the object. Expected a mask of "
                         "the image's size whose nonzero pixels cover the object roughly.")  # fmt: skip
    return region


def _detect(args: argparse.Namespace) -> Any:
    from imgrec.analyzers.segment import segment_detections
    from imgrec.analyzers.segment.detect import check_detector
    from imgrec.inference import Predictor

    detector = Predictor.from_run(args.boxes_from, threads=args.threads)
    check_detector(detector)
    classes = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else None
    options = detector.options(conf=args.conf, iou=args.iou, classes=classes)  # checked now

    def run(sam: Any, limits: Any) -> Any:
        return lambda item: segment_detections(sam, detector, item, limits=limits, **options)

    return run


def _everything(args: argparse.Namespace) -> Any:
    from imgrec.analyzers.segment import everything_options

    options = everything_options(points_per_side=args.points_per_side, pred_iou_thresh=args.pred_iou_thresh,
                                 stability_score_thresh=args.stability_score_thresh,
                                 min_mask_region_area=args.min_mask_region_area)  # fmt: skip

    def run(sam: Any, limits: Any) -> Any:
        def one(item: Any) -> Any:
            sam.set_image(item, limits)
            return sam.everything(**options)

        return one

    return run


def _exit_code(results: list[Any], sources: list[Source]) -> int:
    code = failures_exit_code(results, sources)
    failed = [r for r in results if isinstance(r, ItemError)]
    return EXIT_USAGE if code == EXIT_BAD_DATA and all(r.code in MISFITS for r in failed) else code
