"""The task contract: everything about *what* a run learns, and nothing about *how* it trains.

A task names its dataset and inputs, builds the stream of its samples, fits their
normalisation, builds the model with its output head, gives the per-sample loss and summarises
predictive draws. The loop (:mod:`darkstack.train.loop`), the ensembles (bootstrap weights,
MC-dropout), the Ray shell (:mod:`darkstack.train.ray_trainer`), checkpoints and resume call
these methods and know nothing else of a task. A task's evaluation (metrics, baselines,
figures) lives downstream in :mod:`darkstack.evaluate`, under the same name.

Models follow one convention: the module :meth:`Task.build_model` returns keeps its ensemble
in a :class:`~darkstack.train.models.MemberNetwork` at the attribute ``network`` (members
along the first dimension of every tensor, see :mod:`darkstack.train.models.members`) and
answers ``(batch, member, *target_shape)``; tensors outside ``network`` are shared by all
members (a fixed target scaling, say). Early stopping keeps each member's best weights by that
layout.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from darkstack.train.config import TrainConfig
from darkstack.train.data import Augment, EpochDraw, SampleSource, split_by_group
from darkstack.train.losses import Loss

#: The network attribute of a task's model that holds its members.
MEMBERS_ATTRIBUTE = "network"

#: A score per member of the validation split's predictions, lower is better: called with the
#: model's outputs ``(n, M, ...)`` in the order of the validation source's positions.
Select = Callable[[torch.Tensor], list[float]]

ConfigT = TypeVar("ConfigT", bound=TrainConfig)
DatasetT = TypeVar("DatasetT", bound="TaskDataset")


class TaskDataset(Protocol):
    """The usable samples of a task's dataset in one store.

    Attributes
    ----------
    samples : ndarray of int
        Index of each usable sample along the dataset's sample dimension, increasing.
    groups : ndarray of int
        The object (galaxy, dwarf, cluster, ...) each sample shows: splits and bootstrap
        resamples take whole groups.
    group_name : str
        What a group is, as ``split.json`` names the groups of each split (``subhalo_id``).
    """

    @property
    def samples(self) -> NDArray[np.int64]: ...

    @property
    def groups(self) -> NDArray[np.int64]: ...

    @property
    def group_name(self) -> str: ...


class Task(ABC, Generic[ConfigT, DatasetT]):
    """One learning problem, registered by :attr:`name` (see :mod:`darkstack.train.tasks`).

    Attributes
    ----------
    name : str
        The task's name: ``darkstack train --task NAME`` and the ``task`` of its config.
    config_type : type
        Its :class:`~darkstack.train.config.TrainConfig` subclass (inputs, model).
    presets : mapping
        ``darkstack train --preset`` name -> values that replace the config's defaults.
    legacy_defaults : mapping
        Values of settings added after runs were saved without them, when their default
        differs from what those runs did: a run's ``config.yaml`` lacking one reads as this
        (``"section.key"`` for a setting inside a section).
    """

    name: ClassVar[str]
    config_type: ClassVar[type[Any]]
    presets: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    legacy_defaults: ClassVar[Mapping[str, Any]] = {}

    @abstractmethod
    def open_dataset(self, store: Path, config: ConfigT) -> DatasetT:
        """The usable samples of ``store``; a one-line error if the config cannot read them."""

    def split(self, dataset: DatasetT, config: ConfigT) -> dict[str, NDArray[np.int64]]:
        """Positions into ``dataset.samples`` of each split; by group (``config.data``) unless
        the task splits otherwise (by region of a volume, say)."""
        return split_by_group(
            dataset.groups,
            fractions=config.data.split_fractions,
            seed=config.data.split_seed,
            n_folds=config.data.n_folds,
            fold=config.data.fold,
        )

    @abstractmethod
    def fit_normalisation(
        self, store: Path, config: ConfigT, dataset: DatasetT, *, samples: NDArray[np.int64]
    ) -> dict[str, Any]:
        """Input and target normalisation fitted on the training ``samples``, as plain JSON."""

    @abstractmethod
    def source(
        self,
        store: Path,
        config: ConfigT,
        dataset: DatasetT,
        normalisation: Mapping[str, Any],
        *,
        samples: NDArray[np.int64],
    ) -> SampleSource:
        """Normalised inputs and targets of ``samples``, read a storage chunk at a time."""

    def epoch_draw(
        self, config: ConfigT, dataset: DatasetT, *, samples: NDArray[np.int64]
    ) -> EpochDraw | None:
        """Which positions of the training ``samples`` (as :meth:`source` reads them) each
        epoch visits, drawn anew per epoch from ``config.seed`` and the epoch (a weighted
        sampler); None, the default: every sample once per epoch."""
        return None

    def augment(
        self, inputs: torch.Tensor, targets: torch.Tensor, *, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A training batch under random symmetries of the data; unchanged by default.

        ``inputs`` and ``targets`` are the batch's (sample first); a symmetry that moves the
        target (a flip of a target map) transforms both alike, one that leaves it invariant
        returns ``targets`` as they are. Draws only from ``generator`` (the epoch's), so a
        resumed run repeats them; may work in place.
        """
        return inputs, targets

    def augmentation(self, config: ConfigT) -> Augment | None:
        """The training stream's augmentation under ``config``: :meth:`augment` when
        ``data.augment`` is on (a task may add its own switch), else None."""
        return self.augment if config.data.augment else None

    @abstractmethod
    def build_model(self, config: ConfigT, normalisation: Mapping[str, Any]) -> nn.Module:
        """A fresh model answering ``(batch, member, *target_shape)`` (see the module)."""

    @abstractmethod
    def per_sample_loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Each sample's loss for each member, ``(batch, member)``.

        The loop weights it by the members' bootstrap counts (one weight per sample and
        member); validation averages it over the split.
        """

    def validation_loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Each sample's score for each member, ``(batch, member)``, that early stopping
        compares on the validation split; lower is better. The training loss by default."""
        return self.per_sample_loss(outputs, targets)

    def losses(self, config: ConfigT) -> tuple[Loss, Loss]:
        """The training loss and the validation score under ``config``:
        :meth:`per_sample_loss` and :meth:`validation_loss` by default (a task whose loss has
        a setting builds them here)."""
        return self.per_sample_loss, self.validation_loss

    def selection(self, store: Path, config: ConfigT, *, validation: SampleSource) -> Select | None:
        """A score of the whole validation split's predictions that keeps each member's best
        weights and early-stops instead of the mean validation loss (a statistic of all the
        predictions together, as dm2gal's P(k) of the painted validation cube); ``validation``
        is the split's source, whose positions order the predictions. None, the default: the
        validation loss."""
        return None

    def calibrate(self, store: Path, paths: Any, model: nn.Module, config: ConfigT) -> None:
        """Fit and save a post-hoc calibration of the trained ``model`` (on its best weights,
        in eval mode) on the run's validation split; none by default. ``paths`` is the run's
        :class:`~darkstack.store.RunPaths`."""

    @abstractmethod
    def summarise(self, draws: NDArray[np.floating]) -> Any:
        """The predictive summary of draws ``(n, k, *target_shape)``: k ensemble members or
        MC-dropout passes of each of n samples (percentiles, a mixture density, ...)."""
