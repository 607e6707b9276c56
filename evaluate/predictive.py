"""Predictive distributions and the proper scores of them, per output.

An ensemble's predictive is the mixture of its members (bootstrap networks, MC-dropout passes).
Where members carry a variance, the mixture's variance is :func:`mixture_variance`; where they
carry none, the mixture is the members' empirical distribution, scored by
:func:`crps_ensemble`. Point baselines get a Gaussian predictive, scored in closed form by
:func:`crps_gaussian` and :func:`nll_gaussian` (Gneiting & Raftery 2007, JASA 102, 359).
Arrays are ``(n_samples, n_outputs)``; members stack on a leading axis.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import stats


def mixture_variance(
    *, means: NDArray[np.floating], variances: NDArray[np.floating] | None = None
) -> NDArray[np.float64]:
    """Variance of an equal-weight mixture: mean of members' variances + variance of their means.

    Parameters
    ----------
    means : ndarray, shape (n_members, ...)
        Each member's predictive mean.
    variances : ndarray, shape (n_members, ...), optional
        Each member's predictive variance; members without one (point predictions) add none.
    """
    means = np.asarray(means, dtype=np.float64)
    spread = means.var(axis=0)  # ddof=0: the mixture's own variance, not an estimate of one
    if variances is None:
        return np.asarray(spread, dtype=np.float64)
    return np.asarray(np.asarray(variances, dtype=np.float64).mean(axis=0) + spread)


def crps_gaussian(
    *, mean: NDArray[np.floating], sigma: NDArray[np.floating], true: NDArray[np.floating]
) -> NDArray[np.float64]:
    """CRPS of a Gaussian predictive, closed form, per sample (same units as ``true``)."""
    sigma = np.asarray(sigma, dtype=np.float64)
    z = (np.asarray(true, dtype=np.float64) - mean) / sigma
    return np.asarray(
        sigma
        * (z * (2.0 * stats.norm.cdf(z) - 1.0) + 2.0 * stats.norm.pdf(z) - 1.0 / np.sqrt(np.pi))
    )


def nll_gaussian(
    *, mean: NDArray[np.floating], sigma: NDArray[np.floating], true: NDArray[np.floating]
) -> NDArray[np.float64]:
    """Negative log-likelihood (nats) of ``true`` under a Gaussian predictive, per sample."""
    sigma = np.asarray(sigma, dtype=np.float64)
    z = (np.asarray(true, dtype=np.float64) - mean) / sigma
    return np.asarray(0.5 * z**2 + np.log(sigma) + 0.5 * np.log(2.0 * np.pi))


def crps_ensemble(
    *, members: NDArray[np.floating], true: NDArray[np.floating]
) -> NDArray[np.float64]:
    """CRPS of the members' empirical distribution (energy form), per sample.

    ``E|X - y| - E|X - X'|/2`` over members X, X' (both expectations over all pairs, so this is
    the CRPS of the empirical distribution itself, not the fair/unbiased variant).

    Parameters
    ----------
    members : ndarray, shape (n_members, n_samples, n_outputs)
        The members' point predictions.
    true : ndarray, shape (n_samples, n_outputs)
        The true values.
    """
    members = np.asarray(members, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    skill = np.abs(members - true[None]).mean(axis=0)
    # E|X - X'| from the sorted members in O(m log m): sum_i (2i - m - 1) x_(i) * 2 / m^2.
    ordered = np.sort(members, axis=0)
    m = members.shape[0]
    weights = (2.0 * np.arange(1, m + 1) - m - 1.0).reshape((m,) + (1,) * (members.ndim - 1))
    spread = 2.0 * (weights * ordered).sum(axis=0) / m**2
    return np.asarray(skill - 0.5 * spread)


def pit_gaussian(
    *, mean: NDArray[np.floating], sigma: NDArray[np.floating], true: NDArray[np.floating]
) -> NDArray[np.float64]:
    """Probability integral transform of ``true`` under a Gaussian (uniform if calibrated)."""
    return np.asarray(stats.norm.cdf((np.asarray(true, dtype=np.float64) - mean) / sigma))


def pit_ensemble(
    *, members: NDArray[np.floating], true: NDArray[np.floating]
) -> NDArray[np.float64]:
    """PIT under the members' empirical distribution: fraction of members below (ties halved)."""
    members = np.asarray(members, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)[None]
    return np.asarray((members < true).mean(axis=0) + 0.5 * (members == true).mean(axis=0))


def central_coverage(*, pit: NDArray[np.floating], level: float) -> NDArray[np.float64]:
    """Fraction of samples inside the central ``level`` interval, per output, from their PIT."""
    tail = 0.5 * (1.0 - level)
    pit = np.asarray(pit, dtype=np.float64)
    return np.asarray(((pit >= tail) & (pit <= 1.0 - tail)).mean(axis=0))
