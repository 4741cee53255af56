"""The HTTP service: ``create_app(runs, ServeConfig(...))`` -> a FastAPI app; ``imgrec serve`` runs it.

Importing ``imgrec.serve`` stays light: FastAPI is imported when ``create_app`` is first used.

Example:
    >>> from imgrec.serve import ServeConfig
    >>> ServeConfig(max_batch_size=1).max_batch_size   # micro-batching off
    1
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from imgrec.serve.app import create_app
    from imgrec.serve.batching import MicroBatcher
    from imgrec.serve.config import ServeConfig, load_api_keys

_LAZY = {
    "create_app": "imgrec.serve.app",
    "ServeConfig": "imgrec.serve.config",
    "load_api_keys": "imgrec.serve.config",
    "MicroBatcher": "imgrec.serve.batching",
}

__all__ = ["MicroBatcher", "ServeConfig", "create_app", "load_api_keys"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'imgrec.serve' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
