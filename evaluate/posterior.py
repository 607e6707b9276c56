"""Summaries of 1D posteriors on a grid: mode, second peak, intervals, PIT, coverage, and
their calibration by a temperature.

Shared by ``evaluate --task cusp_core`` and ``predict``; pure numpy on ``(n, G)`` densities.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.integrate import cumulative_trapezoid

FloatArray = NDArray[np.float64]
#: A local maximum counts as a second peak above this fraction of the highest one.
SECOND_PEAK_FRACTION = 0.2


class PosteriorSummary(NamedTuple):
    """Per-posterior numbers, each ``(n,)``."""

    mode: FloatArray
    mean: FloatArray
    sigma: FloatArray
    lower68: FloatArray
    upper68: FloatArray
    second_peak: FloatArray  # NaN when single-peaked


def _cdf(grid: FloatArray, density: FloatArray) -> FloatArray:
    cdf = cumulative_trapezoid(density, grid, axis=-1, initial=0.0)
    return cdf / cdf[..., -1:]


def summarise(grid: ArrayLike, density: ArrayLike) -> PosteriorSummary:
    """Mode, mean, standard deviation, central 68% interval and second peak of each row.

    Parameters
    ----------
    grid : array_like (G,)
        Increasing values of the parameter.
    density : array_like (n, G)
        Densities on the grid (need not be normalised).
    """
    x = np.asarray(grid, dtype=np.float64)
    p = np.atleast_2d(np.asarray(density, dtype=np.float64))
    p = p / np.asarray(np.trapezoid(p, x, axis=-1))[:, None]
    mean = np.asarray(np.trapezoid(p * x, x, axis=-1), dtype=np.float64)
    sigma = np.sqrt(np.maximum(np.trapezoid(p * (x - mean[:, None]) ** 2, x, axis=-1), 0.0))
    cdf = _cdf(x, p)
    lower = np.array([np.interp(0.16, c, x) for c in cdf])
    upper = np.array([np.interp(0.84, c, x) for c in cdf])
    top = np.argmax(p, axis=-1)
    second = np.full(p.shape[0], np.nan)
    for i, row in enumerate(p):
        peaks = np.flatnonzero((row[1:-1] > row[:-2]) & (row[1:-1] >= row[2:])) + 1
        peaks = peaks[(peaks != top[i]) & (row[peaks] > SECOND_PEAK_FRACTION * row[top[i]])]
        if peaks.size:
            second[i] = x[peaks[np.argmax(row[peaks])]]
    return PosteriorSummary(x[top], mean, sigma, lower, upper, second)


def pit(grid: ArrayLike, density: ArrayLike, truth: ArrayLike) -> FloatArray:
    """Probability integral transform: each posterior's CDF at its true value, ``(n,)``."""
    x = np.asarray(grid, dtype=np.float64)
    cdf = _cdf(x, np.atleast_2d(np.asarray(density, dtype=np.float64)))
    return np.array([np.interp(t, x, c) for t, c in zip(np.asarray(truth), cdf, strict=True)])


def central_coverage(
    grid: ArrayLike, density: ArrayLike, truth: ArrayLike, *, level: float = 0.68
) -> float:
    """The fraction of true values inside their posterior's central ``level`` interval."""
    return float(np.mean(np.abs(pit(grid, density, truth) - 0.5) <= level / 2))


def temper(density: ArrayLike, temperature: float) -> FloatArray:
    """Each row raised to the power 1 / ``temperature`` (after dividing by its maximum, so
    nothing overflows): T > 1 widens a posterior, T < 1 sharpens it, its modes stay. A
    Gaussian of width s becomes one of width s sqrt(T)."""
    p = np.atleast_2d(np.asarray(density, dtype=np.float64))
    return np.asarray((p / p.max(axis=-1, keepdims=True)) ** (1.0 / temperature))


def fit_temperature(
    grid: ArrayLike,
    density: ArrayLike,
    truth: ArrayLike,
    *,
    level: float = 0.68,
    bounds: tuple[float, float] = (0.05, 20.0),
) -> float:
    """The temperature at which the tempered posteriors' central ``level`` intervals hold
    ``level`` of the true values (bisection in log T; coverage rises with T).

    A one-parameter recalibration of an over- or under-dispersed posterior, fitted on
    held-out data (the validation split), like the temperature scaling of Guo et al. (2017).
    """

    def coverage(log_t: float) -> float:
        return central_coverage(grid, temper(density, float(np.exp(log_t))), truth, level=level)

    low, high = np.log(bounds)
    for _ in range(30):
        middle = 0.5 * (low + high)
        if coverage(middle) < level:
            low = middle
        else:
            high = middle
    return float(np.exp(0.5 * (low + high)))
