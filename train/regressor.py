"""A network whose outputs are the targets themselves: the model plus a fixed target scaling."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from darkstack.train.models.members import MemberNetwork


class Regressor(nn.Module):
    """Maps inputs to targets ``(B, n_members, *target_shape)`` in the targets' own units.

    The network predicts standardised targets (well-conditioned for Adam at small learning
    rates); the fixed affine map back to the targets' units lives in buffers so checkpoints
    carry it and the loss is taken on the targets themselves (log10 masses for the profiles).

    Parameters
    ----------
    network : MemberNetwork
        Answers ``(B, n_members, *target_shape)`` standardised targets, or with
        ``heteroscedastic`` ``(B, n_members, 2 * n_targets)``: the standardised means, then
        the log-variances of the standardised targets.
    target_mean, target_std : sequence of float
        Per target (broadcast over the trailing target dimensions).
    heteroscedastic : bool
        Answer ``(B, n_members, 2, n_targets)``: each target's mean and the log of its
        variance, both in the targets' units (:mod:`darkstack.train.losses`).
    """

    target_mean: torch.Tensor
    target_std: torch.Tensor

    def __init__(
        self,
        network: MemberNetwork,
        *,
        target_mean: Sequence[float],
        target_std: Sequence[float],
        heteroscedastic: bool = False,
    ) -> None:
        super().__init__()
        self.network = network
        self.heteroscedastic = heteroscedastic
        self.register_buffer("target_mean", torch.tensor(target_mean, dtype=torch.float32))
        self.register_buffer("target_std", torch.tensor(target_std, dtype=torch.float32))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        standardised: torch.Tensor = self.network(inputs)
        if not self.heteroscedastic:
            return standardised * self.target_std + self.target_mean
        pair = standardised.unflatten(-1, (2, -1))
        mean = pair[:, :, 0] * self.target_std + self.target_mean
        log_variance = pair[:, :, 1] + 2.0 * torch.log(self.target_std)
        return torch.stack([mean, log_variance], dim=2)
