"""The cluster_mass scores and baseline against closed forms and published numbers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.ndimage import gaussian_filter

from darkstack.constants import (
    ELECTRON_REST_ENERGY_ERG,
    KEV_ERG,
    KPC_CM,
    THOMSON_CROSS_SECTION_CM2,
)
from darkstack.cosmology import TNG_COSMOLOGY, critical_density_msun_per_kpc3
from darkstack.cosmology import overdensity_radius_kpc as radius_of
from darkstack.evaluate.cluster_mass.baseline import (
    iterate_y500_m500,
    nfw_from_m500c,
    projected_nfw_msun_kpc2,
)
from darkstack.evaluate.cluster_mass.scores import (
    cluster_resample_counts,
    cylinder_sums,
    power_spectra,
    sample_scores,
    scored_pixels,
    substructure_maps,
    truth_scores,
)
from darkstack.features.cluster_observe import pixel_radii_kpc
from darkstack.universe.clusters import arnaud10
from darkstack.universe.plan import median_concentration


def _nfw(m200c_msun: float, c: float) -> tuple[float, float]:
    """rho_s (Msun kpc^-3) and r_s (kpc) of the NFW of M200c, c200c (z = 0, TNG cosmology)."""
    r200 = float(radius_of(m200c_msun, overdensity=200.0))
    r_s = r200 / c
    return m200c_msun / (4 * np.pi * r_s**3 * (np.log(1 + c) - c / (1 + c))), r_s


def _wright_brainerd_sigma(radius_kpc: np.ndarray, rho_s: float, r_s: float) -> np.ndarray:
    """Projected NFW, Wright & Brainerd (2000) eq. 11 (x != 1)."""
    x = radius_kpc / r_s
    with np.errstate(invalid="ignore"):
        inner = np.arccosh(1 / np.minimum(x, 1 - 1e-12)) / np.sqrt(
            1 - np.minimum(x, 1 - 1e-12) ** 2
        )
        outer = np.arccos(1 / np.maximum(x, 1 + 1e-12)) / np.sqrt(np.maximum(x, 1 + 1e-12) ** 2 - 1)
    f = np.where(x < 1, inner, outer)
    return 2 * rho_s * r_s * (1 - f) / (x**2 - 1)


def _wright_brainerd_cylinder(radius_kpc: np.ndarray, rho_s: float, r_s: float) -> np.ndarray:
    """Projected NFW mass inside R (Bartelmann 1996): 4 pi rho_s r_s^3 h(x)."""
    x = radius_kpc / r_s
    with np.errstate(invalid="ignore"):
        h = np.where(
            x < 1,
            np.log(x / 2)
            + np.arccosh(1 / np.minimum(x, 1 - 1e-12)) / np.sqrt(1 - np.minimum(x, 1 - 1e-12) ** 2),
            np.log(x / 2)
            + np.arccos(1 / np.maximum(x, 1 + 1e-12)) / np.sqrt(np.maximum(x, 1 + 1e-12) ** 2 - 1),
        )
    return 4 * np.pi * rho_s * r_s**3 * h


def test_cylinder_of_a_uniform_disk_is_its_area() -> None:
    n, pixel = 400, 2.0
    maps = np.full((1, n, n), 3.0)
    radii = np.array([[50.0, 150.0, 300.0]])
    np.testing.assert_allclose(
        cylinder_sums(maps, pixel_kpc=[pixel], radius_kpc=radii)[0],
        3.0 * np.pi * radii[0] ** 2,
        # Counting pixel centres (Gauss's circle problem): 0.6% off at 25 pixels of radius.
        rtol=1e-2,
    )


def test_projected_nfw_matches_wright_brainerd_and_its_cylinder_mass() -> None:
    m200, c = 3e14, 5.0
    rho_s, r_s = _nfw(m200, c)
    radius = np.geomspace(5.0, 3000.0, 40)
    sigma = projected_nfw_msun_kpc2(radius, m200c_msun=m200, c200c=c)
    np.testing.assert_allclose(sigma, _wright_brainerd_sigma(radius, rho_s, r_s), rtol=1e-6)
    # A fine map of it, integrated in cylinders (pixel centres), against the closed form.
    r200 = float(radius_of(m200, overdensity=200.0))
    n = 400
    pixel = 2 * r200 / n
    image = projected_nfw_msun_kpc2(pixel_radii_kpc(n, pixel_kpc=pixel), m200c_msun=m200, c200c=c)
    cylinders = np.array([0.25, 0.5, 1.0]) * r200
    measured = cylinder_sums(image[None], pixel_kpc=[pixel], radius_kpc=cylinders[None])[0]
    np.testing.assert_allclose(
        measured, _wright_brainerd_cylinder(cylinders, rho_s, r_s), rtol=0.01
    )


def test_nfw_from_m500c_encloses_500_times_critical() -> None:
    m500 = 2e14
    m200, c = nfw_from_m500c(m500)
    assert c == pytest.approx(
        float(median_concentration(m200, model="diemer19", cosmology=TNG_COSMOLOGY))
    )
    rho_s, r_s = _nfw(m200, c)
    r500 = float(radius_of(m500, overdensity=500.0))
    x = r500 / r_s
    enclosed = 4 * np.pi * rho_s * r_s**3 * (np.log(1 + x) - x / (1 + x))
    assert enclosed == pytest.approx(m500, rel=1e-4)
    assert enclosed / (4 / 3 * np.pi * r500**3) == pytest.approx(
        500 * critical_density_msun_per_kpc3(0.0), rel=1e-4
    )


def test_arnaud_y_sph_over_y_cyl_is_i1_over_j1() -> None:
    """Arnaud et al. 2010 eq. 25-27: Y_sph(R500) / Y_cyl(R500) = I(1) / J(1) = 0.6145 / 0.7398."""
    kwargs = {"m500_msun": 3e14, "r500_kpc": 1000.0, "hubble_ratio": 1.0, "running_slope": False}
    ratio = arnaud10.y_sph_mpc2(**kwargs) / arnaud10.y_cyl_mpc2(**kwargs)
    assert ratio == pytest.approx(0.6145 / 0.7398, rel=2e-3)


def test_y_m_iteration_recovers_m500_of_an_arnaud_map() -> None:
    """A y map projected from Arnaud's pressure (to 5 R500) gives back its M500 and R500."""
    h = TNG_COSMOLOGY.hubble_param
    m500 = 4e14
    r500 = float(radius_of(m500, overdensity=500.0))

    def pressure(r_kpc: float) -> float:
        return float(
            arnaud10.electron_pressure_kev_cm3(
                r_kpc / r500, m500_msun=m500, hubble_ratio=1.0, hubble_param=h
            )
        )

    def y_of(radius_kpc: float) -> float:
        depth = np.sqrt(max((5 * r500) ** 2 - radius_kpc**2, 0.0))
        integral, _ = quad(lambda z: pressure(np.hypot(radius_kpc, z)), 0.0, depth, limit=200)
        return (
            2 * integral * KPC_CM * KEV_ERG * THOMSON_CROSS_SECTION_CM2 / ELECTRON_REST_ENERGY_ERG
        )

    n, pixel = 120, 3 * r500 / 120
    grid = np.geomspace(0.2 * pixel, 2.2 * r500, 120)
    profile = np.array([y_of(r) for r in grid])
    image = np.interp(pixel_radii_kpc(n, pixel_kpc=pixel), grid, profile)
    solution = iterate_y500_m500(image[None], pixel_kpc=np.array([pixel]))
    assert solution.converged[0]
    assert solution.m500c_msun[0] == pytest.approx(m500, rel=0.03)
    assert solution.r500c_kpc[0] == pytest.approx(r500, rel=0.01)


