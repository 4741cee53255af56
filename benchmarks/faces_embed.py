"""Face embedders on faces-dlib/johns: verification, rank-1 and embedding speed, one thread.

Every embedder (``dlib-resnet``; MobileFaceNet imported with ``imgrec import --task embed``;
SFace when its file is given) runs ``imgrec.faces.evaluate_embedder`` on the 55 crops of
``faces-dlib/johns`` (5 persons x 11 dlib chips, 150 x 150) twice: with YuNet finding each
crop's face and its 5 landmarks and the face aligned onto the embedder's template
(``aligned``), and with each crop taken whole, resized to the embedder's input (``whole``).
Figures: leave-one-out rank-1, verification ROC AUC over the 1,485 pairs (275 of one person),
TAR at FAR 1e-2 and 1e-3 (1,210 impostor pairs: 1e-3 means no false accept), EER and
``threshold_eer``.

Speed: faces per second of the embedder alone on the 55 aligned crops (``FaceEmbedder.vectors``:
the Predictor's path from an array to a unit vector), one thread (ONNX Runtime intra-op 1;
dlib's own CPU code, OMP/MKL capped at 1), batches of 32, median of ``--reps`` passes.

Usage:
    .venv/bin/python benchmarks/faces_embed.py                  # about a minute
    .venv/bin/python benchmarks/faces_embed.py --sface face_recognition_sface_2021dec.onnx
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

JOHNS = SHARED_DATA / "faces-dlib" / "johns"
YUNET = SHARED_DATA / "models" / "yunet" / "face_detection_yunet_2023mar.onnx"
MOBILEFACENET = SHARED_DATA / "models" / "face-recognition" / "mobilefacenet.onnx"


def embedders(sface: str | None, folder: Path) -> dict[str, Any]:
    import imgrec
    from imgrec.models.importer import ImportOptions, import_model

    run = import_model(MOBILEFACENET, ImportOptions(task="embed", norm="imagenet"), folder / "mobilefacenet")
    found = {"dlib-resnet": imgrec.faces.face_embedder("dlib-resnet", threads=1),
             "mobilefacenet (imported)": imgrec.faces.face_embedder(run, threads=1)}  # fmt: skip
    if sface:
        found["sface"] = imgrec.faces.face_embedder("sface", weights=sface, threads=1)
    return found


def speed(embedder: Any, detector: Any, reps: int) -> float:
    """Faces per second of the embedder alone on the aligned johns crops (median pass)."""
    import imgrec

    crops = []
    for path in sorted(JOHNS.glob("*/*.jpg")):
        (face,) = imgrec.faces.embed_faces(str(path), detector, embedder, all_faces=False, fallback=True)
        crops.append(face.crop)
    embedder.vectors(crops[:2])
    rates = []
    for _ in range(reps):
        start = time.perf_counter()
        for i in range(0, len(crops), 32):
            embedder.vectors(crops[i : i + 32])
        rates.append(len(crops) / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sface", help="OpenCV zoo's face_recognition_sface_2021dec.onnx (not available offline)")
    p.add_argument("--reps", type=int, default=5)
    args = p.parse_args()
    import imgrec

    print("machine:")
    print_machine()
    print(f"  load average: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    detector = imgrec.faces.face_detector("yunet", weights=YUNET, threads=1)
    print(f"\nfaces-dlib/johns: 55 crops of 5 persons; one thread; speed = embedder alone, {args.reps} passes")
    print(f"{'embedder':26} {'faces':8} {'rank-1':>6} {'AUC':>7} {'TAR@1e-2':>8} {'TAR@1e-3':>8} {'EER':>6} "
          f"{'thr_eer':>7} {'faces/s':>8}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for name, embedder in embedders(args.sface, Path(tmp)).items():
            rate = speed(embedder, detector, args.reps)
            for mode, det in (("aligned", detector), ("whole", None)):
                r = imgrec.faces.evaluate_embedder(embedder, JOHNS, detector=det)
                far, shown = r["tar_at_far"], f"{rate:8.1f}" if mode == "aligned" else ""
                print(f"{name:26} {mode:8} {r['rank1']:6.4f} {r['auc']:7.4f} {far['0.01']:8.4f} {far['0.001']:8.4f} "
                      f"{r['eer']:6.4f} {r['threshold_eer']:7.4f} {shown}")  # fmt: skip
    if not args.sface:
        print("sface: not run (its file cannot be downloaded here; pass --sface FILE)")


if __name__ == "__main__":
    main()
