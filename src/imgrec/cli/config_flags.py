"""CLI flags generated from the frozen config dataclasses: one list of options, not two.

Every field of ``TrainConfig`` (and the split fields of ``DataConfig``) becomes ``--field-name``
with its type, its choices (``Literal`` fields) and its one-line why as the help text, so a new
config field is on the command line the moment it exists. Flags default to None ("not given"):
YAML and the dataclass defaults fill the rest.

Example:
    >>> import argparse
    >>> from imgrec.config import TrainConfig
    >>> p = argparse.ArgumentParser()
    >>> names = add_config_flags(p, TrainConfig, skip=("model_args",))
    >>> p.parse_args(["--epochs", "3", "--augment", "flip"]).epochs, "mosaic" in names
    (3, True)
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

# field -> the flag spelling when it differs from --field-name (kept for compatibility)
RENAMES = {"num_threads": "--threads", "seed": "--seed"}


def add_config_flags(
    parser: argparse.ArgumentParser, cls: type, *, skip: Sequence[str] = (), renames: Mapping[str, str] = RENAMES,
    prefix: str = "",
) -> list[str]:  # fmt: skip
    """Add one flag per field of the dataclass ``cls``; returns the ``dest`` names added.

    Args:
        parser: where the flags go.
        cls: a config dataclass whose fields carry ``metadata["why"]``.
        skip: fields left off the command line.
        renames: field -> flag spelling.
        prefix: put before each dest and flag name (``split_`` for ``--split-seed``).
    """
    hints = typing.get_type_hints(cls)
    added = []
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        dest = prefix + f.name
        flag = renames.get(dest, "--" + dest.replace("_", "-"))
        parser.add_argument(flag, dest=dest, help=_help(f), **_kind(hints[f.name], f.default))
        added.append(dest)
    return added


def _kind(hint: Any, default: Any) -> dict[str, Any]:
    """argparse keywords for a field's type: bools are switches, Literals are choices."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    base = args[0] if _is_optional(hint) and len(args) == 1 else hint
    if base is bool:
        return {"action": argparse.BooleanOptionalAction if default is True else "store_true", "default": None}
    if typing.get_origin(base) is typing.Literal:
        return {"choices": typing.get_args(base), "default": None}
    if base in (int, float, str):
        return {"type": base, "default": None}
    return {"default": None}


def _is_optional(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in typing.get_args(hint)


def _help(f: dataclasses.Field[Any]) -> str:
    why = str(f.metadata.get("why", "")).replace("%", "%%")  # argparse formats help strings
    if f.default is dataclasses.MISSING or f.default is None or isinstance(f.default, bool):
        return why
    return f"{why} (default {f.default})"
