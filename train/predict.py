"""Predictive draws of any task's model: its ensemble members and MC-dropout passes.

Both give a set of draws per sample; a task summarises them (:meth:`Task.summarise
<darkstack.train.tasks.Task.summarise>`), for instance by :func:`summarise`'s median and 16th
and 84th percentiles (de los Rios et al.'s 68% interval).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from darkstack.train.models import mc_dropout


@dataclass(frozen=True, kw_only=True)
class Interval:
    """Median and 68% interval, each ``(n_samples, *target_shape)``, in the targets' units."""

    median: NDArray[np.float64]
    p16: NDArray[np.float64]
    p84: NDArray[np.float64]


def summarise(draws: NDArray[np.floating]) -> Interval:
    """Median and 16/84 percentiles over axis 1 of ``draws`` ``(n, k, *target_shape)``."""
    p16, median, p84 = np.percentile(np.asarray(draws, dtype=np.float64), [16, 50, 84], axis=1)
    return Interval(median=median, p16=p16, p84=p84)


def predict_members(
    model: nn.Module,
    inputs: NDArray[np.float32],
    *,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
) -> NDArray[np.float32]:
    """Each member's prediction, ``(n, n_members, *target_shape)``, in eval mode."""
    model.eval()
    return _batched(model, inputs, batch_size=batch_size, device=device)


def predict_mc_dropout(
    model: nn.Module,
    inputs: NDArray[np.float32],
    *,
    passes: int,
    seed: int,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
) -> NDArray[np.float32]:
    """``passes`` stochastic predictions with dropout on (Gal & Ghahramani 2016).

    Batch normalisation uses its running statistics, so only dropout varies between passes.
    Pass a single-member model (:func:`darkstack.train.models.extract_member`) for one
    network's error estimate; an ensemble gives ``passes`` draws per member.

    Returns
    -------
    ndarray, shape (n, passes * n_members, *target_shape)
    """
    torch.manual_seed(seed)
    draws = []
    with mc_dropout(model):
        for _ in range(passes):
            output = _batched(model, inputs, batch_size=batch_size, device=device)
            draws.append(output)
    model.eval()
    return np.concatenate(draws, axis=1)


def _batched(
    model: nn.Module,
    inputs: NDArray[np.float32],
    *,
    batch_size: int,
    device: torch.device | str,
) -> NDArray[np.float32]:
    outputs = []
    with torch.no_grad():
        for start in range(0, inputs.shape[0], batch_size):
            batch = torch.from_numpy(inputs[start : start + batch_size]).to(device)
            outputs.append(model(batch).cpu().numpy())
    return np.concatenate(outputs, axis=0)
