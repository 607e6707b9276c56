"""Cluster maps against the analytic projections of an isothermal beta model and a GNFW cluster.

Issue 20's bar: with >= 1e6 particles, ring means of y and S_X over 0.1-1 R200 match the
numerical projection of the same truncated model to max(1%, 3 Poisson sigma), where the
Poisson sigma of a ring is that of the particles projected into it with their weights
(sqrt(sum w^2) / sum w); Y_cyl(<R500) of a GNFW cluster matches the integral of its pressure
over the cylinder to 1%; and a mass map holds exactly the mass of the particles in its volume.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from scipy.integrate import quad

from darkstack.constants import (
    BOLTZMANN_ERG_PER_K,
    ELECTRON_REST_ENERGY_ERG,
    HYDROGEN_MASS_FRACTION,
    KEV_ERG,
    KPC_CM,
    MSUN_G,
    PROTON_MASS_G,
    THOMSON_CROSS_SECTION_CM2,
)
from darkstack.features.cluster_maps import (
    bremsstrahlung_cooling_erg_cm3_s,
    cluster_maps,
    surface_density_map,
)
from darkstack.features.cluster_observe import pixel_radii_kpc
from darkstack.universe.clusters.arnaud10 import electron_pressure_kev_cm3
from darkstack.universe.profiles import BetaModelSphere

CORE_KPC = 150.0
#: The issue's truncation at 2 R200.
R200_KPC = 750.0
TRUNCATION_KPC = 2.0 * R200_KPC
TEMPERATURE_K = 5.0e7
ELECTRONS_PER_H = 1.158
N_PARTICLES = 1_000_000
N_PIXELS = 180
#: Beyond R200 by more than the outer particles' kernels, so no ring loses flux at the edge.
HALF_WIDTH_KPC = 900.0
#: Rings over 0.1-1 R200.
EDGES_KPC = R200_KPC * np.array([0.1, 0.15, 0.2, 0.3, 0.4, 0.55, 0.75, 1.0])


def _line_of_sight_kpc(radius_kpc: float, power: float) -> float:
    """int (1 + r^2 / rc^2)^-power dl through the truncated sphere at projected radius R."""
    half = np.sqrt(TRUNCATION_KPC**2 - radius_kpc**2)
    value, _ = quad(lambda ell: (1.0 + (radius_kpc**2 + ell**2) / CORE_KPC**2) ** -power, 0.0, half)
    return 2.0 * value


@pytest.fixture(scope="module")
def beta_maps() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(2)
    mass = 1.0e14
    sphere = BetaModelSphere(
        mass_msun=mass,
        core_radius_kpc=CORE_KPC,
        beta=2.0 / 3.0,
        truncation_radius_kpc=TRUNCATION_KPC,
    )
    position = sphere.sample_positions_kpc(rng, N_PARTICLES)
    density = sphere.density_msun_per_kpc3(np.linalg.norm(position, axis=1))
    maps = cluster_maps(
        gas_position_kpc=position,
        gas_mass_msun=np.full(N_PARTICLES, mass / N_PARTICLES),
        gas_density_msun_per_kpc3=density,
        gas_temperature_k=np.full(N_PARTICLES, TEMPERATURE_K),
        gas_electron_abundance=np.full(N_PARTICLES, ELECTRONS_PER_H),
        gas_sfr_msun_per_yr=np.zeros(N_PARTICLES),
        # Stars within 150 kpc: no kernel reaches the map's edge.
        star_position_kpc=0.1 * position[:5000],
        star_mass_msun=np.full(5000, 2.0e8),
        n_pixels=N_PIXELS,
        half_width_kpc=HALF_WIDTH_KPC,
        depth_kpc=TRUNCATION_KPC,
    )
    n_h0 = (
        HYDROGEN_MASS_FRACTION
        * sphere.central_density_msun_per_kpc3
        * MSUN_G
        / KPC_CM**3
        / PROTON_MASS_G
    )
    # Per-particle weights of each channel up to a constant: y ~ m T (equal), S_X ~ m rho.
    weights = {"tsz_y": np.ones(N_PARTICLES), "xray_bol": density}
    return {
        **maps,
        "n_h0": np.asarray(n_h0),
        "projected_kpc": np.hypot(position[:, 0], position[:, 1]),
        **{f"weight_{channel}": w for channel, w in weights.items()},
    }


def _ring_poisson_sigma(projected_kpc: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Relative Poisson error of each ring's flux: sqrt(sum w^2) / sum w of its particles."""
    ring = np.digitize(projected_kpc, EDGES_KPC) - 1
    inside = (ring >= 0) & (ring < EDGES_KPC.size - 1)
    n_rings = EDGES_KPC.size - 1
    total = np.bincount(ring[inside], weights=weight[inside], minlength=n_rings)
    squares = np.bincount(ring[inside], weights=weight[inside] ** 2, minlength=n_rings)
    return np.sqrt(squares) / total


@pytest.mark.parametrize(("channel", "power"), [("tsz_y", 1.0), ("xray_bol", 2.0)])
def test_maps_match_the_projected_beta_model(
    beta_maps: dict[str, np.ndarray], channel: str, power: float
) -> None:
    n_h0 = float(beta_maps["n_h0"])
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
    radius = pixel_radii_kpc(N_PIXELS, pixel_kpc=2.0 * HALF_WIDTH_KPC / N_PIXELS)
    grid = np.linspace(0.0, np.sqrt(2.0) * HALF_WIDTH_KPC, 400)
    table = np.array([_line_of_sight_kpc(r, power) for r in grid])
    analytic = scale * np.interp(radius, grid, table)
    errors = np.array(
        [
            beta_maps[channel][ring].mean() / analytic[ring].mean() - 1.0
            for lo, hi in pairwise(EDGES_KPC)
            if (ring := (radius >= lo) & (radius < hi)).any()
        ]
    )
    sigma = _ring_poisson_sigma(beta_maps["projected_kpc"], beta_maps[f"weight_{channel}"])
    tolerance = np.maximum(0.01, 3.0 * sigma)
    assert np.all(np.abs(errors) <= tolerance), (np.round(errors, 4), np.round(tolerance, 4))


