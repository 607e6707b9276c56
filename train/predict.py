"""Predictive draws of any task's model: its ensemble members and MC-dropout passes.

Both give a set of draws per sample; a task summarises them (:meth:`Task.summarise
<darkstack.train.tasks.Task.summarise>`), for instance by :func:`summarise`'s median and 16th
and 84th percentiles (de los Rios et al.'s 68% interval).

The predictive of an ensemble is the equal-weight mixture of its draws. Point draws (a model
trained with the MSE) are summarised by their percentiles, as the paper did; draws that carry
a variance (``(n, k, 2, *target_shape)``: mean and log-variance, :mod:`darkstack.train.losses`)
by the Gaussian with the mixture's mean and variance (:func:`mixture_moments`). A calibration
(:mod:`darkstack.train.calibration`) rescales that Gaussian's width per target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from numpy.typing import NDArray
from scipy import stats
from torch import nn

from darkstack.evaluate.predictive import mixture_variance
from darkstack.train.models import mc_dropout

if TYPE_CHECKING:
    from darkstack.train.calibration import Calibration

#: Standard-normal quantiles of the 16th/84th and 2.5th/97.5th percentiles.
Z68 = float(stats.norm.ppf(0.84))
Z95 = float(stats.norm.ppf(0.975))


@dataclass(frozen=True, kw_only=True)
class Interval:
    """Median, 68% and 95% intervals and the predictive standard deviation, each
    ``(n_samples, *target_shape)``, in the targets' units."""

    median: NDArray[np.float64]
    p16: NDArray[np.float64]
    p84: NDArray[np.float64]
    p2_5: NDArray[np.float64]
    p97_5: NDArray[np.float64]
    std: NDArray[np.float64]


def mixture_moments(
    draws: NDArray[np.floating], *, heteroscedastic: bool
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Mean and standard deviation of the equal-weight mixture of the draws over axis 1.

    Parameters
    ----------
    draws : ndarray, shape (n, k, *target_shape) or (n, k, 2, *target_shape)
        Point draws, or with ``heteroscedastic`` each draw's mean and log-variance.
    heteroscedastic : bool
        Whether the draws carry a variance.
    """
    draws = np.asarray(draws, dtype=np.float64)
    if heteroscedastic:
        means, variances = draws[:, :, 0], np.exp(draws[:, :, 1])
        total = mixture_variance(
            means=np.moveaxis(means, 1, 0), variances=np.moveaxis(variances, 1, 0)
        )
    else:
        means = draws
        total = mixture_variance(means=np.moveaxis(means, 1, 0))
    return means.mean(axis=1), np.sqrt(total)


def summarise(
    draws: NDArray[np.floating],
    *,
    heteroscedastic: bool = False,
    calibration: Calibration | None = None,
) -> Interval:
    """The predictive summary of ``draws`` over their axis 1.

    Point draws without a calibration: their median and 2.5/16/84/97.5 percentiles (the
    paper's). Otherwise the Gaussian of the mixture's mean and standard deviation, whose width
    ``calibration`` scales per target and interval (see the module).

    Parameters
    ----------
    draws : ndarray, shape (n, k, *target_shape) or (n, k, 2, *target_shape)
        Ensemble members or MC-dropout passes of each of n samples.
    heteroscedastic : bool
        Whether the draws carry a log-variance (axis 2).
    calibration : Calibration, optional
        Fitted on the validation split.
    """
    mean, sigma = mixture_moments(draws, heteroscedastic=heteroscedastic)
    if calibration is None and not heteroscedastic:
        p2_5, p16, median, p84, p97_5 = np.percentile(
            np.asarray(draws, dtype=np.float64), [2.5, 16, 50, 84, 97.5], axis=1
        )
        return Interval(median=median, p16=p16, p84=p84, p2_5=p2_5, p97_5=p97_5, std=sigma)
    scale68 = scale95 = np.ones(mean.shape[1:])
    if calibration is not None:
        scale68, scale95 = calibration.scale68, calibration.scale95
    half68, half95 = Z68 * scale68 * sigma, Z95 * scale95 * sigma
    return Interval(
        median=mean,
        p16=mean - half68,
        p84=mean + half68,
        p2_5=mean - half95,
        p97_5=mean + half95,
        std=scale68 * sigma,
    )


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
