"""The data a run was trained on, as the run records it: ``config.json`` names the source and
``splits.json`` the split manifest. One reader for every layer that re-opens a run's data
(evaluate on its test split, export's parity samples, resume).

Example:
    >>> # part, name, source = run_split(Path("runs/resnet18-1"), ("test", "val"))
    >>> # (name, source) == ("test", "photos/")
"""

from __future__ import annotations

import json
from pathlib import Path

from imgrec.data.dataset import ImageDataset
from imgrec.data.readers import load_dataset
from imgrec.data.split import load_splits
from imgrec.errors import DatasetError, MissingInputError

RUN_CONFIG = "config.json"
SPLITS_FILE = "splits.json"


def run_source(run_dir: str | Path, hint: str = "give images to use") -> str:
    """The data source (path or built-in name) recorded in the run's ``config.json``.

    Raises:
        MissingInputError: the run records no ``config.json`` (it was imported, or not trained here).
        DatasetError: the file is unreadable or names no data.
    """
    config = Path(run_dir) / RUN_CONFIG
    if not config.is_file():
        raise MissingInputError(f"{run_dir} does not record its data ({RUN_CONFIG} is missing); {hint}.")
    try:
        return str(json.loads(config.read_text(encoding="utf-8"))["data"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"{config} is unreadable ({type(exc).__name__}: {exc}); {hint}.") from None


def run_task(run_dir: str | Path) -> str | None:
    """The dataset task the run's data was read with (``config.json``'s ``data_config.task``), or None."""
    try:
        raw = json.loads((Path(run_dir) / RUN_CONFIG).read_text(encoding="utf-8"))
        task = (raw.get("data_config") or {}).get("task")
    except (OSError, ValueError, AttributeError):
        return None
    return str(task) if task else None


def run_split(
    run_dir: str | Path, names: tuple[str, ...], hint: str = "give images to use"
) -> tuple[ImageDataset, str, str]:
    """The first non-empty split of ``names`` from the run's recorded data and split manifest.

    Returns:
        The split, its name (one of ``names``) and the data source it comes from.

    Raises:
        MissingInputError / DatasetError: the run records no data, the data is gone, or every
            named split is empty; the message ends with ``hint`` (what to give instead).
    """
    run = Path(run_dir)
    if not (run / SPLITS_FILE).is_file():
        raise MissingInputError(f"{run} does not record its splits ({SPLITS_FILE}); {hint}.")
    source = run_source(run, hint)
    try:
        splits = load_splits(load_dataset(source, task=run_task(run)), run / SPLITS_FILE)
    except (MissingInputError, DatasetError) as exc:
        raise type(exc)(f"Cannot read the run's data {source!r}: {exc} {hint[:1].upper()}{hint[1:]}.") from None
    for name in names:
        part = getattr(splits, name)
        if len(part):
            return part, name, source
    raise DatasetError(f"The run's {'/'.join(names)} split of {source} is empty; {hint}.")
