"""HI cubes and moment maps: flux, kinematics, orientation, mask, noise and the numba cache."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from dataclasses import replace

import numpy as np
import pytest
from astropy import constants, units
from astropy.io import fits
from astropy.wcs import WCS

from darkstack.features.hi import (
    HI_MASS_MSUN_PER_JY_KMS_MPC2,
    HIConfig,
    MomentMaps,
    configure_numba_cache,
    emission_mask,
    emission_moments,
    hi_cube,
    hi_moment_maps,
    kernel_fwhm_per_support,
    masked_moments,
    robust_rms,
    write_cube_fits,
)

DISTANCE_MPC = 12.0
DISK_HI_MSUN = 2.0e9
V_CIRC_KMS = 120.0
INCLINATION_DEG = 60.0
NOISE_FREE = HIConfig(noise=False)


def _disk(
    *,
    n: int = 20_000,
    hi_mass_msun: float = DISK_HI_MSUN,
    scale_length_kpc: float = 2.0,
    v_circ_kms: float = V_CIRC_KMS,
    inclination_deg: float = INCLINATION_DEG,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """An exponential disk with a flat rotation curve, major axis along x, approaching at +x.

    Gas on the +x side moves towards -y; tilting the disk about the x axis keeps x as the major
    axis and turns that motion towards the observer (v_z < 0).
    """
    rng = np.random.default_rng(seed)
    # r e^(-r/h) is the radial distribution of an exponential disk's mass; stay inside the field.
    radius = np.minimum(rng.gamma(2.0, scale_length_kpc, n), 7.5 * scale_length_kpc)
    phi = rng.uniform(0.0, 2.0 * np.pi, n)
    face_on = np.stack([radius * np.cos(phi), radius * np.sin(phi), rng.normal(0, 0.2, n)], 1)
    velocity = np.stack([v_circ_kms * np.sin(phi), -v_circ_kms * np.cos(phi), np.zeros(n)], 1)
    i = np.radians(inclination_deg)
    tilt = np.array([[1, 0, 0], [0, np.cos(i), -np.sin(i)], [0, np.sin(i), np.cos(i)]])
    return {
        "position_kpc": face_on @ tilt.T,
        "velocity_kms": velocity @ tilt.T,
        "hi_mass_msun": np.full(n, hi_mass_msun / n),
        "temperature_k": np.full(n, 8.0e3),
        "smoothing_length_kpc": np.full(n, 1.0),
        "mass_msun": np.full(n, 2.0 * hi_mass_msun / n),
    }


def _no_gas() -> dict[str, np.ndarray]:
    empty = np.zeros(0)
    return {
        "position_kpc": np.zeros((0, 3)),
        "velocity_kms": np.zeros((0, 3)),
        "hi_mass_msun": empty,
        "temperature_k": empty,
        "smoothing_length_kpc": empty,
        "mass_msun": empty,
    }


def _pixel_offset(kpc: float) -> float:
    """Sky offset in kpc at DISTANCE_MPC -> pixels from the field centre."""
    arcsec = np.degrees(kpc / (DISTANCE_MPC * 1e3)) * 3600.0
    return arcsec / NOISE_FREE.pixel_size_arcsec


@pytest.fixture(scope="module")
def disk_cube() -> tuple[np.ndarray, np.ndarray]:
    return hi_cube(_disk(), distance_mpc=DISTANCE_MPC, config=NOISE_FREE, seed=0)


def _loop_moments(
    cube: np.ndarray, velocities: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_channels, ny, nx = cube.shape
    width = abs(velocities[1] - velocities[0])
    mom0, mom1, mom2 = np.zeros((ny, nx)), np.zeros((ny, nx)), np.zeros((ny, nx))
    for iy in range(ny):
        for ix in range(nx):
            kept = [k for k in range(n_channels) if cube[k, iy, ix] >= threshold]
            total = sum(cube[k, iy, ix] for k in kept)
            if total <= 0:
                continue
            mean = sum(cube[k, iy, ix] * velocities[k] for k in kept) / total
            variance = sum(cube[k, iy, ix] * (velocities[k] - mean) ** 2 for k in kept) / total
            mom0[iy, ix], mom1[iy, ix], mom2[iy, ix] = total * width, mean, np.sqrt(variance)
    return mom0, mom1, mom2


def test_cube_shape_and_channels(disk_cube: tuple[np.ndarray, np.ndarray]) -> None:
    cube, velocities = disk_cube
    config = NOISE_FREE
    assert cube.shape == (config.n_channels, config.n_pixels, config.n_pixels)
    assert cube.dtype == np.float32
    np.testing.assert_allclose(velocities, config.channel_velocities_kms, atol=1e-6)
    half_span_kms = 0.5 * (config.n_channels - 1) * config.channel_width_kms
    assert velocities[0] == pytest.approx(-half_span_kms) and velocities[-1] == pytest.approx(
        half_span_kms
    )


def test_moment0_flux_is_the_hi_mass(disk_cube: tuple[np.ndarray, np.ndarray]) -> None:
    cube, velocities = disk_cube
    mom0, _, _ = masked_moments(cube, velocities)
    flux_jy_kms = mom0.sum() / NOISE_FREE.beam_area_pixels
    expected = DISK_HI_MSUN / (HI_MASS_MSUN_PER_JY_KMS_MPC2 * DISTANCE_MPC**2)
    assert flux_jy_kms == pytest.approx(expected, rel=0.05)
    # The column-density mask only drops flux, and not most of it for this bright disk.
    masked, _, _ = masked_moments(cube, velocities, mask=emission_mask(cube, config=NOISE_FREE))
    assert 0.6 * expected < masked.sum() / NOISE_FREE.beam_area_pixels < flux_jy_kms


def test_moment1_shows_projected_rotation(disk_cube: tuple[np.ndarray, np.ndarray]) -> None:
    cube, velocities = disk_cube
    mom0, mom1, _ = masked_moments(cube, velocities, mask=emission_mask(cube, config=NOISE_FREE))
    centre = NOISE_FREE.n_pixels // 2
    major_axis = mom1[centre - 1 : centre + 1][mom0[centre - 1 : centre + 1] > 0]
    projected = V_CIRC_KMS * np.sin(np.radians(INCLINATION_DEG))
    assert np.percentile(np.abs(major_axis), 90) == pytest.approx(projected, rel=0.10)


def test_orientation_matches_the_image_convention(
    disk_cube: tuple[np.ndarray, np.ndarray],
) -> None:
    cube, velocities = disk_cube
    mom0, mom1, _ = masked_moments(cube, velocities, mask=emission_mask(cube, config=NOISE_FREE))
    rows, columns = np.mgrid[: mom0.shape[0], : mom0.shape[1]]
    weight = mom0 / mom0.sum()
    spread_x = np.sqrt((weight * (columns - (weight * columns).sum()) ** 2).sum())
    spread_y = np.sqrt((weight * (rows - (weight * rows).sum()) ** 2).sum())
    assert spread_x > 1.5 * spread_y  # cos(60 deg) = 0.5 squeezes y
    centre = NOISE_FREE.n_pixels // 2
    offset = round(_pixel_offset(4.0))
    major = mom1[centre - 1 : centre + 1]
    assert np.all(major[:, centre + offset] < -50.0)  # +x approaches
    assert np.all(major[:, centre - 1 - offset] > 50.0)


def test_both_sky_axes_and_velocity_sign_with_a_clump() -> None:
    """A clump at (x, y) = (+5, +9) kpc receding at 80 km/s lands at large column and row."""
    n = 200
    rng = np.random.default_rng(1)
    gas = {
        "position_kpc": np.array([5.0, 9.0, 0.0]) + rng.normal(0.0, 0.2, (n, 3)),
        "velocity_kms": np.tile([0.0, 0.0, 80.0], (n, 1)),
        "hi_mass_msun": np.full(n, 1e8 / n),
        "temperature_k": np.full(n, 5e3),
        "smoothing_length_kpc": np.full(n, 0.8),
    }
    cube, velocities = hi_cube(gas, distance_mpc=DISTANCE_MPC, config=NOISE_FREE, seed=0)
    mom0, mom1, _ = masked_moments(cube, velocities)
    iy, ix = np.unravel_index(np.argmax(mom0), mom0.shape)
    centre = 0.5 * (NOISE_FREE.n_pixels - 1)
    assert ix - centre == pytest.approx(_pixel_offset(5.0), abs=1.0)
    assert iy - centre == pytest.approx(_pixel_offset(9.0), abs=1.0)
    assert mom1[iy, ix] == pytest.approx(80.0, abs=1.0)


def test_moments_match_a_loop_implementation() -> None:
    rng = np.random.default_rng(7)
    velocities = np.linspace(60.0, -60.0, 25)  # descending, as MARTINI's channels are
    cube = rng.normal(0.0, 1.0, (25, 9, 11))
    cube[:, 2:6, 3:8] += 4.0 * np.exp(-0.5 * ((velocities[:, None, None] - 10.0) / 15.0) ** 2)
    threshold = 2.5
    mom0, mom1, mom2 = masked_moments(cube, velocities, mask=cube >= threshold)
    expected = _loop_moments(cube, velocities, threshold)
    assert (expected[0] == 0).any() and (expected[0] > 0).any()  # both sides of the mask
    for got, want in zip((mom0, mom1, mom2), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert all(np.isfinite(m).all() for m in (mom0, mom1, mom2))


def test_one_pass_gives_the_moments_over_the_final_mask() -> None:
    """emission_moments's single pass equals summing again over its own (column-cut) mask."""
    config = HIConfig(
        n_pixels=24, n_channels=32, field_of_view_arcmin=4.0, column_density_threshold_log_cm2=21.0
    )
    rng = np.random.default_rng(3)
    velocities = config.channel_velocities_kms
    cube = rng.normal(0.0, config.noise_jy_per_beam, (32, 24, 24))
    rows, columns = np.mgrid[:24, :24]
    # A bright blob and a faint one: the faint one's pixels fall below the column density.
    for centre, peak in (((8, 8), 40.0), ((17, 16), 3.0)):
        spatial = np.exp(-0.5 * ((rows - centre[0]) ** 2 + (columns - centre[1]) ** 2) / 4.0)
        line = np.exp(-0.5 * ((velocities - 20.0) / 25.0) ** 2)
        cube += peak * config.noise_jy_per_beam * line[:, None, None] * spatial[None]
    mask, *moments = emission_moments(cube, velocities, config=config)
    two_pass = masked_moments(cube, velocities, mask=mask)
    for once, twice in zip(moments, two_pass, strict=True):
        np.testing.assert_array_equal(once, twice)
    # The column-density cut dropped some pixels with candidate voxels, and kept others.
    candidates = emission_moments(
        cube, velocities, config=replace(config, column_density_threshold_log_cm2=0.0)
    )[0]
    assert mask.any(axis=0).sum() < candidates.any(axis=0).sum()
    assert mask.any()
    np.testing.assert_array_equal(emission_mask(cube, config=config), mask)


