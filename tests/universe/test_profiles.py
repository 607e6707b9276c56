"""Mass components: closed forms against quadrature, densities against masses, samples against
the analytic cumulative mass."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad

from darkstack.universe.profiles import (
    BetaModelSphere,
    DoublePowerLawHalo,
    ExponentialDisk,
    HernquistSphere,
    MassComponent,
    dicintio14_concentration,
    dicintio14_shape,
)

N_SAMPLES = 100_000
#: Max |empirical CDF - analytic CDF| allowed for N_SAMPLES draws (the 95% KS bound is 0.0043).
KS_TOLERANCE = 0.01


def _nfw(**overrides: float) -> DoublePowerLawHalo:
    params = dict(
        alpha=1.0,
        beta=3.0,
        gamma=1.0,
        scale_radius_kpc=20.0,
        rho_s_msun_per_kpc3=5.0e6,
        truncation_radius_kpc=400.0,
    )
    params.update(overrides)
    return DoublePowerLawHalo(**params)


def _cored_halo() -> DoublePowerLawHalo:
    alpha, beta, gamma = dicintio14_shape(-2.7)
    return DoublePowerLawHalo.from_mass(
        mass_msun=1.0e11,
        radius_kpc=100.0,
        concentration=10.0,
        alpha=alpha,
        beta=beta,
        gamma=gamma,
        truncation_radius_kpc=200.0,
    )


SPHERES: dict[str, MassComponent] = {
    "nfw": _nfw(),
    "dicintio-core": _cored_halo(),
    "hernquist": HernquistSphere(mass_msun=1.0e10, scale_radius_kpc=1.0),
    "hernquist-truncated": HernquistSphere(
        mass_msun=1.0e10, scale_radius_kpc=1.0, truncation_radius_kpc=10.0
    ),
    "beta-model": BetaModelSphere(
        mass_msun=1.0e11, core_radius_kpc=15.0, beta=0.7, truncation_radius_kpc=300.0
    ),
}
DISK = ExponentialDisk(mass_msun=5.0e10, scale_length_kpc=3.0, scale_height_kpc=0.3)
COMPONENTS: dict[str, MassComponent] = {**SPHERES, "disk": DISK}


def _max_cdf_distance(samples: np.ndarray, cdf: np.ndarray) -> float:
    """Kolmogorov-Smirnov distance between sorted ``samples`` and the model CDF at them."""
    n = samples.size
    upper = np.arange(1, n + 1) / n
    return float(max(np.max(np.abs(upper - cdf)), np.max(np.abs(upper - 1.0 / n - cdf))))


@pytest.mark.parametrize(
    ("alpha", "beta", "gamma"),
    [(1.0, 3.0, 1.0), (2.52, 2.51, 0.23), (1.03, 3.11, 0.99), (0.6, 4.5, 1.5), (3.0, 2.5, 0.0)],
)
def test_double_power_law_mass_matches_quadrature(alpha: float, beta: float, gamma: float) -> None:
    halo = _nfw(alpha=alpha, beta=beta, gamma=gamma, truncation_radius_kpc=1.0e5)
    for r_kpc in (2.0e-3, 0.5, 20.0, 150.0, 3000.0):
        expected, _ = quad(
            lambda r: 4.0 * np.pi * r**2 * halo.density_msun_per_kpc3(r),
            0.0,
            r_kpc,
            points=[halo.scale_radius_kpc] if r_kpc > halo.scale_radius_kpc else None,
            limit=400,
            epsrel=1e-10,
        )
        assert halo.enclosed_mass_msun(r_kpc) == pytest.approx(expected, rel=1e-6)


def test_nfw_mass_is_the_analytic_form() -> None:
    halo = _nfw()
    x = np.geomspace(1e-4, 20.0, 50)
    expected = 4.0 * np.pi * 5.0e6 * 20.0**3 * (np.log1p(x) - x / (1.0 + x))
    np.testing.assert_allclose(halo.enclosed_mass_msun(20.0 * x), expected, rtol=1e-9)


def test_double_power_law_is_truncated() -> None:
    halo = _nfw()
    assert halo.density_msun_per_kpc3(401.0) == 0.0
    assert halo.density_msun_per_kpc3(399.0) > 0.0
    assert halo.enclosed_mass_msun(1.0e4) == pytest.approx(halo.total_mass_msun, rel=1e-14)
    assert halo.total_mass_msun == pytest.approx(float(halo.enclosed_mass_msun(400.0)))


def test_from_mass_places_r_minus2_at_radius_over_concentration() -> None:
    halo = _cored_halo()
    r_minus2 = 100.0 / 10.0
    log_r = np.log([r_minus2 * 0.999, r_minus2 * 1.001])
    log_rho = np.log(halo.density_msun_per_kpc3(np.exp(log_r)))
    assert (log_rho[1] - log_rho[0]) / (log_r[1] - log_r[0]) == pytest.approx(-2.0, abs=1e-4)
    assert halo.enclosed_mass_msun(100.0) == pytest.approx(1.0e11, rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    alpha=st.floats(0.5, 3.0),
    beta=st.floats(2.2, 5.0),
    gamma=st.floats(-0.2, 1.8),
    concentration=st.floats(1.0, 50.0),
    log_mass=st.floats(8.0, 15.0),
)
def test_from_mass_normalises_any_valid_shape(
    alpha: float, beta: float, gamma: float, concentration: float, log_mass: float
) -> None:
    halo = DoublePowerLawHalo.from_mass(
        mass_msun=10.0**log_mass,
        radius_kpc=150.0,
        concentration=concentration,
        alpha=alpha,
        beta=beta,
        gamma=gamma,
        truncation_radius_kpc=300.0,
    )
    assert halo.enclosed_mass_msun(150.0) == pytest.approx(10.0**log_mass, rel=1e-9)
    mass = halo.enclosed_mass_msun(np.geomspace(1e-3, 300.0, 200))
    assert np.all(np.diff(mass) > 0)
    assert np.all(np.isfinite(mass))


def test_from_mass_rejects_shapes_without_r_minus2() -> None:
    with pytest.raises(ValueError, match="gamma < 2 < beta"):
        DoublePowerLawHalo.from_mass(
            mass_msun=1e12,
            radius_kpc=200.0,
            concentration=10.0,
            alpha=1.0,
            beta=1.9,
            gamma=1.0,
            truncation_radius_kpc=400.0,
        )


@pytest.mark.parametrize("name", sorted(COMPONENTS))
def test_density_is_the_derivative_of_enclosed_mass(name: str) -> None:
    component = COMPONENTS[name]
    r = np.geomspace(0.05, 9.0, 40)
    step = 1e-5
    dm_dr = (
        component.enclosed_mass_msun(r * (1 + step)) - component.enclosed_mass_msun(r * (1 - step))
    ) / (2 * step * r)
    # Tabulated masses are piecewise power laws, whose chord slopes are good to a few 1e-4.
    np.testing.assert_allclose(
        4.0 * np.pi * r**2 * component.density_msun_per_kpc3(r), dm_dr, rtol=5e-4
    )


@pytest.mark.parametrize("name", sorted(COMPONENTS))
def test_components_are_vectorised(name: str) -> None:
    component = COMPONENTS[name]
    r = np.array([[0.1, 1.0, 10.0], [2.0, 20.0, 200.0]])
    assert component.enclosed_mass_msun(r).shape == r.shape
    assert component.density_msun_per_kpc3(r).shape == r.shape
    assert np.ndim(component.enclosed_mass_msun(1.0)) == 0
    assert component.enclosed_mass_msun(0.0) == 0.0


@pytest.mark.parametrize("name", sorted(SPHERES))
def test_sampled_radii_follow_enclosed_mass(name: str) -> None:
    component = SPHERES[name]
    positions = component.sample_positions_kpc(np.random.default_rng(1), N_SAMPLES)
    assert positions.shape == (N_SAMPLES, 3)
    r = np.sort(np.linalg.norm(positions, axis=1))
    cdf = component.enclosed_mass_msun(r) / component.total_mass_msun
    assert _max_cdf_distance(r, cdf) < KS_TOLERANCE
    # Isotropy: directions have zero mean and equal second moments along the axes.
    directions = positions / np.linalg.norm(positions, axis=1)[:, None]
    np.testing.assert_allclose(np.mean(directions, axis=0), 0.0, atol=0.01)
    np.testing.assert_allclose(np.mean(directions**2, axis=0), 1.0 / 3.0, atol=0.01)


def test_cusp_is_resolved_by_sampling() -> None:
    """Inside 1e-3 r_s the NFW count follows M ~ r^2, so the tabulation does not flatten it."""
    halo = _nfw(truncation_radius_kpc=40.0)
    r = np.linalg.norm(halo.sample_positions_kpc(np.random.default_rng(2), 2_000_000), axis=1)
    inner = 0.05 * halo.scale_radius_kpc
    expected = 2_000_000 * halo.enclosed_mass_msun(inner) / halo.total_mass_msun
    assert np.count_nonzero(r < inner) == pytest.approx(expected, rel=0.05)


def test_sampled_disk_follows_its_profiles() -> None:
    positions = DISK.sample_positions_kpc(np.random.default_rng(3), N_SAMPLES)
    R = np.sort(np.hypot(positions[:, 0], positions[:, 1]))
    assert _max_cdf_distance(R, DISK.enclosed_mass_msun(R) / DISK.mass_msun) < KS_TOLERANCE
    z = np.sort(positions[:, 2])
    assert _max_cdf_distance(z, 0.5 * (1.0 + np.tanh(z / 0.3))) < KS_TOLERANCE
    phi = np.sort(np.arctan2(positions[:, 1], positions[:, 0]))
    assert _max_cdf_distance(phi, (phi + np.pi) / (2.0 * np.pi)) < KS_TOLERANCE


def test_disk_densities_integrate_to_its_mass() -> None:
    surface, _ = quad(lambda R: 2.0 * np.pi * R * DISK.surface_density_msun_per_kpc2(R), 0, np.inf)
    assert surface == pytest.approx(5.0e10, rel=1e-8)
    column, _ = quad(lambda z: DISK.density_at_msun_per_kpc3(2.0, z), -np.inf, np.inf)
    assert column == pytest.approx(float(DISK.surface_density_msun_per_kpc2(2.0)), rel=1e-8)
    assert DISK.density_at_msun_per_kpc3(np.ones((4, 2)), np.zeros((4, 2))).shape == (4, 2)


def test_hernquist_half_mass_radius_and_truncation() -> None:
    sphere = HernquistSphere(mass_msun=2.0e10, scale_radius_kpc=1.5)
    assert sphere.enclosed_mass_msun((1.0 + np.sqrt(2.0)) * 1.5) == pytest.approx(1.0e10)
    truncated = HernquistSphere(mass_msun=2.0e10, scale_radius_kpc=1.5, truncation_radius_kpc=6.0)
    assert truncated.enclosed_mass_msun(6.0) == pytest.approx(2.0e10)
    assert truncated.enclosed_mass_msun(60.0) == pytest.approx(2.0e10)
    positions = truncated.sample_positions_kpc(np.random.default_rng(4), N_SAMPLES)
    assert np.linalg.norm(positions, axis=1).max() <= 6.0


def test_beta_model_with_beta_two_thirds_matches_closed_form() -> None:
    """For beta = 2/3, M(<r) ∝ x - arctan(x), x = r / r_c."""
    gas = BetaModelSphere(mass_msun=3.0e11, core_radius_kpc=20.0, truncation_radius_kpc=500.0)
    r = np.geomspace(1e-3, 500.0, 60)
    x = r / 20.0
    expected = 3.0e11 * (x - np.arctan(x)) / (25.0 - np.arctan(25.0))
    np.testing.assert_allclose(gas.enclosed_mass_msun(r), expected, rtol=1e-4)
    assert gas.density_msun_per_kpc3(501.0) == 0.0
    central = 3.0e11 / (4.0 * np.pi * 20.0**3 * (25.0 - np.arctan(25.0)))
    assert gas.central_density_msun_per_kpc3 == pytest.approx(central, rel=1e-5)


def test_components_reject_non_positive_parameters() -> None:
    with pytest.raises(ValueError, match="mass_msun"):
        HernquistSphere(mass_msun=0.0, scale_radius_kpc=1.0)
    with pytest.raises(ValueError, match="scale_length_kpc"):
        ExponentialDisk(mass_msun=1.0, scale_length_kpc=-1.0, scale_height_kpc=0.1)


def test_dicintio14_shape_cores_at_peak_efficiency_only() -> None:
    alpha, beta, gamma = dicintio14_shape(-2.7)
    assert gamma < 0.5
    assert (alpha, beta, gamma) == pytest.approx((2.52, 2.51, 0.234), abs=0.01)
    for log_ratio in (-4.1, -1.5):
        _, _, gamma_nfw_like = dicintio14_shape(log_ratio)
        assert gamma_nfw_like == pytest.approx(1.0, abs=0.05)
    assert dicintio14_shape(-6.0) == dicintio14_shape(-4.1)
    assert dicintio14_shape(0.0) == dicintio14_shape(-1.3)


def test_dicintio14_concentration_grows_with_efficiency() -> None:
    log_ratios = np.linspace(-4.1, -1.3, 15)
    c = np.array([dicintio14_concentration(10.0, x) for x in log_ratios])
    assert np.all(np.diff(c) > 0)
    assert c[0] == pytest.approx(10.0, rel=1e-4)
    assert c[-1] == pytest.approx(10.0 * (1.0 + 1e-5 * np.exp(3.4 * 3.2)))
    assert dicintio14_concentration(10.0, -0.5) == c[-1]
