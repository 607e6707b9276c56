"""Training tasks by name: the contract (:class:`Task`) and the registry ``darkstack train`` uses.

Built-in tasks are imported on first use (so ``darkstack --help`` does not import torch); an
installed package adds one through the entry-point group ``darkstack.tasks``
(``name = "package.module:TASK"``, an instance of a :class:`Task` subclass), and
:func:`register_task` adds one at run time. See ``docs/train.md``, "Tasks", for writing one.
"""

from __future__ import annotations

from typing import Any

from darkstack.registry import Registry
from darkstack.train.tasks.base import MEMBERS_ATTRIBUTE, Task, TaskDataset

__all__ = ["MEMBERS_ATTRIBUTE", "Task", "TaskDataset", "get_task", "register_task", "task_names"]

_TASKS: Registry[Task[Any, Any]] = Registry(
    kind="task",
    group="darkstack.tasks",
    builtin={
        "profiles": "darkstack.train.tasks.profiles:TASK",
        "cusp_core": "darkstack.train.tasks.cusp_core:TASK",
        "dm2gal": "darkstack.train.tasks.dm2gal:TASK",
        "cluster_mass": "darkstack.train.tasks.cluster_mass:TASK",
    },
    accepts=lambda entry: isinstance(entry, Task),
    expected="an instance of a Task subclass",
)


def register_task(task: Task[Any, Any]) -> None:
    """Make ``task`` the task called ``task.name`` (replacing one of that name)."""
    _TASKS.register(task.name, task)


def get_task(name: str) -> Task[Any, Any]:
    """The task called ``name``; a one-line error naming the known tasks otherwise."""
    return _TASKS.get(name)


def task_names() -> tuple[str, ...]:
    """Names of every known task."""
    return _TASKS.names()
