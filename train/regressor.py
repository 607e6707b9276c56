"""A network whose outputs are log10 enclosed masses: the model plus the target scaling."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from darkstack.train.models.members import MemberNetwork


class ProfileRegressor(nn.Module):
    """Maps images ``(B, C, H, W)`` to log10 M_DM(<R) ``(B, n_members, n_radii)``.

    The network predicts standardised targets (well-conditioned for Adam at the paper's small
    learning rate); the fixed affine map back to log10 masses lives in buffers so checkpoints
    carry it and the loss is taken on log10 masses, as in the paper.
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

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        standardised: torch.Tensor = self.network(images)
        return standardised * self.target_std + self.target_mean
