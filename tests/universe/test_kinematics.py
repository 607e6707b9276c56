"""Kinematics: circular velocities, Jeans dispersions against analytic and quadrature values,
and the statistics of sampled velocities."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad

from darkstack.constants import G_KPC_KMS2_PER_MSUN as G
from darkstack.universe.kinematics import (
    circular_velocity_kms,
    enclosed_total_mass_msun,
    isotropic_jeans_dispersion_kms,
    sample_disk_velocities_kms,
    sample_isotropic_velocities_kms,
)
from darkstack.universe.profiles import (
    BetaModelSphere,
    DoublePowerLawHalo,
    ExponentialDisk,
    HernquistSphere,
)

BULGE = HernquistSphere(mass_msun=1.0e10, scale_radius_kpc=1.0)
HALO = DoublePowerLawHalo.from_mass(
    mass_msun=1.0e12,
    radius_kpc=200.0,
    concentration=10.0,
    alpha=1.0,
    beta=3.0,
    gamma=1.0,
    truncation_radius_kpc=400.0,
)
DISK = ExponentialDisk(mass_msun=5.0e10, scale_length_kpc=3.0, scale_height_kpc=0.3)
HOT_GAS = BetaModelSphere(mass_msun=5.0e10, core_radius_kpc=20.0, truncation_radius_kpc=400.0)
GALAXY = [HALO, DISK, BULGE, HOT_GAS]


def _hernquist_sigma_r_kms(r_kpc: np.ndarray, *, mass_msun: float, a_kpc: float) -> np.ndarray:
    """Isotropic dispersion of a self-gravitating Hernquist sphere (Hernquist 1990, eq. 10)."""
    x = r_kpc / a_kpc
    bracket = 12.0 * x * (1.0 + x) ** 3 * np.log((1.0 + x) / x) - x / (1.0 + x) * (
        25.0 + 52.0 * x + 42.0 * x**2 + 12.0 * x**3
    )
    return np.sqrt(G * mass_msun / (12.0 * a_kpc) * bracket)


def test_enclosed_total_mass_and_circular_velocity_add_components() -> None:
    r = np.array([0.5, 5.0, 50.0])
    total = sum(c.enclosed_mass_msun(r) for c in GALAXY)
    np.testing.assert_allclose(enclosed_total_mass_msun(GALAXY, r), total, rtol=1e-14)
    np.testing.assert_allclose(circular_velocity_kms(GALAXY, r), np.sqrt(G * total / r))
    # Hernquist: v_c^2 = G M r / (r + a)^2, peaking at r = a with sqrt(G M / 4a).
    assert circular_velocity_kms([BULGE], 1.0) == pytest.approx(np.sqrt(G * 1.0e10 / 4.0))
    assert circular_velocity_kms([BULGE], np.zeros((2, 2))).tolist() == [[0.0, 0.0], [0.0, 0.0]]


def test_jeans_matches_analytic_hernquist() -> None:
    r = np.geomspace(0.01, 10.0, 25)
    sigma = isotropic_jeans_dispersion_kms(
        tracer=BULGE, components=[BULGE], r_kpc=r, r_max_kpc=1.0e4
    )
    expected = _hernquist_sigma_r_kms(r, mass_msun=1.0e10, a_kpc=1.0)
    np.testing.assert_allclose(sigma, expected, rtol=1e-3)


def test_jeans_of_a_tracer_in_a_composite_potential_matches_quadrature() -> None:
    r_max = 400.0
    r = np.array([0.3, 3.0, 30.0, 300.0])
    sigma = isotropic_jeans_dispersion_kms(
        tracer=HOT_GAS, components=GALAXY, r_kpc=r, r_max_kpc=r_max
    )

    def integrand(radius: float) -> float:
        gm = G * float(enclosed_total_mass_msun(GALAXY, radius))
        return float(HOT_GAS.density_msun_per_kpc3(radius)) * gm / radius**2

    expected = [
        np.sqrt(quad(integrand, ri, r_max, limit=200)[0] / HOT_GAS.density_msun_per_kpc3(ri))
        for ri in r
    ]
    np.testing.assert_allclose(sigma, expected, rtol=1e-3)


def test_jeans_is_zero_where_the_tracer_is_not() -> None:
    sigma = isotropic_jeans_dispersion_kms(
        tracer=HOT_GAS, components=GALAXY, r_kpc=[0.0, 10.0, 400.0, 500.0], r_max_kpc=400.0
    )
    assert sigma[0] > 0.0 and sigma[1] > 0.0
    assert sigma[2] == 0.0 and sigma[3] == 0.0


def test_isotropic_velocities_have_the_jeans_dispersion() -> None:
    rng = np.random.default_rng(5)
    positions = HALO.sample_positions_kpc(rng, 200_000)
    v = sample_isotropic_velocities_kms(
        rng, positions_kpc=positions, tracer=HALO, components=GALAXY, r_max_kpc=400.0
    )
    assert v.shape == positions.shape
    r = np.linalg.norm(positions, axis=1)
    for lo, hi in ((5.0, 6.0), (40.0, 45.0)):
        shell = (r > lo) & (r < hi)
        sigma = isotropic_jeans_dispersion_kms(
            tracer=HALO, components=GALAXY, r_kpc=np.sqrt(lo * hi), r_max_kpc=400.0
        )
        np.testing.assert_allclose(np.std(v[shell], axis=0), sigma, rtol=0.03)
        np.testing.assert_allclose(np.mean(v[shell], axis=0), 0.0, atol=0.03 * sigma)


def test_cold_disk_rotates_counter_clockwise_at_the_circular_velocity() -> None:
    rng = np.random.default_rng(6)
    positions = DISK.sample_positions_kpc(rng, 50_000)
    v = sample_disk_velocities_kms(
        rng, positions_kpc=positions, components=GALAXY, dispersion_kms=0.0, asymmetric_drift=False
    )
    R = np.hypot(positions[:, 0], positions[:, 1])
    v_phi = (positions[:, 0] * v[:, 1] - positions[:, 1] * v[:, 0]) / R
    v_c = circular_velocity_kms(GALAXY, np.linalg.norm(positions, axis=1))
    # Many particles take v_c from a log-grid table (smooth in ln r, error ~1e-6).
    np.testing.assert_allclose(v_phi, v_c, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), v_c, rtol=1e-5)
    assert np.all(v[:, 2] == 0.0)


def test_warm_disk_has_dispersion_and_asymmetric_drift() -> None:
    rng = np.random.default_rng(7)
    positions = DISK.sample_positions_kpc(rng, 200_000)
    sigma = np.where(positions[:, 0] > 0, 20.0, 60.0)
    v_c = circular_velocity_kms(GALAXY, np.linalg.norm(positions, axis=1))
    R = np.hypot(positions[:, 0], positions[:, 1])
    for drift in (False, True):
        v = sample_disk_velocities_kms(
            rng,
            positions_kpc=positions,
            components=GALAXY,
            dispersion_kms=sigma,
            asymmetric_drift=drift,
        )
        v_phi = (positions[:, 0] * v[:, 1] - positions[:, 1] * v[:, 0]) / R
        mean_rotation = np.sqrt(np.maximum(v_c**2 - 2.0 * sigma**2, 0.0)) if drift else v_c
        for value in (20.0, 60.0):
            group = sigma == value
            assert np.mean(v_phi[group] - mean_rotation[group]) == pytest.approx(0.0, abs=0.5)
            assert np.std(v[group, 2]) == pytest.approx(value, rel=0.02)
