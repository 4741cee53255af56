"""Training: ``train()`` runs a whole job (``imgrec.train``); the torch loops live in
``imgrec.training.loop`` (classifiers) and ``imgrec.training.detect_loop`` (detectors).
"""

from __future__ import annotations

from imgrec.training.api import Run, next_run_dir, read_run_config, train

__all__ = ["Run", "next_run_dir", "read_run_config", "train"]

