"""Mock VLA-like HI data cubes with MARTINI and their moment 0/1/2 maps.

de los Rios et al. (2023, §3.2) follow Oman et al. (2019, MNRAS 482, 821) and
observe each galaxy with MARTINI (Oman 2024, JOSS 9, 6860): 64 channels of 5 km/s, a Gaussian
beam of 10 arcsec FWHM truncated at 3 FWHM, Gaussian noise, the cubic spline kernel and thermal
line broadening, on the 128 x 128 pixel, 17.2 arcmin grid of the SDSS images. The cube is
reduced to the HI intensity, mean velocity and velocity dispersion maps, masked below an HI
column density of 10^19.5 cm^-2; they are 3 of the 8 CNN input channels.

Mask. THINGS (Walter et al. 2008, §3.4), whose channels, beam and noise the paper adopts, finds
its moment-map mask by smoothing and clipping: the cube is smoothed to 30 arcsec, and a voxel
is emission when the smoothed cube exceeds 2 of its own rms in at least 3 consecutive channels;
the moments are then taken over those voxels of the full-resolution cube. We clip at 2.5 rms,
since nobody cleans thousands of maps by eye (``HIConfig.mask_noise_sigma``). Smoothing is what
reaches the outer disk: the paper's noise (5.665e-4 Jy/beam per 5 km/s channel) is 3.1e19 cm^-2
for the 10 arcsec beam, so a clip of the unsmoothed cube at a safe 5 rms kept only the inner
~6 kpc of the HI disks of the small mock universe (12% of their HI), smoothing and clipping
~14 kpc (62%; medians of its 2,997 views, docs/observe.md). The paper's 10^19.5 cm^-2 (its
"0.2 Jy per beam" matches no reading of it) is a column density, so it is applied to each
pixel's moment 0: pixels below it are outside the mask.

Frames. The caller rotates the cutout into the observer frame: x and y span the sky, z points
away from the observer and a positive v_z recedes. That frame is right-handed like (east, north,
away) on the sky, so we read x as east and y as north. MARTINI projects along *its* x axis (its
y-z plane is the sky plane, its y axis points to increasing RA, its z axis to increasing Dec,
``martini.sources.sph_source.SPHSource``), so our (z, x, y) columns become MARTINI's (x, y, z):
a cyclic permutation, hence a proper rotation with no handedness flip. MARTINI's cube is indexed
(RA, Dec, channel) with RA *decreasing* along its first axis (``CDELT1 < 0``, east to the left)
and velocity decreasing along its channels (``CDELT3 < 0``); :func:`hi_cube` flips both, so our
cubes are (channel, y, x) with x (columns) and y (rows) increasing with index and velocities
ascending: the pixel convention of the photometry images.

Velocities. MARTINI places the source at ``distance`` and adds the Hubble flow of every cell,
H0 times its position vector (as its TNG source does for the peculiar velocities TNG stores); the
spectral axis is centred on the resulting systemic velocity, so channel velocities are relative
to the galaxy. 64 x 5 km/s covers +-160 km/s: the edge-on parts of galaxies rotating faster than
that fall outside the band and are lost, the paper's choice kept here.

Numba. MARTINI compiles numba kernels on first use in each process (a few seconds; the spectral
kernels are cached on disk, the cube insertion kernel is not). :func:`configure_numba_cache`
points that cache at a directory every worker can write; it must run before MARTINI is first
imported in the process, which is why this module imports MARTINI only inside its functions.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage

from darkstack.atomic import atomic_path
from darkstack.config import Checked, Range, Rule
from darkstack.cosmology import CosmologyParams

if TYPE_CHECKING:
    from martini.sph_kernels import _BaseSPHKernel

#: N_HI / (S dv / (bmaj bmin)) in cm^-2 for S in Jy/beam, dv in km/s and beam FWHMs in arcsec:
#: N_HI = 1.8224e18 cm^-2 int T_B dv / (K km/s) with the Rayleigh-Jeans T_B = 1.222e6 K S /
#: (nu_GHz^2 bmaj bmin) at nu = 1.4204 GHz (see e.g. Meyer et al. 2017, PASA 34, e052). The
#: familiar 1.104e21 is the same constant for S in mJy/beam.
HI_COLUMN_DENSITY_CM2: Final = 1.104e24
#: Solid angle of a Gaussian beam in units of bmaj * bmin: pi / (4 ln 2).
GAUSSIAN_BEAM_AREA_PER_FWHM2: Final = float(np.pi / (4.0 * np.log(2.0)))
#: M_HI / (S_int D^2) in Msun / (Jy km/s Mpc^2) for optically thin HI (Roberts 1962, AJ 67,
#: 437; MARTINI uses the same 2.36e5).
HI_MASS_MSUN_PER_JY_KMS_MPC2: Final = 2.36e5
#: The SPH kernels of MARTINI a cube may be made with.
MartiniKernel = Literal["cubic_spline", "wendland_c2"]
#: MARTINI kernel classes by configuration name.
_MARTINI_KERNELS: Final = {
    "cubic_spline": "CubicSplineKernel",
    "wendland_c2": "WendlandC2Kernel",
}


@dataclass(frozen=True, kw_only=True)
class HIConfig(Checked):
    """How HI cubes are observed and reduced.

    Parameters
    ----------
    n_pixels : int
        Pixels per side, shared with the images.
    field_of_view_arcmin : float
        Side of the square field, shared with the images.
    n_channels : int
        Spectral channels, centred on the systemic velocity. The paper's 64 channels of 5 km/s
        span +-160 km/s, which clips the projected rotation of most selected galaxies (their
        median circular velocity is ~170 km/s) and with it the velocity field's information on
        the halo; 128 channels span +-320 km/s. ``n_channels=64`` follows the paper literally.
    channel_width_kms : float
        Channel width.
    beam_fwhm_arcsec : float
        FWHM of the circular Gaussian beam.
    beam_truncation_fwhm : float
        Radius of the sampled beam image, in FWHM.
    noise : bool
        Add Gaussian noise before the beam convolution.
    noise_jy_per_beam : float
        Noise rms per channel after the convolution. The paper quotes 5e-6 Jy/arcsec^2; times the
        beam solid angle 1.1331 x (10 arcsec)^2 = 113.3 arcsec^2 that is 5.665e-4 Jy/beam.
    column_density_threshold_log_cm2 : float
        log10 N_HI (cm^-2) below which a pixel of the moment maps is outside the mask.
    mask_smoothing_fwhm_arcsec : float
        Resolution of the smoothed cube the mask is found in (THINGS: 30 arcsec); at or below
        ``beam_fwhm_arcsec`` the mask is found in the cube itself.
    mask_noise_sigma : float
        A voxel of the smoothed cube is emission above this many of the smoothed cube's rms;
        without noise, above 0. THINGS clipped at 2 and cleaned the maps by eye; 2 leaves ~26
        noise pixels in a source-free map of the paper's grid, 2.5 fewer than 1.
    mask_min_channels : int
        ... in at least this many consecutive channels (THINGS: 3), which noise rarely does.
    kernel : {"cubic_spline", "wendland_c2"}
        SPH kernel MARTINI smooths the cells with (the paper uses the cubic spline).
    hubble_param : float
        h of the Hubble flow MARTINI adds to each cell's velocity (TNG's Planck 2015 value).
    """

    n_pixels: Annotated[int, Range(ge=1)] = 128
    field_of_view_arcmin: Annotated[float, Range(gt=0)] = 17.2
    n_channels: Annotated[int, Range(ge=1)] = 128
    channel_width_kms: Annotated[float, Range(gt=0)] = 5.0
    beam_fwhm_arcsec: Annotated[float, Range(gt=0)] = 10.0
    beam_truncation_fwhm: Annotated[float, Range(gt=0)] = 3.0
    noise: bool = True
    noise_jy_per_beam: Annotated[float, Range(ge=0)] = 5.665e-4
    column_density_threshold_log_cm2: Annotated[float, Range()] = 19.5
    mask_smoothing_fwhm_arcsec: Annotated[float, Range(ge=0)] = 30.0
    mask_noise_sigma: Annotated[float, Range(ge=0)] = 2.5
    mask_min_channels: Annotated[int, Range(ge=1)] = 3
    kernel: MartiniKernel = "cubic_spline"
    hubble_param: Annotated[float, Range(gt=0)] = CosmologyParams.hubble_param

    RULES = (
        # More consecutive channels than the cube has would mask out every pixel.
        Rule.ordered("mask_min_channels", "<=", "n_channels"),
    )

    @property
    def pixel_size_arcsec(self) -> float:
        """Side of one pixel."""
        return 60.0 * self.field_of_view_arcmin / self.n_pixels

    @property
    def beam_area_arcsec2(self) -> float:
        """Solid angle of the beam."""
        return GAUSSIAN_BEAM_AREA_PER_FWHM2 * self.beam_fwhm_arcsec**2

    @property
    def beam_area_pixels(self) -> float:
        """Beam solid angle in pixels: sum(mom0) / beam_area_pixels is the flux in Jy km/s."""
        return self.beam_area_arcsec2 / self.pixel_size_arcsec**2

    @property
    def channel_velocities_kms(self) -> NDArray[np.float64]:
        """Channel centres relative to the systemic velocity, ascending."""
        offsets = np.arange(self.n_channels, dtype=np.float64) - 0.5 * (self.n_channels - 1)
        return offsets * self.channel_width_kms

    @property
    def column_density_threshold_jy_per_beam_kms(self) -> float:
        """Moment 0 of a pixel at the column-density threshold."""
        return (
            10.0**self.column_density_threshold_log_cm2
            * self.beam_fwhm_arcsec**2
            / HI_COLUMN_DENSITY_CM2
        )


@dataclass(frozen=True)
class MomentMaps:
    """The HI maps of one view, pixels (y, x) as in the images.

    Attributes
    ----------
    mom0 : ndarray of float32, shape (ny, nx)
        Integrated intensity in Jy/beam km/s.
    mom1 : ndarray of float32, shape (ny, nx)
        Intensity-weighted mean velocity relative to the systemic velocity in km/s, positive
        receding; 0 outside the mask.
    mom2 : ndarray of float32, shape (ny, nx)
        Intensity-weighted velocity dispersion in km/s; 0 outside the mask.
    velocities_kms : ndarray of float64, shape (n_channels,)
        Channel centres relative to the systemic velocity, ascending.
    cube : ndarray of float32, shape (n_channels, ny, nx), optional
        The cube in Jy/beam, when kept.
    """

    mom0: NDArray[np.float32]
    mom1: NDArray[np.float32]
    mom2: NDArray[np.float32]
    velocities_kms: NDArray[np.float64]
    cube: NDArray[np.float32] | None = None


def configure_numba_cache(path: str | os.PathLike[str]) -> Path:
    """Make numba cache compiled kernels in ``path``, for this process and its children.

    numba picks a cached function's directory when the function is decorated, i.e. when MARTINI
    is imported, from ``NUMBA_CACHE_DIR``; by default it writes beside the installed package,
    which workers may not be allowed to, or may share with incompatible CPUs. Call this before
    the first HI cube of each process. Repeated calls with the same path do nothing, so the
    orchestration calls it at the start of every task (``features/observe.py``::

        configure_numba_cache(store / ".numba-cache")

    ) or once per worker, which also covers workers that join later::

        from distributed import WorkerPlugin

        class NumbaCache(WorkerPlugin):
            def setup(self, worker):
                configure_numba_cache(path)

        client.register_plugin(NumbaCache())

    Parameters
    ----------
    path : str or os.PathLike
        A directory on a file system every worker can write; created if missing.

    Returns
    -------
    Path
        The absolute cache directory.

    Warns
    -----
    RuntimeWarning
        When MARTINI was already imported with another cache directory: its cached kernels keep
        that one in this process.
    """
    cache_dir = Path(path).expanduser().resolve()
    if os.environ.get("NUMBA_CACHE_DIR") == str(cache_dir):
        return cache_dir
    cache_dir.mkdir(parents=True, exist_ok=True)
    os.environ["NUMBA_CACHE_DIR"] = str(cache_dir)
    if "numba" in sys.modules:
        # numba reads its environment once at import; functions decorated from now on must see
        # the new directory.
        from numba.core import config as numba_config

        numba_config.reload_config()
    if "martini.spectral_models" in sys.modules:
        warnings.warn(
            f"martini was imported before NUMBA_CACHE_DIR was set to {cache_dir}; its kernels "
            "keep their previous cache in this process",
            RuntimeWarning,
            stacklevel=2,
        )
    return cache_dir


def hi_cube(
    gas: Mapping[str, ArrayLike],
    *,
    distance_mpc: float,
    config: HIConfig,
    seed: int,
) -> tuple[NDArray[np.float32], NDArray[np.float64]]:
    """Observe the HI of a gas cutout with MARTINI.

    Parameters
    ----------
    gas : mapping of array_like
        Cells in the observer frame (see the module docstring): ``position_kpc`` and
        ``velocity_kms`` (n, 3), ``hi_mass_msun``, ``temperature_k`` and
        ``smoothing_length_kpc`` (the kernel's support radius, 2.5 cell radii as in MARTINI's
        TNG source), all (n,).
    distance_mpc : float
        Distance of the galaxy, which sits at the origin.
    config : HIConfig
        Grid, beam, noise and kernel.
    seed : int
        Seed of the noise.

    Returns
    -------
    cube : ndarray of float32, shape (n_channels, n_pixels, n_pixels)
        Flux density in Jy/beam; ``cube[k, iy, ix]`` with x and y increasing with the index.
    velocities_kms : ndarray of float64, shape (n_channels,)
        Channel centres relative to the systemic velocity, ascending.

    References
    ----------
    Oman, K. A. 2024, JOSS 9, 6860 (MARTINI); de los Rios, M. et al. 2023, MNRAS, §3.2.
    """
    import astropy.units as u
    from martini import DataCube, Martini
    from martini.beams import GaussianBeam
    from martini.noise import GaussianNoise
    from martini.sources import SPHSource
    from martini.spectral_models import GaussianSpectrum

    if not distance_mpc > 0:
        raise ValueError(f"distance_mpc must be > 0, got {distance_mpc}")
    positions = np.asarray(gas["position_kpc"], dtype=np.float64).reshape(-1, 3)
    velocities = np.asarray(gas["velocity_kms"], dtype=np.float64).reshape(-1, 3)
    hi_mass = np.asarray(gas["hi_mass_msun"], dtype=np.float64)
    temperature = np.asarray(gas["temperature_k"], dtype=np.float64)
    support = np.asarray(gas["smoothing_length_kpc"], dtype=np.float64)
    # MARTINI refuses a source with nothing in the cube; a cell of negligible HI at the centre
    # keeps gas-free views (and noise-only cubes) on the same path.
    positions = np.vstack([positions, np.zeros((1, 3))])
    velocities = np.vstack([velocities, np.zeros((1, 3))])
    hi_mass = np.append(hi_mass, 1e-30)
    temperature = np.append(temperature, 1e4)
    support = np.append(support, 1.0)
    sph_kernel = _martini_kernel(config.kernel)
    source = SPHSource(
        distance=distance_mpc * u.Mpc,
        vpeculiar=0.0 * u.km / u.s,
        h=config.hubble_param,
        T_g=temperature * u.K,
        mHI_g=hi_mass * u.Msun,
        # Our (x, y, z) = (east, north, away) are MARTINI's (y, z, x).
        xyz_g=positions[:, [2, 0, 1]] * u.kpc,
        vxyz_g=velocities[:, [2, 0, 1]] * u.km / u.s,
        # MARTINI wants the kernel's FWHM; the support radius is where the kernel reaches 0.
        hsm_g=support * kernel_fwhm_per_support(config.kernel) * u.kpc,
        coordinate_axis=1,
    )
    datacube = DataCube(
        n_px_x=config.n_pixels,
        n_px_y=config.n_pixels,
        n_channels=config.n_channels,
        px_size=config.pixel_size_arcsec * u.arcsec,
        channel_width=config.channel_width_kms * u.km / u.s,
        spectral_centre=source.vsys,
    )
    beam = GaussianBeam(
        bmaj=config.beam_fwhm_arcsec * u.arcsec,
        bmin=config.beam_fwhm_arcsec * u.arcsec,
        bpa=0.0 * u.deg,
        truncate=config.beam_truncation_fwhm,
    )
    noise = (
        GaussianNoise(rms=config.noise_jy_per_beam * u.Jy / u.beam, seed=seed)
        if config.noise
        else None
    )
    martini = Martini(
        source=source,
        datacube=datacube,
        beam=beam,
        noise=noise,
        spectral_model=GaussianSpectrum(sigma="thermal"),
        sph_kernel=sph_kernel,
        quiet=True,
    )
    martini.insert_source_in_cube()
    if noise is not None:
        martini.add_noise()
    martini.convolve_beam()
    # (channel, RA, Dec), RA decreasing with index -> (channel, Dec, RA) with RA increasing.
    maps = u.Quantity(list(martini.datacube.channel_maps)).to_value(u.Jy / u.beam)
    cube = np.ascontiguousarray(maps[:, ::-1, :].transpose(0, 2, 1))
    channel_kms = (martini.datacube.velocity_channel_mids - source.vsys).to_value(u.km / u.s)
    order = np.argsort(channel_kms)
    return cube[order].astype(np.float32), np.asarray(channel_kms[order], dtype=np.float64)


def emission_mask(cube: ArrayLike, *, config: HIConfig) -> NDArray[np.bool_]:
    """The voxels of a cube that hold HI emission: THINGS's smooth-and-clip mask.

    The mask of :func:`emission_moments`, for callers that need no moments.

    Parameters
    ----------
    cube : array_like, shape (n_channels, ny, nx)
        Flux density in Jy/beam, on the grid of ``config``.
    config : HIConfig
        Beam, grid, channel width and mask settings.

    Returns
    -------
    ndarray of bool, shape (n_channels, ny, nx)
        True for the voxels :func:`masked_moments` should sum.
    """
    mask, _, _, _ = emission_moments(cube, config.channel_velocities_kms, config=config)
    return mask


def emission_moments(
    cube: ArrayLike, velocities_kms: ArrayLike, *, config: HIConfig
) -> tuple[NDArray[np.bool_], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """THINGS's smooth-and-clip emission mask and the moments over it, in one pass.

    The cube is smoothed to ``config.mask_smoothing_fwhm_arcsec``; a voxel is a candidate where
    the smoothed cube exceeds ``config.mask_noise_sigma`` times its rms in a run of at least
    ``config.mask_min_channels`` consecutive channels. The rms is the normal-consistent median
    absolute deviation of the smoothed cube, which the few emission voxels barely move. One
    :func:`masked_moments` pass over the candidates gives moments 0, 1 and 2; pixels whose
    moment 0 stays below the column-density threshold are then dropped whole, from the mask
    and the maps. A dropped pixel's voxels all leave the mask, so the moments of the kept
    pixels are those over the final mask: no second pass is needed.

    Parameters
    ----------
    cube : array_like, shape (n_channels, ny, nx)
        Flux density in Jy/beam, on the grid of ``config``.
    velocities_kms : array_like, shape (n_channels,)
        Evenly spaced channel centres (those :func:`hi_cube` returns).
    config : HIConfig
        Beam, grid, channel width and mask settings.

    Returns
    -------
    mask : ndarray of bool, shape (n_channels, ny, nx)
        The emission voxels.
    mom0, mom1, mom2 : ndarray of float64, shape (ny, nx)
        As :func:`masked_moments` returns them over ``mask``; 0 outside it.

    References
    ----------
    Walter, F. et al. 2008, AJ 136, 2563, §3.4.
    """
    data = np.asarray(cube, dtype=np.float64)
    expected = (config.n_channels, config.n_pixels, config.n_pixels)
    if data.shape != expected:
        raise ValueError(f"cube must have the config's shape {expected}, got {data.shape}")
    # Gaussians add in quadrature: the kernel that takes the beam to the mask's resolution.
    kernel_fwhm_arcsec = np.sqrt(
        max(config.mask_smoothing_fwhm_arcsec**2 - config.beam_fwhm_arcsec**2, 0.0)
    )
    sigma_pixels = kernel_fwhm_arcsec / config.pixel_size_arcsec / np.sqrt(8.0 * np.log(2.0))
    smoothed = ndimage.gaussian_filter(data, (0.0, sigma_pixels, sigma_pixels), mode="constant")
    rms = robust_rms(smoothed) if config.noise else 0.0
    # An opening with a line of n channels keeps exactly the runs of >= n voxels.
    run = np.ones((config.mask_min_channels, 1, 1), dtype=bool)
    candidates = ndimage.binary_opening(smoothed > config.mask_noise_sigma * rms, structure=run)
    mom0, mom1, mom2 = masked_moments(data, velocities_kms, mask=candidates)
    kept = mom0 >= config.column_density_threshold_jy_per_beam_kms
    return (
        candidates & kept[None],
        np.where(kept, mom0, 0.0),
        np.where(kept, mom1, 0.0),
        np.where(kept, mom2, 0.0),
    )


def robust_rms(values: ArrayLike) -> float:
    """The rms of Gaussian noise from the median absolute deviation, robust to a few sources.

    ``median(|x - median(x)|)`` times 1 / Phi^-1(3/4) = 1.4826, the factor that makes it the
    standard deviation of a normal sample (scipy's ``median_abs_deviation(scale="normal")``).

    Parameters
    ----------
    values : array_like
        Samples of noise with some emission, any shape (flattened).

    Returns
    -------
    float
        The estimated standard deviation.
    """
    from scipy.stats import median_abs_deviation

    return float(median_abs_deviation(values, axis=None, scale="normal"))


def masked_moments(
    cube: ArrayLike,
    velocities_kms: ArrayLike,
    *,
    mask: ArrayLike | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Moments 0, 1 and 2 of a cube over the positive voxels of a mask, in one pass over it.

    Only voxels in the mask with S > 0 enter the sums, so every weight is positive:

    - mom0 = sum_k S_k dv (Jy/beam km/s),
    - mom1 = sum_k S_k v_k / sum_k S_k (km/s),
    - mom2 = sqrt(sum_k S_k (v_k - mom1)^2 / sum_k S_k) (km/s).

    Pixels without such a voxel are outside the mask: all three moments are 0 there, so the
    maps are NaN-free CNN inputs. Dropping the negative noise of masked voxels biases mom0 high
    by about the noise of one channel per pixel, much less than the outer disk it gains.

    Parameters
    ----------
    cube : array_like, shape (n_channels, ny, nx)
        Flux density in Jy/beam.
    velocities_kms : array_like, shape (n_channels,)
        Evenly spaced channel centres, in either order.
    mask : array_like of bool, shape (n_channels, ny, nx), optional
        The voxels to sum (:func:`emission_moments`); all of them when omitted.

    Returns
    -------
    mom0, mom1, mom2 : ndarray of float64, shape (ny, nx)
        Integrated intensity (Jy/beam km/s), mean velocity and dispersion (km/s).
    """
    data = np.asarray(cube, dtype=np.float64)
    velocity = np.asarray(velocities_kms, dtype=np.float64)
    if data.ndim != 3 or velocity.shape != data.shape[:1] or velocity.size < 2:
        raise ValueError(
            f"cube must be (n_channels >= 2, ny, nx) matching velocities_kms {velocity.shape}, "
            f"got {data.shape}"
        )
    selected = data > 0
    if mask is not None:
        voxels = np.asarray(mask, dtype=bool)
        if voxels.shape != data.shape:
            raise ValueError(f"mask must have the cube's shape {data.shape}, got {voxels.shape}")
        selected &= voxels
    steps = np.diff(velocity)
    if not np.allclose(steps, steps[0], rtol=1e-6, atol=0.0):
        raise ValueError("velocities_kms must be evenly spaced")
    channel_width_kms = abs(steps[0])
    weights = np.where(selected, data, 0.0)
    total = weights.sum(axis=0)
    inside = total > 0
    norm = np.where(inside, total, 1.0)
    mom0 = total * channel_width_kms
    mom1 = np.where(inside, np.einsum("k,kij->ij", velocity, weights) / norm, 0.0)
    deviation2 = (velocity[:, None, None] - mom1) ** 2
    mom2 = np.where(inside, np.sqrt(np.einsum("kij,kij->ij", weights, deviation2) / norm), 0.0)
    return mom0, mom1, mom2


def hi_moment_maps(
    gas: Mapping[str, ArrayLike],
    *,
    distance_mpc: float,
    config: HIConfig,
    seed: int,
    keep_cube: bool = False,
) -> MomentMaps:
    """The masked HI moment maps of one view: its cube, emission mask and moments.

    Parameters
    ----------
    gas : mapping of array_like
        Cells in the observer frame, as for :func:`hi_cube`.
    distance_mpc : float
        Distance of the galaxy.
    config : HIConfig
        Observation and mask settings.
    seed : int
        Seed of the noise.
    keep_cube : bool
        Also return the cube (e.g. for :func:`write_cube_fits`).

    Returns
    -------
    MomentMaps
        float32 maps, pixel (iy, ix) at sky (y, x) as in the images.
    """
    cube, velocities_kms = hi_cube(gas, distance_mpc=distance_mpc, config=config, seed=seed)
    _, mom0, mom1, mom2 = emission_moments(cube, velocities_kms, config=config)
    return MomentMaps(
        mom0=mom0.astype(np.float32),
        mom1=mom1.astype(np.float32),
        mom2=mom2.astype(np.float32),
        velocities_kms=velocities_kms,
        cube=cube if keep_cube else None,
    )


def write_cube_fits(
    path: str | os.PathLike[str],
    cube: ArrayLike | MomentMaps,
    *,
    distance_mpc: float,
    config: HIConfig,
) -> Path:
    """Write a cube as FITS with its units, beam and WCS; the file is replaced atomically.

    The data keep our layout, FITS axes (x, y, channel): RA increases with the column index
    (``CDELT1 > 0``, east to the right when displayed pixel by pixel), unlike the usual radio
    convention, so the file matches the moment maps pixel for pixel. The spectral axis is the
    radio velocity in the galaxy's rest frame (``SPECSYS = 'SOURCE'``); ``VSYS`` holds the
    systemic velocity MARTINI assumed and ``DISTANCE`` the distance.

    Parameters
    ----------
    path : str or os.PathLike
        Output file; parent directories are created.
    cube : array_like or MomentMaps
        The (n_channels, ny, nx) cube in Jy/beam from :func:`hi_cube`, or maps made with
        ``keep_cube=True``.
    distance_mpc : float
        Distance the cube was made at.
    config : HIConfig
        The configuration the cube was made with.

    Returns
    -------
    Path
        The written file.
    """
    from astropy.io import fits
    from astropy.wcs import WCS

    if isinstance(cube, MomentMaps):
        if cube.cube is None:
            raise ValueError("these MomentMaps hold no cube: make them with keep_cube=True")
        cube = cube.cube
    data = np.asarray(cube, dtype=np.float32)
    expected = (config.n_channels, config.n_pixels, config.n_pixels)
    if data.shape != expected:
        raise ValueError(f"cube has shape {data.shape}, config implies {expected}")
    wcs = WCS(naxis=3)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN", "VRAD"]
    wcs.wcs.cunit = ["deg", "deg", "m/s"]
    wcs.wcs.crpix = [0.5 * config.n_pixels + 0.5, 0.5 * config.n_pixels + 0.5, 1.0]
    wcs.wcs.crval = [0.0, 0.0, 1e3 * float(config.channel_velocities_kms[0])]
    pixel_deg = config.pixel_size_arcsec / 3600.0
    wcs.wcs.cdelt = [pixel_deg, pixel_deg, 1e3 * config.channel_width_kms]
    wcs.wcs.specsys = "SOURCE"
    wcs.wcs.restfrq = 1.420405751e9
    header = wcs.to_header()
    header["BUNIT"] = ("Jy/beam", "flux density per beam")
    header["BTYPE"] = "Intensity"
    header["BMAJ"] = (config.beam_fwhm_arcsec / 3600.0, "[deg] beam major axis FWHM")
    header["BMIN"] = (config.beam_fwhm_arcsec / 3600.0, "[deg] beam minor axis FWHM")
    header["BPA"] = (0.0, "[deg] beam position angle")
    header["DISTANCE"] = (float(distance_mpc), "[Mpc] distance of the galaxy")
    header["VSYS"] = (100.0 * config.hubble_param * distance_mpc, "[km/s] systemic velocity")
    header["NOISE"] = (config.noise_jy_per_beam if config.noise else 0.0, "[Jy/beam] rms")
    header["ORIGIN"] = "darkstack (MARTINI)"
    path = Path(path)
    with atomic_path(path) as temporary:
        fits.PrimaryHDU(data=data, header=header).writeto(temporary, overwrite=True)
    return path


def kernel_fwhm_per_support(kernel: str) -> float:
    """FWHM of a compact SPH kernel in units of its support radius (0.7224 for the cubic spline).

    Parameters
    ----------
    kernel : str
        A :class:`HIConfig` kernel name.

    Returns
    -------
    float
        The factor turning a support radius into the FWHM MARTINI's ``hsm_g`` expects.
    """
    from martini.sph_kernels import find_fwhm

    # MARTINI's kernel functions reach 0 at q = 1, so their FWHM is in units of the support.
    return float(find_fwhm(_martini_kernel(kernel).kernel))


def _martini_kernel(kernel: str) -> _BaseSPHKernel:
    from martini import sph_kernels

    if kernel not in _MARTINI_KERNELS:
        raise ValueError(f"kernel must be one of {sorted(_MARTINI_KERNELS)}, got {kernel}")
    return getattr(sph_kernels, _MARTINI_KERNELS[kernel])()
