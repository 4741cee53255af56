"""Training: ``train()`` runs a whole job; the torch loop lives in ``imgrec.train.loop``.

Like ``imgrec.evaluate``, the package is callable: ``imgrec.train(data, config)`` is
``imgrec.train.train(data, config)`` whichever of the two Python imported first.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from imgrec.train.api import Run, next_run_dir, read_run_config, train

__all__ = ["Run", "next_run_dir", "read_run_config", "train"]


class _CallableModule(types.ModuleType):
    """Lets ``imgrec.train(...)`` call :func:`train` whether it names the function or this package."""

    def __call__(self, *args: Any, **kwargs: Any) -> Run:
        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
