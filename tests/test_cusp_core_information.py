"""tools/cusp_core_information.py's shape statistics on stars of known distribution."""

from __future__ import annotations

import numpy as np
import pytest
from repo_scripts import load_script

tool = load_script("tools/cusp_core_information.py")


def test_shape_statistics_of_a_gaussian_and_of_a_uniform_velocity_distribution() -> None:
    """Velocities independent of radius: dispersion ratios 1 (log 0); kurtosis 3 for a
    Gaussian and 9/5 for a uniform distribution; R90 / R_half of a Rayleigh distribution
    sqrt(ln 10 / ln 2)."""
    rng = np.random.default_rng(0)
    n = 400_000
    radius = rng.rayleigh(scale=1.0, size=n)
    r_half = float(np.median(radius))
    gaussian = tool.shape_statistics(
        radius_kpc=radius, v_los_kms=rng.normal(scale=10.0, size=n), r_half_kpc=r_half
    )
    for name in ("sigma_inner", "sigma_outer", "sigma_far"):
        assert gaussian[name] == pytest.approx(0.0, abs=0.01)
    assert gaussian["kurtosis_inner"] == pytest.approx(3.0, rel=0.03)
    assert gaussian["kurtosis_outer"] == pytest.approx(3.0, rel=0.03)
    assert 10 ** gaussian["r90"] == pytest.approx(np.sqrt(np.log(10) / np.log(2)), rel=0.01)
    uniform = tool.shape_statistics(
        radius_kpc=radius, v_los_kms=rng.uniform(-10, 10, size=n), r_half_kpc=r_half
    )
    assert uniform["kurtosis_outer"] == pytest.approx(1.8, rel=0.02)
