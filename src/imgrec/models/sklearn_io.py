"""Save and load fitted scikit-learn estimators without pickle.

A fitted estimator becomes two files:

- ``pipeline.json``: the tree of estimators. Each node names its class by a short key of
  :data:`ALLOWED` (an explicit allowlist; nothing else is ever imported), its constructor
  parameters (``get_params(deep=False)``) and its learned state (the other instance
  attributes), with values encoded as JSON.
- ``pipeline.npz``: every numpy array of the tree, referenced from the JSON by key and read
  back with ``allow_pickle=False``.

Values that can be stored: None, bool, int, finite or non-finite float, str, list, tuple,
dict, numpy arrays of numbers or strings, numpy scalars, numpy dtypes and allowlisted
estimators. Loading builds each estimator with ``cls(**params)`` and sets its state; no code
from the files runs.

Example:
    >>> import numpy as np, tempfile, pathlib
    >>> from sklearn.linear_model import LogisticRegression
    >>> X, y = np.random.default_rng(0).normal(size=(20, 3)), np.arange(20) % 2
    >>> clf = LogisticRegression().fit(X, y)
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> save_estimator(clf, d / "p.json", d / "p.npz")
    >>> back = load_estimator(d / "p.json", d / "p.npz")
    >>> bool((back.predict_proba(X) == clf.predict_proba(X)).all())
    True
"""

from __future__ import annotations

import importlib
import inspect
import io
import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from imgrec.errors import ModelFileError, UsageError
from imgrec.files import write_bytes_atomic
from imgrec.models.artifact import check_format

FORMAT = "imgrec-sklearn"
FORMAT_VERSION = 1
MAX_DEPTH = 64

# Short name -> "module:attribute". The only classes a file can name.
ALLOWED: dict[str, str] = {
    "Pipeline": "sklearn.pipeline:Pipeline",
    "FeatureUnion": "sklearn.pipeline:FeatureUnion",
    "StandardScaler": "sklearn.preprocessing:StandardScaler",
    "MinMaxScaler": "sklearn.preprocessing:MinMaxScaler",
    "Normalizer": "sklearn.preprocessing:Normalizer",
    "PCA": "sklearn.decomposition:PCA",
    "Nystroem": "sklearn.kernel_approximation:Nystroem",
    "RBFSampler": "sklearn.kernel_approximation:RBFSampler",
    "SVC": "sklearn.svm:SVC",
    "LinearSVC": "sklearn.svm:LinearSVC",
    "LogisticRegression": "sklearn.linear_model:LogisticRegression",
    "SGDClassifier": "sklearn.linear_model:SGDClassifier",
    "MiniBatchKMeans": "sklearn.cluster:MiniBatchKMeans",
    "CalibratedClassifierCV": "sklearn.calibration:CalibratedClassifierCV",
    "_CalibratedClassifier": "sklearn.calibration:_CalibratedClassifier",
    "_SigmoidCalibration": "sklearn.calibration:_SigmoidCalibration",
    "HOGFeatures": "imgrec.features.hog:HOGFeatures",
    "LBPFeatures": "imgrec.features.lbp:LBPFeatures",
    "ColorHistogram": "imgrec.features.color:ColorHistogram",
    "PixelFeatures": "imgrec.features.color:PixelFeatures",
    "BagOfVisualWords": "imgrec.features.bovw:BagOfVisualWords",
}

# Learned attributes that are not data (rebuilt after loading by _after_load).
_SKIPPED_STATE = {"SGDClassifier": frozenset({"_loss_function_"})}
_ARRAY_KINDS = frozenset("biufcU")
_SCALAR_KINDS = frozenset("biuf")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TAGS = ("__tuple__", "__dict__", "__float__", "__array__", "__scalar__", "__dtype__", "__estimator__")


def allowed_class(name: str) -> type:
    """The class an allowlisted short name stands for (imported on demand)."""
    target = ALLOWED.get(name) if isinstance(name, str) else None
    if target is None:
        raise ModelFileError(
            f"The pipeline file names the class {name!r}, which is not an allowed estimator. "
            f"Allowed: {', '.join(sorted(ALLOWED))}. The file may come from a newer imgrec or "
            "have been tampered with; retrain the model."
        )
    module, _, attr = target.partition(":")
    cls: type = getattr(importlib.import_module(module), attr)
    return cls


def class_key(obj: Any) -> str | None:
    """The allowlist key of ``obj``'s exact class, or None."""
    name = type(obj).__name__
    if name in ALLOWED and type(obj) is allowed_class(name):
        return name
    return None


