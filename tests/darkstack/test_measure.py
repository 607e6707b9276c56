"""Profile measurements against closed forms: Hernquist, NFW and cored Zhao spheres, the Sun.

Particles are sampled here from each profile's own inverse CDF (closed form, or a fine
numerical table), independently of darkstack; the expected values are the profiles' analytic
M(<r), half-mass radius, Vmax and d ln rho / d ln r, and tolerances are Poisson errors.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import cumulative_trapezoid
from scipy.special import lambertw

from darkstack.constants import G_KPC_KMS2_PER_MSUN
from darkstack.measure import (
    circular_velocity_kms,
    enclosed_mass_msun,
    half_mass_radius_kpc,
    log_density_slope,
    spherical_overdensity,
    vmax,
)

#: Earth's mean orbital speed (IAU; e.g. NASA's Earth fact sheet), km/s.
EARTH_ORBITAL_SPEED_KMS = 29.78
#: One astronomical unit in kpc (IAU 2012: 149 597 870 700 m; 1 pc = 648000/pi au).
AU_KPC = math.pi / 648_000.0 / 1.0e3
#: x = r / r_s of the NFW circular-velocity peak, and max mu(x) / x there.
NFW_X_VMAX = 2.16258
NFW_PEAK = 0.216217


def _hernquist_radii(rng: np.random.Generator, n: int, a_kpc: float) -> np.ndarray:
    """M(<r)/M = r^2 / (r + a)^2, inverted: r = a sqrt(u) / (1 - sqrt(u))."""
    root = np.sqrt(rng.random(n))
    return a_kpc * root / (1.0 - root)


def _nfw_mu(x: np.ndarray | float) -> np.ndarray:
    return np.log1p(x) - np.asarray(x) / (1.0 + np.asarray(x))


def _nfw_radii(rng: np.random.Generator, n: int, r_s_kpc: float, c: float) -> np.ndarray:
    """Truncated at c r_s; mu(x) = m inverts to x = -1 / W0(-exp(-1 - m)) - 1."""
    m = rng.random(n) * _nfw_mu(c)
    return r_s_kpc * (-1.0 / lambertw(-np.exp(-1.0 - m), 0).real - 1.0)


def _hernquist_slope(r: float, a: float) -> float:
    """d ln rho / d ln r of rho ∝ 1 / (r (r + a)^3)."""
    return -1.0 - 3.0 * r / (r + a)


# --------------------------------------------------------------------------- circular velocity


def test_the_suns_mass_at_one_au_orbits_at_earths_speed() -> None:
    v = circular_velocity_kms(mass_msun=1.0, r_kpc=AU_KPC)
    assert float(v) == pytest.approx(EARTH_ORBITAL_SPEED_KMS, abs=0.01)


def test_g_agrees_with_colossus() -> None:
    from colossus.utils import constants

    # colossus writes G in kpc (km/s)^2 / Msun from its own CODATA and solar-mass values.
    assert pytest.approx(constants.G, rel=1e-9) == G_KPC_KMS2_PER_MSUN


def test_circular_velocity_at_the_centre_and_bad_input() -> None:
    v = circular_velocity_kms(mass_msun=[0.0, 1.0, np.nan], r_kpc=[0.0, 0.0, 1.0])
    assert v[0] == 0.0 and v[1] == np.inf and np.isnan(v[2])
    with pytest.raises(ValueError, match="mass_msun >= 0"):
        circular_velocity_kms(mass_msun=-1.0, r_kpc=1.0)
    with pytest.raises(ValueError, match="r_kpc >= 0"):
        circular_velocity_kms(mass_msun=1.0, r_kpc=-1.0)


# --------------------------------------------------------------------------- conventions


def test_four_unit_particles_by_hand() -> None:
    distance, mass = np.array([3.0, 1.0, 4.0, 2.0]), np.ones(4)
    # Strictly inside: the particle at 2 is not inside r = 2.
    assert enclosed_mass_msun(
        distance_kpc=distance, mass_msun=mass, r_kpc=[2.0, 2.5, 9.0]
    ).tolist() == [
        1.0,
        2.0,
        4.0,
    ]
    # The first particle whose cumulative mass reaches half of 4.
    assert half_mass_radius_kpc(distance_kpc=distance, mass_msun=mass) == 2.0
    # v^2 ∝ M(<=d) / d = 1, 1, 1, 1: the first (innermost) maximum.
    peak = vmax(distance_kpc=distance, mass_msun=mass)
    assert peak.r_vmax_kpc == 1.0
    assert peak.vmax_kms == pytest.approx(math.sqrt(G_KPC_KMS2_PER_MSUN))
    # Mean density 3 M(<=d) / (4 pi d^3) >= 3 / (4 pi) at d = 1 only.
    sphere = spherical_overdensity(
        distance_kpc=distance, mass_msun=mass, density_msun_per_kpc3=3.0 / (4.0 * math.pi)
    )
    assert (sphere.mass_msun, sphere.r_kpc) == (1.0, 1.0)


def test_no_particles_measure_nan_and_hold_no_mass() -> None:
    empty = np.zeros(0)
    assert enclosed_mass_msun(distance_kpc=empty, mass_msun=empty, r_kpc=[1.0, 2.0]).tolist() == [
        0.0,
        0.0,
    ]
    assert math.isnan(half_mass_radius_kpc(distance_kpc=empty, mass_msun=empty))
    assert math.isnan(half_mass_radius_kpc(distance_kpc=[1.0, 2.0], mass_msun=[0.0, 0.0]))
    assert all(math.isnan(v) for v in vmax(distance_kpc=empty, mass_msun=empty))
    assert all(math.isnan(v) for v in vmax(distance_kpc=[0.5], mass_msun=[1.0], min_r_kpc=1.0))
    sphere = spherical_overdensity(distance_kpc=empty, mass_msun=empty, density_msun_per_kpc3=1.0)
    assert all(math.isnan(v) for v in sphere)
    slope = log_density_slope(distance_kpc=empty, mass_msun=empty, r_kpc=1.0)
    assert all(math.isnan(v) for v in slope)


def test_misshapen_input_is_refused() -> None:
    with pytest.raises(ValueError, match="one length"):
        half_mass_radius_kpc(distance_kpc=[1.0, 2.0], mass_msun=[1.0])
    with pytest.raises(ValueError, match="r_kpc > 0"):
        log_density_slope(distance_kpc=[1.0], mass_msun=[1.0], r_kpc=0.0)
    with pytest.raises(ValueError, match="n_shells >= 3"):
        log_density_slope(distance_kpc=[1.0], mass_msun=[1.0], r_kpc=1.0, n_shells=2)


# --------------------------------------------------------------------------- Hernquist sphere


def test_hernquist_enclosed_mass_and_half_mass_radius_within_poisson_errors() -> None:
    n, a, total = 200_000, 2.0, 1.0e10
    distance = _hernquist_radii(np.random.default_rng(1), n, a)
    mass = np.full(n, total / n)
    r = np.array([0.5, 1.0, 3.0, 10.0]) * a
    fraction = (r / (r + a)) ** 2
    measured = enclosed_mass_msun(distance_kpc=distance, mass_msun=mass, r_kpc=r)
    sigma = total / n * np.sqrt(n * fraction * (1.0 - fraction))
    np.testing.assert_array_less(np.abs(measured - total * fraction), 4.0 * sigma)

    r_half = (1.0 + math.sqrt(2.0)) * a
    # The sample median's error: sqrt(1/4 / n) over the radial probability density there.
    sigma_r = math.sqrt(0.25 / n) / (2.0 * a * r_half / (r_half + a) ** 3)
    assert half_mass_radius_kpc(distance_kpc=distance, mass_msun=mass) == pytest.approx(
        r_half, abs=4.0 * sigma_r
    )


@pytest.mark.parametrize("r_over_a", [0.1, 1.0, 3.0])
def test_hernquist_log_slope_matches_the_closed_form(r_over_a: float) -> None:
    n, a = 400_000, 2.0
    distance = _hernquist_radii(np.random.default_rng(2), n, a)
    slope, error = log_density_slope(
        distance_kpc=distance, mass_msun=np.full(n, 1.0), r_kpc=r_over_a * a
    )
    # 0.01 allows for the window's curvature bias (< 0.007 here, see the docstring).
    assert abs(slope - _hernquist_slope(r_over_a * a, a)) < 4.0 * error + 0.01
    assert 0.0 < error < 0.1


def test_log_slope_errors_are_the_scatter_between_realisations() -> None:
    a, n = 1.0, 20_000
    rng = np.random.default_rng(3)
    pulls = []
    for _ in range(60):
        slope, error = log_density_slope(
            distance_kpc=_hernquist_radii(rng, n, a), mass_msun=np.ones(n), r_kpc=a
        )
        pulls.append((slope - _hernquist_slope(a, a)) / error)
    # The std of 60 unit-normal pulls lies in [0.75, 1.25] at > 99 % (chi^2 with 59 dof).
    assert 0.75 < np.std(pulls) < 1.25
    assert abs(np.mean(pulls)) < 4.0 / math.sqrt(60)


def test_log_slope_is_nan_when_a_shell_is_empty() -> None:
    distance = np.array([0.9, 1.0, 1.1])
    slope = log_density_slope(distance_kpc=distance, mass_msun=np.ones(3), r_kpc=1.0, n_shells=8)
    assert math.isnan(slope.slope) and math.isnan(slope.slope_error)


# --------------------------------------------------------------------------- NFW and Zhao


def test_nfw_vmax_is_reached_at_2_163_scale_radii() -> None:
    n, r_s, c, total = 300_000, 20.0, 10.0, 1.0e12
    distance = _nfw_radii(np.random.default_rng(4), n, r_s, c)
    peak = vmax(distance_kpc=distance, mass_msun=np.full(n, total / n))
    expected = math.sqrt(G_KPC_KMS2_PER_MSUN * total / _nfw_mu(c) * NFW_PEAK / r_s)
    # Poisson error of M(<2.16 r_s) is 0.3 %, so 0.2 % in v; the maximum of a noisy flat peak
    # sits a few of those above it.
    assert peak.vmax_kms == pytest.approx(expected, rel=0.01)
    # The curve is flat to 1 % from 1.4 to 3.3 r_s: the peak's position is loosely defined.
    assert peak.r_vmax_kpc == pytest.approx(NFW_X_VMAX * r_s, rel=0.25)


def test_nfw_log_slope_is_minus_two_at_the_scale_radius() -> None:
    n, r_s = 300_000, 20.0
    distance = _nfw_radii(np.random.default_rng(5), n, r_s, 10.0)
    slope, error = log_density_slope(distance_kpc=distance, mass_msun=np.ones(n), r_kpc=r_s)
    # d ln rho / d ln r = -1 - 2 x / (1 + x) = -2 at x = 1.
    assert abs(slope + 2.0) < 4.0 * error + 0.01


@pytest.mark.parametrize("x", [0.2, 0.5, 2.0])
def test_cored_zhao_profile_log_slope(x: float) -> None:
    """(alpha, beta, gamma) = (2, 3, 0): rho ∝ (1 + x^2)^(-3/2), slope -3 x^2 / (1 + x^2)."""
    n, r_s = 400_000, 0.5
    grid = np.geomspace(1e-4, 20.0, 20_000)
    cdf = cumulative_trapezoid(grid**2 * (1.0 + grid**2) ** -1.5, grid, initial=0.0)
    rng = np.random.default_rng(6)
    distance = r_s * np.interp(rng.random(n) * cdf[-1], cdf, grid)
    slope, error = log_density_slope(distance_kpc=distance, mass_msun=np.ones(n), r_kpc=x * r_s)
    assert abs(slope - (-3.0 * x**2 / (1.0 + x**2))) < 4.0 * error + 0.01


def test_spherical_overdensity_of_a_singular_isothermal_sphere() -> None:
    """M(<r) ∝ r, so the mean density 3 M / (4 pi r_max r^2) reaches Delta at a known radius."""
    n, r_max, total = 100_000, 100.0, 1.0e12
    distance = np.random.default_rng(7).random(n) * r_max
    r_delta = 0.5 * r_max
    threshold = 3.0 * total / (4.0 * math.pi * r_max * r_delta**2)
    sphere = spherical_overdensity(
        distance_kpc=distance, mass_msun=np.full(n, total / n), density_msun_per_kpc3=threshold
    )
    # M(<r_delta) = M / 2 with binomial error M / (2 sqrt n); the last crossing of a noisy
    # mean density lies a few errors out.
    assert sphere.mass_msun == pytest.approx(0.5 * total, abs=6.0 * 0.5 * total / math.sqrt(n))
    assert sphere.r_kpc == pytest.approx(r_delta, rel=0.02)
