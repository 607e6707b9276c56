"""The cusp_core evaluation's scalar baseline on a problem with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from darkstack.evaluate.cusp_core import quadratic_baseline


def test_quadratic_baseline_recovers_a_quadratic_and_its_noise() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 3)) * [0.3, 2.0, 1.0] + [7.0, 1.0, -0.5]
    a, b, c = x.T
    exact = 1.0 + 2.0 * a - b + 0.5 * a**2 + 0.3 * a * b - 0.2 * c**2
    train, test = np.arange(3000), np.arange(3000, 4000)
    prediction, sigma = quadratic_baseline(x, exact, train=train, test=test)
    np.testing.assert_allclose(prediction, exact[test], atol=1e-9)
    assert sigma < 1e-9
    noisy = exact + rng.normal(scale=0.2, size=exact.size)
    prediction, sigma = quadratic_baseline(x, noisy, train=train, test=test)
    # 10 coefficients from 3000 points: the fit's own error is ~0.2 sqrt(10 / 3000) = 0.012.
    assert sigma == pytest.approx(0.2, rel=0.05)
    assert np.std(prediction - exact[test]) < 0.03


def test_paired_differences_of_a_predictor_with_itself_and_a_worse_one() -> None:
    from darkstack.evaluate.cusp_core import paired_differences

    rng = np.random.default_rng(3)
    groups = np.repeat(np.arange(200), 8)
    truth = np.repeat(rng.uniform(-1.5, 0.0, 200), 8)
    good = truth + rng.normal(scale=0.05, size=truth.size)
    same = paired_differences(groups, truth, good, good)
    assert all(value == [0.0, 0.0, 0.0] for value in same.values())
    # A predictor off by 0.2 everywhere: never within 0.1, and its MAD is larger by ~0.2 - 0.04.
    worse = paired_differences(groups, truth, good, truth + 0.2)
    within, low, high = worse["within_0.1"]
    assert within == pytest.approx(np.mean(np.abs(good - truth) <= 0.1)) and low <= within <= high
    mad, low, high = worse["mad_mode"]
    assert mad == pytest.approx(np.mean(np.abs(good - truth)) - 0.2)
    assert low < mad < high < 0.0


def test_quadratic_baseline_with_few_training_dwarfs() -> None:
    """One training dwarf (a tiny demo fold): its M* is constant, the fit still answers; with
    fewer dwarfs than terms it falls back to a line, then to the mean."""
    x = np.column_stack([np.full(8, 7.0), np.linspace(0.0, 1.0, 8)])
    y = 2.0 * x[:, 1] + x[:, 1] ** 2
    train, test = np.arange(6), np.arange(6, 8)
    prediction, _ = quadratic_baseline(x, y, train=train, test=test)
    np.testing.assert_allclose(prediction, y[6:], atol=1e-9)
    line = np.polyval(np.polyfit(x[train, 1], y[train], 1), x[test, 1])
    np.testing.assert_allclose(
        quadratic_baseline(x, y, train=train, test=test, max_terms=5)[0], line
    )
    mean = quadratic_baseline(x, y, train=train, test=test, max_terms=2)[0]
    np.testing.assert_allclose(mean, y[train].mean())
