"""``imgrec cutout inputs... --out DIR [--model RUN | --weights FILE | --download]``: background removal.

Every input is segmented through the one inference path (``Predictor.predict``) and written as
``DIR/<name>.png``, RGBA at the photo's full resolution: the subject (every class but background,
or ``--classes``) kept, the rest transparent, with soft edges from the model's probabilities.
Without ``--model``, MediaPipe's selfie segmenter (:mod:`imgrec.models.selfie`) from ``--weights``,
the download cache, or ``--download``. Inputs that cannot be read are error rows; the exit code
is then 65 (66 when they are only missing inputs), as for ``predict``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from imgrec.cli.detect_output import OutputNames
from imgrec.cli.inputs import Fetching, gather
from imgrec.cli.output import add_max_pixels, console, shorten_path, table
from imgrec.errors import UsageError
from imgrec.imaging import DecodeLimits
from imgrec.types import ItemError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cutout", help="remove the background: RGBA PNGs with the subject kept, soft edges",
                       description="Cut the subject out of photos with a segmentation model: one RGBA PNG per "
                       "image, at full resolution, transparent outside the kept classes.")  # fmt: skip
    p.add_argument("inputs", nargs="+", help="image files, folders, quoted glob patterns, http(s) URLs, or -")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the RGBA PNGs (<name>.png)")
    p.add_argument("--model", metavar="RUN", help="a segmentation run (imported or trained); default: MediaPipe's "
                   "selfie segmenter from --weights")  # fmt: skip
    p.add_argument("--weights", metavar="FILE", help="MediaPipe's selfie_segmentation.tflite (or its landscape "
                   "variant), when no --model is given")  # fmt: skip
    p.add_argument("--download", action="store_true",
                   help="without --model / --weights: fetch MediaPipe's official selfie file (sha256-checked) once")
    p.add_argument("--threshold", type=float, default=0.5,
                   help="probability that counts as subject; alpha is 0.5 there (default 0.5)")
    p.add_argument("--feather", type=float, default=2.0,
                   help="edge softness in pixels for models without probabilities, 0 to 100; 0: hard edges (default 2)")
    p.add_argument("--classes", help="keep these classes, comma-separated (default: every class but background)")
    p.add_argument("--batch-size", type=int, default=None, help="images per model call (default 8)")
    p.add_argument("--threads", type=int, help="CPU threads for the model math (default: one per physical core)")
    add_max_pixels(p)
    p.add_argument("--allow-private-urls", action="store_true", help="also download from private addresses")
    p.add_argument("--url-timeout", type=float, default=10.0, help="seconds one URL may take to download (10)")
    p.set_defaults(func=cmd_cutout)


def segment_predictor(args: argparse.Namespace) -> Any:
    """The run of ``--model``, or the selfie segmenter; refuses a run of another task."""
    from imgrec.inference import Predictor

    if args.model:
        if args.weights or args.download:
            raise UsageError("Give either --model RUN or --weights FILE / --download, not both.")
        predictor = Predictor.from_run(args.model, threads=args.threads)
        if predictor.task.name != "segment":
            raise UsageError(f"{args.model} is a {predictor.task.name} model; cutout needs a segmentation run "
                             "(imgrec import FILE --task segment, or a trained segment run).")  # fmt: skip
        return predictor
    from imgrec.models.selfie import selfie_segmenter

    model, meta = selfie_segmenter(args.weights, download=args.download, threads=args.threads)
    return Predictor(model, meta)


def cmd_cutout(args: argparse.Namespace) -> int:
    from imgrec.cli.predict_cmd import _report_failures, decode_limits, predict_sources
    from imgrec.tasks.segment_draw import check_feather

    check_feather(args.feather)  # before the model loads
    predictor = segment_predictor(args)
    classes = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else None
    options = predictor.options(threshold=args.threshold, classes=classes)
    limits = decode_limits(args)
    how = Fetching(limits, getattr(sys.stdin, "buffer", None), args.allow_private_urls, args.url_timeout)
    sources = gather(args.inputs, how)
    results = predict_sources(predictor, sources, args, limits, options)
    items = {s.name: s.item for s in sources if s.item is not None}
    rows = _write_all(results, items, options, args, limits)
    cols = ["path", "cutout", "subject", "error"]
    if all(r[-1] is None for r in rows):
        cols, rows = cols[:-1], [r[:-1] for r in rows]
    rows = [[shorten_path(str(r[0]), max(16, console.width // 3)), *r[1:]] for r in rows]
    console.print(table(None, cols, rows, key=0, wrap=("error",)))
    written = sum(1 for r in results if not isinstance(r, ItemError))
    console.print(f"wrote {written} cut-out(s) to {args.out}")
    return _report_failures(results, sources)


def _write_all(results: list[Any], items: dict[str, Any], options: dict[str, Any], args: argparse.Namespace,
               limits: DecodeLimits) -> list[list[Any]]:  # fmt: skip
    """Write every cut-out, under unique names (``a/x.jpg``, ``b/x.jpg``: ``x.png``, ``x-2.png``); a row each."""
    out, names = Path(args.out), OutputNames()
    rows: list[list[Any]] = []
    for n, r in enumerate(results):
        if isinstance(r, ItemError):
            rows.append([r.path, None, None, f"{r.code}: {r.message}"])
        else:
            rows.append(_write(r, items, out / f"{names(str(r.path), n)}.png", options, args, limits))
    return rows


def _write(
    r: Any, items: dict[str, Any], target: Path, options: dict[str, Any], args: argparse.Namespace,
    limits: DecodeLimits,
) -> list[Any]:
    """Write one cut-out to ``target``; the row says where, and the share of the image kept."""
    import io

    from PIL import Image

    from imgrec.cli.segment_output import full_image
    from imgrec.files import write_bytes_atomic
    from imgrec.tasks.segment_draw import cutout

    rgba = cutout(full_image(r, items, limits), r, classes=options.get("classes") or None, feather=args.feather,
                  threshold=args.threshold)  # fmt: skip
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, "PNG")
    write_bytes_atomic(target, buf.getvalue())
    kept = float((rgba[..., 3] >= 128).mean())
    return [r.path, target.name, f"{100 * kept:.1f}%", None]