def test_robust_rms_is_the_normal_scaled_median_absolute_deviation() -> None:
    values = np.array([1.0, 2.0, 3.0, 4.0, 100.0])
    # median 3, |x - 3| = 2, 1, 0, 1, 97 -> median 1; times 1 / Phi^-1(0.75) = 1.482602.
    assert robust_rms(values) == pytest.approx(1.482602218505602, rel=1e-12)
    sample = np.random.default_rng(11).normal(5.0, 2.5, 400_000)
    sample[:2_000] = 1e6  # half a percent of sources barely moves it
    assert robust_rms(sample) == pytest.approx(2.5, rel=0.01)


def test_masked_moments_rejects_bad_input() -> None:
    cube = np.ones((4, 2, 2))
    with pytest.raises(ValueError, match="evenly spaced"):
        masked_moments(cube, [0.0, 1.0, 3.0, 4.0])
    with pytest.raises(ValueError, match=r"mask must have the cube's shape \(4, 2, 2\)"):
        masked_moments(cube, [0.0, 1.0, 2.0, 3.0], mask=np.ones((4, 2, 3), dtype=bool))
    with pytest.raises(ValueError, match="n_channels"):
        masked_moments(cube, [0.0, 1.0])


def test_mask_threshold_is_the_column_density() -> None:
    config = HIConfig()
    # Independently of the 1.104e24 constant: the HI mass in one beam over the beam's area.
    threshold = config.column_density_threshold_jy_per_beam_kms * units.Jy * units.km / units.s
    hi_mass_per_beam_per_d2 = (
        HI_MASS_MSUN_PER_JY_KMS_MPC2
        * units.Msun
        / units.Mpc**2
        * threshold
        / (units.Jy * units.km / units.s)
    )
    beam_sr = (config.beam_area_arcsec2 * units.arcsec**2).to(units.sr).value
    column = hi_mass_per_beam_per_d2 / (1.00783 * constants.u * beam_sr)
    assert column.to_value(units.cm**-2) == pytest.approx(10**19.5, rel=0.01)
    # The paper's 5e-6 Jy/arcsec^2 noise in Jy per 10 arcsec beam.
    assert config.noise_jy_per_beam == pytest.approx(5e-6 * config.beam_area_arcsec2, rel=1e-3)
    assert config.beam_area_arcsec2 == pytest.approx(1.1331 * 10.0**2, rel=1e-4)


