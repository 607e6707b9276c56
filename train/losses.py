"""Per-sample losses tasks choose from; the loop weights them per member (bootstrap counts).

A point model answers ``(B, M, *target_shape)``; a heteroscedastic one answers
``(B, M, 2, *target_shape)``: its predictive mean and the log of its predictive variance
(:func:`split_mean_variance`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

#: A task's per-sample loss: ``(outputs (B, M, ...), targets (B, ...)) -> (B, M)``.
Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

#: β of the β-NLL (Seitzer et al. 2022, ICLR, "On the pitfalls of heteroscedastic uncertainty
#: estimation"): 0.5 is the value they recommend; 0 is the plain Gaussian NLL, 1 gives the mean
#: the gradient of the MSE.
BETA_NLL_BETA = 0.5


def squared_errors(
    outputs: torch.Tensor, targets: torch.Tensor, *, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Squared error averaged over the target's values, ``(B, M)``.

    Parameters
    ----------
    outputs : tensor (B, M, *target_shape)
        Each member's prediction.
    targets : tensor (B, *target_shape)
        The truth.
    weights : tensor (*target_shape), optional
        Non-negative weight of each target value: the mean becomes the weighted mean (a sum
        divided by the weights' sum).
    """
    squared = (outputs - targets.unsqueeze(1)).pow(2)
    if weights is None:
        return squared.flatten(2).mean(dim=-1)
    weights = weights.to(outputs)
    return (squared * weights).flatten(2).sum(dim=-1) / weights.sum()


def split_mean_variance(outputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance ``(B, M, *target_shape)`` of a heteroscedastic model's outputs
    ``(B, M, 2, *target_shape)`` (mean, then log-variance)."""
    return outputs[:, :, 0], outputs[:, :, 1].exp()


def beta_nll(
    outputs: torch.Tensor, targets: torch.Tensor, *, beta: float = BETA_NLL_BETA
) -> torch.Tensor:
    """β-NLL of a Gaussian predictive, averaged over the target's values, ``(B, M)``.

    ``stopgrad(σ²)^β · (log σ² + (y - μ)² / σ²) / 2`` (Seitzer et al. 2022, eq. 4; the constant
    ``log 2π / 2`` left out). The weight ``σ^(2β)`` is held fixed in the gradient, so a member
    cannot lower its loss by inflating the variance of samples it fits badly, which starves
    the plain NLL's mean of gradient.

    Parameters
    ----------
    outputs : tensor (B, M, 2, *target_shape)
        Each member's mean and log-variance.
    targets : tensor (B, *target_shape)
        The truth.
    beta : float
        The exponent; 0 gives the plain Gaussian NLL.
    """
    mean, log_variance = outputs[:, :, 0], outputs[:, :, 1]
    residual = (mean - targets.unsqueeze(1)).pow(2)
    nll = 0.5 * (log_variance + residual * torch.exp(-log_variance))
    if beta:
        nll = nll * torch.exp(beta * log_variance).detach()
    return nll.flatten(2).mean(dim=-1)
