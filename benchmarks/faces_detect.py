"""Face detectors on faces-dlib: AP@0.5 for every detector, and YuNet's speed next to OpenCV's.

Accuracy: each detector (``imgrec.faces.evaluate_faces``) on the 9 photos of
``faces-dlib/faces/testing.xml`` + ``training.xml`` (43 faces, dlib imglab boxes), scored by
pycocotools through the DetectionAccumulator (conf 0.01, NMS IoU 0.3); ``found`` counts the
annotated faces a detection at the detector's own operating point overlaps by IoU >= 0.5.
dlib's boxes are tight squares from the eyebrows to the chin; YuNet's and UltraFace's reach
the forehead, so AP@[.5:.95] is low for every detector but dlib's own, and AP@0.5 is the figure.
OpenCV 5 has no Haar cascades: ``--haar-python`` runs the haar row in another interpreter
that has OpenCV 4 (and imgrec's dependencies), otherwise the row says why it is missing.

Speed (one thread: ONNX Runtime intra-op 1, cv2.setNumThreads(1)): YuNet 2023mar on one
640 x 480 frame (a faces-dlib photo resized), decode excluded. imgrec end to end is
``Predictor.predict(frame)`` (letterbox into 640, BGR float NCHW tensor, ONNX Runtime,
decoding, NMS, mapping back, typed results); OpenCV is ``cv2.FaceDetectorYN.detect`` on the
same file, frame (BGR) and thresholds. Interleaved call by call; medians; ratio = OpenCV's
time / imgrec's (above 1.0: imgrec is faster).

Usage:
    .venv/bin/python benchmarks/faces_detect.py                  # both parts (about a minute)
    .venv/bin/python benchmarks/faces_detect.py --skip-ap --reps 300
    .venv/bin/python benchmarks/faces_detect.py --haar-python /tmp/cv4/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_DATA, print_machine

FACES = SHARED_DATA / "faces-dlib" / "faces"
XML = [FACES / "testing.xml", FACES / "training.xml"]
WEIGHTS = {
    "yunet": SHARED_DATA / "models" / "yunet" / "face_detection_yunet_2023mar.onnx",
    "yunet-n": SHARED_DATA / "models" / "yunet" / "yunet_n_640_640.onnx",
    "ultraface": SHARED_DATA / "models" / "ultraface" / "version-RFB-320.onnx",
    "ultraface-slim": SHARED_DATA / "models" / "ultraface" / "version-slim-320.onnx",
}
DETECTORS = ("yunet", "yunet-n", "ultraface", "ultraface-slim", "dlib-hog", "dlib-cnn", "haar")


def evaluate_one(name: str) -> dict[str, object]:
    import imgrec

    try:
        return imgrec.faces.evaluate_faces(XML, detector=name, weights=WEIGHTS.get(name), threads=1)
    except imgrec.ImgrecError as exc:
        return {"detector": name, "error": str(exc).split(". ")[0]}


def accuracy(haar_python: str | None) -> None:
    print(f"\nAP on {' + '.join(p.name for p in XML)} (9 photos, 43 faces), one thread")
    print(f"{'detector':15} {'AP@0.5':>7} {'AP@.5:.95':>9} {'found':>7} {'at conf':>7} {'ms/img':>7}")
    for name in DETECTORS:
        r = _haar_row(haar_python) if name == "haar" and haar_python else evaluate_one(name)
        if "error" in r:
            print(f"{name:15} -- {r['error']}")
            continue
        print(f"{name:15} {r['map50']:7.4f} {r['map']:9.4f} {r['found']:>3}/{r['faces']:<3} {r['conf']:7.2f} "
              f"{r['ms_per_image']:7.1f}{'  ' + str(r.get('note', '')) if r.get('note') else ''}")  # fmt: skip


def _haar_row(python: str) -> dict[str, object]:
    code = ("import json, sys; sys.path.insert(0, 'benchmarks'); import cv2, faces_detect as f; "
            "r = f.evaluate_one('haar'); r['note'] = 'OpenCV ' + cv2.__version__; print(json.dumps(r))")  # fmt: skip
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=False,
                         env={**os.environ, "PYTHONPATH": "src"})  # fmt: skip
    if out.returncode:
        return {"detector": "haar", "error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def speed(reps: int) -> None:
    import cv2
    import numpy as np

    import imgrec

    cv2.setNumThreads(1)
    photo = imgrec.imaging.load_image(FACES / "2008_002506.jpg")
    frame = np.ascontiguousarray(cv2.resize(photo, (640, 480), interpolation=cv2.INTER_LINEAR))
    bgr = np.ascontiguousarray(frame[..., ::-1])
    ours = imgrec.faces.face_detector("yunet", weights=WEIGHTS["yunet"], threads=1)
    options = imgrec.faces.face_options("yunet", conf=0.6, iou=0.3)
    theirs = cv2.FaceDetectorYN.create(str(WEIGHTS["yunet"]), "", (640, 480), 0.6, 0.3, 5000)
    for _ in range(10):
        ours.predict(frame, **options), theirs.detect(bgr)
    t_ours, t_cv = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        (found,) = ours.predict(frame, **options)
        t1 = time.perf_counter()
        _, faces = theirs.detect(bgr)
        t_cv.append(time.perf_counter() - t1)
        t_ours.append(t1 - t0)
    a, b = statistics.median(t_ours) * 1e3, statistics.median(t_cv) * 1e3
    print(f"\nYuNet 2023mar, one 640x480 frame, one thread, {reps} interleaved calls, medians")
    print(f"  imgrec Predictor.predict(frame):   {a:6.2f} ms  ({len(found)} faces)")
    print(f"  cv2.FaceDetectorYN.detect(frame):  {b:6.2f} ms  ({0 if faces is None else len(faces)} faces)")
    print(f"  ratio OpenCV / imgrec:             {b / a:6.2f}x  (>= 1.0: imgrec at least as fast)")
    _stages(ours, frame, options, reps)


def _stages(ours: object, frame: object, options: dict[str, object], reps: int) -> None:
    """Where imgrec's time goes: prepare (letterbox), the input tensor, session.run, postprocess."""
    model = ours.model  # type: ignore[attr-defined]
    times: dict[str, list[float]] = {"prepare": [], "tensor": [], "run": [], "post": []}
    opts = ours.options(**options)  # type: ignore[attr-defined]
    for _ in range(max(20, reps // 2)):
        t0 = time.perf_counter()
        x, g = ours.prepare_framed(frame)  # type: ignore[attr-defined]
        t1 = time.perf_counter()
        tensor = model._input(x[None])
        t2 = time.perf_counter()
        outs = model.runtime.run_all(tensor)
        t3 = time.perf_counter()
        from imgrec.tasks.decoders import decode

        cands = decode("yunet", outs, 640, 1)
        ours.postprocess(cands, [g], [None], opts)  # type: ignore[attr-defined]
        t4 = time.perf_counter()
        for k, v in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            times[k].append(v)
    shown = ", ".join(f"{k} {statistics.median(v) * 1e3:.2f} ms" for k, v in times.items())
    print(f"  imgrec stages (medians): {shown}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--skip-ap", action="store_true")
    p.add_argument("--skip-speed", action="store_true")
    p.add_argument("--reps", type=int, default=200)
    p.add_argument("--haar-python", help="a Python with OpenCV 4 (and imgrec's dependencies) for the haar row")
    args = p.parse_args()
    print("machine:")
    print_machine()
    import cv2
    import onnxruntime

    print(f"  opencv: {cv2.__version__}\n  onnxruntime: {onnxruntime.__version__}")
    print(f"  load average: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    if not args.skip_ap:
        accuracy(args.haar_python)
    if not args.skip_speed:
        speed(args.reps)


if __name__ == "__main__":
    main()