def _runs_cube(config: HIConfig) -> np.ndarray:
    """Pixel (0, j) holds a run of j + 1 unit channels; pixel (1, 0) a run of 3 at the band edge."""
    cube = np.zeros((config.n_channels, config.n_pixels, config.n_pixels))
    for length in range(1, 6):
        cube[10 : 10 + length, 0, length - 1] = 1.0
    cube[:3, 1, 0] = 1.0
    return cube


@pytest.mark.parametrize("min_channels", [1, 2, 3, 4])
def test_mask_keeps_runs_of_at_least_min_channels(min_channels: int) -> None:
    config = HIConfig(
        noise=False,
        n_pixels=8,
        n_channels=20,
        mask_smoothing_fwhm_arcsec=0.0,
        mask_min_channels=min_channels,
        column_density_threshold_log_cm2=0.0,
    )
    cube = _runs_cube(config)
    mask = emission_mask(cube, config=config)
    lengths = (cube > 0).sum(axis=0)
    expected = (cube > 0) & (lengths >= min_channels)[None]
    np.testing.assert_array_equal(mask, expected)


def test_mask_drops_pixels_below_the_column_density() -> None:
    config = HIConfig(noise=False, n_pixels=8, n_channels=20, mask_smoothing_fwhm_arcsec=0.0)
    cube = np.zeros((20, 8, 8))
    threshold_jy_per_beam = config.column_density_threshold_jy_per_beam_kms / (
        3 * config.channel_width_kms
    )
    cube[5:8, 2, 2] = 1.01 * threshold_jy_per_beam
    cube[5:8, 4, 4] = 0.99 * threshold_jy_per_beam
    mom0, _, _ = masked_moments(
        cube, config.channel_velocities_kms, mask=emission_mask(cube, config=config)
    )
    assert mom0[2, 2] == pytest.approx(1.01 * config.column_density_threshold_jy_per_beam_kms)
    assert (mom0 > 0).sum() == 1


