"""Scaling relations: published values at a few masses, trends, vectorisation, and the
consistency of the delayed-tau star-formation history with the sSFR it was fitted to."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad

from darkstack.constants import Z_SUN
from darkstack.universe import relations
from darkstack.universe.profiles import ExponentialDisk

T0_GYR = 13.8


def test_moster13_peak_efficiency_is_n_near_m1() -> None:
    m1 = 10.0**11.590
    assert relations.moster13_stellar_mass_msun(m1) / m1 == pytest.approx(0.0351, rel=1e-12)
    halo = np.geomspace(1e10, 1e15, 2001)
    efficiency = relations.moster13_stellar_mass_msun(halo) / halo
    peak = np.argmax(efficiency)
    assert abs(np.log10(halo[peak] / m1)) < 0.2
    # beta != gamma moves the maximum slightly off M1 and above N.
    assert 0.0351 <= efficiency[peak] < 0.039
    # Efficiency falls steeply below M1 (slope beta) and slowly above it (slope gamma).
    assert efficiency[0] < 0.002 and efficiency[-1] < 0.005
    assert np.all(np.diff(relations.moster13_stellar_mass_msun(halo)) > 0)


def test_speagle14_main_sequence_today() -> None:
    # At t = 13.7 Gyr: (0.84 - 0.3562) * 10 - (6.51 - 1.507) = -0.165.
    assert relations.speagle14_log_sfr(10.0, cosmic_time_gyr=13.7) == pytest.approx(-0.165)
    log_mstar = np.array([9.0, 10.0, 11.0])
    log_sfr = relations.speagle14_log_sfr(log_mstar, cosmic_time_gyr=T0_GYR)
    assert log_sfr.shape == (3,)
    assert np.all(np.diff(log_sfr) > 0)
    assert np.all(np.diff(log_sfr - log_mstar) < 0)  # sSFR falls with mass
    earlier = relations.speagle14_log_sfr(log_mstar, cosmic_time_gyr=3.3)
    assert np.all(earlier > log_sfr + 0.5)


def test_peng10_quenched_fraction() -> None:
    assert relations.peng10_quenched_fraction(10.6) == pytest.approx(1.0 - np.exp(-1.0))
    f = relations.peng10_quenched_fraction(np.linspace(8.0, 12.0, 41))
    assert np.all(np.diff(f) > 0)
    assert f[0] < 0.01 and f[-1] > 0.999


def test_shen03_late_type_sizes() -> None:
    # 0.1 * 1e10^0.14 * (1 + 1e10/3.98e10)^0.25 = 2.657 kpc.
    assert relations.shen03_late_type_r50_kpc(1e10) == pytest.approx(2.657, rel=1e-3)
    mass = np.geomspace(1e8, 1e12, 30)
    assert np.all(np.diff(relations.shen03_late_type_r50_kpc(mass)) > 0)
    scatter = relations.shen03_late_type_ln_scatter(mass)
    assert np.all(np.diff(scatter) < 0)
    assert scatter[0] == pytest.approx(0.47, abs=1e-4)
    assert scatter[-1] == pytest.approx(0.34, abs=1e-3)
    assert relations.shen03_late_type_ln_scatter(3.98e10) == pytest.approx(0.405)


def test_kravtsov13_sizes_follow_the_halo_radius() -> None:
    np.testing.assert_allclose(
        relations.kravtsov13_half_mass_radius_kpc([100.0, 300.0]), [1.5, 4.5], rtol=1e-12
    )


def test_wang16_hi_size_mass_relation() -> None:
    # 10^(0.506 * 9 - 3.293) = 18.2 kpc; D^2 ~ M_HI, so the mean HI surface density is ~fixed.
    assert relations.wang16_hi_diameter_kpc(1e9) == pytest.approx(18.25, rel=2e-3)
    masses = np.array([1e8, 1e10])
    mean_density = masses / (np.pi * (0.5e3 * relations.wang16_hi_diameter_kpc(masses)) ** 2)
    assert mean_density[0] == pytest.approx(mean_density[1], rel=0.06)
    assert 3.0 < mean_density[0] < 5.0  # Msun/pc^2 inside the 1 Msun/pc^2 isophote


@given(
    log_mass=st.floats(7.0, 11.0),
    log_radius=st.floats(0.0, 1.8),
    log_density=st.floats(-1.0, 1.0),
)
@settings(max_examples=60, deadline=None)
def test_exponential_disk_reaches_the_isophote(
    log_mass: float, log_radius: float, log_density: float
) -> None:
    mass, radius, density = 10.0**log_mass, 10.0**log_radius, 10.0**log_density
    scale = relations.exponential_scale_length_for_isophote_kpc(
        mass_msun=mass, radius_kpc=radius, surface_density_msun_pc2=density
    )
    assert scale <= 0.5 * radius * (1 + 1e-12)
    reached = mass / (2.0 * np.pi * (scale * 1e3) ** 2) * np.exp(-radius / scale)
    if scale < 0.5 * radius * (1 - 1e-9):
        assert reached == pytest.approx(density, rel=1e-6)
    else:  # too little mass: the most extended profile still falls short
        assert reached <= density * (1 + 1e-9)


def test_exponential_disk_isophote_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="radius_kpc"):
        relations.exponential_scale_length_for_isophote_kpc(
            mass_msun=1e9, radius_kpc=0.0, surface_density_msun_pc2=1.0
        )


def test_disk_scale_length_puts_half_the_mass_inside_r50() -> None:
    scale = 4.0 * relations.half_mass_radius_to_disk_scale_length
    disk = ExponentialDisk(mass_msun=1.0, scale_length_kpc=scale, scale_height_kpc=0.1)
    # 1.678 is 1.67835 rounded.
    assert disk.enclosed_mass_msun(4.0) == pytest.approx(0.5, abs=2e-4)


def test_bulge_to_total_rises_with_mass() -> None:
    assert 0.05 < relations.bulge_to_total(9.5) < 0.07
    assert relations.bulge_to_total(11.5) == pytest.approx(0.6, abs=0.02)
    bt = relations.bulge_to_total(np.linspace(7.0, 13.0, 61))
    assert np.all(np.diff(bt) > 0)
    assert np.all((bt > 0.05) & (bt < 0.65))


def test_tremonti04_mass_metallicity() -> None:
    # -1.492 + 18.47 - 8.026 = 8.952 at log M* = 10.
    assert relations.tremonti04_oxygen_abundance(10.0) == pytest.approx(8.952)
    oh = relations.tremonti04_oxygen_abundance(np.linspace(8.5, 11.5, 31))
    assert np.all(np.diff(oh) > 0)
    assert relations.tremonti04_oxygen_abundance(7.0) == relations.tremonti04_oxygen_abundance(8.5)
    assert relations.tremonti04_oxygen_abundance(12.5) == relations.tremonti04_oxygen_abundance(
        11.5
    )
    z = relations.gas_metallicity_mass_fraction(np.array([9.0, 10.0]))
    np.testing.assert_allclose(z[1], Z_SUN * 10.0 ** (8.952 - 8.69))
    assert z[0] < z[1]


def test_huang12_hi_masses() -> None:
    np.testing.assert_allclose(
        relations.huang12_log_hi_mass([8.0, 10.0]), [0.712 * 8 + 3.117, 0.276 * 10 + 6.885]
    )
    log_mstar = np.linspace(7.0, 11.5, 46)
    log_hi = relations.huang12_log_hi_mass(log_mstar)
    assert np.all(np.diff(log_hi - log_mstar) < 0)  # gas fractions fall with mass
    assert 10.0 ** (relations.huang12_log_hi_mass(9.5) - 9.5) == pytest.approx(1.5, rel=0.35)


def test_leitner_kravtsov11_mass_loss() -> None:
    assert relations.leitner_kravtsov11_mass_loss_fraction(0.0) == 0.0
    # 0.046 ln(1e10 / 2.76e5 + 1) = 0.483: half the initial mass is returned in 10 Gyr.
    assert relations.leitner_kravtsov11_mass_loss_fraction(1e10) == pytest.approx(0.483, abs=1e-3)
    f = relations.leitner_kravtsov11_mass_loss_fraction(np.geomspace(1e4, 1.4e10, 20))
    assert np.all(np.diff(f) > 0)


@pytest.mark.parametrize("tau_gyr", [0.05, 0.3, 3.0, 100.0])
def test_delayed_tau_ssfr_matches_quadrature(tau_gyr: float) -> None:
    def formed_and_surviving(t: float) -> float:
        age_yr = (T0_GYR - t) * 1e9
        return (
            t * np.exp(-t / tau_gyr) * (1 - relations.leitner_kravtsov11_mass_loss_fraction(age_yr))
        )

    stellar_mass, _ = quad(
        formed_and_surviving, 0, T0_GYR, points=[tau_gyr, T0_GYR - 1e-3], limit=500, epsrel=1e-11
    )
    expected = T0_GYR * np.exp(-T0_GYR / tau_gyr) / stellar_mass / 1e9
    ssfr = relations.delayed_tau_specific_sfr_per_yr(tau_gyr, cosmic_time_gyr=T0_GYR)
    assert ssfr == pytest.approx(expected, rel=1e-4)


@settings(max_examples=40, deadline=None)
@given(log_ssfr=st.floats(-13.0, np.log10(2.3e-10)), t0_gyr=st.floats(6.0, 13.8))
def test_delayed_tau_recovers_any_reachable_ssfr(log_ssfr: float, t0_gyr: float) -> None:
    tau = relations.delayed_tau_for_specific_sfr(ssfr_per_yr=10.0**log_ssfr, cosmic_time_gyr=t0_gyr)
    reached = relations.delayed_tau_specific_sfr_per_yr(tau, cosmic_time_gyr=t0_gyr)
    if relations.DELAYED_TAU_RANGE_GYR[0] < tau < relations.DELAYED_TAU_RANGE_GYR[1]:
        assert reached == pytest.approx(10.0**log_ssfr, rel=1e-3)
    else:
        assert reached < 10.0**log_ssfr  # only the fastest histories run out of range


def test_delayed_tau_is_vectorised_and_clips() -> None:
    ssfr = np.array([[1e-11, 1e-10], [1e-8, 0.0]])
    tau = relations.delayed_tau_for_specific_sfr(ssfr_per_yr=ssfr, cosmic_time_gyr=T0_GYR)
    assert tau.shape == (2, 2)
    assert 0.05 < tau[0, 0] < tau[0, 1] < 100.0
    assert tau[1, 0] == pytest.approx(100.0)
    assert tau[1, 1] == pytest.approx(0.05)


def _delayed_tau_cdf(t_gyr: np.ndarray, tau_gyr: float) -> np.ndarray:
    def unnormalised(x: np.ndarray | float) -> np.ndarray:
        return 1.0 - (1.0 + x) * np.exp(-x)

    return unnormalised(t_gyr / tau_gyr) / unnormalised(T0_GYR / tau_gyr)


@pytest.mark.parametrize("tau_gyr", [0.05, 1.0, 5.0, 100.0])
def test_formation_times_follow_the_history(tau_gyr: float) -> None:
    n = 100_000
    t = np.sort(
        relations.sample_formation_times_gyr(
            np.random.default_rng(8), tau_gyr=tau_gyr, cosmic_time_gyr=T0_GYR, n=n
        )
    )
    assert t.shape == (n,)
    assert 0.0 <= t[0] and t[-1] <= T0_GYR
    cdf = _delayed_tau_cdf(t, tau_gyr)
    upper = np.arange(1, n + 1) / n
    assert np.max(np.maximum(np.abs(upper - cdf), np.abs(upper - 1.0 / n - cdf))) < 0.01


def test_recent_star_formation_matches_the_sfr() -> None:
    """Particles of equal initial mass that add up to M* today form SFR x 100 Myr recently."""
    mstar_msun, ssfr_per_yr = 1.0e10, 1.0e-10
    tau = relations.delayed_tau_for_specific_sfr(ssfr_per_yr=ssfr_per_yr, cosmic_time_gyr=T0_GYR)
    assert 0.05 < tau < 100.0
    t = relations.sample_formation_times_gyr(
        np.random.default_rng(9), tau_gyr=float(tau), cosmic_time_gyr=T0_GYR, n=1_000_000
    )
    age_yr = (T0_GYR - t) * 1e9
    surviving = 1.0 - relations.leitner_kravtsov11_mass_loss_fraction(age_yr)
    initial_mass_msun = mstar_msun / np.sum(surviving)
    formed_recently = initial_mass_msun * np.count_nonzero(age_yr < 1e8)
    assert formed_recently == pytest.approx(ssfr_per_yr * mstar_msun * 1e8, rel=0.03)


def test_lognormal_scatter() -> None:
    rng = np.random.default_rng(10)
    draws = relations.lognormal_scatter(rng, np.full(200_000, 1e10), 0.2)
    assert np.median(draws) == pytest.approx(1e10, rel=0.01)
    assert np.std(np.log10(draws)) == pytest.approx(0.2, rel=0.01)
    assert relations.lognormal_scatter(rng, [1.0, 2.0], [[0.1], [0.2], [0.3]]).shape == (3, 2)
    np.testing.assert_array_equal(relations.lognormal_scatter(rng, [1.0, 5.0], 0.0), [1.0, 5.0])
