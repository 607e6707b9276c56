"""Posterior temperature: tempering a Gaussian and fitting the temperature of known answer."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from darkstack.evaluate.posterior import fit_temperature, summarise, temper

GRID = np.linspace(-6.0, 6.0, 2401)


def test_tempering_a_gaussian_scales_its_width_by_sqrt_t() -> None:
    density = norm.pdf(GRID, loc=0.4, scale=0.5)[None]
    for temperature in (0.25, 1.0, 4.0):
        summary = summarise(GRID, temper(density, temperature))
        assert summary.sigma[0] == pytest.approx(0.5 * np.sqrt(temperature), rel=1e-3)
        assert summary.mode[0] == pytest.approx(0.4, abs=0.01)


@pytest.mark.parametrize("spread", [0.6, 1.0, 1.7])
def test_fitted_temperature_is_the_squared_ratio_of_true_to_claimed_width(spread: float) -> None:
    """Posteriors N(mu_i, 0.3^2) of truths drawn from N(mu_i, (spread 0.3)^2): the tempered
    width 0.3 sqrt(T) covers 68% when T = spread^2."""
    rng = np.random.default_rng(1)
    centres = rng.uniform(-2.0, 2.0, 3000)
    truth = centres + spread * 0.3 * rng.standard_normal(centres.size)
    density = norm.pdf(GRID[None], loc=centres[:, None], scale=0.3)
    temperature = fit_temperature(GRID, density, truth)
    # The coverage of 3000 draws has a binomial sigma of 0.0085, ~2.5% in the width.
    assert np.sqrt(temperature) == pytest.approx(spread, rel=0.06)