def test_mask_of_noise_alone_is_nearly_empty() -> None:
    config = HIConfig()
    cube, velocities = hi_cube(_no_gas(), distance_mpc=DISTANCE_MPC, config=config, seed=5)
    mom0, _, _ = masked_moments(cube, velocities, mask=emission_mask(cube, config=config))
    assert (mom0 > 0).sum() <= 5
    looser = replace(config, mask_noise_sigma=1.5)
    looser_mask = emission_mask(cube, config=looser)
    assert (masked_moments(cube, velocities, mask=looser_mask)[0] > 0).sum() > 5


def test_smoothed_mask_reaches_the_outer_disk() -> None:
    """Smoothing finds the faint outer disk that a clip of the cube itself misses."""
    config = HIConfig()
    disk = _disk(n=20_000, hi_mass_msun=1e9, scale_length_kpc=3.0)
    cube, velocities = hi_cube(disk, distance_mpc=DISTANCE_MPC, config=config, seed=2)
    smoothed = emission_mask(cube, config=config)
    unsmoothed = emission_mask(
        cube, config=replace(config, mask_smoothing_fwhm_arcsec=0.0, mask_noise_sigma=5.0)
    )
    mom0, mom1, _ = masked_moments(cube, velocities, mask=smoothed)
    assert (mom0 > 0).sum() > 2 * (masked_moments(cube, velocities, mask=unsmoothed)[0] > 0).sum()
    # The outer major axis still rotates at the projected circular velocity.
    centre = config.n_pixels // 2
    columns = np.arange(config.n_pixels) - centre
    outer = (np.abs(columns) > _pixel_offset(8.0)) & (mom0[centre] > 0)
    assert outer.sum() >= 4
    projected = V_CIRC_KMS * np.sin(np.radians(INCLINATION_DEG))
    np.testing.assert_allclose(np.abs(mom1[centre][outer]), projected, rtol=0.15)


def test_emission_mask_rejects_a_cube_of_another_grid() -> None:
    with pytest.raises(ValueError, match=r"config's shape \(128, 128, 128\)"):
        emission_mask(np.zeros((64, 128, 128)), config=HIConfig())


def test_noise_rms_of_a_source_free_cube() -> None:
    config = HIConfig()
    cube, _ = hi_cube(_no_gas(), distance_mpc=DISTANCE_MPC, config=config, seed=3)
    assert np.std(cube) == pytest.approx(config.noise_jy_per_beam, rel=0.05)
    assert abs(np.mean(cube)) < 0.01 * config.noise_jy_per_beam
    again, _ = hi_cube(_no_gas(), distance_mpc=DISTANCE_MPC, config=config, seed=3)
    np.testing.assert_array_equal(cube, again)


