"""Classical face detectors behind the :class:`~imgrec.models.base.Detector` interface.

- ``dlib-hog``: dlib's frontal face detector (HOG features + linear SVM, five pose filters).
- ``dlib-cnn``: dlib's MMOD CNN face detector (``mmod_human_face_detector.dat``).
- ``haar``: OpenCV's Haar cascade ``haarcascade_frontalface_default.xml`` (ships inside OpenCV 4;
  no landmarks).

The dlib models come from the ``face-recognition-models`` package and dlib from ``dlib-bin``
(``pip install 'imgrec[faces]'``); nothing is downloaded at run time. dlib's detectors give
landmarks through its 68-point shape predictor, reduced to the 5 points every face detector
here gives (eye centres, nose tip, mouth corners; see :class:`imgrec.tasks.detect.Detection`).

Scores: dlib and OpenCV give margins (an SVM's, the CNN's, the cascade's last stage sum), with
0 at their own default threshold; ``score = 1 / (1 + exp(-margin))`` puts that threshold at 0.5
and keeps the order, so average precision and ``conf`` work as for the other detectors.

Example:
    >>> landmarks_from_68(np.arange(136, dtype=np.float32).reshape(68, 2))[2].tolist()
    [60.0, 61.0]
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from imgrec.errors import DependencyError, ModelFileError, UsageError
from imgrec.models.base import Detector
from imgrec.transforms.preprocess import Preprocessing

DLIB_HINT = "Install them with: pip install 'imgrec[faces]' (the dlib-bin and face-recognition-models packages)."
HAAR_FILE = "haarcascade_frontalface_default.xml"
CLASSICAL_NAMES = ("dlib-hog", "dlib-cnn", "haar")
_EYES = (slice(36, 42), slice(42, 48))  # 68-point layout: the eye on the image's left, then the other
_NOSE, _MOUTH = 30, (48, 54)


def landmarks_from_68(points: np.ndarray) -> np.ndarray:
    """The 5 face landmarks (eye centres, nose tip, mouth corners) from dlib's 68 points ``(68, 2)``."""
    p = np.asarray(points, np.float32)
    eyes = [p[s].mean(axis=0) for s in _EYES]
    return np.stack([*eyes, p[_NOSE], p[_MOUTH[0]], p[_MOUTH[1]]]).astype(np.float32)


def _sigmoid(margin: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-np.asarray(margin, np.float64)))).astype(np.float32)


def dlib_model_file(name: str) -> Path:
    """A model file of the ``face-recognition-models`` package, found without importing it
    (its ``__init__`` needs setuptools' ``pkg_resources``)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise DependencyError(f"The dlib face models are not installed. {DLIB_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / name
    if not path.is_file():
        raise ModelFileError(f"{path} is missing from the face-recognition-models package; reinstall it. {DLIB_HINT}")
    return path


def _dlib() -> Any:
    try:
        import dlib
    except ImportError:
        raise DependencyError(f"dlib face detectors need dlib. {DLIB_HINT}") from None
    return dlib


class ClassicalFaceDetector(Detector):
    """A dlib or OpenCV face detector (family ``"faces"``; no weights of its own to save).

    Args:
        upsample: dlib: times the input is doubled before detection (default 1, as dlib's and
            face_recognition's examples: both detectors miss faces under about 80 px of the
            input without it; each doubling costs about 4x the time, a lot for the CNN).
        landmarks: dlib: find the 5 landmarks of each face (68-point shape predictor).
    """

    family = "faces"

    def __init__(
        self, name: str, classes: list[str], preprocessing: Preprocessing, model_args: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(name, classes, preprocessing, model_args)
        self._engine: Any = None
        self._shapes: Any = None

    def detect(self, batch: np.ndarray) -> list[Any]:
        """Box candidates (and landmarks) per image, in input pixels."""
        x = np.asarray(batch)
        s = self.preprocessing.size
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (s, s, 3):
            raise UsageError(f"Expected a prepared uint8 batch (N, {s}, {s}, 3); received {x.dtype} {x.shape}.")
        return [self._one(np.ascontiguousarray(img)) for img in x]

    def _one(self, img: np.ndarray) -> Any:
        from imgrec.tasks.detect import BoxCandidates

        boxes, margins = (_haar if self.name == "haar" else _dlib_boxes)(self, img)
        wanted = self.name != "haar" and self.model_args.get("landmarks", True)
        keypoints = self._landmarks(img, boxes) if wanted else None
        return BoxCandidates(boxes, _sigmoid(margins), np.zeros(len(boxes), np.int64), keypoints)

    def _landmarks(self, img: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        dlib = _dlib()
        if self._shapes is None:
            self._shapes = dlib.shape_predictor(str(dlib_model_file("shape_predictor_68_face_landmarks.dat")))
        out = np.zeros((len(boxes), 5, 2), np.float32)
        for i, (x1, y1, x2, y2) in enumerate(boxes):
            shape = self._shapes(img, dlib.rectangle(int(x1), int(y1), int(x2) - 1, int(y2) - 1))
            out[i] = landmarks_from_68(np.array([(p.x, p.y) for p in shape.parts()], np.float32))
        return out

    def save_weights(self, run_dir: Path) -> dict[str, str]:
        """Nothing to write: the detector's files come with its package."""
        return {}

    def num_params(self) -> int:
        return 0


