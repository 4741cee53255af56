"""The exception tree of imgrec.

Every error imgrec raises on purpose is an :class:`ImgrecError` and also subclasses the
builtin exception a Python user would expect, so ``except ValueError`` keeps working::

    ImgrecError (Exception)                       exit 1
    ├── UsageError (ValueError)                   exit 2   bad argument or option value
    │   ├── ConfigError                                    unknown/invalid config key
    │   ├── UnknownNameError (KeyError)                    unknown model/analyzer/preset/collection name
    │   └── ConflictError                                  clashes with what is stored (embedder, dimension, name)
    ├── MissingInputError (FileNotFoundError)     exit 66  a path that does not exist
    ├── DataError (ValueError)                    exit 65  bad data
    │   ├── InvalidImageError                              corrupt/unsupported/truncated image
    │   │   └── ImageTooLargeError                         over the pixel or byte limit
    │   ├── DatasetError                                   unusable dataset (one class, too many bad files)
    │   └── ModelFileError                                 unreadable or incompatible model artifact
    ├── OutputError (OSError)                     exit 73  cannot create or write an output
    │   └── StoreError                                     the database cannot be opened or used
    │       └── StoreVersionError                          the database is newer than this imgrec
    ├── DependencyError (ImportError)             exit 1   an optional extra is not installed
    └── TrainingInterrupted (KeyboardInterrupt)   exit 130 Ctrl-C, after a clean save

Messages say what was wrong, what was expected, what was received and how to fix it.
Each error carries a stable snake_case ``code`` used by the HTTP API and JSON output.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ImgrecError(Exception):
    """Base class of every error imgrec raises on purpose."""

    code = "internal_error"
    exit_code = 1

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


class UsageError(ImgrecError, ValueError):
    """An argument or option value is not valid."""

    code = "bad_request"
    exit_code = 2


class ConfigError(UsageError):
    """A configuration key is unknown or its value invalid."""

    code = "bad_config"


class UnknownNameError(UsageError, KeyError):
    """A name looked up in a registry does not exist."""

    code = "unknown_name"

    def __str__(self) -> str:  # KeyError would quote the message otherwise
        return self.message


class ConflictError(UsageError):
    """The request clashes with what is stored: another embedder or dimension, a taken name."""

    code = "conflict"


class MissingInputError(ImgrecError, FileNotFoundError):
    """An input path does not exist."""

    code = "not_found"
    exit_code = 66


class DataError(ImgrecError, ValueError):
    """Input data cannot be used."""

    code = "bad_data"
    exit_code = 65


class InvalidImageError(DataError):
    """An image is corrupt, truncated or in a format that is not allowed."""

    code = "image_invalid"


class ImageTooLargeError(InvalidImageError):
    """An image is over the configured pixel or byte limit."""

    code = "image_too_large"


class DatasetError(DataError):
    """A dataset cannot be used for the requested job."""

    code = "dataset_invalid"


class ModelFileError(DataError):
    """A model artifact is missing files, corrupt, or from an incompatible version."""

    code = "model_invalid"


class OutputError(ImgrecError, OSError):
    """An output path cannot be created or written."""

    code = "output_error"
    exit_code = 73


class StoreError(OutputError):
    """The database (SQLite file or PostgreSQL server) cannot be opened, migrated or written."""

    code = "store_unavailable"


class StoreVersionError(StoreError):
    """The database schema was written by a newer imgrec than this one."""

    code = "store_too_new"


class DependencyError(ImgrecError, ImportError):
    """An optional dependency is not installed."""

    code = "missing_dependency"
    exit_code = 1


class TrainingInterrupted(ImgrecError, KeyboardInterrupt):
    """Training was interrupted by the user after saving a resumable checkpoint."""

    code = "interrupted"
    exit_code = 130


def close_matches(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """Return up to ``n`` names from ``choices`` that look like ``name``."""
    pool = list(choices)
    lowered = {c.lower(): c for c in pool}
    found = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.6)
    hits = [lowered[f] for f in found]
    hits += [c for c in pool if name.lower() in c.lower() and c not in hits]
    return hits[:n]


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``" Did you mean 'a' or 'b'?"`` or an empty string."""
    hits = close_matches(name, choices)
    if not hits:
        return ""
    return " Did you mean " + " or ".join(repr(h) for h in hits) + "?"


def require(module: str, extra: str) -> object:
    """Import an optional dependency or raise :class:`DependencyError` naming the extra.

    Example:
        >>> np = require("numpy", "core")
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise DependencyError(
            f"This needs the optional package {module!r}, which is not installed "
            f"({exc}). Install it with: pip install 'imgrec[{extra}]'"
        ) from exc
