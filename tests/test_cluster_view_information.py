"""The regressions of ``tools/cluster_view_information.py`` on cases with known answers."""

from __future__ import annotations

import numpy as np
from repo_scripts import load_script


def test_view_sums_are_the_log_total_and_the_log_sum_inside_the_inner_radius() -> None:
    tool = load_script("tools/cluster_view_information.py")
    images = np.ones((1, 2, 8, 8))
    images[0, 1] *= 3.0
    sums = tool.view_sums(images, pixel_kpc=np.array([10.0]), inner_kpc=16.0)
    # 64 pixels of 100 kpc^2; within 16 kpc of the centre: the 4 central pixels (centres at
    # 7.1 kpc) and the 8 beside them (15.8 kpc); the diagonal ones (21.2 kpc) are out.
    inner_pixels = 12
    expected = np.log10([6400.0, inner_pixels * 100.0, 3 * 6400.0, 3 * inner_pixels * 100.0])
    np.testing.assert_allclose(sums[0], expected)


def test_a_linear_truth_is_recovered_and_noise_sets_the_scatter() -> None:
    tool = load_script("tools/cluster_view_information.py")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 2))
    groups = np.repeat(np.arange(100), 4)
    exact = 0.5 * x[:, 0] - 2.0 * x[:, 1] + 3.0
    assert tool.cross_validated_scatter(x, exact, groups=groups, folds=5, seed=0) < 1e-12
    noisy = exact + rng.normal(scale=0.1, size=400)
    scatter = tool.cross_validated_scatter(x, noisy, groups=groups, folds=5, seed=0)
    assert 0.09 < scatter < 0.11
    assert abs(tool.fitted_scatter(x[:300], noisy[:300], x[300:], noisy[300:]) - 0.1) < 0.015
