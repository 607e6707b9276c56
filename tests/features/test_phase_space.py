"""Phase-space maps of the dwarfs' stars."""

from __future__ import annotations

import numpy as np
import pytest

from darkstack.features.phase_space import (
    PhaseSpaceConfig,
    galaxy_samples,
    phase_space_maps,
    random_rotations,
    weighted_median,
)


def test_maps_are_probabilities_in_the_documented_pixels() -> None:
    config = PhaseSpaceConfig(n_pixels=4, extent_kpc=2.0, rv_max_radius_hlr=1.0)
    # Velocities about the median 10: -5, 0, +5; P98(|v|) = 5 (to within the percentile).
    maps = phase_space_maps(
        x_kpc=[0.5, -1.5, 0.1],
        y_kpc=[0.5, -1.5, 0.1],
        v_los_kms=[5.0, 10.0, 15.0],
        r_half_kpc=4.0,
        config=config,
    )
    np.testing.assert_allclose(maps.sum(axis=(1, 2)), 1.0)
    xy = np.zeros((4, 4))
    xy[2, 2] += 1 / 3  # (0.5, 0.5)
    xy[0, 0] += 1 / 3  # (-1.5, -1.5)
    xy[2, 2] += 1 / 3  # (0.1, 0.1)
    np.testing.assert_allclose(maps[0], xy)
    # R/R_hlr: 0.18, 0.53, 0.035 -> columns 0, 2, 0; v/P98: about -1, 0, 1 -> rows 0, 2, 3.
    assert maps[1][0, 0] == pytest.approx(1 / 3)
    assert maps[1][2, 2] == pytest.approx(1 / 3)
    assert maps[1][3, 0] == pytest.approx(1 / 3)


def test_a_wider_rv_map_holds_the_stars_beyond_r_half() -> None:
    """R/R_hlr = 0.2, 1.5, 3.5 with R_hlr = 1 kpc: the paper's [0, 1] keeps the first star
    only; [0, 4] in 4 columns puts them in columns 0, 1 and 3."""
    stars = {"x_kpc": [0.2, 1.5, 0.0], "y_kpc": [0.0, 0.0, 1.9], "v_los_kms": [-5, 0, 5]}
    paper_config = PhaseSpaceConfig(n_pixels=4, rv_max_radius_hlr=1.0)
    paper = phase_space_maps(**stars, r_half_kpc=1.0, config=paper_config)
    assert paper[1].sum(axis=0).tolist() == [1.0, 0.0, 0.0, 0.0]
    wide = PhaseSpaceConfig(n_pixels=4, rv_max_radius_hlr=4.0)
    stars["y_kpc"] = [0.0, 0.0, 3.5]  # outside the +-2 kpc xy map, inside the rv map
    columns = phase_space_maps(**stars, r_half_kpc=1.0, config=wide)[1].sum(axis=0)
    np.testing.assert_allclose(columns, [1 / 3, 1 / 3, 0.0, 1 / 3])


def test_stars_outside_every_map_are_an_error() -> None:
    with pytest.raises(ValueError, match="xy map"):
        phase_space_maps(x_kpc=[9.0, 9.0], y_kpc=[9.0, 9.5], v_los_kms=[1.0, 2.0], r_half_kpc=100.0)
    with pytest.raises(ValueError, match="v_los_kms"):
        phase_space_maps(x_kpc=[0.1], y_kpc=[0.1], v_los_kms=[1.0], r_half_kpc=1.0)


def test_weighted_median() -> None:
    assert weighted_median([1.0, 2.0, 30.0]) == 2.0
    assert weighted_median([1.0, 2.0, 30.0], [0.1, 0.1, 1.0]) == 30.0


def test_rotations_are_orthonormal_and_isotropic() -> None:
    rotations = random_rotations(np.random.default_rng(0), 4000)
    np.testing.assert_allclose(
        rotations @ rotations.transpose(0, 2, 1),
        np.broadcast_to(np.eye(3), (4000, 3, 3)),
        atol=1e-12,
    )
    # The line of sight (third row) is uniform on the sphere: <z^2> = 1/3.
    assert np.mean(rotations[:, 2, 2] ** 2) == pytest.approx(1 / 3, abs=0.02)


def test_galaxy_samples_shape_and_scales() -> None:
    """The scales of an isotropic Gaussian galaxy: R_hlr = 0.5 sqrt(2 ln 2) kpc (Rayleigh
    median of the projected radii), P98(|v_los|) = 10 Phi^-1(0.99) km/s."""
    from scipy.stats import norm

    rng = np.random.default_rng(0)
    position = rng.normal(scale=0.5, size=(20000, 3))
    velocity = rng.normal(scale=10.0, size=(20000, 3))
    config = PhaseSpaceConfig(n_pixels=16, n_lines_of_sight=3, n_subsets=2, n_stars=5000)
    maps, scales = galaxy_samples(rng, position_kpc=position, velocity_kms=velocity, config=config)
    assert maps.shape == (6, 2, 16, 16) and scales.shape == (6, 2)
    # 5000 stars: P98's sampling error is ~2%, the median radius's ~1% (20000 stars).
    np.testing.assert_allclose(10 ** scales[:, 0], 10.0 * norm.ppf(0.99), rtol=0.05)
    np.testing.assert_allclose(10 ** scales[:, 1], 0.5 * np.sqrt(2 * np.log(2)), rtol=0.03)
    with pytest.raises(ValueError, match="fewer than n_stars"):
        galaxy_samples(rng, position_kpc=position[:50], velocity_kms=velocity[:50], config=config)