def test_noisy_maps_are_clean_outside_the_galaxy() -> None:
    config = HIConfig()
    maps = hi_moment_maps(
        _disk(n=5000), distance_mpc=DISTANCE_MPC, config=config, seed=11, keep_cube=True
    )
    for image in (maps.mom0, maps.mom1, maps.mom2):
        assert image.dtype == np.float32 and image.shape == (128, 128)
        assert np.isfinite(image).all()
    inside = maps.mom0 > 0
    assert (maps.mom1[~inside] == 0).all() and (maps.mom2[~inside] == 0).all()
    rows, columns = np.mgrid[:128, :128]
    far = np.hypot(rows - 63.5, columns - 63.5) > _pixel_offset(16.0)
    assert inside[~far].sum() > 50 and inside[far].sum() <= 2
    assert maps.cube is not None and maps.cube.shape == (config.n_channels, 128, 128)


def test_cube_fits_carries_units_and_wcs(tmp_path, disk_cube) -> None:
    cube, velocities = disk_cube
    path = write_cube_fits(
        tmp_path / "cubes" / "galaxy.fits", cube, distance_mpc=DISTANCE_MPC, config=NOISE_FREE
    )
    with fits.open(path) as hdul:
        header, data = hdul[0].header, hdul[0].data
    np.testing.assert_array_equal(data, cube)
    assert header["BUNIT"] == "Jy/beam"
    assert header["BMAJ"] == pytest.approx(10.0 / 3600.0)
    wcs = WCS(header)
    sky_low = wcs.celestial.pixel_to_world(0, 0)
    sky_high = wcs.celestial.pixel_to_world(127, 127)
    assert sky_high.ra.wrap_at("180d") > sky_low.ra.wrap_at("180d")  # columns run east (+x)
    assert sky_high.dec > sky_low.dec  # rows run north (+y)
    channel_kms = wcs.spectral.pixel_to_world(np.arange(cube.shape[0])).to_value("km/s")
    np.testing.assert_allclose(channel_kms, velocities, atol=1e-6)
    flat = np.zeros((128, 128), dtype=np.float32)
    kept = MomentMaps(mom0=flat, mom1=flat, mom2=flat, velocities_kms=velocities, cube=cube)
    again = write_cube_fits(
        tmp_path / "kept.fits", kept, distance_mpc=DISTANCE_MPC, config=NOISE_FREE
    )
    np.testing.assert_array_equal(fits.getdata(again), cube)
    with pytest.raises(ValueError, match="keep_cube"):
        write_cube_fits(
            tmp_path / "x.fits", replace(kept, cube=None), distance_mpc=12.0, config=NOISE_FREE
        )


def test_kernel_fwhm_per_support() -> None:
    # The cubic spline 1 - 6q^2 + 6q^3 (support q = 1) falls to 1/2 at q = 0.36118.
    assert kernel_fwhm_per_support("cubic_spline") == pytest.approx(2 * 0.361176, rel=1e-5)
    with pytest.raises(ValueError, match="kernel"):
        replace(NOISE_FREE, kernel="gaussian")


def test_configure_numba_cache_sets_the_environment(tmp_path, monkeypatch) -> None:
    from numba.core import config as numba_config

    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    target = tmp_path / "numba"
    try:
        with warnings.catch_warnings():
            # MARTINI may already be imported by the tests above; that warning is expected.
            warnings.simplefilter("ignore", RuntimeWarning)
            cache_dir = configure_numba_cache(target)
        assert cache_dir == target.resolve() and cache_dir.is_dir()
        assert os.environ["NUMBA_CACHE_DIR"] == str(cache_dir)
        assert vars(numba_config)["CACHE_DIR"] == str(cache_dir)  # set at runtime, untyped
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert configure_numba_cache(target) == cache_dir  # same path: a silent no-op
    finally:
        monkeypatch.undo()
        numba_config.reload_config()


@pytest.mark.slow  # a fresh interpreter compiles MARTINI's kernels: 30-75 s on 2 cores
def test_configured_cache_reaches_martini_kernels(tmp_path) -> None:
    """In a fresh process, as on a worker: configure first, then MARTINI caches there."""
    script = (
        "import sys, warnings\n"
        "warnings.simplefilter('error', RuntimeWarning)\n"
        "from darkstack.features.hi import configure_numba_cache\n"
        "cache = configure_numba_cache(sys.argv[1])\n"
        "import martini.spectral_models as spectral\n"
        "print(spectral._gaussian_numba_kernel.stats.cache_path.startswith(str(cache)))\n"
    )
    environment = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "cache")],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=True,
    )
    assert result.stdout.strip() == "True"
