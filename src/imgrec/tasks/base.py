"""The task contract and its registry: what a result is, and how raw model outputs become results.

A task is an object, not a fork of the code: ``Predictor``, ``evaluate``, ``export``, ``serve``
and ``predict`` ask the run's task for the steps that differ between tasks and share the rest.

Example:
    >>> get_task("classification").name
    'classify'
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Any

from imgrec.errors import UnknownNameError, did_you_mean
from imgrec.registry import Registry
from imgrec.transforms.frame import Geometry

TASKS: Registry[Task] = Registry("task")


class Task(abc.ABC):
    """One recognition task.

    Attributes:
        name: the registry name (``"classify"``, ``"detect"``, ``"embed"``).
        aliases: other names that mean this task (``model.json`` writes ``"classification"``).
        description: one line for listings.
        batch_size: images per model call unless the caller says otherwise (predict,
            evaluate, serve's micro-batches): the one batch-size setting, per task.
    """

    name: str = ""
    aliases: tuple[str, ...] = ()
    description: str = ""
    batch_size: int = 32

    @abc.abstractmethod
    def options(self, **given: Any) -> dict[str, Any]:
        """The task's prediction options with defaults filled in; wrong values raise UsageError."""

    def model_options(self, model: Any) -> dict[str, Any]:
        """Options the model itself fixes, added to the checked ones by ``Predictor.options``
        (the embed task: the embedder's name, which every embedding carries). None here."""
        return {}

    @abc.abstractmethod
    def forward(self, model: Any, batch: Any) -> Any:
        """Run ``model`` on a prepared uint8 batch; one raw entry per image (picklable, batchable)."""

    @abc.abstractmethod
    def postprocess(
        self, raw: Sequence[Any], geometries: Sequence[Geometry], names: Sequence[str | None],
        classes: Sequence[str], options: Mapping[str, Any],
    ) -> list[Any]:  # fmt: skip
        """Raw entries -> typed results in the original images' pixels."""


def register_task(task: Task) -> Task:
    """Add a task (and its aliases) to the registry."""
    for key in (task.name, *task.aliases):
        TASKS.add(key, task)
    return task


def get_task(name: str | None) -> Task:
    """The task named ``name`` (None: classify, for runs written before tasks existed)."""
    _ensure_loaded()
    key = name or "classify"
    if key in TASKS:
        return TASKS.get(key)
    raise UnknownNameError(f"Unknown task {key!r}.{did_you_mean(key, list_tasks())} Tasks: {', '.join(list_tasks())}.")


def list_tasks() -> list[str]:
    """Registered task names (aliases left out)."""
    _ensure_loaded()
    return sorted({TASKS.get(n).name for n in TASKS.names()})


def _ensure_loaded() -> None:
    from imgrec.tasks import classify, detect, embed, instance, segment  # noqa: F401  (they register themselves)
