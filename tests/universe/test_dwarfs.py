"""The dwarfs universe: stars in Jeans equilibrium, slopes recovered from the particles."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from darkstack.ingest.dwarfs import DwarfIngestConfig
from darkstack.measure import log_density_slope
from darkstack.tng_layout import DM, LOWRES_DM, STARS
from darkstack.universe.dwarfs import DWARF_PRESETS, DwarfsConfig, draw_dwarfs, generate_dwarf
from darkstack.universe.kinematics import osipkov_merritt_los_dispersion_kms
from darkstack.universe.osipkov_merritt import (
    VELOCITY_UNIT_KMS,
    NegativeDistributionError,
    eddington_f,
    galpy_osipkov_merritt_df,
    osipkov_merritt_df,
    sample_osipkov_merritt,
)
from darkstack.universe.profiles import DoublePowerLawHalo


def _halo(gamma: float) -> DoublePowerLawHalo:
    return DoublePowerLawHalo.from_mass(
        mass_msun=3e9,
        radius_kpc=30.0,
        concentration=12.0,
        alpha=1.5,
        beta=3.0,
        gamma=gamma,
        truncation_radius_kpc=30.0,
    )


def _stars(inner_slope: float) -> DoublePowerLawHalo:
    return DoublePowerLawHalo(
        alpha=2.0,
        beta=5.0,
        gamma=inner_slope,
        scale_radius_kpc=0.5,
        rho_s_msun_per_kpc3=1.0e7,
        truncation_radius_kpc=10.0,
    )


def _binned_dispersion(position: np.ndarray, velocity: np.ndarray, edges: np.ndarray):
    R = np.hypot(position[:, 0], position[:, 1])
    which = np.digitize(R, edges) - 1
    centres, sigma, error = [], [], []
    for b in range(edges.size - 1):
        v = velocity[which == b, 2]
        centres.append(np.median(R[which == b]))
        sigma.append(v.std())
        # Sampling error of a standard deviation, with the sample's own kurtosis.
        kurt = np.mean((v - v.mean()) ** 4) / v.var() ** 2
        error.append(v.std() * np.sqrt((kurt - 1.0) / (4.0 * v.size)))
    return np.array(centres), np.array(sigma), np.array(error)


@pytest.mark.parametrize(
    ("gamma", "anisotropy_radius_kpc"),
    [(0.5, np.inf), (1.4, 0.6), (0.0, 0.3)],
    ids=["isotropic", "osipkov-merritt-cusp", "osipkov-merritt-core-small-ra"],
)
def test_distribution_function_matches_galpy(gamma: float, anisotropy_radius_kpc: float) -> None:
    """Our tabulated f(Q) against galpy's own Eddington inversion (adaptive quad) to 1%."""
    halo, stars = _halo(gamma), _stars(0.3)
    components = [halo, stars]
    kwargs = {
        "tracer": stars,
        "components": components,
        "anisotropy_radius_kpc": anisotropy_radius_kpc,
        "r_max_kpc": 10.0,
    }
    ours = osipkov_merritt_df(**kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = galpy_osipkov_merritt_df(**kwargs)
    from galpy.potential import evaluatePotentials

    edf = getattr(reference, "_edf", reference)
    # From deep in the stellar cusp to just inside the edge, where f has a sqrt kink.
    radii = np.array([0.005, 0.05, 0.3, 1.0, 3.0, 8.0, 9.8])
    energy = evaluatePotentials(edf._pot, radii, np.zeros_like(radii), use_physical=False)
    expected = np.asarray(edf.fE(energy)) / VELOCITY_UNIT_KMS**3
    q = -energy * VELOCITY_UNIT_KMS**2
    np.testing.assert_allclose(ours(q), expected, rtol=0.01)
    # The quadrature itself (no table) at the same radii; its Q is galpy's to 1e-7.
    q_direct, f_direct = eddington_f(
        tracer=stars,
        potential=ours.potential,
        anisotropy_radius_kpc=anisotropy_radius_kpc,
        r_q_kpc=radii,
    )
    np.testing.assert_allclose(q_direct, q, rtol=1e-7)
    np.testing.assert_allclose(f_direct, expected, rtol=1e-3)
    assert np.all(ours(q) > 0.0)


def test_sampled_speeds_follow_the_distribution_function() -> None:
    """|w| = |(v_r, sqrt(1 + r^2/r_a^2) v_t)| has density w^2 f(Psi(r) - w^2/2) at each radius,
    and w's direction is isotropic: the probability-integral transform is uniform (KS), with
    the CDF on a grid 4x finer than the sampler's. This checks the whole shape (kurtosis
    included), which the Jeans test's dispersions do not."""
    from scipy.stats import kstest

    halo, stars = _halo(1.0), _stars(0.3)
    r_a = 0.6
    kwargs = {
        "tracer": stars,
        "components": [halo, stars],
        "anisotropy_radius_kpc": r_a,
        "r_max_kpc": stars.truncation_radius_kpc,
    }
    df = osipkov_merritt_df(**kwargs)
    sample = sample_osipkov_merritt(np.random.default_rng(11), n=10000, **kwargs)
    r = np.linalg.norm(sample.position_kpc, axis=1)
    v_r = np.sum(sample.velocity_kms * sample.position_kpc, axis=1) / r
    v_t = np.sqrt(np.maximum(np.sum(sample.velocity_kms**2, axis=1) - v_r**2, 0.0))
    w = np.hypot(v_r, np.sqrt(1.0 + (r / r_a) ** 2) * v_t)
    psi = df.potential.psi(r)
    w_max = np.sqrt(2.0 * (psi - df.q_range[0]))
    x = np.linspace(0.0, 1.0, 1025)
    density = x**2 * df(psi[:, None] - 0.5 * (w_max[:, None] * x) ** 2)
    cdf = np.concatenate(
        [np.zeros((r.size, 1)), np.cumsum(0.5 * (density[:, 1:] + density[:, :-1]), axis=1)],
        axis=1,
    )
    position = w / w_max * (x.size - 1)
    cell = np.minimum(position.astype(int), x.size - 2)
    rows = np.arange(r.size)
    low, high = cdf[rows, cell], cdf[rows, cell + 1]
    u = (low + (position - cell) * (high - low)) / cdf[:, -1]
    assert kstest(u, "uniform").pvalue > 1e-3
    assert kstest(v_r / w, "uniform", args=(-1.0, 2.0)).pvalue > 1e-3
    # The test can fail: the speeds of a wrong anisotropy radius are not these.
    w_wrong = np.hypot(v_r, np.sqrt(1.0 + (r / (2.0 * r_a)) ** 2) * v_t)
    assert kstest(v_r / w_wrong, "uniform", args=(-1.0, 2.0)).pvalue < 1e-3


@pytest.mark.parametrize(
    "anisotropy_radius_kpc", [np.inf, 0.6], ids=["isotropic", "osipkov-merritt"]
)
def test_sampled_los_dispersion_matches_jeans_projection(anisotropy_radius_kpc: float) -> None:
    """Sampled stars against the Binney & Mamon (1982) projection of the Jeans equation."""
    halo, stars = _halo(0.5), _stars(0.3)
    sample = sample_osipkov_merritt(
        np.random.default_rng(3),
        n=30000,
        tracer=stars,
        components=[halo, stars],
        anisotropy_radius_kpc=anisotropy_radius_kpc,
        r_max_kpc=stars.truncation_radius_kpc,
    )
    edges = np.array([0.05, 0.15, 0.3, 0.5, 0.8, 1.2, 2.0])
    R, sigma, error = _binned_dispersion(sample.position_kpc, sample.velocity_kms, edges)
    model = osipkov_merritt_los_dispersion_kms(
        tracer=stars,
        components=[halo, stars],
        R_kpc=R,
        anisotropy_radius_kpc=anisotropy_radius_kpc,
        r_max_kpc=stars.truncation_radius_kpc,
    )
    assert np.all(np.abs(sigma - model) < 3.0 * error), (sigma, model, error)


def test_anisotropy_changes_the_projected_dispersion() -> None:
    """Radial orbits raise sigma_los at the centre and lower it outside (so the test can fail)."""
    halo, stars = _halo(1.0), _stars(0.3)
    R = np.array([0.1, 2.0])
    kwargs = {"tracer": stars, "components": [halo, stars], "R_kpc": R, "r_max_kpc": 10.0}
    iso = osipkov_merritt_los_dispersion_kms(anisotropy_radius_kpc=np.inf, **kwargs)
    radial = osipkov_merritt_los_dispersion_kms(anisotropy_radius_kpc=0.5, **kwargs)
    assert radial[0] > 1.05 * iso[0] and radial[1] < 0.95 * iso[1]


def test_plummer_light_in_a_cusp_has_no_isotropic_distribution() -> None:
    """A cored tracer in a cusped potential has f < 0 at the most bound energies."""
    halo, stars = _halo(1.0), _stars(0.0)
    with pytest.raises(NegativeDistributionError, match="anisotropy radius"):
        sample_osipkov_merritt(
            np.random.default_rng(0),
            n=10,
            tracer=stars,
            components=[halo, stars],
            anisotropy_radius_kpc=np.inf,
            r_max_kpc=10.0,
        )


@pytest.mark.parametrize("gamma", [0.1, 0.8, 1.4])
def test_measured_slope_matches_zhao_profile(gamma: float) -> None:
    """The log-log fit of particle shell densities recovers d ln rho / d ln r at 150 pc."""
    halo = _halo(gamma)
    rng = np.random.default_rng(int(10 * gamma))
    r = halo.sample_positions_kpc(rng, 400_000)
    distance = np.linalg.norm(r, axis=1)
    fit = log_density_slope(distance_kpc=distance, mass_msun=np.ones_like(distance), r_kpc=0.15)
    truth = float(halo.log_slope(0.15))
    # The fit averages the slope over +-0.2 dex; the curvature term is < 0.01 here.
    assert abs(fit.slope - truth) < 3.0 * fit.slope_error + 0.01, (fit, truth)


def test_population_is_flat_in_slope_and_not_set_by_stellar_mass() -> None:
    dwarfs = draw_dwarfs(DwarfsConfig(n_dwarfs=240))
    slopes = np.array([d.target_slope for d in dwarfs])
    counts, _ = np.histogram(slopes, bins=6, range=(-1.5, 0.0))
    assert counts.min() > 0.6 * counts.mean()
    log_mstar = np.log10([d.stellar_mass_msun for d in dwarfs])
    fit = np.polyval(np.polyfit(log_mstar, slopes, 2), log_mstar)
    assert np.std(slopes - fit) > 0.2  # stellar mass leaves most of the slope unexplained
    truth = np.array([d.halo.log_slope(0.15) for d in dwarfs])
    np.testing.assert_allclose(slopes, truth)


def test_zoom_particles_split_at_the_highres_radius() -> None:
    config = DwarfsConfig(n_dwarfs=1, n_stars=50, highres_particle_mass_msun=1e5, n_lowres=300)
    (dwarf,) = draw_dwarfs(config)
    particles = generate_dwarf(dwarf, index=0, config=config)
    r_hr = np.linalg.norm(particles[DM]["position_kpc"], axis=1)
    r_lr = np.linalg.norm(particles[LOWRES_DM]["position_kpc"], axis=1)
    assert r_hr.max() <= config.highres_radius_kpc <= r_lr.min()
    assert r_lr.max() <= dwarf.r200c_kpc
    total = particles[DM]["mass_msun"].sum() + particles[LOWRES_DM]["mass_msun"].sum()
    assert total == pytest.approx(dwarf.halo.enclosed_mass_msun(dwarf.r200c_kpc), rel=1e-3)
    assert particles[STARS]["mass_msun"].sum() == pytest.approx(dwarf.stellar_mass_msun)


def test_interrupted_build_resumes_without_regenerating(tmp_path, monkeypatch) -> None:
    from darkstack.universe import dwarfs as module

    config = DwarfsConfig(n_dwarfs=1, n_stars=50, highres_particle_mass_msun=1e5, n_lowres=100)

    def crash(*args, **kwargs):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(module, "assemble_chunk_file", crash)
    with pytest.raises(RuntimeError, match="interrupted"):
        module.build_dwarfs(config, tmp_path / "sim", progress=False)
    monkeypatch.undo()
    monkeypatch.setattr(module, "generate_dwarf", crash)  # a finished dwarf is not redone
    (dwarf,) = module.build_dwarfs(config, tmp_path / "sim", progress=False)
    assert (tmp_path / "sim" / "truth.parquet").exists()
    assert not (tmp_path / "sim" / ".darkstack-fragments").exists()
    with pytest.raises(FileExistsError):
        module.build_dwarfs(DwarfsConfig(n_dwarfs=2), tmp_path / "sim", progress=False)
    assert dwarf.anisotropy_radius_kpc > 0


def test_small_preset_meets_the_fit_window_particle_floor():
    """Issue 19: >= 7,000 DM particles in every ``dwarfs-small`` dwarf's slope-fit window (the
    ingest's), all of them high resolution, and <= 2e8 particles in all."""
    config = DwarfsConfig(**DWARF_PRESETS["small"])
    window_kpc = DwarfIngestConfig().fit_window_kpc
    assert window_kpc[1] <= config.highres_radius_kpc
    dwarfs = draw_dwarfs(config)
    in_window = (
        np.array([float(np.diff(d.halo.enclosed_mass_msun(window_kpc))[0]) for d in dwarfs])
        / config.highres_particle_mass_msun
    )
    n_total = sum(d.n_highres for d in dwarfs) + len(dwarfs) * (config.n_lowres + config.n_stars)
    # Expected counts, 3 Poisson sigma above the floor (the drawn counts were >= 7,731).
    assert in_window.min() >= 7_000 + 3.0 * np.sqrt(7_000)
    assert n_total <= 2.0e8
