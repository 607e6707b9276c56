"""The rotation-curve baseline: velocity fields, geometry, rings, disk fit, mass model, store."""

from __future__ import annotations

import dataclasses
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from darkstack.constants import G_KPC_KMS2_PER_MSUN
from darkstack.evaluate.profiles.rotation_curve import (
    SOLAR_ABSOLUTE_MAGNITUDE_G_AB,
    DiskGeometry,
    ExponentialDisk,
    GalaxyFitError,
    RotationCurve,
    RotationCurveConfig,
    central_region,
    estimate_geometry,
    fit_exponential_disk,
    fit_mass_model,
    freeman_disk_velocity_kms,
    nfw_enclosed_mass_msun,
    nfw_r200_kpc,
    nfw_velocity_kms,
    peak_velocity_map,
    regenerate_view,
    require_stored_moment0,
    ring_rotation_curve,
    rotation_curve_masses,
    true_geometry,
)
from darkstack.features.hi import HIConfig, emission_mask, hi_cube, masked_moments
from darkstack.features.observe import ObserveConfig, run_observe
from darkstack.features.photometry import PhotometryConfig
from darkstack.store import StoreLayout

H = 0.6774
GEOMETRY = DiskGeometry(position_angle_deg=30.0, inclination_deg=60.0)


def _rotation_kms(radius_kpc: np.ndarray) -> np.ndarray:
    return 180.0 * (1.0 - np.exp(-radius_kpc / 2.0))


def _analytic_cube(
    geometry: DiskGeometry, *, n: int = 96, pixel_kpc: float = 0.4
) -> tuple[np.ndarray, np.ndarray]:
    """A thin exponential disk rotating with :func:`_rotation_kms`, no beam, 8 km/s lines."""
    centres = (np.arange(n) - 0.5 * n + 0.5) * pixel_kpc
    y, x = np.meshgrid(centres, centres, indexing="ij")
    phi, inc = np.radians(geometry.position_angle_deg), np.radians(geometry.inclination_deg)
    along = x * np.cos(phi) + y * np.sin(phi)
    across = (-x * np.sin(phi) + y * np.cos(phi)) / np.cos(inc)
    radius = np.hypot(along, across)
    v_los = _rotation_kms(radius) * np.sin(inc) * along / np.maximum(radius, 1e-9)
    velocities = (np.arange(100) - 49.5) * 5.0
    surface = np.exp(-radius / 4.0)
    cube = surface * np.exp(-0.5 * ((velocities[:, None, None] - v_los) / 8.0) ** 2)
    return cube, velocities


def test_peak_velocity_map_finds_line_centres_between_channels() -> None:
    velocities = np.arange(-20.0, 21.0) * 5.0
    centres = np.array([[12.3, -47.9], [0.0, 104.0]])
    cube = np.exp(-0.5 * ((velocities[:, None, None] - centres) / 8.0) ** 2)
    cube[:, 1, 0] *= 0.01
    # A spike brighter than the line, outside the mask, must not be taken for the peak.
    cube[0, 0, 0] = 5.0
    mask = cube >= 0.1
    mask[0, 0, 0] = False
    got = peak_velocity_map(cube=cube, velocities_kms=velocities, mask=mask)
    np.testing.assert_allclose(got[0], centres[0], atol=0.5)
    assert np.isnan(got[1, 0])
    # A line beyond the band peaks in the last channel and is not extrapolated.
    assert got[1, 1] == velocities[-1]
    assert peak_velocity_map(cube=cube, velocities_kms=velocities)[0, 0] == velocities[0]
    # The faint line of pixel (1, 0) is in the mask but below the peak threshold.
    faint = peak_velocity_map(
        cube=cube, velocities_kms=velocities, mask=cube > 0, min_peak_jy_per_beam=0.1
    )
    assert np.isnan(faint[1, 0]) and np.isfinite(faint[0]).all()
    with pytest.raises(ValueError, match="ascending"):
        peak_velocity_map(cube=cube, velocities_kms=velocities[::-1], mask=mask)
    with pytest.raises(ValueError, match="mask must have the cube's shape"):
        peak_velocity_map(cube=cube, velocities_kms=velocities, mask=mask[:, :1])


