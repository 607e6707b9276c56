"""Per-sample losses tasks choose from; the loop weights them per member (bootstrap counts)."""

from __future__ import annotations

import torch


def squared_errors(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Squared error averaged over the target's values, ``(B, M)``.

    Parameters
    ----------
    outputs : tensor (B, M, *target_shape)
        Each member's prediction.
    targets : tensor (B, *target_shape)
        The truth.
    """
    return (outputs - targets.unsqueeze(1)).pow(2).flatten(2).mean(dim=-1)