def test_y_cyl_of_a_gnfw_cluster_matches_the_integrated_pressure() -> None:
    """Arnaud et al. 2010's pressure, truncated at 5 R500, isothermal gas: Y_cyl(<R500) from
    the map = sigma_T / (m_e c^2) times P_e integrated over the cylinder inside the sphere."""
    m500, r500, hubble_ratio, extent = 3.0e14, 1000.0, 1.0, 5.0

    def pressure(r_kpc: np.ndarray | float) -> np.ndarray:
        return electron_pressure_kev_cm3(
            np.asarray(r_kpc) / r500, m500_msun=m500, hubble_ratio=hubble_ratio
        )

    # Particles follow P_e (isothermal gas: n_e proportional to P_e) by inverse CDF in r.
    r_grid = np.geomspace(1e-4 * r500, extent * r500, 4000)
    shell = pressure(r_grid) * r_grid**3  # dN/dln r
    steps = 0.5 * (shell[1:] + shell[:-1]) * np.diff(np.log(r_grid))
    cdf = np.concatenate([[0.0], np.cumsum(steps)])
    rng = np.random.default_rng(5)
    radius = np.interp(rng.random(N_PARTICLES) * cdf[-1], cdf, r_grid)
    direction = rng.normal(size=(N_PARTICLES, 3))
    position = radius[:, None] * direction / np.linalg.norm(direction, axis=1, keepdims=True)
    temperature_k = 5.0e7
    kt_kev = BOLTZMANN_ERG_PER_K * temperature_k / KEV_ERG
    # The electrons the profile holds: int n_e dV = int P_e / kT dV, in a mass of gas.
    electrons_total = (
        quad(lambda r: float(pressure(r)) * 4 * np.pi * r**2, 0.0, extent * r500, limit=400)[0]
        * KPC_CM**3
        / kt_kev
    )
    grams_per_electron = PROTON_MASS_G / HYDROGEN_MASS_FRACTION / ELECTRONS_PER_H
    gas_mass_msun = electrons_total * grams_per_electron / MSUN_G
    mass = np.full(N_PARTICLES, gas_mass_msun / N_PARTICLES)
    density = pressure(radius) / kt_kev * grams_per_electron
    n_pixels, half_width = 160, 1.25 * r500
    maps = cluster_maps(
        gas_position_kpc=position,
        gas_mass_msun=mass,
        gas_density_msun_per_kpc3=density * KPC_CM**3 / MSUN_G,
        gas_temperature_k=np.full(N_PARTICLES, temperature_k),
        gas_electron_abundance=np.full(N_PARTICLES, ELECTRONS_PER_H),
        gas_sfr_msun_per_yr=np.zeros(N_PARTICLES),
        star_position_kpc=np.zeros((2, 3)),
        star_mass_msun=np.zeros(2),
        n_pixels=n_pixels,
        half_width_kpc=half_width,
        depth_kpc=extent * r500,
    )
    pixel = 2.0 * half_width / n_pixels
    inside = pixel_radii_kpc(n_pixels, pixel_kpc=pixel) <= r500
    y_map_kpc2 = maps["tsz_y"][inside].sum() * pixel**2

    def shell_in_cylinder(r: float) -> float:
        fraction = 1.0 if r <= r500 else 1.0 - np.sqrt(1.0 - (r500 / r) ** 2)
        return float(pressure(r)) * 4 * np.pi * r**2 * fraction

    integral = sum(
        quad(shell_in_cylinder, lo, hi, limit=400, epsrel=1e-8)[0]
        for lo, hi in [(0.0, r500), (r500, extent * r500)]
    )
    # keV cm^-3 kpc^3 times sigma_T / (m_e c^2) [cm^2 / erg]: kpc^3 / cm; one KPC_CM to kpc^2.
    y_per_kev = THOMSON_CROSS_SECTION_CM2 / ELECTRON_REST_ENERGY_ERG * KEV_ERG
    y_model_kpc2 = integral * y_per_kev * KPC_CM
    assert y_map_kpc2 == pytest.approx(y_model_kpc2, rel=0.01)


def test_total_mass_map_sums_to_the_particles_in_the_projected_volume() -> None:
    """Particles beyond +-depth along the line of sight are left out; those inside, with
    kernels inside the map, are all in it (to round-off)."""
    rng = np.random.default_rng(7)
    position = rng.normal(scale=[60.0, 60.0, 400.0], size=(20_000, 3))
    mass = rng.lognormal(mean=np.log(1e9), sigma=1.0, size=20_000)
    depth = 300.0
    sigma = surface_density_map(
        position_kpc=position, mass_msun=mass, n_pixels=64, half_width_kpc=500.0, depth_kpc=depth
    )
    pixel = 1000.0 / 64
    kept = np.abs(position[:, 2]) <= depth
    assert 0.3 < kept.mean() < 0.7
    assert sigma.sum() * pixel**2 == pytest.approx(mass[kept].sum(), rel=1e-9)


def test_stellar_map_keeps_the_mass(beta_maps: dict[str, np.ndarray]) -> None:
    maps = beta_maps
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
