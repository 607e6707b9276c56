"""Means over resampled groups: their spread is the groups', not the samples'."""

from __future__ import annotations

import numpy as np
import pytest

from darkstack.evaluate.metrics import group_bootstrap_means, paired_interval


def test_the_spread_of_a_mean_over_resampled_galaxies_is_their_scatter_over_root_n() -> None:
    rng = np.random.default_rng(0)
    n_groups, views = 400, 3
    # Views of one galaxy share its value (+ small noise): the mean's error is that of 400
    # objects, sd 1/sqrt(400) = 0.05, not of 1200 independent samples (0.029).
    per_galaxy = rng.normal(size=(n_groups, 2))
    values = np.repeat(per_galaxy, views, axis=0) + 0.01 * rng.normal(size=(n_groups * views, 2))
    groups = np.repeat(np.arange(n_groups), views)
    draws = group_bootstrap_means(groups, {"x": values}, n_draws=2000)["x"]
    assert draws.shape == (2000, 2)
    np.testing.assert_allclose(draws.std(axis=0), per_galaxy.std(axis=0) / 20, rtol=0.08)
    np.testing.assert_allclose(draws.mean(axis=0), values.mean(axis=0), atol=0.005)


def test_a_group_weighs_as_its_samples_mean_and_differences_are_paired() -> None:
    groups = np.array([7, 7, 7, 9])  # a group of three samples and one of one
    values = np.array([0.0, 0.0, 3.0, 5.0])
    draws = group_bootstrap_means(groups, {"a": values, "b": values + 1.0}, n_draws=500)
    # Each draw averages two group means, each 1 or 5: 1, 3 or 5.
    assert set(np.unique(draws["a"])) <= {1.0, 3.0, 5.0}
    np.testing.assert_allclose(draws["b"] - draws["a"], 1.0)  # same draws for both
    point, lower, upper = paired_interval(1.0, draws["b"] - draws["a"])
    assert (point, lower, upper) == (1.0, pytest.approx(1.0), pytest.approx(1.0))