def test_power_of_white_noise_is_flat_at_its_variance() -> None:
    rng = np.random.default_rng(1)
    maps = rng.normal(0.0, 2.0, size=(40, 64, 64))
    k, power = power_spectra(maps)
    # Ring 1 holds |k| = 1 and sqrt(2) (rounded): mean (4 + 4 sqrt 2) / 8.
    assert k[0] == pytest.approx((1 + np.sqrt(2)) / 2) and k[-1] == pytest.approx(32.0, abs=0.5)
    np.testing.assert_allclose(power.mean(axis=0)[2:], 4.0, rtol=0.08)


def test_gaussian_smoothing_multiplies_power_by_exp_minus_k2_sigma2() -> None:
    rng = np.random.default_rng(2)
    n, sigma_px = 64, 1.5
    maps = rng.normal(size=(20, n, n))
    smoothed = np.stack([gaussian_filter(m, sigma_px, mode="wrap") for m in maps])
    k, raw = power_spectra(maps)
    _, smooth = power_spectra(smoothed)
    expected = np.exp(-((2 * np.pi * k / n) ** 2) * sigma_px**2)
    visible = expected > 1e-3
    np.testing.assert_allclose((smooth / raw).mean(axis=0)[visible], expected[visible], rtol=0.05)


def test_cluster_bootstrap_keeps_lines_of_sight_together() -> None:
    groups = np.repeat([7, 3, 11, 5], [3, 2, 4, 1])
    counts = cluster_resample_counts(groups, n_resamples=200, seed=0)
    assert counts.shape == (200, groups.size)
    for group in np.unique(groups):
        member = counts[:, groups == group]
        assert np.all(member == member[:, :1])
    per_cluster = np.stack([counts[:, groups == g][:, 0] for g in np.unique(groups)], axis=1)
    assert np.all(per_cluster.sum(axis=1) == 4)
    assert per_cluster.std() > 0


