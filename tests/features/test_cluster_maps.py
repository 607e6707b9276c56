"""Cluster maps against the analytic projection of an isothermal beta model."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from scipy.integrate import quad

from darkstack.constants import (
    BOLTZMANN_ERG_PER_K,
    ELECTRON_REST_ENERGY_ERG,
    HYDROGEN_MASS_FRACTION,
    KPC_CM,
    MSUN_G,
    PROTON_MASS_G,
    THOMSON_CROSS_SECTION_CM2,
)
from darkstack.features.cluster_maps import bremsstrahlung_cooling_erg_cm3_s, cluster_maps
from darkstack.universe.profiles import BetaModelSphere

CORE_KPC = 150.0
TRUNCATION_KPC = 1500.0
TEMPERATURE_K = 5.0e7
ELECTRONS_PER_H = 1.158
N_PIXELS = 128
HALF_WIDTH_KPC = 500.0
EDGES_KPC = np.array([25.0, 50.0, 100.0, 150.0, 200.0, 300.0, 400.0, 500.0])


def _line_of_sight_kpc(radius_kpc: float, power: float) -> float:
    """int (1 + r^2 / rc^2)^-power dl through the truncated sphere at projected radius R."""
    half = np.sqrt(TRUNCATION_KPC**2 - radius_kpc**2)
    value, _ = quad(lambda ell: (1.0 + (radius_kpc**2 + ell**2) / CORE_KPC**2) ** -power, 0.0, half)
    return 2.0 * value


@pytest.fixture(scope="module")
def beta_maps() -> tuple[dict[str, np.ndarray], float, np.ndarray]:
    rng = np.random.default_rng(2)
    mass, n = 1.0e14, 100_000
    sphere = BetaModelSphere(
        mass_msun=mass,
        core_radius_kpc=CORE_KPC,
        beta=2.0 / 3.0,
        truncation_radius_kpc=TRUNCATION_KPC,
    )
    position = sphere.sample_positions_kpc(rng, n)
    maps = cluster_maps(
        gas_position_kpc=position,
        gas_mass_msun=np.full(n, mass / n),
        gas_density_msun_per_kpc3=sphere.density_msun_per_kpc3(np.linalg.norm(position, axis=1)),
        gas_temperature_k=np.full(n, TEMPERATURE_K),
        gas_electron_abundance=np.full(n, ELECTRONS_PER_H),
        gas_sfr_msun_per_yr=np.zeros(n),
        # Stars within 150 kpc: no kernel reaches the map's edge.
        star_position_kpc=0.1 * position[:5000],
        star_mass_msun=np.full(5000, 2.0e8),
        n_pixels=N_PIXELS,
        half_width_kpc=HALF_WIDTH_KPC,
        depth_kpc=TRUNCATION_KPC,
    )
    pixel = 2.0 * HALF_WIDTH_KPC / N_PIXELS
    centres = (np.arange(N_PIXELS) - N_PIXELS / 2 + 0.5) * pixel
    radius = np.hypot(*np.meshgrid(centres, centres))
    n_h0 = (
        HYDROGEN_MASS_FRACTION
        * sphere.central_density_msun_per_kpc3
        * MSUN_G
        / KPC_CM**3
        / PROTON_MASS_G
    )
    return maps, n_h0, radius


@pytest.mark.parametrize(
    ("channel", "power", "tolerance"), [("tsz_y", 1.0, 0.03), ("xray_bol", 2.0, 0.06)]
)
def test_maps_match_the_projected_beta_model(
    beta_maps: tuple[dict[str, np.ndarray], float, np.ndarray],
    channel: str,
    power: float,
    tolerance: float,
) -> None:
    maps, n_h0, radius = beta_maps
    if channel == "tsz_y":
        # y = sigma_T / (m_e c^2) n_e0 k T int (1 + r^2/rc^2)^(-3 beta / 2) dl
        scale = (
            THOMSON_CROSS_SECTION_CM2
            / ELECTRON_REST_ENERGY_ERG
            * ELECTRONS_PER_H
            * n_h0
            * BOLTZMANN_ERG_PER_K
            * TEMPERATURE_K
            * KPC_CM
        )
    else:
        # S_X = n_e0 n_H0 Lambda(T) int (...)^(-3 beta) dl, per kpc^2 of sky
        scale = (
            ELECTRONS_PER_H * n_h0**2 * bremsstrahlung_cooling_erg_cm3_s(TEMPERATURE_K) * KPC_CM**3
        )
    grid = np.linspace(0.0, np.sqrt(2.0) * HALF_WIDTH_KPC, 300)
    table = np.array([_line_of_sight_kpc(r, power) for r in grid])
    analytic = scale * np.interp(radius, grid, table)
    errors = []
    for lo, hi in pairwise(EDGES_KPC):
        ring = (radius >= lo) & (radius < hi)
        errors.append(maps[channel][ring].mean() / analytic[ring].mean() - 1.0)
    # Particle noise of 1e5 particles: rings within 3% (y) and 6% (S_X, weights ~ rho).
    assert np.max(np.abs(errors)) < tolerance, np.round(errors, 4)


def test_stellar_map_keeps_the_mass(
    beta_maps: tuple[dict[str, np.ndarray], float, np.ndarray],
) -> None:
    maps, _, _ = beta_maps
    pixel = 2.0 * HALF_WIDTH_KPC / N_PIXELS
    assert maps["stellar_mass"].sum() * pixel**2 == pytest.approx(5000 * 2.0e8, rel=1e-6)


def test_star_forming_gas_emits_nothing() -> None:
    position = np.random.default_rng(0).normal(scale=50.0, size=(200, 3))
    maps = cluster_maps(
        gas_position_kpc=position,
        gas_mass_msun=np.full(200, 1e8),
        gas_density_msun_per_kpc3=np.full(200, 1e6),
        gas_temperature_k=np.full(200, 1e7),
        gas_electron_abundance=np.full(200, 1.158),
        gas_sfr_msun_per_yr=np.full(200, 0.1),
        star_position_kpc=position,
        star_mass_msun=np.ones(200),
        n_pixels=16,
        half_width_kpc=200.0,
        depth_kpc=1000.0,
    )
    assert not maps["tsz_y"].any() and not maps["xray_bol"].any()
