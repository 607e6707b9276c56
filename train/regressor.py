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
        Answers ``(B, n_members, *target_shape)`` standardised targets.
    target_mean, target_std : sequence of float
        Per target (broadcast over the trailing target dimensions).
    """

    target_mean: torch.Tensor
    target_std: torch.Tensor

    def __init__(
        self, network: MemberNetwork, *, target_mean: Sequence[float], target_std: Sequence[float]
    ) -> None:
        super().__init__()
        self.network = network
        self.register_buffer("target_mean", torch.tensor(target_mean, dtype=torch.float32))
        self.register_buffer("target_std", torch.tensor(target_std, dtype=torch.float32))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        standardised: torch.Tensor = self.network(inputs)
        return standardised * self.target_std + self.target_mean
