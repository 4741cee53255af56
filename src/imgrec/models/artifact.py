"""The model artifact: a run directory with ``model.json`` and weights, readable without imgrec's
training code, loaded without running any code from the files (no pickle).
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
from pathlib import Path
from typing import Any

from imgrec.errors import MissingInputError, ModelFileError, OutputError
from imgrec.files import write_json_atomic
from imgrec.models.base import Embedder, Model
from imgrec.models.registry import get_loader

FORMAT = "imgrec-model"
FORMAT_VERSION = 1
META_FILE = "model.json"


def check_format(record: Any, fmt: str, version: int, what: str) -> dict[str, Any]:
    """``record`` when it is a JSON object of format ``fmt`` at a version this imgrec reads.

    Raises:
        ModelFileError: another format, a ``format_version`` that is not an integer, or a
            newer version than ``version``; ``what`` names the file in the message.
    """
    if not isinstance(record, dict) or record.get("format") != fmt:
        raise ModelFileError(f"{what}: format {fmt!r} expected; received {_shown(record)}.")
    found = record.get("format_version", 0)
    if isinstance(found, bool) or not isinstance(found, int):
        raise ModelFileError(f"{what}: format_version must be an integer; received {found!r}.")
    if found > version:
        raise ModelFileError(f"{what}: format version {found}; this imgrec reads up to {version}. Upgrade imgrec.")
    return record


def _shown(record: Any) -> str:
    return repr(record.get("format")) if isinstance(record, dict) else f"a JSON {type(record).__name__}"


def versions() -> dict[str, str]:
    """Versions of the interpreter and the libraries that shape a model's behaviour."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for pkg in ("imgrec", "numpy", "scikit-learn", "torch", "timm", "onnxruntime"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return out


def save_model(model: Model, run_dir: str | Path, meta: dict[str, Any] | None = None) -> Path:
    """Write ``model.json`` and the weights into ``run_dir``.

    Args:
        model: a fitted classifier.
        run_dir: the run directory (created when missing).
        meta: extra entries for model.json (training config, data, metrics).
    """
    run = Path(run_dir)
    try:
        run.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"Cannot create run directory {run}: {exc.strerror or exc}") from None
    files = model.save_weights(run)
    record = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "task": model.task,
        "model": model.name,
        "family": model.family,
        "classes": model.classes,
        "preprocessing": model.preprocessing.to_dict(),
        "model_args": model.model_args,
        "num_params": model.num_params(),
        "files": files,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": versions(),
        **({"embedding": model.embedding_info()} if isinstance(model, Embedder) else {}),
        **(meta or {}),
    }
    write_json_atomic(run / META_FILE, record)
    return run


def read_meta(run_dir: str | Path) -> dict[str, Any]:
    """Parse and check ``model.json``."""
    run = Path(run_dir)
    if not run.exists():
        raise MissingInputError(f"Run directory not found: {run}")
    path = run / META_FILE if run.is_dir() else run
    if not path.is_file():
        raise ModelFileError(
            f"{run} is not a model run: {META_FILE} is missing. Expected the folder written by "
            "`imgrec train` (runs/<model>-<n>/)."
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path} is not valid JSON: {exc}") from None
    check_format(meta, FORMAT, FORMAT_VERSION, f"{path} (an imgrec model file)")
    for key in ("model", "family", "classes", "preprocessing", "files"):
        if key not in meta:
            raise ModelFileError(f"{path} lacks the required entry {key!r}.")
    return meta


def load_model(run_dir: str | Path, meta: dict[str, Any] | None = None) -> tuple[Model, dict[str, Any]]:
    """Load a model and its metadata from a run directory.

    Args:
        run_dir: the run directory (or its ``model.json``).
        meta: the run's parsed ``model.json`` when the caller has already read it (it is
            then not read again).

    Example:
        >>> # model, meta = load_model("runs/hog-svm-1")
    """
    run = Path(run_dir)
    meta = read_meta(run) if meta is None else meta
    run = run if run.is_dir() else run.parent
    for role, name in dict(meta["files"]).items():
        target = (run / str(name)).resolve()
        if run.resolve() not in target.parents:
            raise ModelFileError(f"model.json names a {role} file outside the run folder: {name!r}.")
        if not target.is_file():
            raise ModelFileError(f"The run {run} lacks its {role} file {name!r}.")
    return get_loader(str(meta["family"]), _loader_task(meta.get("task")))(run, meta), meta


def _loader_task(task: Any) -> str | None:
    """The task part of a ``family:task`` loader (None: the family's own loader)."""
    return {"detect": "detect", "detection": "detect", "segment": "segment", "segmentation": "segment",
            "instance": "instance"}.get(str(task))


def weight_bytes(run_dir: str | Path, meta: dict[str, Any]) -> int:
    """Bytes of the files ``model.json`` lists; a listed ``model.json`` (a probe's backbone) counts its own files."""
    run, total = Path(run_dir), 0
    for name in dict(meta.get("files") or {}).values():
        path = run / str(name)
        if path.name == META_FILE and path.is_file():
            total += weight_bytes(path.parent, read_meta(path.parent))
        elif path.is_file():
            total += path.stat().st_size
    return total


def update_meta(run_dir: str | Path, **entries: Any) -> dict[str, Any]:
    """Merge entries into an existing model.json (atomically)."""
    meta = read_meta(run_dir)
    meta.update(entries)
    write_json_atomic(Path(run_dir) / META_FILE, meta)
    return meta
