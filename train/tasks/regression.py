"""Tasks whose network regresses its targets directly: MSE, a target scaling, percentiles.

The profiles (20 log10 masses), a scalar from a volume, a map: the network predicts standardised
targets, a :class:`~darkstack.train.regressor.Regressor` maps them back with the training
split's mean and standard deviation (``target_mean`` and ``target_std`` of the task's
normalisation), the loss is the squared error of the targets and the predictive summary the
median and 16/84 percentiles of the draws. A subclass supplies the network. A heteroscedastic
model (outputs ``(B, M, 2, *target_shape)``, :mod:`darkstack.train.losses`) is trained with
the β-NLL instead.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from darkstack.train.losses import beta_nll, squared_errors
from darkstack.train.models import MemberNetwork
from darkstack.train.predict import Interval, summarise
from darkstack.train.regressor import Regressor
from darkstack.train.tasks.base import ConfigT, DatasetT, Task


class RegressionTask(Task[ConfigT, DatasetT]):
    """A :class:`Task` regressing its targets; its normalisation holds ``target_mean`` and
    ``target_std`` (one value per target, broadcast over the target's trailing dimensions)."""

    @abstractmethod
    def build_network(self, config: ConfigT) -> MemberNetwork:
        """A fresh network answering standardised targets ``(batch, member, *target_shape)``."""

    def build_model(self, config: ConfigT, normalisation: Mapping[str, Any]) -> Regressor:
        return Regressor(
            self.build_network(config),
            target_mean=normalisation["target_mean"],
            target_std=normalisation["target_std"],
        )

    def per_sample_loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        # A mean and a log-variance per target add one axis to the (batch, member) ones.
        if outputs.ndim == targets.ndim + 2:
            return beta_nll(outputs, targets)
        return squared_errors(outputs, targets)

    def validation_loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        # The β-NLL's weight σ^(2β) makes its value no proper score (an exact mean with σ -> 0
        # scores worse than σ = 1/e); the plain Gaussian NLL (β = 0) is one.
        if outputs.ndim == targets.ndim + 2:
            return beta_nll(outputs, targets, beta=0.0)
        return squared_errors(outputs, targets)

    def summarise(self, draws: NDArray[np.floating]) -> Interval:
        return summarise(draws)
