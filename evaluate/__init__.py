"""Evaluation of trained runs, one subpackage per task, and the metrics they share.

The evaluation half of a task: its metrics, baselines, figures and report. It is registered
under the task's name, as the training half is in :mod:`darkstack.train.tasks` (the two stay
apart because data flows one way: training never imports evaluation). ``darkstack evaluate``
runs :func:`get_evaluation` of the run's task; an installed package adds one through the
entry-point group ``darkstack.evaluations``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from darkstack.registry import Registry

__all__ = ["Evaluation", "get_evaluation"]


@dataclass(frozen=True, kw_only=True)
class Evaluation:
    """How ``darkstack evaluate`` evaluates the runs of one task.

    Attributes
    ----------
    config_type : type
        The frozen dataclass of its settings (``--config``, ``--set``).
    evaluate : callable
        ``evaluate(store, run, config) -> Path``: evaluates a trained run and returns its
        report directory.
    """

    config_type: type[Any]
    evaluate: Callable[[Path, str, Any], Path]


_EVALUATIONS: Registry[Evaluation] = Registry(
    kind="evaluation",
    group="darkstack.evaluations",
    builtin={
        "profiles": "darkstack.evaluate.profiles:EVALUATION",
        "cusp_core": "darkstack.evaluate.cusp_core:EVALUATION",
        "dm2gal": "darkstack.evaluate.dm2gal.report:EVALUATION",
        "cluster_mass": "darkstack.evaluate.cluster_mass.report:EVALUATION",
    },
    accepts=lambda entry: isinstance(entry, Evaluation),
    expected="an Evaluation",
)


def get_evaluation(task: str) -> Evaluation:
    """The evaluation of the runs of ``task``; a one-line error naming the known ones otherwise."""
    return _EVALUATIONS.get(task)
