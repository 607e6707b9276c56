"""Posterior summaries against analytic Gaussians."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from darkstack.evaluate.posterior import pit, summarise


def test_gaussian_summary_and_pit() -> None:
    grid = np.linspace(-5.0, 5.0, 20001)
    density = stats.norm.pdf(grid, loc=0.3, scale=0.5)[None]
    summary = summarise(grid, density)
    assert summary.mode[0] == pytest.approx(0.3, abs=1e-3)
    assert summary.sigma[0] == pytest.approx(0.5, rel=1e-4)
    assert summary.lower68[0] == pytest.approx(0.3 - 0.5 * 0.9945, abs=1e-3)
    assert np.isnan(summary.second_peak[0])
    assert pit(grid, density, [0.8])[0] == pytest.approx(stats.norm.cdf(1.0), abs=1e-4)


def test_second_peak_of_a_bimodal_posterior() -> None:
    grid = np.linspace(-3.0, 1.0, 4001)
    density = 0.6 * stats.norm.pdf(grid, -1.0, 0.1) + 0.4 * stats.norm.pdf(grid, 0.0, 0.1)
    summary = summarise(grid, density[None])
    assert summary.mode[0] == pytest.approx(-1.0, abs=1e-3)
    assert summary.second_peak[0] == pytest.approx(0.0, abs=1e-3)
