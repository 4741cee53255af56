"""Face collections end to end: enroll and identify throughput (faces/s, one thread) on the
faces-dlib photos, YuNet + MobileFaceNet and YuNet + dlib-resnet, a SQLite store.

Enroll: every face of the 9 faces-dlib photos (43 faces, 37 to 130 px wide), one person per
photo (``FaceRecognizer.enroll(..., all_faces=True)``: decode, YuNet, 5-point alignment, embed,
JPEG crop, one transaction), into a fresh collection each pass. Identify: the same photos
against that collection (``FaceRecognizer.identify``: every face, top-1). Figures are faces
per second of the whole call, and how the time splits between the model half (decode, detect,
align, embed: ``prepare_enrollment`` / ``faces``) and the database half (``commit_enrollment`` /
``match``). One thread: ONNX Runtime intra-op 1, dlib's own CPU code, OMP/MKL capped at 1.
Median of ``--reps`` passes.

Usage:
    PYTHONPATH=src .venv/bin/python benchmarks/faces_collections.py          # about two minutes
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_DATA, print_machine  # noqa: E402

PHOTOS = SHARED_DATA / "faces-dlib" / "faces"
YUNET = SHARED_DATA / "models" / "yunet" / "face_detection_yunet_2023mar.onnx"
MOBILEFACENET = SHARED_DATA / "models" / "face-recognition" / "mobilefacenet.onnx"


def recognizers(folder: Path) -> dict[str, Any]:
    import imgrec
    from imgrec.models.importer import ImportOptions, import_model

    run = import_model(MOBILEFACENET, ImportOptions(task="embed", norm="imagenet"), folder / "mobilefacenet")
    detector = imgrec.faces.face_detector("yunet", weights=YUNET, threads=1)
    return {name: imgrec.faces.FaceRecognizer(detector, imgrec.faces.face_embedder(src, threads=1))
            for name, src in (("yunet + mobilefacenet", run), ("yunet + dlib-resnet", "dlib-resnet"))}  # fmt: skip


def one_pass(rec: Any, store: Any, photos: list[Path], n: int) -> dict[str, float]:
    import imgrec

    c = imgrec.faces.create_collection(store, f"bench-{n}", rec.embedder, threshold=0.5)
    t = {"enroll_model": 0.0, "enroll_db": 0.0, "identify_model": 0.0, "identify_db": 0.0, "faces": 0}
    for i, photo in enumerate(photos):
        start = time.perf_counter()
        prepared = rec.prepare_enrollment([photo], all_faces=True)
        mid = time.perf_counter()
        rec.commit_enrollment(c, f"photo-{i}", prepared)
        t["enroll_model"] += mid - start
        t["enroll_db"] += time.perf_counter() - mid
        t["faces"] += prepared.faces
    for photo in photos:
        start = time.perf_counter()
        found = rec.faces(photo, largest_first=True)
        mid = time.perf_counter()
        rec.match(c, found, top_k=1)
        t["identify_model"] += mid - start
        t["identify_db"] += time.perf_counter() - mid
    store.collections.delete(c.name)
    return t


def report(name: str, passes: list[dict[str, float]]) -> None:
    faces = passes[0]["faces"]
    med = {k: statistics.median(p[k] for p in passes) for k in passes[0] if k != "faces"}
    for what in ("enroll", "identify"):
        model, db = med[f"{what}_model"], med[f"{what}_db"]
        print(f"  {name:24s} {what:8s} {faces / (model + db):7.1f} faces/s   model {1000 * model / faces:7.1f} "
              f"ms/face   database {1000 * db / faces:6.2f} ms/face")  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=int, default=3)
    args = p.parse_args()
    from imgrec.store import open_store

    print("machine:")
    print_machine()
    photos = sorted(PHOTOS.glob("*.jpg"))
    with tempfile.TemporaryDirectory() as tmp:
        recs = recognizers(Path(tmp))
        with open_store(Path(tmp) / "db") as store:
            print(f"\n{len(photos)} photos, SQLite store, one thread, median of {args.reps} passes")
            for name, rec in recs.items():
                one_pass(rec, store, photos[:1], -1)  # warm-up: sessions, dlib's network, imports
                passes = [one_pass(rec, store, photos, n) for n in range(args.reps)]
                print(f"  {name}: {passes[0]['faces']:.0f} faces")
                report(name, passes)


if __name__ == "__main__":
    main()
