"""Predictive scores against analytic cases and scipy numerical integration."""

from __future__ import annotations

import itertools

import numpy as np
from scipy import integrate, stats

from darkstack.evaluate.predictive import (
    central_coverage,
    crps_ensemble,
    crps_gaussian,
    mixture_variance,
    nll_gaussian,
    pit_ensemble,
    pit_gaussian,
)


def _crps_by_integration(cdf, y: float, lo: float, hi: float) -> float:
    """CRPS = ∫ (F(x) - 1{x >= y})² dx, integrated numerically on either side of y."""
    left, _ = integrate.quad(lambda x: cdf(x) ** 2, lo, y, limit=200)
    right, _ = integrate.quad(lambda x: (1.0 - cdf(x)) ** 2, y, hi, limit=200)
    return left + right


def test_mixture_variance_of_two_gaussians() -> None:
    # N(-1, 0.5²) and N(2, 1.5²), equal weight: the mixture's second moment minus its mean².
    means = np.array([[-1.0], [2.0]])
    variances = np.array([[0.25], [2.25]])
    second_moment = 0.5 * (0.25 + 1.0) + 0.5 * (2.25 + 4.0)
    expected = second_moment - 0.5**2
    assert np.allclose(mixture_variance(means=means, variances=variances), expected)
    # Without variances: the members' spread alone, (1.5)².
    assert np.allclose(mixture_variance(means=means), 2.25)


def test_crps_gaussian_matches_integration() -> None:
    for mu, s, y in [(0.0, 1.0, 0.3), (10.5, 0.2, 11.1), (-2.0, 3.0, -9.0)]:
        expected = _crps_by_integration(
            lambda x, mu=mu, s=s: stats.norm.cdf(x, mu, s), y, mu - 40 * s, mu + 40 * s
        )
        got = crps_gaussian(mean=np.array([mu]), sigma=np.array([s]), true=np.array([y]))
        assert np.isclose(got[0], expected, rtol=1e-6)


def test_nll_gaussian_matches_scipy() -> None:
    mu, s, y = np.array([1.0, 3.0]), np.array([0.5, 2.0]), np.array([1.7, -1.0])
    assert np.allclose(nll_gaussian(mean=mu, sigma=s, true=y), -stats.norm.logpdf(y, mu, s))


def test_crps_ensemble_matches_integration_of_empirical_cdf() -> None:
    rng = np.random.default_rng(3)
    members = rng.normal(size=(7, 3, 2))
    true = rng.normal(size=(3, 2))
    got = crps_ensemble(members=members, true=true)
    for i in range(3):
        for j in range(2):
            xs = np.sort(members[:, i, j])
            cdf = lambda x, xs=xs: np.searchsorted(xs, x, side="right") / xs.size  # noqa: E731
            y = true[i, j]
            points = sorted([*xs, y])
            expected = sum(
                integrate.quad(
                    lambda x, y=y, cdf=cdf: (cdf(x) - float(x >= y)) ** 2, a, b, limit=50
                )[0]
                for a, b in itertools.pairwise(points)
            )
            assert np.isclose(got[i, j], expected, rtol=1e-8, atol=1e-12)


def test_pit_and_coverage_of_calibrated_gaussian() -> None:
    rng = np.random.default_rng(0)
    true = rng.normal(size=(20000, 1))
    pit = pit_gaussian(mean=np.zeros_like(true), sigma=np.ones_like(true), true=true)
    assert abs(central_coverage(pit=pit, level=0.68)[0] - 0.68) < 0.01
    assert abs(central_coverage(pit=pit, level=0.95)[0] - 0.95) < 0.005


def test_pit_ensemble_counts_members_below() -> None:
    members = np.array([1.0, 2.0, 3.0, 4.0]).reshape(4, 1, 1)
    assert pit_ensemble(members=members, true=np.array([[2.5]]))[0, 0] == 0.5
    assert pit_ensemble(members=members, true=np.array([[2.0]]))[0, 0] == 0.375