def _dlib_boxes(model: ClassicalFaceDetector, img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    dlib, up = _dlib(), int(model.model_args.get("upsample", 1))
    if model._engine is None and model.name == "dlib-hog":
        model._engine = dlib.get_frontal_face_detector()
    elif model._engine is None:
        model._engine = dlib.cnn_face_detection_model_v1(str(dlib_model_file("mmod_human_face_detector.dat")))
    if model.name == "dlib-hog":
        rects, margins, _ = model._engine.run(img, up, -1.0)
    else:
        found = model._engine(img, up)
        rects, margins = [d.rect for d in found], [d.confidence for d in found]
    boxes = np.array([(r.left(), r.top(), r.right() + 1, r.bottom() + 1) for r in rects], np.float32).reshape(-1, 4)
    return boxes, np.asarray(margins, np.float32).reshape(-1)


def _haar(model: ClassicalFaceDetector, img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import cv2

    if model._engine is None:
        model._engine = _cascade(cv2)
    gray = cv2.equalizeHist(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY))
    rects, _, weights = model._engine.detectMultiScale3(gray, scaleFactor=1.1, minNeighbors=3, minSize=(24, 24),
                                                        outputRejectLevels=True)  # fmt: skip
    r = np.asarray(rects, np.float32).reshape(-1, 4)
    boxes = np.concatenate([r[:, :2], r[:, :2] + r[:, 2:]], axis=1)
    return boxes, np.asarray(weights, np.float32).reshape(-1)


def _cascade(cv2: Any) -> Any:
    folder = getattr(getattr(cv2, "data", None), "haarcascades", "")
    path = Path(folder) / HAAR_FILE
    if not hasattr(cv2, "CascadeClassifier") or not path.is_file():
        raise DependencyError(
            f"The haar face detector needs OpenCV's cascade classifier and its {HAAR_FILE}, which OpenCV 4 ships "
            f"(cv2.data.haarcascades) and the installed OpenCV {cv2.__version__} does not. Install "
            "opencv-python-headless<5, or use another detector: --detector yunet (or dlib-hog)."
        )
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise ModelFileError(f"OpenCV cannot read the cascade {path}.")
    return cascade


def build_classical_face(
    name: str, classes: Sequence[str] | None = None, preprocessing: Preprocessing | None = None, **model_args: Any
) -> ClassicalFaceDetector:
    """``dlib-hog``, ``dlib-cnn`` or ``haar`` at the preprocessing's input side (letterboxed)."""
    from imgrec.models.faces import CLASSICAL, check_face_args

    unknown = sorted(set(model_args) - {"upsample", "landmarks", "threads"})
    if unknown:
        raise UsageError(f"{name} takes the options upsample and landmarks; received {', '.join(unknown)}.")
    check_face_args(name, classes, None, None)
    _check_available(name)
    size = preprocessing.size if preprocessing is not None else CLASSICAL[name][1]
    prep = Preprocessing(size=size, interpolation="cv2-linear", mean=(0.0,) * 3, std=(1 / 255,) * 3,
                         resize_mode="letterbox", pad_value=0, pad_anchor="topleft")  # fmt: skip
    args = {k: v for k, v in model_args.items() if k != "threads"}
    return ClassicalFaceDetector(name, ["face"], prep, args)


def _check_available(name: str) -> None:
    """Fail at build time, not at the first image, when the detector's package is missing."""
    if name == "haar":
        import cv2

        _cascade(cv2)
        return
    _dlib()
    dlib_model_file("mmod_human_face_detector.dat" if name == "dlib-cnn" else "shape_predictor_68_face_landmarks.dat")
