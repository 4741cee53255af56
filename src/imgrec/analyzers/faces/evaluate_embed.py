"""Face embedder evaluation on an identity folder (one sub-folder of face photos or crops per person).

Each image gives one face: its largest detected face, aligned to the embedder's template, or,
when the detector finds none (tight crops), the whole image as a square crop (``fallback``).
With ``detector=None`` every image is taken whole (pre-aligned crops). Then:

- verification over all pairs of images: the ROC of "same person" by cosine similarity
  (scikit-learn's ``roc_curve`` and ``auc``), the true accept rate at a false accept rate of
  1e-2 and 1e-3 (with few impostor pairs, 1e-3 means none: ``impostor_pairs`` says how fine the
  steps are), the equal error rate and **its threshold, ``threshold_eer``**: the report key a
  face collection takes its threshold from (:func:`threshold_from_report`). It lies midway
  between the lowest similarity accepted at the equal error rate and the next lower one (on
  separable data: between the least similar pair of one person and the most similar pair of
  two, not on either);
- leave-one-out rank-1 identification: each image's most similar other image is of the same
  person (images of a person with one image are no query).

Example:
    >>> v = np.array([[1, 0], [0.9, 0.44], [0, 1], [0.2, 0.98]], np.float32)
    >>> f = verification_figures(v, np.array([0, 0, 1, 1]))
    >>> f["rank1"], f["auc"], f["genuine_pairs"], f["impostor_pairs"]
    (1.0, 1.0, 2, 4)
    >>> # r = evaluate_embedder(face_embedder("dlib-resnet"), "faces-dlib/johns", detector="yunet")
    >>> # r["rank1"], r["threshold_eer"]
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from imgrec.analyzers.faces.embedders import FaceEmbedder, decode_input, embed_faces
from imgrec.errors import DatasetError, ImgrecError, MissingInputError, ModelFileError, UsageError
from imgrec.imaging import DEFAULT_LIMITS, IMAGE_SUFFIXES, DecodeLimits
from imgrec.imaging.align import align_face
from imgrec.inference import Predictor
from imgrec.tasks.embed import l2_normalize

THRESHOLD_KEY = "threshold_eer"
FARS = (1e-2, 1e-3)
ROC_POINTS = 200  # the ROC kept in the report, at most


def read_identities(folder: str | Path) -> tuple[list[str], list[str]]:
    """``(paths, persons)`` of an identity folder: ``folder/<person>/<image>``, sorted.

    Raises:
        MissingInputError: no such folder.
        DatasetError: fewer than two persons with images.
    """
    root = Path(folder)
    if not root.is_dir():
        raise MissingInputError(f"Identity folder not found: {root}. Expected one sub-folder of face images per "
                                "person.")  # fmt: skip
    paths, persons = [], []
    for person in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(f for f in person.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        paths += [str(f) for f in files]
        persons += [person.name] * len(files)
    if len(set(persons)) < 2:
        raise DatasetError(f"{root} holds images of {len(set(persons))} person(s); an identity folder needs at least "
                           "two sub-folders (one per person) of face images.")  # fmt: skip
    return paths, persons


def verification_figures(vectors: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """ROC, AUC, TAR@FAR, EER and its threshold over all pairs, and leave-one-out rank-1."""
    from sklearn.metrics import auc, roc_curve

    x, y = l2_normalize(vectors).astype(np.float64), np.asarray(labels)
    sims = x @ x.T
    i, j = np.triu_indices(len(x), k=1)
    same, scores = (y[i] == y[j]).astype(np.int8), sims[i, j]
    if same.all() or not same.any():
        raise DatasetError("Verification needs pairs of the same person and of different persons; "
                           "give at least two persons with two images each.")  # fmt: skip
    fpr, tpr, thresholds = roc_curve(same, scores, drop_intermediate=False)
    k = int(np.argmin(np.abs((1 - tpr) - fpr)))
    k = k if np.isfinite(thresholds[k]) else k + 1
    below = thresholds[k + 1] if k + 1 < len(thresholds) else thresholds[k]
    out = {"genuine_pairs": int(same.sum()), "impostor_pairs": int(len(same) - same.sum()),
           "auc": round(float(auc(fpr, tpr)), 6),
           "tar_at_far": {f"{far:g}": round(float(tpr[fpr <= far].max()), 6) for far in FARS},
           "eer": round(float((fpr[k] + 1 - tpr[k]) / 2), 6),
           THRESHOLD_KEY: round(float(thresholds[k] + below) / 2, 6)}  # fmt: skip
    return {**out, **_rank1(sims, y), "roc": _roc(fpr, tpr, thresholds)}


def _rank1(sims: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    s = sims.copy()
    np.fill_diagonal(s, -np.inf)
    counts = {k: int((labels == k).sum()) for k in set(labels.tolist())}
    queries = np.array([counts[k] > 1 for k in labels.tolist()])
    hits = labels[s.argmax(axis=1)] == labels
    return {"rank1": round(float(hits[queries].mean()), 6), "rank1_queries": int(queries.sum())}


def _roc(fpr: np.ndarray, tpr: np.ndarray, thresholds: np.ndarray) -> dict[str, list[float]]:
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(len(fpr), ROC_POINTS)).round().astype(int))
    finite = np.where(np.isfinite(thresholds[keep]), thresholds[keep], 1.0)
    return {"fpr": [round(float(v), 6) for v in fpr[keep]], "tpr": [round(float(v), 6) for v in tpr[keep]],
            "threshold": [round(float(v), 6) for v in finite]}  # fmt: skip


def evaluate_embedder(
    embedder: FaceEmbedder, identity_folder: str | Path, *, detector: Predictor | str | None = "yunet",
    options: dict[str, Any] | None = None, limits: DecodeLimits = DEFAULT_LIMITS,
) -> dict[str, Any]:  # fmt: skip
    """Verification and identification figures of ``embedder`` on an identity folder.

    Args:
        embedder: the embedder (:func:`~imgrec.analyzers.faces.face_embedder`).
        identity_folder: ``<person>/<image>`` files (photos or face crops).
        detector: the face detector's Predictor or name; None: every image is a face crop, taken whole.
        options: the detector's options.
        limits: decode limits; unreadable images are listed in ``bad_files`` and left out.

    Returns:
        JSON-ready figures: ``embedder, dim, template, detector, images, persons, aligned,
        fallback, genuine_pairs, impostor_pairs, auc, tar_at_far {"0.01", "0.001"}, eer,
        threshold_eer, rank1, rank1_queries, roc {fpr, tpr, threshold}, seconds,
        faces_per_second, bad_files``.
    """
    paths, persons = read_identities(identity_folder)
    start = time.perf_counter()
    vectors, labels, aligned, bad = [], [], 0, []
    for path, person in zip(paths, persons, strict=True):
        try:
            vector, was_aligned = _one_face(path, detector, embedder, options, limits)
        except ImgrecError as exc:
            if isinstance(exc, UsageError):
                raise
            bad.append({"source": path, "error": f"{exc.code}: {exc}"})
            continue
        vectors.append(vector)
        labels.append(person)
        aligned += int(was_aligned)
    seconds = time.perf_counter() - start
    if not vectors:
        raise DatasetError(f"None of the {len(paths)} images of {identity_folder} could be read.")
    figures = verification_figures(np.stack(vectors), np.array(labels))
    name = None if detector is None else str(detector if isinstance(detector, str) else detector.meta.get("model"))
    return {"embedder": embedder.name, "dim": embedder.dim, "template": embedder.template, "detector": name,
            "images": len(vectors), "persons": len(set(labels)), "aligned": aligned,
            "fallback": len(vectors) - aligned, **figures, "seconds": round(seconds, 3),
            "faces_per_second": round(len(vectors) / max(seconds, 1e-9), 2), "bad_files": bad}  # fmt: skip


def _one_face(
    path: str, detector: Predictor | str | None, embedder: FaceEmbedder, options: dict[str, Any] | None,
    limits: DecodeLimits,
) -> tuple[np.ndarray, bool]:  # fmt: skip
    """The embedding of an image's largest face (or of the whole image) and whether it was aligned."""
    if detector is None:
        image = decode_input(path, limits).array
        h, w = image.shape[:2]
        crop = align_face(image, box=(0, 0, w, h), template=embedder.template, margin=0.0).image
        return embedder.vectors([crop])[0], False
    (face,) = embed_faces(path, detector, embedder, all_faces=False, fallback=True, options=options, limits=limits)
    return face.embedding.vector, face.aligned


def threshold_from_report(report: str | Path | dict[str, Any], embedder: str | None = None) -> float:
    """The collection threshold of an embedder evaluation report: its ``threshold_eer``.

    Args:
        report: the JSON file written by ``imgrec faces evaluate --embedder ... --out FILE``, or its dict.
        embedder: when given, the report must be of this embedder (thresholds do not carry over).

    Raises:
        ModelFileError: the file is not such a report, or is of another embedder.
    """
    data = report if isinstance(report, dict) else _read_json(Path(report))
    value = data.get(THRESHOLD_KEY) if isinstance(data, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or not -1.0 <= value <= 1.0:
        raise ModelFileError(f"An embedder evaluation report holds {THRESHOLD_KEY!r}, a cosine similarity in [-1, 1]; "
                             f"received {value!r}. Write one with `imgrec faces evaluate --embedder NAME "
                             "identities/ --out report.json`.")  # fmt: skip
    if embedder is not None and data.get("embedder") != embedder:
        raise ModelFileError(f"The report evaluates {data.get('embedder')!r}, not {embedder!r}: a threshold holds for "
                             "the embedder it was measured on only.")  # fmt: skip
    return float(value)


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise MissingInputError(f"Report not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path} is not a JSON report: {exc}") from None