def test_analytic_cube_gives_back_the_rotation_curve() -> None:
    cube, velocities = _analytic_cube(GEOMETRY)
    velocity = peak_velocity_map(cube=cube, velocities_kms=velocities, mask=cube >= 1e-3)
    curve = ring_rotation_curve(
        velocity_map_kms=velocity,
        geometry=GEOMETRY,
        pixel_kpc=0.4,
        ring_width_kpc=1.0,
        wedge_half_angle_deg=60.0,
        min_pixels_per_ring=4,
        beam_area_pixels=1.0,
    )
    outer = curve.radius_kpc > 1.5
    assert outer.sum() >= 10
    truth = _rotation_kms(curve.radius_kpc[outer])
    np.testing.assert_allclose(curve.v_rot_kms[outer], truth, rtol=0.03)
    assert np.all(curve.v_err_kms[outer] < 0.03 * truth)


def test_geometry_is_estimated_from_the_maps() -> None:
    geometry = DiskGeometry(position_angle_deg=200.0, inclination_deg=50.0)
    cube, velocities = _analytic_cube(geometry, n=128, pixel_kpc=0.5)
    mask = cube >= 1e-3
    mom0, _, _ = masked_moments(cube, velocities, mask=mask)
    velocity = peak_velocity_map(cube=cube, velocities_kms=velocities, mask=mask)
    got = estimate_geometry(
        mom0=mom0,
        velocity_map_kms=velocity,
        pixel_kpc=0.5,
        beam_fwhm_kpc=0.0,
        intrinsic_axis_ratio=0.0,
    )
    assert got.position_angle_deg == pytest.approx(200.0, abs=2.0)
    assert got.inclination_deg == pytest.approx(50.0, abs=2.0)


def _particle_disk(*, inclination_deg: float, n: int = 20_000) -> dict[str, np.ndarray]:
    """tests/features/test_hi.py's disk: major axis along x, approaching (v_z < 0) at +x."""
    rng = np.random.default_rng(0)
    radius = np.minimum(rng.gamma(2.0, 2.0, n), 15.0)
    phi = rng.uniform(0.0, 2.0 * np.pi, n)
    face_on = np.stack([radius * np.cos(phi), radius * np.sin(phi), rng.normal(0, 0.1, n)], 1)
    velocity = np.stack([120.0 * np.sin(phi), -120.0 * np.cos(phi), np.zeros(n)], 1)
    i = np.radians(inclination_deg)
    tilt = np.array([[1, 0, 0], [0, np.cos(i), -np.sin(i)], [0, np.sin(i), np.cos(i)]])
    return {
        "position_kpc": face_on @ tilt.T,
        "velocity_kms": velocity @ tilt.T,
        "hi_mass_msun": np.full(n, 2e9 / n),
        "temperature_k": np.full(n, 8.0e3),
        "smoothing_length_kpc": np.full(n, 1.0),
    }


def test_rebuilt_moment0_must_match_the_store() -> None:
    stored = np.zeros((8, 8))
    stored[2:6, 2:6] = 1.5
    require_stored_moment0(rebuilt=stored * (1.0 + 1e-6), stored=stored)
    other_mask = stored.copy()
    other_mask[2, 2] = 0.0
    for rebuilt in (other_mask, 8.0 * stored, stored[:4]):
        with pytest.raises(GalaxyFitError, match="observe it again"):
            require_stored_moment0(rebuilt=rebuilt, stored=stored)


def test_true_geometry_follows_the_angular_momentum() -> None:
    disk = _particle_disk(inclination_deg=60.0, n=2000)
    got = true_geometry(disk)
    # The receding side is -x.
    assert got.position_angle_deg == pytest.approx(180.0, abs=1.0)
    assert got.inclination_deg == pytest.approx(60.0, abs=1.0)
    quarter = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    turned = {**disk, "position_kpc": disk["position_kpc"] @ quarter.T}
    turned["velocity_kms"] = disk["velocity_kms"] @ quarter.T
    assert true_geometry(turned).position_angle_deg == pytest.approx(270.0, abs=1.0)


