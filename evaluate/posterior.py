"""Summaries of 1D posteriors on a grid: mode, second peak, intervals, PIT, coverage.

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