def _split_attrs(est: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(params, state)`` of an estimator: constructor parameters and everything else.

    Allowlisted helper objects without ``get_params`` (a calibrated classifier's parts)
    expose their constructor arguments as attributes of the same names.
    """
    if hasattr(est, "get_params"):
        params = est.get_params(deep=False)
    else:
        names = list(inspect.signature(type(est).__init__).parameters)[1:]
        params = {k: getattr(est, k) for k in names}
    skipped = _SKIPPED_STATE.get(type(est).__name__, frozenset())
    state = {k: v for k, v in vars(est).items() if k not in params and k not in skipped}
    return params, state


class _Writer:
    """Encodes a value tree to JSON-able data, collecting arrays for the .npz."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def encode(self, value: Any, path: str) -> Any:
        if isinstance(value, np.generic):
            return self._scalar(value, path)
        if value is None or isinstance(value, (bool, str, int)):
            return value
        if isinstance(value, float):
            return value if np.isfinite(value) else {"__float__": repr(value)}
        if isinstance(value, (list, tuple)):
            items = [self.encode(v, f"{path}[{i}]") for i, v in enumerate(value)]
            return items if isinstance(value, list) else {"__tuple__": items}
        if isinstance(value, dict):
            pairs = [[self.encode(k, path), self.encode(v, f"{path}[{k!r}]")] for k, v in value.items()]
            return {"__dict__": pairs}
        if isinstance(value, np.ndarray):
            return self._array(value, path)
        if isinstance(value, np.dtype) and value.kind in _SCALAR_KINDS:
            return {"__dtype__": value.str}
        if class_key(value) is not None:
            return {"__estimator__": self.node(value, path)}
        raise UsageError(
            f"Cannot save {path}: values of type {type(value).__module__}.{type(value).__name__} "
            f"are not supported without pickle. Allowed estimators: {', '.join(sorted(ALLOWED))}."
        )

    def _scalar(self, value: np.generic, path: str) -> Any:
        if isinstance(value, np.str_):
            return str(value)
        if value.dtype.kind not in _SCALAR_KINDS:
            raise UsageError(f"Cannot save {path}: numpy scalars of dtype {value.dtype}.")
        return {"__scalar__": value.dtype.str, "value": self.encode(value.item(), path)}

    def _array(self, arr: np.ndarray, path: str) -> dict[str, Any]:
        out: dict[str, Any] = {"__array__": f"a{len(self.arrays)}"}
        if arr.dtype == object:
            if not all(isinstance(v, str) for v in arr.ravel()):
                raise UsageError(f"Cannot save {path}: an object array holding non-strings.")
            arr, out["object"] = arr.astype(str), True
        if arr.dtype.kind not in _ARRAY_KINDS:
            raise UsageError(f"Cannot save {path}: arrays of dtype {arr.dtype} are not supported.")
        self.arrays[out["__array__"]] = arr
        return out

    def node(self, est: Any, path: str) -> dict[str, Any]:
        params, state = _split_attrs(est)
        return {
            "class": class_key(est),
            "params": {k: self.encode(v, f"{path}.{k}") for k, v in params.items()},
            "state": {k: self.encode(v, f"{path}.{k}") for k, v in state.items()},
        }


class _Reader:
    """Decodes the JSON tree back into values, fetching arrays from the .npz."""

    def __init__(self, arrays: Any) -> None:
        self.arrays = arrays

    def decode(self, value: Any, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise ModelFileError(f"The pipeline file nests deeper than {MAX_DEPTH} levels.")
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, list):
            return [self.decode(v, depth + 1) for v in value]
        if not isinstance(value, dict):
            raise ModelFileError(f"Unexpected entry in the pipeline file: {value!r:.80}.")
        tag = next((t for t in _TAGS if t in value), None)
        if tag is None:
            raise ModelFileError(f"Unknown entry in the pipeline file: {value!r:.80}.")
        return getattr(self, "_" + tag.strip("_"))(value, depth + 1)

    def _tuple(self, value: dict[str, Any], depth: int) -> tuple[Any, ...]:
        return tuple(self.decode(v, depth) for v in _expect(value["__tuple__"], list))

    def _dict(self, value: dict[str, Any], depth: int) -> dict[Any, Any]:
        pairs = _expect(value["__dict__"], list)
        return {_hashable(self.decode(p[0], depth)): self.decode(p[1], depth) for p in pairs}

    def _float(self, value: dict[str, Any], depth: int) -> float:
        text = value["__float__"]
        if text not in ("nan", "inf", "-inf"):
            raise ModelFileError(f"Invalid float entry {text!r} in the pipeline file.")
        return float(text)

    def _array(self, value: dict[str, Any], depth: int) -> np.ndarray:
        key = value["__array__"]
        if not isinstance(key, str) or key not in self.arrays:
            raise ModelFileError(
                f"The pipeline arrays file lacks the array {key!r} that pipeline.json refers to; "
                "the two files do not belong together. Retrain or restore the run folder."
            )
        arr = self.arrays[key]
        if arr.dtype.kind not in _ARRAY_KINDS:
            raise ModelFileError(f"Array {key!r} has the unsupported dtype {arr.dtype}.")
        return arr.astype(object) if value.get("object") else arr

    def _scalar(self, value: dict[str, Any], depth: int) -> np.generic:
        dtype = _numeric_dtype(value["__scalar__"])
        raw = self.decode(value.get("value"), depth)
        if not isinstance(raw, (bool, int, float)):
            raise ModelFileError(f"Invalid numpy scalar value {raw!r:.40} in the pipeline file.")
        return dtype.type(raw)  # type: ignore[no-any-return]

    def _dtype(self, value: dict[str, Any], depth: int) -> np.dtype:
        return _numeric_dtype(value["__dtype__"])

    def _estimator(self, value: dict[str, Any], depth: int) -> Any:
        return self.build(_expect(value["__estimator__"], dict), depth)

    def build(self, node: dict[str, Any], depth: int = 0) -> Any:
        """An estimator from a node: ``cls(**params)`` then its learned state."""
        cls = allowed_class(node.get("class", ""))
        params = {k: self.decode(v, depth + 1) for k, v in _expect(node.get("params"), dict).items()}
        try:
            est = cls(**params)
        except (TypeError, ValueError) as exc:
            raise ModelFileError(f"Invalid parameters for {cls.__name__} in the pipeline file: {exc}") from None
        for key, raw in _expect(node.get("state"), dict).items():
            _check_state_key(cls, key)
            setattr(est, key, self.decode(raw, depth + 1))
        _after_load(est)
        return est


def _expect(value: Any, kind: type) -> Any:
    if not isinstance(value, kind):
        raise ModelFileError(f"Malformed pipeline file: expected a {kind.__name__}, found {value!r:.60}.")
    return value


def _hashable(key: Any) -> Any:
    try:
        hash(key)
    except TypeError:
        raise ModelFileError(f"Malformed pipeline file: unhashable dict key {key!r:.60}.") from None
    return key


def _numeric_dtype(text: Any) -> np.dtype:
    try:
        dtype = np.dtype(str(text))
    except TypeError:
        dtype = np.dtype(object)
    if dtype.kind not in _SCALAR_KINDS:
        raise ModelFileError(f"The pipeline file names the unsupported dtype {text!r}.")
    return dtype


def _check_state_key(cls: type, key: str) -> None:
    """Refuse state names that are not plain attribute names or that shadow methods."""
    found = inspect.getattr_static(cls, key, None) if isinstance(key, str) else None
    if (
        not isinstance(key, str)
        or not _NAME.match(key)
        or key.startswith("__")
        or callable(found)
        or isinstance(found, property)
    ):
        raise ModelFileError(f"The pipeline file sets the attribute {key!r} of {cls.__name__}; refused.")


def _after_load(est: Any) -> None:
    """Rebuild learned helpers that are not data."""
    if type(est).__name__ == "SGDClassifier" and hasattr(est, "coef_"):
        est._loss_function_ = est._get_loss_function(est.loss)


def estimator_to_record(est: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The JSON record and the arrays of a (fitted) estimator."""
    import sklearn

    if class_key(est) is None:
        raise UsageError(f"Cannot save a {type(est).__name__}: allowed estimators are {', '.join(sorted(ALLOWED))}.")
    writer = _Writer()
    root = writer.node(est, type(est).__name__)
    record = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "versions": {"scikit-learn": sklearn.__version__, "numpy": np.__version__},
        "estimator": root,
    }
    return record, writer.arrays


def estimator_from_record(record: Any, arrays: Any) -> Any:
    """Rebuild an estimator from :func:`estimator_to_record` output (or the files' content)."""
    check_format(record, FORMAT, FORMAT_VERSION, "The scikit-learn pipeline record")
    try:
        return _Reader(arrays).build(_expect(record.get("estimator"), dict))
    except ModelFileError:
        raise
    except RecursionError:
        raise ModelFileError("The pipeline file nests too deeply.") from None
    except (KeyError, IndexError, ValueError, TypeError, AttributeError, OverflowError) as exc:
        raise ModelFileError(f"Malformed pipeline file: {type(exc).__name__}: {exc}") from None


def save_estimator(est: Any, json_path: Path, npz_path: Path) -> None:
    """Write ``est`` as JSON + .npz (both written atomically)."""
    record, arrays = estimator_to_record(est)
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    write_bytes_atomic(Path(npz_path), buf.getvalue())
    text = json.dumps(record, indent=1, allow_nan=False)
    write_bytes_atomic(Path(json_path), (text + "\n").encode("utf-8"))


def load_estimator(json_path: Path, npz_path: Path) -> Any:
    """Read an estimator written by :func:`save_estimator`; never unpickles."""
    try:
        record = json.loads(Path(json_path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"Cannot read the pipeline file {json_path}: {exc}") from None
    try:
        with np.load(npz_path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ModelFileError(f"Cannot read the pipeline arrays {npz_path}: {exc}") from None
    return estimator_from_record(record, arrays)


def iter_estimators(est: Any) -> Iterator[Any]:
    """``est`` and every allowlisted estimator nested in its parameters or state."""
    yield est
    params, state = _split_attrs(est)
    for value in [*params.values(), *state.values()]:
        yield from _nested(value)


def _nested(value: Any) -> Iterator[Any]:
    if isinstance(value, (list, tuple)):
        for v in value:
            yield from _nested(v)
    elif class_key(value) is not None:
        yield from iter_estimators(value)


def count_learned(est: Any) -> int:
    """Number of learned floating-point values in the tree (for ``num_params``)."""
    total = 0
    for node in iter_estimators(est):
        _, state = _split_attrs(node)
        total += sum(int(v.size) for v in state.values() if isinstance(v, np.ndarray) and v.dtype.kind == "f")
    return total