def test_martini_cube_of_a_flat_rotation_curve() -> None:
    """MARTINI's frame and ours agree: geometry and V_rot come back from a mock cube."""
    disk = _particle_disk(inclination_deg=60.0)
    config = HIConfig(noise=False, n_pixels=64, field_of_view_arcmin=8.0, n_channels=80)
    cube, velocities = hi_cube(disk, distance_mpc=12.0, config=config, seed=0)
    mask = emission_mask(cube, config=config)
    mom0, _, _ = masked_moments(cube, velocities, mask=mask)
    velocity = peak_velocity_map(cube=cube, velocities_kms=velocities, mask=mask)
    region = central_region((mom0 > 0) & np.isfinite(velocity))
    pixel_kpc = config.pixel_size_arcsec / 206264.806 * 12e3
    beam_kpc = config.beam_fwhm_arcsec / 206264.806 * 12e3
    geometry = estimate_geometry(
        mom0=np.where(region, mom0, 0.0),
        velocity_map_kms=np.where(region, velocity, np.nan),
        pixel_kpc=pixel_kpc,
        beam_fwhm_kpc=beam_kpc,
        intrinsic_axis_ratio=0.0,
    )
    assert geometry.position_angle_deg == pytest.approx(180.0, abs=3.0)
    assert geometry.inclination_deg == pytest.approx(60.0, abs=6.0)
    curve = ring_rotation_curve(
        velocity_map_kms=np.where(region, velocity, np.nan),
        geometry=true_geometry(disk),
        pixel_kpc=pixel_kpc,
        ring_width_kpc=beam_kpc,
        wedge_half_angle_deg=60.0,
        min_pixels_per_ring=4,
        beam_area_pixels=config.beam_area_pixels,
    )
    # Beyond ~2.5 kpc the smearing by the beam (0.6 kpc) and the cells' kernels (1 kpc) no
    # longer distorts the flat 120 km/s.
    outer = (curve.radius_kpc > 2.5) & (curve.radius_kpc < 10.0)
    assert outer.sum() >= 5
    np.testing.assert_allclose(curve.v_rot_kms[outer], 120.0, rtol=0.05)


def test_central_region_drops_detached_emission() -> None:
    mask = np.zeros((10, 10), dtype=bool)
    mask[3:7, 3:7] = True
    mask[0:2, 8:10] = True
    assert central_region(mask).sum() == 16
    assert not central_region(mask)[0, 9]
    mask[3:7, 3:7] = False
    assert not central_region(mask).any()


def test_central_region_keeps_a_ring_around_a_central_hole() -> None:
    y, x = np.mgrid[:20, :20] - 9.5
    radius = np.hypot(x, y)
    ring = (radius > 3) & (radius < 7)
    mask = ring.copy()
    mask[0:2, 17:20] = True  # detached
    assert np.array_equal(central_region(mask), ring)
    # An arc that does not close around the centre neither covers nor encloses it.
    arc = ring & (x > 0)
    assert not central_region(arc).any()


def _exponential_image(
    *, scale_length_kpc: float, central_nmgy: float, pixel_kpc: float, noise: float, n: int = 128
) -> np.ndarray:
    centres = (np.arange(n) - 0.5 * n + 0.5) * pixel_kpc
    y, x = np.meshgrid(centres, centres, indexing="ij")
    phi, inc = np.radians(GEOMETRY.position_angle_deg), np.radians(GEOMETRY.inclination_deg)
    along = x * np.cos(phi) + y * np.sin(phi)
    across = (-x * np.sin(phi) + y * np.cos(phi)) / np.cos(inc)
    image = central_nmgy * np.exp(-np.hypot(along, across) / scale_length_kpc)
    return image + noise * np.random.default_rng(1).standard_normal(image.shape)


def test_exponential_disk_scale_length_and_luminosity() -> None:
    image = _exponential_image(scale_length_kpc=2.5, central_nmgy=50.0, pixel_kpc=0.5, noise=0.2)
    disk = fit_exponential_disk(
        image_nmgy=image,
        geometry=GEOMETRY,
        pixel_kpc=0.5,
        distance_mpc=15.0,
        min_radius_kpc=1.0,
        min_snr=3.0,
        noise_nmgy_per_pixel=0.2,
    )
    assert disk.scale_length_kpc == pytest.approx(2.5, rel=0.03)
    # The whole disk is in the field: its luminosity is the image's total flux at 15 Mpc.
    magnitude = 22.5 - 2.5 * np.log10(image.sum()) - 5.0 * np.log10(15e5)
    expected = 10 ** (-0.4 * (magnitude - SOLAR_ABSOLUTE_MAGNITUDE_G_AB))
    assert disk.luminosity_lsun == pytest.approx(expected, rel=0.05)


def test_noise_alone_is_no_disk() -> None:
    image = _exponential_image(scale_length_kpc=2.5, central_nmgy=0.0, pixel_kpc=0.5, noise=0.2)
    with pytest.raises(GalaxyFitError, match="no exponential disk"):
        fit_exponential_disk(
            image_nmgy=image,
            geometry=GEOMETRY,
            pixel_kpc=0.5,
            distance_mpc=15.0,
            min_radius_kpc=1.0,
            min_snr=3.0,
            noise_nmgy_per_pixel=0.2,
        )


