"""``imgrec faces detect|blur|evaluate``: face detection, privacy blurring and detector scoring
(recognition against collections: :mod:`imgrec.cli.faces_collections`).

- ``imgrec faces detect photos/ [--detector yunet] [--weights FILE] [--save annotated/] --format table|json``
- ``imgrec faces blur photos/ --out blurred/ [--pixelate] [--margin 0.25]``
- ``imgrec faces evaluate faces/testing.xml [more.xml] [--detector yunet]`` (dlib imglab XML)
- ``imgrec faces evaluate --embedder NAME|RUN [--weights FILE] identities/ [--out report.json]``:
  verification (ROC AUC, TAR@FAR, EER and ``threshold_eer``) and rank-1 of a face embedder on
  one sub-folder of face photos or crops per person; ``--detector-weights`` is then the
  detector's file, ``--no-detect`` takes every image whole as an aligned crop.

Inputs are files, folders and glob patterns (detect also takes URLs and ``-``). Every input
that can be read is processed; the others are error rows, and the exit code is 65 (66 when
the only failures are inputs that do not exist).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from imgrec.cli.detect_output import emit_detections, save_annotated
from imgrec.cli.inputs import Fetching, Source, failures_exit_code, gather
from imgrec.cli.output import add_max_pixels, console, error_console, shorten_path, table, to_json, write_text
from imgrec.errors import UsageError
from imgrec.types import ItemError

EXIT_BAD_DATA, EXIT_MISSING = 65, 66
DETECTOR_CHOICES = ("yunet", "yunet-n", "ultraface", "ultraface-slim", "dlib-hog", "dlib-cnn", "haar")


def register(sub: argparse._SubParsersAction) -> None:
    from imgrec.cli import faces_collections

    p = sub.add_parser("faces", help="find, blur and recognize faces: detect, enroll persons in collections, "
                       "identify, verify, cluster, evaluate")  # fmt: skip
    verbs = p.add_subparsers(dest="faces_command", metavar="VERB", required=True)
    _register_detect(verbs)
    _register_blur(verbs)
    _register_evaluate(verbs)
    faces_collections.register(verbs, DETECTOR_CHOICES)


def _detector_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--detector", default="yunet", choices=DETECTOR_CHOICES, help="face detector (default yunet)")
    p.add_argument("--weights", help="the detector's ONNX file (yunet, ultraface); default: download the official "
                   "file once (sha256-checked)")  # fmt: skip
    p.add_argument("--conf", type=float, help="least face score (default: the detector's own, e.g. 0.6 for yunet)")
    p.add_argument("--threads", type=int, help="CPU threads for the model math (default: one per physical core)")


def _register_detect(verbs: argparse._SubParsersAction) -> None:
    p = verbs.add_parser("detect", help="face boxes and 5 landmarks for images, folders, globs, URLs or -")
    p.add_argument("inputs", nargs="+", help="image files, folders, quoted glob patterns, http(s) URLs, or -")
    _detector_options(p)
    p.add_argument("--iou", type=float, help="NMS IoU between faces (default 0.3)")
    p.add_argument("--max-det", type=int, help="faces per image at most (default 1000)")
    p.add_argument("--format", choices=("table", "json", "csv", "coco"), default="table")
    p.add_argument("--out", help="write the output to this file instead of the terminal")
    p.add_argument("--save", metavar="DIR", help="also write each image with its faces drawn into DIR")
    p.add_argument("--batch-size", type=int, default=None, help="images per model call")
    add_max_pixels(p)
    p.set_defaults(func=cmd_detect, allow_private_urls=False, url_timeout=10.0)


def _register_blur(verbs: argparse._SubParsersAction) -> None:
    p = verbs.add_parser("blur", help="write copies of images with every face blurred (or pixelated)")
    p.add_argument("inputs", nargs="+", help="image files, folders or quoted glob patterns")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the blurred copies (subfolders kept)")
    p.add_argument("--pixelate", action="store_true", help="pixelate instead of blurring")
    p.add_argument("--margin", type=float, default=0.25, help="grow each face box by this fraction per side (0.25)")
    _detector_options(p)
    p.add_argument("--format", choices=("table", "json"), default="table")
    add_max_pixels(p)
    p.set_defaults(func=cmd_blur)


def _register_evaluate(verbs: argparse._SubParsersAction) -> None:
    p = verbs.add_parser("evaluate", help="AP@0.5 of a face detector on dlib imglab XML annotations, or (--embedder) "
                         "verification and rank-1 of a face embedder on an identity folder")  # fmt: skip
    p.add_argument("xml", nargs="+", metavar="XML|FOLDER", help="imglab XML files (<image file=...><box top left "
                   "width height/>); with --embedder, one folder of <person>/<image> files")  # fmt: skip
    p.add_argument("--detector", default="yunet", choices=DETECTOR_CHOICES, help="face detector (default yunet)")
    p.add_argument("--weights", help="the detector's ONNX file (yunet, ultraface); with --embedder, the embedder's "
                   "(sface)")  # fmt: skip
    p.add_argument("--embedder", metavar="NAME|RUN", help="evaluate this face embedder instead: dlib-resnet, sface, "
                   "or an `imgrec import FILE --task embed` run")  # fmt: skip
    p.add_argument("--detector-weights", metavar="FILE", help="with --embedder: the detector's ONNX file")
    p.add_argument("--no-detect", action="store_true", help="with --embedder: the images are aligned face crops; "
                   "take each whole, detect nothing")  # fmt: skip
    p.add_argument("--threads", type=int, help="CPU threads for the model math")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--out", help="also write the figures as JSON to this file")
    p.set_defaults(func=cmd_evaluate)


def _predictor(args: argparse.Namespace) -> Any:
    from imgrec.analyzers.faces import face_detector

    return face_detector(args.detector, weights=args.weights, threads=args.threads, weights_option="--weights")


def cmd_detect(args: argparse.Namespace) -> int:
    from imgrec.analyzers.faces import face_options
    from imgrec.cli.predict_cmd import decode_limits, predict_sources

    options = face_options(args.detector, args.conf, args.iou, args.max_det)
    predictor = _predictor(args)
    predictor.options(**options)
    limits = decode_limits(args)
    how = Fetching(limits, getattr(sys.stdin, "buffer", None), args.allow_private_urls, args.url_timeout)
    sources = gather(args.inputs, how)
    results = predict_sources(predictor, sources, args, limits, options)
    emit_detections(results, args, console)
    if args.save:
        items = {s.name: s.item for s in sources if s.item is not None}
        save_annotated(results, items, args.save, error_console, limits)  # stderr: stdout may be the JSON
    return _exit_code(results, sources)


def cmd_blur(args: argparse.Namespace) -> int:
    from pathlib import Path

    from imgrec.analyzers.faces import blur_files, face_options
    from imgrec.cli.predict_cmd import decode_limits

    options = face_options(args.detector, args.conf)
    predictor = _predictor(args)
    limits = decode_limits(args)
    sources, items = [], []
    for arg in args.inputs:
        found = gather([arg], Fetching(limits))
        sources += found
        root = arg if Path(arg).is_dir() else None
        items += [(s.name, root) for s in found if isinstance(s.item, str)]
    done = iter(blur_files(items, args.out, predictor, options, margin=args.margin, pixelate=args.pixelate,
                           limits=limits))  # fmt: skip
    results: list[Any] = [next(done) if isinstance(s.item, str) else _error(s) for s in sources]
    _emit_blurred(results, args)
    return _exit_code(results, sources)


def _error(s: Source) -> ItemError:
    err = s.error
    return ItemError(code=err.code if err else "image_invalid", message=str(err or "not a local file"), path=s.name)


def _emit_blurred(results: list[Any], args: argparse.Namespace) -> None:
    if args.format == "json":
        console.out(to_json([r.to_dict() for r in results]), highlight=False)
        return
    room = max(16, (console.width - 30) // 3)
    rows = [[shorten_path(str(r.path), room), None, None, f"{r.code}: {r.message}"] if isinstance(r, ItemError) else
            [shorten_path(r.path, room), len(r.faces), shorten_path(r.out, room), None] for r in results]  # fmt: skip
    cols = ["path", "faces", "written", "error"]
    if all(r[-1] is None for r in rows):
        cols, rows = cols[:-1], [r[:-1] for r in rows]
    console.print(table(None, cols, rows, key=0, wrap=("error",)))
    done = [r for r in results if not isinstance(r, ItemError)]
    console.print(f"wrote {len(done)} image(s) to {args.out}, {sum(len(r.faces) for r in done)} face(s) hidden")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from imgrec.analyzers.faces import evaluate_faces

    if args.embedder:
        return _evaluate_embedder(args)
    if args.detector_weights or args.no_detect:
        raise UsageError("--detector-weights and --no-detect go with --embedder; a detector evaluation takes "
                         "--weights.")  # fmt: skip
    r = evaluate_faces(args.xml, detector=args.detector, weights=args.weights, threads=args.threads)
    if args.out:
        write_text(args.out, to_json(r))
    if args.format == "json":
        console.out(to_json(r), highlight=False)
        return 0
    shown = [["AP@0.5", _f(r["map50"])], ["AP@[.5:.95]", _f(r["map"])], ["AP@0.75", _f(r["map75"])],
             ["found", f"{r['found']} of {r['faces']} faces (score >= {r['conf']})"], ["images", r["images"]],
             ["ms / image", r["ms_per_image"]]]  # fmt: skip
    console.print(table(f"{r['detector']} on {', '.join(args.xml)}", ["figure", "value"], shown))
    for bad in r["bad_files"]:
        error_console.print(f"[yellow]unreadable:[/] {bad['source']}: {bad['error']}", highlight=False)
    return EXIT_BAD_DATA if r["bad_files"] else 0


def _evaluate_embedder(args: argparse.Namespace) -> int:
    from imgrec.analyzers.faces import evaluate_embedder, face_detector, face_embedder

    if len(args.xml) != 1:
        raise UsageError(f"--embedder takes one identity folder (one sub-folder per person); received {len(args.xml)} "
                         "inputs.")  # fmt: skip
    embedder = face_embedder(args.embedder, weights=args.weights, threads=args.threads, weights_option="--weights")
    detector = None
    if not args.no_detect:
        detector = face_detector(args.detector, weights=args.detector_weights, threads=args.threads,
                                 weights_option="--detector-weights")  # fmt: skip
    r = evaluate_embedder(embedder, args.xml[0], detector=detector)
    if args.out:
        write_text(args.out, to_json(r))
    if args.format == "json":
        console.out(to_json(r), highlight=False)
    else:
        console.print(table(f"{r['embedder']} ({r['dim']}-d, {r['template']}) on {args.xml[0]}", ["figure", "value"],
                            _embedder_rows(r)))  # fmt: skip
    for bad in r["bad_files"]:
        error_console.print(f"[yellow]unreadable:[/] {bad['source']}: {bad['error']}", highlight=False)
    return EXIT_BAD_DATA if r["bad_files"] else 0


def _embedder_rows(r: dict[str, Any]) -> list[list[Any]]:
    far = r["tar_at_far"]
    return [["rank-1 (leave one out)", f"{r['rank1']:.4f} of {r['rank1_queries']} images"],
            ["verification AUC", f"{r['auc']:.4f}"], ["TAR @ FAR 1e-2", f"{far['0.01']:.4f}"],
            ["TAR @ FAR 1e-3", f"{far['0.001']:.4f}"], ["EER", f"{r['eer']:.4f}"],
            ["threshold_eer (cosine)", f"{r['threshold_eer']:.4f}"],
            ["pairs", f"{r['genuine_pairs']} same person, {r['impostor_pairs']} different"],
            ["images", f"{r['images']} of {r['persons']} persons ({r['aligned']} aligned, {r['fallback']} whole)"],
            ["faces / s", r["faces_per_second"]]]  # fmt: skip


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _exit_code(results: list[Any], sources: list[Source]) -> int:
    return failures_exit_code(results, sources)
