"""Training: ``train()`` runs a whole job; the torch loop lives in ``imgrec.train.loop``."""

from imgrec.train.api import Run, next_run_dir, read_run_config, train

__all__ = ["Run", "next_run_dir", "read_run_config", "train"]