def test_freeman_disk_peak_and_keplerian_limit() -> None:
    radius = np.linspace(0.5, 8.0, 2000)
    v = freeman_disk_velocity_kms(r_kpc=radius, mass_msun=1e10, scale_length_kpc=2.0)
    assert radius[np.argmax(v)] == pytest.approx(2.15 * 2.0, abs=0.02)
    # Freeman (1970): V_max^2 = 0.3870 G M / R_d.
    assert v.max() ** 2 == pytest.approx(0.3870 * G_KPC_KMS2_PER_MSUN * 1e10 / 2.0, rel=1e-3)
    far = freeman_disk_velocity_kms(r_kpc=200.0, mass_msun=1e10, scale_length_kpc=2.0)
    assert far == pytest.approx(math.sqrt(G_KPC_KMS2_PER_MSUN * 1e10 / 200.0), rel=1e-3)


def test_nfw_halo_is_defined_by_200_critical_densities() -> None:
    r200 = nfw_r200_kpc(v200_kms=200.0, hubble_param=H)
    # R200 = V200 / (10 H0) with H0 = 0.1 h km/s/kpc.
    assert r200 == pytest.approx(200.0 / H, rel=1e-4)
    m200 = nfw_enclosed_mass_msun(r_kpc=r200, v200_kms=200.0, c200=8.0, hubble_param=H)
    assert m200 == pytest.approx(200.0**2 * r200 / G_KPC_KMS2_PER_MSUN)
    mean_density = m200 / (4.0 / 3.0 * math.pi * r200**3)
    assert mean_density == pytest.approx(200 * 277.536627 * H**2, rel=1e-6)
    assert nfw_velocity_kms(r_kpc=r200, v200_kms=200.0, c200=8.0, hubble_param=H) == (
        pytest.approx(200.0)
    )
    # Concentrated haloes hold more mass inside r_s-sized radii.
    inner = [
        nfw_enclosed_mass_msun(r_kpc=5.0, v200_kms=200.0, c200=c, hubble_param=H) for c in (5, 20)
    ]
    assert inner[1] > 2 * inner[0]


