"""The run directory of a training: made (or reopened to resume) before anything is written, and
removed again when the start fails, touching nothing that was there before."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from imgrec.errors import MissingInputError, OutputError

__all__ = ["next_run_dir", "open_run_dir"]


@contextmanager
def open_run_dir(out: str | Path | None, model: str, runs_root: str | Path, resume: bool) -> Iterator[Path]:
    """Create (or reopen, to resume) the run directory; a failed start leaves nothing behind.

    On any exception before training has written a checkpoint (or model.json), what this
    call created is removed: the new folder (and parents it made, when empty), or the files in
    a user-given folder that was empty. A folder that held anything before is never touched,
    nor is a resumed run.
    """
    run = _check_run_dir(out, model, runs_root, resume)
    made = _missing_parts(run)
    was_empty = run.is_dir() and not any(run.iterdir())
    _mkdir(run)
    try:
        yield run
    except BaseException:
        if not resume and not _started(run):
            _remove_start(run, made, was_empty)
        raise


def _check_run_dir(out: str | Path | None, model: str, runs_root: str | Path, resume: bool) -> Path:
    run = Path(out) if out is not None else next_run_dir(runs_root, model)
    if resume and not (run / "checkpoints").is_dir():
        raise MissingInputError(f"Nothing to resume in {run}: it has no checkpoints/ folder.")
    if not resume and (run / "model.json").exists():
        raise OutputError(f"{run} already holds a finished run; choose another --out or delete it.")
    return run


def _missing_parts(run: Path) -> list[Path]:
    """``run`` and its parents that do not exist yet, deepest first."""
    missing = []
    for p in (run, *run.parents):
        if p.exists():
            break
        missing.append(p)
    return missing


def _mkdir(run: Path) -> None:
    try:
        run.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"Cannot create the run directory {run}: {exc.strerror or exc}") from None


def _started(run: Path) -> bool:
    return (run / "model.json").exists() or (run / "checkpoints" / "last.safetensors").exists()


def _remove_start(run: Path, made: list[Path], was_empty: bool) -> None:
    """Undo a failed start: only what this call created."""
    if made:
        shutil.rmtree(made[0], ignore_errors=True)
        for parent in made[1:]:  # runs/ itself, when this call made it and nothing else is in it
            try:
                parent.rmdir()
            except OSError:
                break
    elif was_empty:
        for child in run.iterdir():
            shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)


def next_run_dir(root: str | Path, model: str) -> Path:
    """``root/<model>-<n>`` with the first n not taken yet."""
    base = Path(root)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", model)
    taken = {p.name for p in base.glob(f"{safe}-*")} if base.is_dir() else set()
    n = 1
    while f"{safe}-{n}" in taken:
        n += 1
    return base / f"{safe}-{n}"
