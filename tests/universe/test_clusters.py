"""Cluster ICM physics against published numbers, and the ``clusters`` universe preset."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from colossus.halo import mass_so

from darkstack.constants import (
    BOLTZMANN_ERG_PER_K,
    ELECTRON_REST_ENERGY_ERG,
    G_KPC_KMS2_PER_MSUN,
    KEV_ERG,
    KPC_CM,
    THOMSON_CROSS_SECTION_CM2,
)
from darkstack.cosmology import (
    CosmologyParams,
    colossus_cosmology,
    hubble_ratio,
    overdensity_radius_kpc,
)
from darkstack.units import CodeUnits, temperature_k
from darkstack.universe.clusters import arnaud10
from darkstack.universe.clusters.gas_fraction import vikhlinin09_gas_fraction
from darkstack.universe.clusters.halo import cluster_halo
from darkstack.universe.clusters.icm import ClusterGas
from darkstack.universe.clusters.nonthermal import NELSON14_B, nelson14_fraction
from darkstack.universe.clusters.preset import (
    CLUSTER_PRESETS,
    Cluster,
    ClustersConfig,
    build_clusters,
    draw_clusters,
)
from darkstack.universe.clusters.vikhlinin06 import VIKHLININ06

#: Arnaud et al. (2010)'s cosmology: their numbers are quoted for h = 0.7, Omega_m = 0.3.
ARNAUD_COSMOLOGY = CosmologyParams(hubble_param=0.7, omega_m=0.3, omega_b=0.045)


def test_integrated_pressure_coefficient_matches_arnaud_eq25() -> None:
    # Arnaud et al. 2010, eq. 25: I(1) = 0.6145.
    assert arnaud10.integrated_shape(1.0) == pytest.approx(0.6145, rel=1e-3)


@pytest.mark.parametrize("m500_msun", [1.0e14, 3.0e14, 1.0e15])
def test_y_sph_matches_arnaud_eq25_and_eq22(m500_msun: float) -> None:
    r500 = float(overdensity_radius_kpc(m500_msun, overdensity=500.0, params=ARNAUD_COSMOLOGY))
    y = arnaud10.y_sph_mpc2(
        m500_msun=m500_msun, r500_kpc=r500, hubble_ratio=1.0, running_slope=False
    )
    # eq. 25: Y_sph(R500) = 2.925e-5 I(1) (M500 / 3e14)^(5/3 + alpha_P) Mpc^2 at h70 = 1, z = 0
    # (the paper rounds 5/3 + 0.12 to 1.78; the exact exponent is used here).
    slope = 5.0 / 3.0 + 0.12
    assert y == pytest.approx(2.925e-5 * 0.6145 * (m500_msun / 3.0e14) ** slope, rel=2e-3)
    # eq. 22 (the fit to the REXCESS-scaled profiles, running slope included):
    # 10^-4.739 (M500 / 3e14)^1.790; the integrated model is 0.1-2.6% below it here.
    y_full = arnaud10.y_sph_mpc2(m500_msun=m500_msun, r500_kpc=r500, hubble_ratio=1.0)
    assert y_full == pytest.approx(10**-4.739 * (m500_msun / 3.0e14) ** 1.790, rel=0.03)


def test_hubble_ratio_and_r500_match_colossus() -> None:
    cosmo = colossus_cosmology(ARNAUD_COSMOLOGY)
    z = np.array([0.0, 0.5, 1.0])
    np.testing.assert_allclose(hubble_ratio(z, ARNAUD_COSMOLOGY), cosmo.Ez(z), rtol=1e-3)
    r_kpc_h = mass_so.M_to_R(3.0e14 * 0.7, 0.5, "500c")
    ours = overdensity_radius_kpc(3.0e14, overdensity=500.0, redshift=0.5, params=ARNAUD_COSMOLOGY)
    assert float(ours) == pytest.approx(r_kpc_h / 0.7, rel=2e-3)


def _gas(log_m200: float, *, nonthermal: bool = True) -> ClusterGas:
    halo = cluster_halo(m200c_msun=10.0**log_m200)
    return halo.gas(nonthermal=nonthermal)


@pytest.mark.parametrize("log_m200", [13.5, 14.25, 15.0])
def test_thermal_hse_mass_is_biased_low_by_the_literature_amount(log_m200: float) -> None:
    gas = _gas(log_m200)
    # Nelson et al. 2014 find b ~ 0.1-0.2 at R500c from non-thermal pressure; Planck's ~0.2.
    assert 0.10 < gas.hse_bias() < 0.20
    # Total (thermal + non-thermal) pressure recovers the true mass: the gas is in equilibrium.
    r500 = np.array([gas.r500_kpc])
    total = gas.hse_mass_msun(r500, thermal_only=False)[0]
    assert total == pytest.approx(gas.total_mass_msun(r500)[0], rel=5e-3)


def test_purely_thermal_gas_has_no_bias() -> None:
    assert abs(_gas(14.5, nonthermal=False).hse_bias()) < 5e-3


@pytest.mark.parametrize("log_m200", [13.5, 15.0])
def test_gas_fraction_inside_r500_is_vikhlinin09(log_m200: float) -> None:
    gas = _gas(log_m200)
    f_gas = gas.gas_mass_msun(np.array([gas.r500_kpc]))[0] / gas.m500_msun
    # Vikhlinin et al. 2009: f_gas = 0.125 + 0.037 log10(M500 / 1e15 h^-1 Msun), h = 0.72.
    expected = 0.125 + 0.037 * np.log10(gas.m500_msun * 0.72 / 1.0e15)
    assert f_gas == pytest.approx(expected, rel=5e-3)
    assert float(vikhlinin09_gas_fraction(gas.m500_msun)) == pytest.approx(expected)


@pytest.mark.parametrize("log_m200", [13.5, 14.25, 15.0])
def test_electron_pressure_is_close_to_arnaud10(log_m200: float) -> None:
    gas = _gas(log_m200)
    x = np.geomspace(0.05, 1.0, 12)
    ours = gas.electron_pressure_kev_cm3(x * gas.r500_kpc)
    arnaud = arnaud10.electron_pressure_kev_cm3(
        x, m500_msun=gas.m500_msun, hubble_ratio=1.0, hubble_param=0.6774
    )
    # The worst point inside R500 is 0.27 dex low (10^13.5 Msun, near R500); docs/cluster_mass.md.
    assert np.max(np.abs(np.log10(ours / arnaud))) < 0.3


def test_temperature_matches_the_x_ray_mass_temperature_relation() -> None:
    # Arnaud, Pointecouteau & Pratt (2005): M500 = 3.84e14 (T / 5 keV)^1.71 h70^-1 Msun for
    # the spectroscopic T in 0.1-0.5 R500 (their HSE masses: compare with M_HSE, not M500).
    gas = _gas(15.0)
    r = np.geomspace(0.1, 0.5, 50) * gas.r500_kpc
    weight = (
        gas.gas_density_msun_per_kpc3(r) ** 2 * r**3
    )  # emission weighted (bremsstrahlung ~ n^2)
    t_kev = float(np.sum(gas.temperature_kev(r) * weight) / np.sum(weight))
    m_hse = float(gas.hse_mass_msun(np.array([gas.r500_kpc]))[0])
    expected_t = 5.0 * (m_hse * (0.6774 / 0.7) / 3.84e14) ** (1.0 / 1.71)
    assert t_kev == pytest.approx(expected_t, rel=0.25)


@pytest.fixture(scope="module")
def quick_clusters(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Cluster]]:
    root = tmp_path_factory.mktemp("clusters")
    config = ClustersConfig(**CLUSTER_PRESETS["quick"])
    return root, build_clusters(config, root, progress=False)


def test_quick_preset_is_read_by_illustris_python(
    quick_clusters: tuple[Path, list[Cluster]],
) -> None:
    il = pytest.importorskip("illustris_python")
    root, clusters = quick_clusters
    base = str(root / "output")
    groups = il.groupcat.loadHalos(
        base, 99, fields=["Group_M_Crit200", "GroupLenType", "GroupNsubs"]
    )
    catalog = pd.read_parquet(root / "catalogs" / "clusters.parquet")
    h = 0.6774
    np.testing.assert_allclose(
        groups["Group_M_Crit200"] * 1e10 / h, catalog["m200c_msun"], rtol=1e-5
    )
    assert groups["GroupNsubs"].tolist() == [1 + len(c.satellites) for c in clusters]
    for group in range(len(clusters)):
        gas = il.snapshot.loadHalo(
            base,
            99,
            group,
            "gas",
            fields=["Masses", "InternalEnergy", "ElectronAbundance", "Coordinates"],
        )
        assert gas["count"] == groups["GroupLenType"][group, 0]
        # The gas is inside the ICM temperature range of clusters (0.1-20 keV at most radii).
        t_kev = (
            temperature_k(gas["InternalEnergy"], gas["ElectronAbundance"])
            * BOLTZMANN_ERG_PER_K
            / KEV_ERG
        )
        assert 0.1 < np.median(t_kev) < 15.0
        centre = catalog.loc[group, ["centre_x_kpc", "centre_y_kpc", "centre_z_kpc"]].to_numpy()
        r = np.linalg.norm(gas["Coordinates"] / h - centre, axis=1)
        # Gas (the subcluster's too) is drawn to 3 R200c of the NFW profile, no further.
        assert r.max() <= 3.0 * catalog.loc[group, "r200c_kpc"]
    central_dm = il.snapshot.loadSubhalo(base, 99, 0, 2, fields=["Masses"])
    assert central_dm.size > 0


def test_quick_preset_masses_and_particle_budget(
    quick_clusters: tuple[Path, list[Cluster]],
) -> None:
    root, _ = quick_clusters
    catalog = pd.read_parquet(root / "catalogs" / "clusters.parquet")
    assert catalog["m200c_msun"].between(10**13.45, 10**15.05).all()
    # M500 / M200 of NFW halos with c ~ 4-6 is 0.65-0.75.
    assert (catalog["m500c_msun"] / catalog["m200c_msun"]).between(0.6, 0.8).all()
    # Particle masses grow with the cluster.
    order = np.argsort(catalog["m200c_msun"].to_numpy())
    assert np.all(np.diff(catalog["dm_particle_mass_msun"].to_numpy()[order]) > 0)
    # The floor is the non-thermal 9.6% at the centre; 0.5 would need turbulence at ~0.2 R200m.
    assert catalog["hse_bias_r500"].between(0.09, 0.5).all()
    # The radius where turbulence takes over sets the bias: an earlier rise, a larger bias.
    rank = catalog[["hse_bias_r500", "nonthermal_b_r200m"]].corr(method="spearman")
    assert rank.iloc[0, 1] < -0.8


def test_nonthermal_fraction_at_its_scale_radius() -> None:
    # Nelson et al. 2014 eq. 7 at r = B R200m: 1 - A (1 + 1/e), whatever B is.
    expected = 1.0 - 0.452 * (1.0 + np.exp(-1.0))
    for b in (0.5, 0.841, 1.5):
        assert nelson14_fraction(b, b=b) == pytest.approx(expected, rel=1e-12)


def test_a_cool_core_is_denser_and_hotter_in_pressure_at_the_centre_only() -> None:
    halo = cluster_halo(m200c_msun=10**14.5)
    compact = replace(halo, gas_shape=replace(VIKHLININ06, rc=VIKHLININ06.rc / 2)).gas()
    default = halo.gas()
    centre, r500 = 0.01 * default.r500_kpc, default.r500_kpc
    # rho ~ (r/rc)^0 inside rc and ~ rc^(3 beta) outside: halving rc at fixed gas mass raises
    # the central density by ~2^(3 beta) = 3.4, and leaves R500's within a few per cent.
    ratio = compact.gas_density_msun_per_kpc3(centre) / default.gas_density_msun_per_kpc3(centre)
    assert ratio == pytest.approx(2 ** (3 * VIKHLININ06.beta), rel=0.15)
    outer = compact.gas_density_msun_per_kpc3(r500) / default.gas_density_msun_per_kpc3(r500)
    assert outer == pytest.approx(1.0, abs=0.1)
    # More gas in the core weighs more in the same potential: the central pressure rises too.
    assert compact.electron_pressure_kev_cm3(centre) > 1.5 * default.electron_pressure_kev_cm3(
        centre
    )


def test_gas_state_draws_leave_the_rest_of_the_population_as_it_was() -> None:
    plain = draw_clusters(
        ClustersConfig(n_clusters=20, core_radius_scatter_dex=0.0, nonthermal_b_scatter_dex=0.0)
    )
    scattered = draw_clusters(ClustersConfig(n_clusters=20))
    assert [c.halo.gas_shape for c in plain] == [VIKHLININ06] * 20
    assert [c.halo.nonthermal_b for c in plain] == [NELSON14_B] * 20
    for a, b in zip(plain, scattered, strict=True):
        assert a.halo.m200c_msun == b.halo.m200c_msun
        assert a.halo.concentration == b.halo.concentration
        assert a.position_kpc == b.position_kpc
    log_rc = np.log10([c.halo.gas_shape.rc for c in scattered])
    assert np.ptp(log_rc) > 0.3


def test_p500_scatter_is_recovered_on_a_sample() -> None:
    config = ClustersConfig(n_clusters=100, satellites_per_cluster=0, disturbed_fraction=0.0)
    clusters = draw_clusters(config)
    log_m500, log_ratio = [], []
    for cluster in clusters:
        gas = cluster.halo.gas()
        arnaud = arnaud10.electron_pressure_kev_cm3(
            1.0, m500_msun=gas.m500_msun, hubble_ratio=1.0, hubble_param=0.6774
        )
        log_m500.append(np.log10(gas.m500_msun))
        log_ratio.append(
            np.log10(gas.electron_pressure_kev_cm3(np.array([gas.r500_kpc]))[0] / arnaud)
        )
    # P(R500) relative to Arnaud's has a smooth mass trend (docs/cluster_mass.md); about it, the
    # scatter is the drawn 0.1 dex (plus a little from the concentrations). 100 draws know a
    # standard deviation to ~7% (1 sigma).
    trend = np.polyval(np.polyfit(log_m500, log_ratio, 2), log_m500)
    assert np.std(np.subtract(log_ratio, trend)) == pytest.approx(0.1, rel=0.25)


def test_compton_y_of_the_written_gas_matches_the_model(
    quick_clusters: tuple[Path, list[Cluster]],
) -> None:
    """Preset -> illustris_python -> y map: Y_cyl(<R500) of relaxed clusters as the ICM model's."""
    il = pytest.importorskip("illustris_python")
    from darkstack.features.cluster_maps import cluster_maps

    root, clusters = quick_clusters
    base = str(root / "output")
    units = CodeUnits(hubble_param=0.6774, scale_factor=1.0)
    catalog = pd.read_parquet(root / "catalogs" / "clusters.parquet")
    relaxed = [g for g, c in enumerate(clusters) if not any(s.has_gas for s in c.satellites)]
    assert relaxed
    for group in relaxed:
        fields = ["Coordinates", "Masses", "Density", "InternalEnergy", "ElectronAbundance"]
        gas = il.snapshot.loadHalo(base, 99, group, "gas", fields=[*fields, "StarFormationRate"])
        centre = catalog.loc[group, ["centre_x_kpc", "centre_y_kpc", "centre_z_kpc"]].to_numpy()
        r200, r500 = catalog.loc[group, "r200c_kpc"], catalog.loc[group, "r500c_kpc"]
        maps = cluster_maps(
            gas_position_kpc=units.length_to_kpc(gas["Coordinates"]) - centre,
            gas_mass_msun=units.mass_to_msun(gas["Masses"]),
            gas_density_msun_per_kpc3=units.density_to_msun_per_kpc3(gas["Density"]),
            gas_temperature_k=temperature_k(gas["InternalEnergy"], gas["ElectronAbundance"]),
            gas_electron_abundance=gas["ElectronAbundance"],
            gas_sfr_msun_per_yr=gas["StarFormationRate"],
            star_position_kpc=np.zeros((0, 3)),
            star_mass_msun=np.zeros(0),
            n_pixels=80,
            half_width_kpc=r200,
            depth_kpc=3.0 * r200,
        )
        pixel = 2.0 * r200 / 80
        x = (np.arange(80) - 40 + 0.5) * pixel
        inside = np.hypot(*np.meshgrid(x, x)) < r500
        y_map = maps["tsz_y"][inside].sum() * pixel**2
        # The model's Y_cyl: each shell's pressure times the fraction of it inside the cylinder.
        gas_model = clusters[group].halo.gas()
        r = np.geomspace(1e-3 * r500, 3.0 * clusters[group].halo.nfw_r200c_kpc, 4000)
        in_cylinder = 1.0 - np.sqrt(np.clip(1.0 - (r500 / r) ** 2, 0.0, None)) * (r > r500)
        pressure = gas_model.electron_pressure_kev_cm3(r) * KEV_ERG
        y_model = (
            THOMSON_CROSS_SECTION_CM2
            / ELECTRON_REST_ENERGY_ERG
            * np.trapezoid(4.0 * np.pi * r**2 * pressure * in_cylinder, r)
            * KPC_CM
        )
        # ~5e3 gas particles: ratio 0.975-1.03 measured (docs/cluster_mass.md).
        assert y_map == pytest.approx(y_model, rel=0.05)


def test_catalog_vmax_is_nfw_like(quick_clusters: tuple[Path, list[Cluster]]) -> None:
    il = pytest.importorskip("illustris_python")
    root, _ = quick_clusters
    subs = il.groupcat.loadSubhalos(str(root / "output"), 99, fields=["SubhaloVmax", "SubhaloMass"])
    groups = il.groupcat.loadHalos(str(root / "output"), 99, fields=["GroupFirstSub"])
    catalog = pd.read_parquet(root / "catalogs" / "clusters.parquet")
    # NFW: Vmax / V200 = sqrt(0.216 c / (ln(1 + c) - c / (1 + c))) (Vmax at 2.163 r_s).
    c = catalog["concentration"].to_numpy()
    v200 = np.sqrt(G_KPC_KMS2_PER_MSUN * catalog["m200c_msun"] / catalog["r200c_kpc"]).to_numpy()
    nfw = v200 * np.sqrt(0.216 * c / (np.log1p(c) - c / (1.0 + c)))
    central = subs["SubhaloVmax"][groups]
    # The central galaxy raises Vmax by a few per cent at most in clusters.
    assert np.all(central / nfw > 0.99) and np.all(central / nfw < 1.1)