def test_pixel_residuals_of_a_scaled_map() -> None:
    """A prediction 10^0.1 times the truth inside R200 has bias 0.1 dex and no scatter; its
    cylinder masses are 0.1 dex high."""
    rng = np.random.default_rng(3)
    truth = 10 ** rng.uniform(7, 9, size=(2, 32, 32))
    scores = sample_scores(
        truth * 10**0.1,
        truth=truth_scores(
            truth,
            pixel_kpc=np.array([10.0, 20.0]),
            pixel_radius_kpc=np.array([100.0, 200.0]),
            cylinder_radius_kpc=np.array([[50.0, 150.0], [100.0, 300.0]]),
        ),
    )
    bias, scatter = scores.pixel_bias_scatter(np.ones(2))
    assert bias == pytest.approx(0.1) and scatter == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_allclose(scores.log_mass_ratio, 0.1)
    expected_pixels = (pixel_radii_kpc(32, pixel_kpc=10.0) <= 100.0).sum()
    assert scores.pixel_count[0] == expected_pixels


def test_ensemble_spread_averages_the_scored_pixels_only() -> None:
    from darkstack.evaluate.cluster_mass.report import RunPrediction, ensemble_spread_dex

    n, pixel = 16, 10.0
    inside = pixel_radii_kpc(n, pixel_kpc=pixel) <= 50.0
    truth = np.ones((2, n, n))
    truth[1, 8, 8] = 0.0  # an empty true pixel is not scored
    spread = np.where(inside, 0.2, 5.0)[None].repeat(2, axis=0)
    spread[1, 8, 8] = 7.0
    spread[1][inside & (truth[1] > 0)] = 0.4
    scored = scored_pixels(truth, pixel_kpc=np.full(2, pixel), pixel_radius_kpc=np.full(2, 50.0))
    found = RunPrediction(sigma_msun_kpc2=truth, spread_dex=spread, n_members=3)
    value = ensemble_spread_dex(found, scored=scored)
    k = int(inside.sum())
    assert value == pytest.approx((0.2 * k + 0.4 * (k - 1)) / (2 * k - 1), rel=1e-12)


def _radial_map(n: int) -> np.ndarray:
    """A cuspy radial profile, 10^(6 - r / 8 px) over the unit-pixel rings."""
    ring = np.rint(pixel_radii_kpc(n, pixel_kpc=1.0))
    return 10.0 ** (6.0 - ring / 8.0)


def test_substructure_of_a_radial_map_is_zero_and_a_clump_keeps_its_ring_contrast() -> None:
    n = 32
    radial = _radial_map(n)
    scored = scored_pixels(
        radial[None], pixel_kpc=np.array([10.0]), pixel_radius_kpc=np.array([120.0])
    )
    assert scored[0].sum() == (pixel_radii_kpc(n, pixel_kpc=10.0) <= 120.0).sum()
    np.testing.assert_allclose(substructure_maps(radial[None], scored=scored), 0.0, atol=1e-12)
    # A clump of +0.5 dex on one pixel of ring 8: +0.5 (1 - 1/N) there, -0.5 / N on the rest
    # of its scored ring (N pixels), nothing in the other rings or outside the scored disc.
    ring = np.rint(pixel_radii_kpc(n, pixel_kpc=1.0))
    clumpy = radial.copy()
    clumpy[16 + 7, 16] *= 10**0.5
    assert ring[16 + 7, 16] == 8
    found = substructure_maps(clumpy[None], scored=scored)[0]
    members = (ring == 8) & scored[0]
    size = members.sum()
    assert found[16 + 7, 16] == pytest.approx(0.5 * (1 - 1 / size), abs=1e-12)
    others = members.copy()
    others[16 + 7, 16] = False
    np.testing.assert_allclose(found[others], -0.5 / size, atol=1e-12)
    np.testing.assert_allclose(found[~members], 0.0, atol=1e-12)


def test_a_radial_error_leaves_the_substructure_ratio_at_one_but_not_the_sigma_ratio() -> None:
    """A prediction off from the truth by a function of radius only (a central peak twice too
    high, say) has the truth's substructure exactly, whereas the spectra of Σ are dominated by
    that peak."""
    rng = np.random.default_rng(4)
    n = 32
    ring = np.rint(pixel_radii_kpc(n, pixel_kpc=1.0))
    truth = _radial_map(n)[None] * 10 ** rng.normal(0, 0.1, size=(6, n, n))
    predicted = truth * np.where(ring <= 1, 2.0, 1.0)
    scoring = truth_scores(
        truth,
        pixel_kpc=np.full(6, 10.0),
        pixel_radius_kpc=np.full(6, 150.0),
        cylinder_radius_kpc=np.full((6, 1), 50.0),
    )
    scores = sample_scores(predicted, truth=scoring)
    small = scoring.k > 0.5 * scoring.k.max()
    weights = np.ones(6)
    assert scores.small_scale_power_ratio(
        weights, truth=scoring, small=small, substructure=True
    ) == pytest.approx(1.0, rel=1e-9)
    assert scores.small_scale_power_ratio(weights, truth=scoring, small=small) > 1.5
