"""Continuing a run: finish an interrupted one, or extend a finished one to more epochs.

A run directory keeps ``config.json`` (the data source and configs it was started with, and
the learning-rate ``cycles``) and ``checkpoints/state.json`` (epochs done, best epoch, whether
it was interrupted). :func:`plan_resume` reads both and decides, before anything loads:

- an interrupted (or killed) run continues to its planned epochs, with its own settings;
- a finished N-epoch torch run asked for M > N epochs is extended: epochs N+1..M are one
  more learning-rate cycle (a warm restart, see ``imgrec.training.schedule.plan_cycles``);
- a finished run asked for M <= N epochs has nothing to do (``ResumePlan.nothing_to_do``);
- everything else is refused with the reason: a changed setting other than ``epochs``,
  ``device`` or ``num_threads`` (a resumed run replays the stored optimizer, schedule and
  data exactly), a run that stopped early (it would stop again at once), a classical run
  (it fits in one pass and keeps no checkpoint).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imgrec.config import DataConfig, TrainConfig
from imgrec.data.run_data import RUN_CONFIG
from imgrec.errors import ConfigError, MissingInputError
from imgrec.files import write_json_atomic

STATE_FILE = Path("checkpoints") / "state.json"
RESUMABLE = ("epochs", "device", "num_threads")  # settings a resume may change


@dataclass(frozen=True)
class ResumePlan:
    """What resuming a run will do.

    Attributes:
        run_dir: the run directory.
        data: the data source the run was started with.
        config: the training config to continue with (the stored one, new ``epochs`` etc.).
        data_config: the stored split settings.
        done_epochs: epochs already trained.
        cycles: epoch at which each learning-rate cycle ends (the last is ``config.epochs``).
        finished: the run already holds a finished model (``model.json``) for ``done_epochs``.
    """

    run_dir: Path
    data: str
    config: TrainConfig
    data_config: DataConfig
    done_epochs: int
    cycles: list[int]
    finished: bool

    @property
    def nothing_to_do(self) -> bool:
        """The run is finished and no more epochs were asked for."""
        return self.finished and self.config.epochs <= self.done_epochs

    @property
    def extends(self) -> bool:
        """Training continues past the run's original end (a new learning-rate cycle)."""
        return len(self.cycles) > 1 and self.done_epochs == self.cycles[-2]

    def message(self) -> str:
        """One line for people: what resuming does (or why it does nothing)."""
        n = self.done_epochs
        if self.nothing_to_do:
            return f"{self.run_dir} already finished {n} epochs; pass --epochs M > {n} to train further."
        if self.extends:
            return f"extending {self.run_dir} from {n} to {self.config.epochs} epochs (a warm restart of the schedule)"
        return f"resuming {self.run_dir} after epoch {n} of {self.config.epochs}"


def write_run_config(run_dir: Path, source: str, cfg: TrainConfig, dcfg: DataConfig, cycles: list[int]) -> None:
    """Write ``config.json``: what ``--resume`` needs to start the run again."""
    record: dict[str, Any] = {"data": source, "training": cfg.to_dict(), "data_config": dcfg.to_dict()}
    if cycles != [cfg.epochs]:
        record["cycles"] = cycles
    write_json_atomic(run_dir / RUN_CONFIG, record)


def read_run_config(run_dir: str | Path) -> tuple[str, TrainConfig, DataConfig]:
    """The data source and configs a run was started with (for ``--resume``)."""
    raw = _read_json(Path(run_dir) / RUN_CONFIG, "it was not started by imgrec train")
    return raw["data"], TrainConfig.from_dict(raw["training"]), DataConfig.from_dict(raw["data_config"])


def plan_resume(run_dir: str | Path, config: TrainConfig | None = None) -> ResumePlan:
    """Decide how to resume ``run_dir`` with ``config`` (default: its stored config).

    Raises:
        MissingInputError: the folder is not a run, or has no checkpoint to resume from.
        ConfigError: the resume is refused (see the module docstring); the message says why.
    """
    run = Path(run_dir)
    source, stored, dcfg = read_run_config(run)
    _refuse_classical(run, stored)
    wanted = config or stored
    _refuse_changes(run, stored, wanted)
    cycles = _stored_cycles(run, stored)
    state = _read_json(run / STATE_FILE, "it has no checkpoint to resume from")["train"]
    done, complete = int(state["epoch"]), _complete(state, stored, cycles)
    finished = complete and (run / "model.json").is_file()
    if not complete and wanted.epochs != cycles[-1]:
        raise ConfigError(
            f"{run} was interrupted after epoch {done} of {cycles[-1]}; resume it without --epochs to "
            f"finish its {cycles[-1]} epochs first, then extend it with --resume {run} --epochs M."
        )
    if complete and wanted.epochs > done:
        _refuse_early_stopped(run, done, cycles[-1], stored)
        cycles = [*cycles, wanted.epochs]
    if wanted.epochs != cycles[-1] and not finished:  # trained to the end, model.json not yet written
        wanted = wanted.replace(epochs=cycles[-1])
    return ResumePlan(run, source, wanted, dcfg, done, cycles, finished)


def _read_json(path: Path, why_missing: str) -> dict[str, Any]:
    if not path.is_file():
        raise MissingInputError(f"Nothing to resume: {path} does not exist; {why_missing}.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} is not readable JSON ({exc}); the run cannot be resumed.") from None
    return data if isinstance(data, dict) else {}


def _refuse_classical(run: Path, stored: TrainConfig) -> None:
    from imgrec.models import get_model_spec

    if get_model_spec(stored.model).family != "torch":
        raise ConfigError(
            f"{run} is a {stored.model} run, a classical model: it fits in one pass and keeps no checkpoint, "
            "so there is nothing to resume or extend. Train a new run instead (e.g. with other --model-arg)."
        )


def _refuse_changes(run: Path, stored: TrainConfig, wanted: TrainConfig) -> None:
    old, new = stored.to_dict(), wanted.to_dict()
    changed = [k for k in old if old[k] != new[k] and k not in RESUMABLE]
    if changed:
        what = ", ".join(f"{k} (run: {old[k]!r}, given: {new[k]!r})" for k in changed)
        raise ConfigError(
            f"--resume continues {run} with its own settings; only {', '.join(RESUMABLE)} may change. "
            f"Changed: {what}. A resumed run replays the stored optimizer, schedule and data, so a "
            "changed setting would mix two trainings. Start a new run to try other settings."
        )


def _stored_cycles(run: Path, stored: TrainConfig) -> list[int]:
    raw = _read_json(run / RUN_CONFIG, "it was not started by imgrec train").get("cycles")
    return [int(c) for c in raw] if isinstance(raw, list) and raw else [stored.epochs]


def _complete(state: dict[str, Any], stored: TrainConfig, cycles: list[int]) -> bool:
    """All planned epochs ran, or early stopping ended the run (and no Ctrl-C since)."""
    if state.get("interrupted"):
        return False
    done, best = int(state["epoch"]), int(state.get("best_epoch") or 0)
    stopped = bool(stored.early_stopping) and done - best >= stored.early_stopping
    return done >= cycles[-1] or stopped


def _refuse_early_stopped(run: Path, done: int, planned: int, stored: TrainConfig) -> None:
    if done < planned:
        raise ConfigError(
            f"{run} stopped early after epoch {done} of {planned} (no better {stored.monitor} for "
            f"{stored.early_stopping} epochs); training it further would stop again at once. "
            "Start a new run with more epochs or without early stopping instead."
        )