def test_mass_model_fit_recovers_the_enclosed_dark_matter() -> None:
    truth = {"v200": 160.0, "c200": 10.0, "upsilon": 2.0}
    disk = ExponentialDisk(scale_length_kpc=3.0, luminosity_lsun=1.5e10)
    radius = np.geomspace(1.0, 20.0, 16)
    v_halo = nfw_velocity_kms(
        r_kpc=radius, v200_kms=truth["v200"], c200=truth["c200"], hubble_param=H
    )
    v_disk = freeman_disk_velocity_kms(
        r_kpc=radius, mass_msun=truth["upsilon"] * 1.5e10, scale_length_kpc=3.0
    )
    v_rot = np.hypot(v_halo, v_disk)
    curve = RotationCurve(
        radius_kpc=radius,
        v_rot_kms=v_rot,
        v_err_kms=0.03 * v_rot,
        n_pixels=np.full(16, 20),
    )
    radii = np.geomspace(1.0, 100.0, 20)
    config = RotationCurveConfig(n_walkers=20, n_steps=800, n_burn=300, seed=2)
    posterior = fit_mass_model(
        curve=curve,
        disk=disk,
        distance_mpc=15.0,
        inclination_deg=60.0,
        radii_kpc=radii,
        config=config,
    )
    assert posterior.samples.shape == (20 * 500, 5)
    assert 0.15 < posterior.acceptance_fraction < 0.8
    p16, p50, p84 = posterior.log10_mdm_percentiles
    expected = np.log10(
        nfw_enclosed_mass_msun(
            r_kpc=radii, v200_kms=truth["v200"], c200=truth["c200"], hubble_param=H
        )
    )
    covered = radii <= 20.0
    assert np.all(p16 <= p50) and np.all(p50 <= p84)
    assert np.all(expected[covered] >= p16[covered]) and np.all(expected[covered] <= p84[covered])
    # With the paper's 10 per cent errors, V200 and C200 trade off: the mass is pinned down
    # (16-84 per cent range < 0.3 dex) only at the outer radii the curve covers, 10-20 kpc.
    assert np.all((p84 - p16)[(radii >= 10.0) & covered] < 0.3)
    assert np.all(np.abs(p50 - expected)[covered] < 0.2)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"n_walkers": 7}, "n_walkers=7; expected a value >= 10"),
        ({"n_walkers": 11}, "n_walkers=11; expected an even number"),
        ({"n_steps": 10, "n_burn": 10}, "n_burn=10; expected < n_steps=10"),
        ({"geometry": "guess"}, "geometry='guess'; expected one of ['estimated', 'known']"),
        ({"upsilon_range": (5.0, 1.0)}, "upsilon_range=(5.0, 1.0); expected items in increasing"),
        ({"c200_range": (0.0, 10.0)}, "c200_range=(0.0, 10.0); expected every item > 0"),
        (
            {"inclination_prior_sigma_deg": 0.0},
            "inclination_prior_sigma_deg=0; expected a value > 0",
        ),
        ({"min_pixels_per_ring": 2}, "min_pixels_per_ring=2; expected a value >= 3"),
        (
            {"min_inclination_deg": 50.0, "max_inclination_deg": 40.0},
            "max_inclination_deg=40; expected > min_inclination_deg=50",
        ),
    ],
)
def test_config_rejects_bad_settings(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        RotationCurveConfig(**change)  # type: ignore[arg-type]


def test_masses_refuse_a_store_without_observations(tmp_path: Path) -> None:
    with pytest.raises(
        FileNotFoundError, match=r"observations\.zarr does not exist: run `darkstack observe`"
    ):
        rotation_curve_masses(store=tmp_path, samples=[0], config=RotationCurveConfig())


PIXELS = 64
OBSERVE = ObserveConfig(
    n_realisations=1,
    photometry=PhotometryConfig(n_pixels=PIXELS, field_of_view_arcmin=6.0),
    hi=HIConfig(n_pixels=PIXELS, field_of_view_arcmin=6.0),
)


@pytest.fixture(scope="module")
def store(tiny_ingested_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny ingested store, observed."""
    store = tmp_path_factory.mktemp("rc") / "store"
    shutil.copytree(tiny_ingested_store, store)
    run_observe(OBSERVE, store=store, progress=False)
    return store


@pytest.mark.slow
def test_end_to_end_on_a_tiny_store(store: Path) -> None:
    dataset = xr.open_zarr(StoreLayout(store).zarr("observations"), consolidated=False)
    n_samples = dataset.sizes["sample"]
    view = regenerate_view(store=store, sample=0)
    stored = dataset["images"].values[0, 5:8]
    remade = masked_moments(
        view.cube_jy_per_beam,
        view.velocities_kms,
        mask=emission_mask(view.cube_jy_per_beam, config=view.observe_config.hi),
    )
    for mine, theirs in zip(remade, stored, strict=True):
        np.testing.assert_array_equal(mine.astype(np.float32), theirs)
    with pytest.raises(ValueError, match=r"not indices of observations\.zarr"):
        rotation_curve_masses(store=store, samples=[n_samples], config=RotationCurveConfig())

    victim = StoreLayout(store).cutout(int(dataset["subhalo_id"].values[-1]))
    victim.rename(victim.with_suffix(".moved"))
    config = RotationCurveConfig(n_walkers=16, n_steps=300, n_burn=100)
    try:
        table = rotation_curve_masses(store=store, samples=list(range(n_samples)), config=config)
    finally:
        victim.with_suffix(".moved").rename(victim)
    assert table["sample"].tolist() == list(range(n_samples))
    assert table["status"].iloc[-1].startswith("failed: FileNotFoundError")
    ok = table[table["status"] == "ok"]
    assert len(ok) >= 3
    galaxies = pd.read_parquet(StoreLayout(store).catalog("galaxies")).set_index("subhalo_id")
    for _, row in ok.iterrows():
        p16, p50, p84 = (np.array(row[f"log10_mdm_{k}"]) for k in ("p16", "median", "p84"))
        assert p50.shape == (20,) and np.isfinite(p50).all()
        assert np.all(p16 <= p50) and np.all(p50 <= p84)
        truth = np.array(galaxies.loc[row["subhalo_id"], "log10_mdm_enclosed"])
        # A baseline, not an oracle: within 1 dex of the truth at 10-30 kpc.
        assert np.all(np.abs((p50 - truth)[10:15]) < 1.0)
        assert abs(row["inclination_deg"] - row["inclination_true_deg"]) < 15.0
        assert len(row["rc_v_kms"]) >= config.min_rings
    failed = table[table["status"] != "ok"]
    assert failed["log10_mdm_median"].map(lambda v: np.isnan(v).all()).all()

    known = rotation_curve_masses(
        store=store, samples=[0], config=dataclasses.replace(config, geometry="known")
    ).iloc[0]
    assert known["inclination_deg"] == known["inclination_true_deg"]
    assert known["position_angle_deg"] == known["position_angle_true_deg"]
    assert known["inclination_true_deg"] == table["inclination_true_deg"].iloc[0]
