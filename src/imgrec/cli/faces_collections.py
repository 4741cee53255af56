"""``imgrec faces collections|enroll|identify|verify|list|remove|delete|cluster``: recognize faces
against self-hosted collections (the store: a SQLite file by default, PostgreSQL by URL).

- ``imgrec faces collections create staff [--threshold T | --threshold-from report.json] [--embedder NAME|RUN]``
- ``imgrec faces collections list``
- ``imgrec faces enroll staff "Ada Lovelace" ada/*.jpg [--all-faces]``
- ``imgrec faces identify staff group.jpg [--top-k 3] [--save annotated/]``
- ``imgrec faces verify a.jpg b.jpg [--threshold T]``
- ``imgrec faces list staff`` · ``imgrec faces remove staff "Ada Lovelace"`` · ``imgrec faces delete staff --yes``
- ``imgrec faces cluster unlabeled/ --out groups/``

Every command on a collection takes ``--db PATH_OR_URL`` (default ``$IMGREC_DB``, else the data
directory) and uses the embedder the collection records (``--embedder`` only to load it from
elsewhere; the store refuses another embedder with exit 2). Per-image failures are rows of the
output and exit 65; a collection, person or file that does not exist is a message, not a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from imgrec.cli import faces_output as out
from imgrec.cli.output import add_max_pixels, console, error_console, to_json
from imgrec.errors import UsageError

EXIT_BAD_DATA = 65
DB_HELP = "the database: a folder, a SQLite file, or postgresql://USER@HOST/DB (default: $IMGREC_DB, else the data "
DB_HELP += "directory $IMGREC_HOME or ~/.local/share/imgrec)"


def register(verbs: argparse._SubParsersAction, detector_choices: tuple[str, ...]) -> None:
    """Add the recognition verbs to ``imgrec faces``."""
    _register_collections(verbs)
    _register_enroll(verbs, detector_choices)
    _register_identify(verbs, detector_choices)
    _register_verify(verbs, detector_choices)
    _register_small(verbs)
    _register_cluster(verbs, detector_choices)


def _db(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", metavar="PATH_OR_URL", help=DB_HELP)
    p.add_argument("--format", choices=("table", "json"), default="table")


def _embedder(p: argparse.ArgumentParser, default: str | None) -> None:
    said = f"default {default}" if default else "default: the one the collection records"
    p.add_argument("--embedder", metavar="NAME|RUN", default=default, help="face embedder: dlib-resnet, sface, or an "
                   f"`imgrec import FILE --task embed` run ({said})")  # fmt: skip
    p.add_argument("--embedder-weights", metavar="FILE", help="the embedder's ONNX file (sface)")


def _models(p: argparse.ArgumentParser, choices: tuple[str, ...], embedder: str | None) -> None:
    p.add_argument("--detector", default="yunet", choices=choices, help="face detector (default yunet)")
    p.add_argument("--weights", metavar="FILE", help="the detector's ONNX file (default: download the official file "
                   "once, sha256-checked)")  # fmt: skip
    _embedder(p, embedder)
    p.add_argument("--threads", type=int, help="CPU threads for the model math")
    add_max_pixels(p)


def _register_collections(verbs: argparse._SubParsersAction) -> None:
    p = verbs.add_parser("collections", help="create or list face collections")
    sub = p.add_subparsers(dest="collections_command", metavar="VERB", required=True)
    c = sub.add_parser("create", help="create an empty face collection for an embedder")
    c.add_argument("name", help="the collection's name")
    how = c.add_mutually_exclusive_group()
    how.add_argument("--threshold", type=float, help="cosine similarity from which a face is a known person "
                     "(default: the embedder's own: dlib-resnet 0.92, sface 0.363)")  # fmt: skip
    how.add_argument("--threshold-from", metavar="REPORT", help="take threshold_eer from `imgrec faces evaluate "
                     "--embedder ... --out REPORT`")  # fmt: skip
    _embedder(c, "dlib-resnet")
    _db(c)
    c.set_defaults(func=cmd_create)
    ls = sub.add_parser("list", help="the collections of the database")
    _db(ls)
    ls.set_defaults(func=cmd_collections)


def _register_enroll(verbs: argparse._SubParsersAction, choices: tuple[str, ...]) -> None:
    p = verbs.add_parser("enroll", help="add a person's faces from photos to a collection (one transaction)")
    p.add_argument("collection", help="the collection's name")
    p.add_argument("person", help="the person's name (created when new)")
    p.add_argument("images", nargs="+", help="photos of the person: files, folders or quoted glob patterns")
    p.add_argument("--all-faces", action="store_true", help="enroll every face of each photo, not only the largest "
                   "(check the listed boxes: a group photo enrolls strangers under this name)")  # fmt: skip
    _models(p, choices, None)
    _db(p)
    p.set_defaults(func=cmd_enroll)


def _register_identify(verbs: argparse._SubParsersAction, choices: tuple[str, ...]) -> None:
    p = verbs.add_parser("identify", help="who is in each photo: every face, its best matches, or 'unknown'")
    p.add_argument("collection", help="the collection's name")
    p.add_argument("images", nargs="+", help="photos: files, folders or quoted glob patterns")
    p.add_argument("--top-k", type=int, default=1, help="best persons per face (default 1)")
    p.add_argument("--save", metavar="DIR", help="also write each photo with boxes, landmarks and names into DIR")
    _models(p, choices, None)
    _db(p)
    p.set_defaults(func=cmd_identify)


def _register_verify(verbs: argparse._SubParsersAction, choices: tuple[str, ...]) -> None:
    p = verbs.add_parser("verify", help="whether two photos show one person (their largest faces)")
    p.add_argument("image_a")
    p.add_argument("image_b")
    p.add_argument("--threshold", type=float, help="cosine similarity from which they are one person (default: the "
                   "embedder's own)")  # fmt: skip
    _models(p, choices, "dlib-resnet")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=cmd_verify)


def _register_small(verbs: argparse._SubParsersAction) -> None:
    ls = verbs.add_parser("list", help="the persons of a collection and their face counts")
    ls.add_argument("collection")
    _db(ls)
    ls.set_defaults(func=cmd_list)
    rm = verbs.add_parser("remove", help="hard-delete a person from a collection (rows, embeddings, crops)")
    rm.add_argument("collection")
    rm.add_argument("person")
    _db(rm)
    rm.set_defaults(func=cmd_remove)
    de = verbs.add_parser("delete", help="hard-delete a whole collection")
    de.add_argument("collection")
    de.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    _db(de)
    de.set_defaults(func=cmd_delete)


def _register_cluster(verbs: argparse._SubParsersAction, choices: tuple[str, ...]) -> None:
    p = verbs.add_parser("cluster", help="group photos by person, nobody enrolled (groups/person-N/)")
    p.add_argument("images", nargs="+", help="photos: files, folders or quoted glob patterns")
    p.add_argument("--out", required=True, metavar="DIR", help="write person-1/, person-2/, ... here (largest first)")
    p.add_argument("--threshold", type=float, help="cosine similarity from which faces are one person (default: "
                   "the embedder's own)")  # fmt: skip
    p.add_argument("--copy", action="store_true", help="copy the photos (default: hard links, copies across devices)")
    _models(p, choices, "dlib-resnet")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=cmd_cluster)


def open_db(args: argparse.Namespace) -> Any:
    from imgrec.store import open_store

    return open_store(args.db)


def _detector(args: argparse.Namespace) -> Any:
    from imgrec.analyzers.faces import face_detector

    return face_detector(args.detector, weights=args.weights, threads=args.threads, weights_option="--weights")


def _recognizer(args: argparse.Namespace, info: Any) -> Any:
    from imgrec.analyzers.faces import FaceRecognizer, collection_embedder

    embedder = collection_embedder(info, embedder=args.embedder, weights=args.embedder_weights, threads=args.threads,
                                   weights_option="--embedder-weights")  # fmt: skip
    return FaceRecognizer(_detector(args), embedder, limits=_limits(args))


def _limits(args: argparse.Namespace) -> Any:
    from imgrec.cli.predict_cmd import decode_limits

    return decode_limits(args)


def _named_embedder(args: argparse.Namespace) -> Any:
    from imgrec.analyzers.faces import face_embedder

    return face_embedder(args.embedder, weights=args.embedder_weights, threads=getattr(args, "threads", None),
                         weights_option="--embedder-weights")  # fmt: skip


def _threshold(args: argparse.Namespace, embedder: Any) -> float:
    from imgrec.analyzers.faces import default_threshold

    if args.threshold is not None:
        return float(args.threshold)
    found = default_threshold(embedder.name)
    if found is None:
        raise UsageError(f"No default threshold for {embedder.name!r}; give --threshold T (measure it with `imgrec "
                         f"faces evaluate --embedder {args.embedder} IDENTITIES/`: its threshold_eer).")  # fmt: skip
    return found


def cmd_create(args: argparse.Namespace) -> int:
    from imgrec.analyzers.faces import create_collection, threshold_from_report

    embedder = _named_embedder(args)
    threshold = args.threshold
    if args.threshold_from:
        threshold = threshold_from_report(args.threshold_from, embedder=embedder.name)
    with open_db(args) as store:
        collection = create_collection(store, args.name, embedder, threshold)
        out.emit_collection(collection.info, args.format, store.where)
    return 0


def cmd_collections(args: argparse.Namespace) -> int:
    with open_db(args) as store:
        out.emit_collections(store.collections.list(), args.format, store.where)
    return 0


def cmd_enroll(args: argparse.Namespace) -> int:
    from imgrec.inference.predictor import collect_images

    images = collect_images(args.images)
    with open_db(args) as store:
        collection = store.collections.get(args.collection)
        report = _recognizer(args, collection.info).enroll(collection, args.person, images, all_faces=args.all_faces)
    out.emit_enrolled(report, args.format, args.all_faces)
    return EXIT_BAD_DATA if any(r.status in ("no_face", "error") for r in report.images) else 0


def cmd_identify(args: argparse.Namespace) -> int:
    from imgrec.inference.predictor import collect_images

    images = collect_images(args.images)
    with open_db(args) as store:
        collection = store.collections.get(args.collection)
        rec = _recognizer(args, collection.info)
        results = [_identify_one(rec, collection, path, args) for path in images]
    out.emit_identified(results, args.format, collection.info.threshold)
    return EXIT_BAD_DATA if any("error" in r for r in results) else 0


def _identify_one(rec: Any, collection: Any, path: str, args: argparse.Namespace) -> dict[str, Any]:
    from imgrec.analyzers.faces import decode_input
    from imgrec.errors import DataError

    try:
        decoded = decode_input(path, rec.limits)
        faces = rec.match(collection, rec.faces(decoded, largest_first=True), top_k=args.top_k)
    except DataError as exc:  # this image only (corrupt, too large); a conflict or a database error stops all
        return {"path": path, "error": {"code": exc.code, "message": str(exc)}}
    if args.save:
        out.save_identified(decoded.array, faces, path, args.save)
    return {"path": path, "faces": [f.to_dict() for f in faces]}


def cmd_verify(args: argparse.Namespace) -> int:
    from imgrec.analyzers.faces import FaceRecognizer

    embedder = _named_embedder(args)
    rec = FaceRecognizer(_detector(args), embedder, limits=_limits(args))
    result = rec.verify(args.image_a, args.image_b, threshold=_threshold(args, embedder))
    out.emit_verification(result, args.format, embedder.name)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with open_db(args) as store:
        collection = store.collections.get(args.collection)
        out.emit_persons(collection, collection.persons(), args.format)
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    with open_db(args) as store:
        removed = store.collections.get(args.collection).remove_person(args.person)
    if args.format == "json":
        console.out(to_json({"collection": args.collection, "person": args.person, "removed_faces": removed}))
    else:
        console.print(f"removed {args.person!r} from {args.collection!r}: {removed} face(s), their embeddings and "
                      "crops (hard delete)", highlight=False)  # fmt: skip
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    with open_db(args) as store:
        info = store.collections.get(args.collection).info
        if not args.yes and not _confirmed(f"Delete collection {info.name!r} ({info.size} faces) for good? [y/N] "):
            raise UsageError(f"Not deleted: {info.name!r} holds {info.size} face(s). Add --yes to delete it without "
                             "being asked (scripts, no terminal).")  # fmt: skip
        store.collections.delete(info.name)
    if args.format == "json":
        console.out(to_json({"collection": info.name, "deleted": True, "faces": info.size}))
    else:
        console.print(f"deleted collection {info.name!r}: {info.size} face(s) (hard delete)", highlight=False)
    return 0


def _confirmed(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    error_console.print(question, end="", highlight=False)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def cmd_cluster(args: argparse.Namespace) -> int:
    from imgrec.analyzers.faces import cluster_faces
    from imgrec.inference.predictor import collect_images

    embedder = _named_embedder(args)
    images = collect_images(args.images)
    clusters = cluster_faces(images, _detector(args), embedder, _threshold(args, embedder), limits=_limits(args))
    written = out.write_groups(clusters, Path(args.out), copy=args.copy)
    out.emit_clusters(clusters, written, args.format, args.out)
    return EXIT_BAD_DATA if clusters.errors else 0
