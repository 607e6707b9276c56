"""Scores shared by every task's evaluation: accuracy and interval coverage per output.

Outputs are the columns of ``(n_samples, n_outputs)`` arrays: the radii of a profile, say, where
these are equations (2) and (3) of de los Rios et al. (2023).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def delta_mse(predicted: NDArray[np.floating], true: NDArray[np.floating]) -> NDArray[np.float64]:
    """Root-mean-squared error per output (equation 2 of de los Rios et al.).

    Parameters
    ----------
    predicted, true : ndarray, shape (n_samples, n_outputs)
        Predictions and truth (log10 enclosed masses at each radius, for the profiles).
    """
    difference = _difference(predicted, true)
    return np.asarray(np.sqrt(np.mean(difference**2, axis=0)), dtype=np.float64)


def delta_mae(predicted: NDArray[np.floating], true: NDArray[np.floating]) -> NDArray[np.float64]:
    """Mean absolute error per output (equation 3)."""
    return np.asarray(np.mean(np.abs(_difference(predicted, true)), axis=0), dtype=np.float64)


def coverage(
    p16: NDArray[np.floating], p84: NDArray[np.floating], true: NDArray[np.floating]
) -> NDArray[np.float64]:
    """Fraction of samples whose true value lies in [p16, p84], per output (0.68 if calibrated)."""
    inside = (true >= p16) & (true <= p84)
    return np.asarray(inside.mean(axis=0), dtype=np.float64)


#: The coverage of a calibrated 16-84% interval.
NOMINAL_COVERAGE = 0.68
#: Distance from nominal, in binomial sigmas, beyond which a report flags a coverage.
COVERAGE_SIGMAS = 3.0


def coverage_sigma(*, nominal: float, n: int) -> float:
    """Binomial standard deviation of a coverage measured on ``n`` independent objects.

    Parameters
    ----------
    nominal : float
        The coverage a calibrated interval has (0.68 for 16-84%).
    n : int
        Independent objects (galaxies: several views of one galaxy are not independent).
    """
    if n < 1:
        raise ValueError(f"need at least one object for a coverage, got n={n}")
    return float(np.sqrt(nominal * (1.0 - nominal) / n))


def miscalibrated(
    measured: NDArray[np.floating], *, nominal: float, n: int, n_sigma: float = 3.0
) -> NDArray[np.bool_]:
    """Where a measured coverage lies more than ``n_sigma`` binomial sigmas from nominal."""
    sigma = coverage_sigma(nominal=nominal, n=n)
    return np.abs(np.asarray(measured, dtype=np.float64) - nominal) > n_sigma * sigma


def group_bootstrap_means(
    groups: NDArray[np.integer],
    values: dict[str, NDArray[np.floating]],
    *,
    n_draws: int = 1000,
    seed: int = 0,
) -> dict[str, NDArray[np.float64]]:
    """Each per-sample value's mean over whole groups resampled with replacement.

    The samples of one group (a galaxy's views, a dwarf's maps) share its object, so they are
    not independent: resampling samples understates the uncertainty of a mean; resampling
    groups does not. A group weighs as the mean of its samples. Every value uses the same
    draws, so differences between them are paired.

    Parameters
    ----------
    groups : ndarray, shape (n,)
        The group of each sample.
    values : dict of ndarray, each (n, ...)
        Per-sample values.
    n_draws : int
        Resamples.
    seed : int
        Seeds the resamples (the same for every value).

    Returns
    -------
    dict of ndarray, each (n_draws, ...)
    """
    ids, index = np.unique(groups, return_inverse=True)
    draws = np.random.default_rng(seed).integers(0, ids.size, size=(n_draws, ids.size))
    counts = np.bincount(index, minlength=ids.size).astype(np.float64)
    means = {}
    for name, value in values.items():
        value = np.asarray(value, dtype=np.float64)
        sums = np.zeros((ids.size, *value.shape[1:]))
        np.add.at(sums, index, value)
        group_means = sums / counts.reshape(-1, *([1] * (value.ndim - 1)))
        means[name] = group_means[draws].mean(axis=1)
    return means


def paired_interval(
    point: float, draws: NDArray[np.floating], *, level: float = 0.95
) -> list[float]:
    """``[point, lower, upper]``: a statistic and the central ``level`` interval of its draws."""
    tail = 50.0 * (1.0 - level)
    lower, upper = np.percentile(np.asarray(draws, dtype=np.float64), [tail, 100.0 - tail])
    return [float(point), float(lower), float(upper)]


def _difference(predicted: NDArray[np.floating], true: NDArray[np.floating]) -> NDArray[np.float64]:
    predicted = np.asarray(predicted, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    if predicted.shape != true.shape or predicted.ndim != 2:
        raise ValueError(
            f"predicted {predicted.shape} and true {true.shape} must both be (n_samples, n_outputs)"
        )
    return predicted - true
