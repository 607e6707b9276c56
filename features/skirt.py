"""SKIRT 9 as an optional radiative-transfer backend for the mock SDSS images.

de los Rios et al. (2023, §3.1) make their mock SDSS images the way Rodriguez-Gomez et al. (2019)
do: SKIRT (Camps & Baes 2015, 2020) propagates the light of the star particles of a cutout
through the dust traced by its gas. darkstack's default renderer is built in (``bc03``); this
module drives SKIRT 9, a C++ program (https://skirt.ugent.be), where its executable exists. SKIRT
cannot be installed by darkstack: it is found on ``PATH`` or at a configured path, and a missing
executable raises :class:`SkirtNotAvailable` rather than falling back silently.

Three steps, one function each:

* :func:`write_skirt_inputs` writes ``galaxy.ski`` and the particle files it imports
  (``stars_old.txt``, ``stars_young.txt``, ``gas.txt``) into a work directory;
* :func:`run_skirt` runs ``skirt -b -i WORKDIR -o WORKDIR/out WORKDIR/galaxy.ski``;
* :func:`read_skirt_frame` turns the FrameInstrument data cube into per-pixel f_lambda.

The model
---------
* Star particles older than ``young_star_age_myr`` (10 Myr) are single stellar populations of
  Bruzual & Charlot (2003) with a Chabrier IMF (IllustrisTNG's IMF; low-resolution tables,
  ample for broad bands), imported with their initial mass, metallicity and age. Younger ones
  are MAPPINGS III star-forming regions (Groves et al. 2008) with star formation rate
  M_init / 10 Myr (MAPPINGS' templates assume a constant rate over the past 10 Myr), the
  particle's metallicity, log compactness log C = 5, ISM pressure P / k_B = 1e5 K cm^-3 and
  PDR covering fraction f_PDR = 0.2, the values the paper quotes.
* Star particles carry no smoothing length in a cutout; unless ``stars`` has
  ``smoothing_length_kpc`` it is the distance to the 32nd nearest star particle, the definition
  of IllustrisTNG's ``StellarHsml``.
* Dust follows the gas: dust mass = ``dust_to_metal`` (0.3) x metal mass, in cells cooler than
  ``max_dust_temperature_k`` (8000 K) or star-forming; hotter gas is assumed to have lost its
  dust to sputtering. This is the usual TNG convention (e.g. Trčka et al. 2022), descending from
  Camps et al. (2016) for EAGLE (D. Nelson's pipeline notes that Rodriguez-Gomez et al. 2019,
  whom the paper follows, kept dust in star-forming gas only). SKIRT applies the cut itself
  (``ParticleMedium`` with ``maxTemperature`` ignores particles whose temperature column exceeds
  it), so for star-forming cells the column holds the 1000 K cold phase of the Springel &
  Hernquist (2003) two-phase model rather than their effective-EOS temperature, as the
  ``temp_sfcold`` field of D. Nelson's pipeline does. Dust is the Zubko, Dwek & Arendt (2004)
  BARE-GR-S mix (the paper's choice), on an octree over a cube as wide as the field of view.
* ``ExtinctionOnly`` mode: absorption and scattering, no dust emission, which is small
  shortward of 3.7 micron; 1e7 photon packets; sources emit over the instrument's range.
* One ``FrameInstrument`` at the galaxy's distance records 1000 log-spaced wavelength bins from
  0.01 to 3.7 micron on 128 x 128 pixels over 17.2 arcmin, in ``ExtragalacticUnits`` with
  ``fluxOutputStyle="Wavelength"`` (surface brightness in W/m2/micron/arcsec2).

Orientation
-----------
Cutouts arrive rotated into the observer's frame: x and y on the sky, z along the line of sight
away from the observer. SKIRT's inclination θ and azimuth φ give the direction *towards* the
observer, so θ = 180 deg puts the observer at -z and dust at smaller z in front, as it must be.
SKIRT's detector axes (FrameInstrument::pixelOnDetector) are x'' = -sinφ x + cosφ y and
y'' = -cosφ cosθ x - sinφ cosθ y + sinθ z, turned by the roll ω into (x_p, y_p); θ = 180 deg,
φ = -90 deg and ω = 0 give x_p = x and y_p = -y (an observer at -z sees the mirror image of
the view from +z, and no roll turns a mirror image back). SKIRT
writes pixel (i, j) with i along x_p and j along y_p, so :func:`read_skirt_frame` reverses the
rows: in what it returns, columns run along +x and rows along +y.

Sources checked (SKIRT 9 C++ sources in the SKIRT/SKIRT9 GitHub repository)
--------------------------------------------------------------------------
* ``ParticleSource.hpp``, ``ImportedSource.hpp``: columns x y z h [v] then the SED family's.
* ``BruzualCharlotSEDFamily.hpp/.cpp``: initial mass (Msun), metallicity (1), age (yr);
  ``imf`` Chabrier/Salpeter, ``resolution`` Low/High.
* ``MappingsSEDFamily.hpp/.cpp``: SFR (Msun/yr), Z (1), log C (1), pressure (Pa), f_PDR (1).
* ``ParticleMedium.hpp``, ``ImportedMedium.hpp``: columns x y z h M [Z] [T]; imported mass =
  massFraction x Z x M if T < maxTemperature; ``massType``, ``importMetallicity``,
  ``importTemperature``, ``maxTemperature``.
* ``TextInFile.hpp``: ``# column N: description (unit)`` header lines, unit strings exactly
  as in ``SkirtUnitDef.cpp`` (``kpc``, ``Msun``, ``yr``, ``Msun/yr``, ``Pa``, ``K``, ``1``).
* ``ZubkoDustMix.hpp``, ``PolicyTreeSpatialGrid.hpp``, ``TreePolicy.hpp``,
  ``DensityTreePolicy.hpp``, ``MonteCarloSimulation.hpp``, ``SourceSystem.hpp``,
  ``MediumSystem.hpp``, ``Instrument.hpp``, ``DistantInstrument.hpp``, ``FrameInstrument.hpp``.
* ``FrameInstrument.cpp`` (projection), ``FluxRecorder.cpp`` (output ``<instrument>_total``,
  pixel solid angle 4 atan(Δx/2d) atan(Δy/2d), angular CDELT = 2 atan(Δx/2d)),
  ``FITSInOut.cpp`` (3D float image x fastest, BUNIT, CDELT/CUNIT, and the wavelengths in an
  ASCII table extension ``GRID_POINTS``; CROTA1-3 = inclination, azimuth, roll when the caller
  passes observer information),
  ``FilePaths.cpp`` (output names ``<prefix>_<name>``), ``SkirtCommandLineHandler.cpp``
  (``-b -i -o``, prefix = ski file name, log ``<prefix>_log.txt``), ``Units.hpp`` and
  ``SkirtUnitDef.cpp`` (default surface-brightness units per unit system and flux style).
* Real ski files and TNG import code: ``cosmo/skirt.py`` of D. Nelson's IllustrisTNG pipeline
  (BC03 + MAPPINGS-III columns and values), a SKIRT-9-written ski with ``ParticleMedium``, and
  TNG/SPH pipelines using ``ZubkoDustMix`` with ``massFraction="0.3"`` and ``ThemisDustMix`` with
  ``maxTemperature="8000 K"``.

No SKIRT run was made to write this module: SKIRT is not installed where it was written. The
tests run a stand-in executable that writes SKIRT's output format.
"""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
from numpy.typing import NDArray

from darkstack.config import Checked, Range, Rule
from darkstack.constants import BOLTZMANN_ERG_PER_K
from darkstack.features.deposit.sph import neighbour_distance_kpc

if TYPE_CHECKING:
    from astropy.io.fits import Header

#: The message of :class:`SkirtNotAvailable` when no executable is configured or on PATH.
SKIRT_NOT_FOUND_MESSAGE = (
    "SKIRT executable not found on PATH (set photometry.skirt.executable); "
    "the built-in bc03 renderer is the default"
)
#: File names in the work directory; SKIRT names its outputs after the ski file (the prefix).
SKI_NAME = "galaxy.ski"
OLD_STARS_NAME = "stars_old.txt"
YOUNG_STARS_NAME = "stars_young.txt"
GAS_NAME = "gas.txt"
OUTPUT_DIR_NAME = "out"
CONSOLE_NAME = "skirt_console.txt"
INSTRUMENT_NAME = "sdss"
#: Instrument angles in degrees that look down +z from -z with +x along x_p (module docstring).
INCLINATION_DEG = 180.0
AZIMUTH_DEG = -90.0
ROLL_DEG = 0.0
#: Neighbours defining a star particle's smoothing length, as in IllustrisTNG's StellarHsml.
STELLAR_SMOOTHING_NEIGHBOURS = 32
#: MAPPINGS III templates assume a constant star formation rate over this window.
MAPPINGS_SFR_WINDOW_YR = 1.0e7
#: Cold-phase temperature of star-forming gas in the Springel & Hernquist (2003) model.
STAR_FORMING_COLD_PHASE_TEMPERATURE_K = 1000.0
#: Octree refinement levels: at least 3 (SKIRT's default), at most 10 (cells of FOV / 1024, e.g.
#: 0.24 kpc for the 250 kpc that 17.2 arcmin span at 50 Mpc).
GRID_MIN_LEVEL = 3
GRID_MAX_LEVEL = 10
#: Grain size bins per Zubko population (only dust emission uses them; as TNG pipelines set).
ZUBKO_SIZE_BINS = 15
#: Lines of SKIRT's log quoted when a run fails.
LOG_TAIL_LINES = 20

_ARCSEC_RAD = np.pi / (180.0 * 3600.0)
_ARCMIN_RAD = np.pi / (180.0 * 60.0)
_ANGLE_RAD = {"rad": 1.0, "deg": np.pi / 180.0, "arcsec": _ARCSEC_RAD}
_WAVELENGTH_M = {"m": 1.0, "cm": 1e-2, "mm": 1e-3, "micron": 1e-6, "nm": 1e-9, "Angstrom": 1e-10}
#: Surface-brightness units SKIRT writes as BUNIT (Units::usurfacebrightness for the SI, stellar
#: and extragalactic unit systems), as (flux style, factor to SI per steradian) from
#: SkirtUnitDef.cpp: f_lambda in W/m3/sr, f_nu in W/m2/Hz/sr, lambda f_lambda in W/m2/sr.
_SURFACE_BRIGHTNESS = {
    "W/m3/sr": ("wavelength", 1.0),
    "W/m2/micron/arcsec2": ("wavelength", 1e6 / _ARCSEC_RAD**2),
    "W/m2/Hz/sr": ("frequency", 1.0),
    "MJy/sr": ("frequency", 1e-20),
    "W/m2/sr": ("neutral", 1.0),
    "W/m2/arcsec2": ("neutral", 1.0 / _ARCSEC_RAD**2),
}
_SPEED_OF_LIGHT_M_S = 2.99792458e8
#: 1 W m^-3 (f_lambda, SI) in erg s^-1 cm^-2 Angstrom^-1.
_SI_F_LAMBDA_TO_CGS_ANGSTROM = 1e7 * 1e-4 * 1e-10


# The name is the public contract (observe.py and configs refer to it), hence no Error suffix.
class SkirtNotAvailable(RuntimeError):  # noqa: N818
    """No SKIRT executable: SKIRT is optional and the built-in renderer is the default."""


class SkirtRunError(RuntimeError):
    """SKIRT ran but failed, timed out or wrote no frame; the message quotes its log."""


@dataclass(frozen=True, kw_only=True)
class SkirtConfig(Checked):
    """Settings of the SKIRT backend (defaults follow de los Rios et al. 2023, §3.1).

    Parameters
    ----------
    executable : str, optional
        Path or command name of the SKIRT 9 executable; None looks up ``skirt`` on PATH.
    num_packets : float
        Photon packets launched.
    wavelength_min_um, wavelength_max_um : float
        Range of the sources and of the instrument's log wavelength grid, in micron.
    num_wavelengths : int
        Wavelength bins of the instrument.
    dust_to_metal : float
        Dust mass per metal mass in dust-bearing gas.
    max_dust_temperature_k : float
        Gas hotter than this carries no dust unless it is star-forming (the usual TNG
        convention, e.g. Trčka et al. 2022; see the module docstring).
    young_star_age_myr : float
        Star particles younger than this are MAPPINGS III star-forming regions, older ones
        Bruzual & Charlot (2003) populations.
    mappings_log_compactness : float
        log10 of the MAPPINGS compactness parameter C.
    mappings_pressure_k_cm3 : float
        ISM pressure P / k_B of the MAPPINGS regions, in K cm^-3.
    mappings_pdr_fraction : float
        Time-averaged covering fraction of photodissociation regions f_PDR.
    n_pixels : int
        Pixels on each side of the square image.
    field_of_view_arcmin : float
        Side of the square field of view.
    timeout_s : float
        Wall-clock limit of one SKIRT run, in seconds.
    """

    executable: str | None = None
    num_packets: Annotated[float, Range(ge=1)] = 1.0e7
    wavelength_min_um: Annotated[float, Range(gt=0)] = 0.01
    wavelength_max_um: Annotated[float, Range(gt=0)] = 3.7
    num_wavelengths: Annotated[int, Range(ge=1)] = 1000
    dust_to_metal: Annotated[float, Range(ge=0, le=1)] = 0.3
    max_dust_temperature_k: Annotated[float, Range(gt=0)] = 8000.0
    young_star_age_myr: Annotated[float, Range(gt=0)] = 10.0
    mappings_log_compactness: Annotated[float, Range()] = 5.0
    mappings_pressure_k_cm3: Annotated[float, Range(gt=0)] = 1.0e5
    mappings_pdr_fraction: Annotated[float, Range(ge=0, le=1)] = 0.2
    n_pixels: Annotated[int, Range(ge=1)] = 128
    field_of_view_arcmin: Annotated[float, Range(gt=0)] = 17.2
    timeout_s: Annotated[float, Range(gt=0)] = 7200.0

    RULES = (Rule.ordered("wavelength_max_um", ">", "wavelength_min_um"),)


@dataclass(frozen=True, kw_only=True)
class SkirtRun:
    """The inputs of one SKIRT run, as written by :func:`write_skirt_inputs`.

    Parameters
    ----------
    workdir : Path
        Directory holding the ski file and the particle files (SKIRT's input path).
    ski_path : Path
        The ski file.
    output_dir : Path
        SKIRT's output path.
    n_old_stars, n_young_stars : int
        Star particles imported with the BC03 and MAPPINGS III families.
    n_dust_cells : int
        Gas rows that carry dust (temperature column below ``maxTemperature``).
    """

    workdir: Path
    ski_path: Path
    output_dir: Path
    n_old_stars: int
    n_young_stars: int
    n_dust_cells: int

    @property
    def prefix(self) -> str:
        """SKIRT's output prefix: the ski file name without extension."""
        return self.ski_path.stem

    @property
    def frame_path(self) -> Path:
        """The FrameInstrument data cube SKIRT writes."""
        return self.output_dir / f"{self.prefix}_{INSTRUMENT_NAME}_total.fits"

    @property
    def log_path(self) -> Path:
        """SKIRT's log file."""
        return self.output_dir / f"{self.prefix}_log.txt"


def write_skirt_inputs(
    workdir: str | Path,
    *,
    stars: Mapping[str, NDArray[np.floating]],
    gas: Mapping[str, NDArray[np.floating]],
    distance_mpc: float,
    config: SkirtConfig,
) -> SkirtRun:
    """Write the ski file and the particle files of one view of one galaxy.

    Parameters
    ----------
    workdir : str or Path
        Directory to write into (created if missing).
    stars : mapping of str to ndarray
        ``position_kpc`` (n, 3) in the observer's frame (z away from the observer),
        ``initial_mass_msun``, ``metallicity`` (mass fraction), ``age_gyr``; optionally
        ``smoothing_length_kpc`` (else the distance to the 32nd nearest star particle).
    gas : mapping of str to ndarray
        ``position_kpc`` (m, 3), ``mass_msun``, ``metallicity``, ``temperature_k``,
        ``sfr_msun_yr``, ``smoothing_length_kpc``.
    distance_mpc : float
        Distance of the galaxy.
    config : SkirtConfig
        Backend settings.

    Returns
    -------
    SkirtRun
        Paths and particle counts of the run.

    Raises
    ------
    ValueError
        For a missing or misshapen particle field, a non-positive distance, no star particle,
        or a single one without a smoothing length.
    """
    if not distance_mpc > 0:
        raise ValueError(f"distance_mpc={distance_mpc!r}; expected a positive distance")
    workdir = Path(workdir)
    output_dir = workdir / OUTPUT_DIR_NAME
    output_dir.mkdir(parents=True, exist_ok=True)

    star_positions = _positions(stars, "stars")
    n_stars = len(star_positions)
    if n_stars == 0:
        raise ValueError("stars: no star particles to render")
    initial_mass = _field(stars, "stars", "initial_mass_msun", n_stars)
    star_metallicity = _field(stars, "stars", "metallicity", n_stars)
    age_yr = _field(stars, "stars", "age_gyr", n_stars) * 1.0e9
    if "smoothing_length_kpc" in stars:
        star_smoothing = _field(stars, "stars", "smoothing_length_kpc", n_stars)
    else:
        star_smoothing = neighbour_distance_kpc(
            position_kpc=star_positions, n_neighbours=STELLAR_SMOOTHING_NEIGHBOURS
        )
    young = age_yr < config.young_star_age_myr * 1.0e6
    old = ~young

    gas_positions = _positions(gas, "gas")
    n_gas = len(gas_positions)
    star_forming = _field(gas, "gas", "sfr_msun_yr", n_gas) > 0
    dust_temperature = np.where(
        star_forming,
        STAR_FORMING_COLD_PHASE_TEMPERATURE_K,
        _field(gas, "gas", "temperature_k", n_gas),
    )
    n_dust_cells = int(np.count_nonzero(dust_temperature < config.max_dust_temperature_k))

    common_star_columns = [
        ("position x", "kpc", star_positions[:, 0]),
        ("position y", "kpc", star_positions[:, 1]),
        ("position z", "kpc", star_positions[:, 2]),
        ("smoothing length", "kpc", star_smoothing),
    ]
    _write_columns(
        workdir / OLD_STARS_NAME,
        title="star particles older than the MAPPINGS age: Bruzual & Charlot (2003) SSPs",
        columns=[
            *((name, unit, values[old]) for name, unit, values in common_star_columns),
            ("initial mass", "Msun", initial_mass[old]),
            ("metallicity", "1", star_metallicity[old]),
            ("age", "yr", age_yr[old]),
        ],
    )
    n_young = int(np.count_nonzero(young))
    # P [Pa] = (P/k_B) [K cm^-3] * 1e6 cm^-3 per m^-3 * k_B [J/K]
    pressure_pa = config.mappings_pressure_k_cm3 * 1.0e6 * BOLTZMANN_ERG_PER_K * 1.0e-7
    _write_columns(
        workdir / YOUNG_STARS_NAME,
        title="young star particles: MAPPINGS III star-forming regions (Groves et al. 2008)",
        columns=[
            *((name, unit, values[young]) for name, unit, values in common_star_columns),
            ("star formation rate", "Msun/yr", initial_mass[young] / MAPPINGS_SFR_WINDOW_YR),
            ("metallicity", "1", star_metallicity[young]),
            ("log compactness", "1", np.full(n_young, config.mappings_log_compactness)),
            ("ISM pressure", "Pa", np.full(n_young, pressure_pa)),
            ("PDR covering fraction", "1", np.full(n_young, config.mappings_pdr_fraction)),
        ],
    )
    _write_columns(
        workdir / GAS_NAME,
        title=(
            "gas cells; dust mass = massFraction x metallicity x mass where temperature < "
            "maxTemperature (star-forming cells at their cold-phase temperature)"
        ),
        columns=[
            ("position x", "kpc", gas_positions[:, 0]),
            ("position y", "kpc", gas_positions[:, 1]),
            ("position z", "kpc", gas_positions[:, 2]),
            ("smoothing length", "kpc", _field(gas, "gas", "smoothing_length_kpc", n_gas)),
            ("gas mass", "Msun", _field(gas, "gas", "mass_msun", n_gas)),
            ("metallicity", "1", _field(gas, "gas", "metallicity", n_gas)),
            ("temperature", "K", dust_temperature),
        ],
    )

    ski_path = workdir / SKI_NAME
    ski_path.write_text(
        _ski_text(
            distance_mpc=distance_mpc,
            config=config,
            with_old_stars=bool(np.any(old)),
            with_young_stars=n_young > 0,
            with_dust=n_dust_cells > 0,
        )
    )
    return SkirtRun(
        workdir=workdir,
        ski_path=ski_path,
        output_dir=output_dir,
        n_old_stars=int(np.count_nonzero(old)),
        n_young_stars=n_young,
        n_dust_cells=n_dust_cells,
    )


def field_of_view_kpc(*, distance_mpc: float, config: SkirtConfig) -> float:
    """Physical side of the field of view at ``distance_mpc``, as written to the ski file.

    Parameters
    ----------
    distance_mpc : float
        Distance of the galaxy.
    config : SkirtConfig
        Backend settings (``field_of_view_arcmin``).

    Returns
    -------
    float
        2 d tan(FOV / 2) in kpc.
    """
    half_angle_rad = 0.5 * config.field_of_view_arcmin * _ARCMIN_RAD
    return 2.0 * distance_mpc * 1.0e3 * float(np.tan(half_angle_rad))


def find_skirt(config: SkirtConfig) -> Path | None:
    """The SKIRT executable: ``config.executable`` (a path or a command) or ``skirt`` on PATH.

    Parameters
    ----------
    config : SkirtConfig
        Backend settings (``executable``).

    Returns
    -------
    Path or None
        The executable, or None if it does not exist or is not executable.
    """
    found = shutil.which(config.executable or "skirt")
    return Path(found) if found is not None else None


def run_skirt(run: SkirtRun, *, config: SkirtConfig) -> Path:
    """Run SKIRT on the inputs of ``run`` and return its FrameInstrument data cube.

    Parameters
    ----------
    run : SkirtRun
        As returned by :func:`write_skirt_inputs`.
    config : SkirtConfig
        Backend settings (``executable``, ``timeout_s``).

    Returns
    -------
    Path
        ``run.frame_path``, the FITS data cube for :func:`read_skirt_frame`.

    Raises
    ------
    SkirtNotAvailable
        If there is no SKIRT executable (one-line message).
    SkirtRunError
        If SKIRT exits with an error, exceeds ``timeout_s`` or writes no frame; the message
        quotes the tail of SKIRT's log.
    """
    executable = find_skirt(config)
    if executable is None:
        if config.executable is None:
            raise SkirtNotAvailable(SKIRT_NOT_FOUND_MESSAGE)
        raise SkirtNotAvailable(
            f"SKIRT executable {config.executable!r} (photometry.skirt.executable) not found "
            "or not executable; the built-in bc03 renderer is the default"
        )
    run.output_dir.mkdir(parents=True, exist_ok=True)
    # A frame left by an earlier run must not pass for this run's output.
    run.frame_path.unlink(missing_ok=True)
    command = [
        str(executable),
        "-b",
        "-i",
        str(run.workdir.resolve()),
        "-o",
        str(run.output_dir.resolve()),
        str(run.ski_path.resolve()),
    ]
    console = run.workdir / CONSOLE_NAME
    try:
        completed = subprocess.run(
            command,
            cwd=run.workdir,
            capture_output=True,
            text=True,
            timeout=config.timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as expired:
        console.write_text(_text(expired.stdout) + _text(expired.stderr))
        raise SkirtRunError(
            f"SKIRT did not finish {run.ski_path} within {config.timeout_s:g} s; "
            f"{_log_tail(run, console)}"
        ) from None
    console.write_text(completed.stdout + completed.stderr)
    if completed.returncode != 0:
        raise SkirtRunError(
            f"SKIRT failed on {run.ski_path} (exit code {completed.returncode}); "
            f"{_log_tail(run, console)}"
        )
    if not run.frame_path.is_file():
        raise SkirtRunError(
            f"SKIRT finished {run.ski_path} but wrote no {run.frame_path.name}; "
            f"{_log_tail(run, console)}"
        )
    return run.frame_path


def read_skirt_frame(
    fits_path: str | Path,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Wavelengths and per-pixel f_lambda of a SKIRT 9 FrameInstrument data cube.

    SKIRT writes the surface brightness as a 3D primary image (x fastest, then y, then
    wavelength) with its unit in BUNIT and the angular pixel size in CDELT1/CDELT2 (CUNIT1/2),
    and the wavelength of each frame in the ``GRID_POINTS`` column of an ASCII table extension.
    Per-wavelength (``W/m2/micron/arcsec2``, ``W/m3/sr``), per-frequency (``MJy/sr``,
    ``W/m2/Hz/sr``) and neutral lambda f_lambda (``W/m2/arcsec2``, ``W/m2/sr``) surface
    brightness are converted; photon-count (energy-style) units are refused.

    Parameters
    ----------
    fits_path : str or Path
        ``<prefix>_<instrument>_total.fits`` written by SKIRT for the instrument of
        :func:`write_skirt_inputs` (the orientation assumes its angles).

    Returns
    -------
    wavelength_angstrom : ndarray, shape (n_lambda,)
        Increasing wavelengths of the frames.
    f_lambda : ndarray, shape (n_lambda, ny, nx)
        Flux density per pixel in erg s^-1 cm^-2 Angstrom^-1 (surface brightness times the
        pixel solid angle SKIRT used); row index increases along +y, column index along +x of
        the observer's frame.

    Raises
    ------
    ValueError
        For a file that is not a SKIRT data cube, an unsupported unit, or a frame recorded with
        other instrument angles than darkstack writes.
    """
    from astropy.io import fits

    fits_path = Path(fits_path)
    with fits.open(fits_path) as hdul:
        header = hdul[0].header
        data = hdul[0].data
        if data is None or data.ndim != 3 or len(hdul) < 2:
            raise ValueError(f"{fits_path}: not a SKIRT data cube (3D image + wavelength table)")
        surface_brightness = np.array(data, dtype=np.float64)  # a copy: scaled in place below
        table = hdul[1]
        wavelength = np.asarray(table.data["GRID_POINTS"], dtype=np.float64)
        wavelength_unit = str(table.columns["GRID_POINTS"].unit or header.get("CUNIT3", ""))
        unit = str(header.get("BUNIT", ""))
        pixel_sr = _angle_rad(header, 1) * _angle_rad(header, 2)
        _check_orientation(header, fits_path)
    if len(wavelength) != surface_brightness.shape[0]:
        raise ValueError(
            f"{fits_path}: {len(wavelength)} wavelengths for {surface_brightness.shape[0]} frames"
        )
    if wavelength_unit not in _WAVELENGTH_M:
        raise ValueError(
            f"{fits_path}: wavelength unit {wavelength_unit!r} is not a wavelength; expected one "
            f"of {sorted(_WAVELENGTH_M)} (wavelengthOutputStyle=Wavelength)"
        )
    if unit not in _SURFACE_BRIGHTNESS:
        raise ValueError(
            f"{fits_path}: surface brightness unit BUNIT={unit!r} is not supported; expected "
            f"one of {sorted(_SURFACE_BRIGHTNESS)}"
        )
    wavelength_m = wavelength * _WAVELENGTH_M[wavelength_unit]
    style, to_si_per_sr = _SURFACE_BRIGHTNESS[unit]
    per_wavelength = {
        "wavelength": np.ones_like(wavelength_m),
        "frequency": _SPEED_OF_LIGHT_M_S / wavelength_m**2,
        "neutral": 1.0 / wavelength_m,
    }[style]
    # In place: a 1000 x 128 x 128 cube is 131 MB in float64.
    f_lambda = surface_brightness
    f_lambda *= to_si_per_sr * pixel_sr * _SI_F_LAMBDA_TO_CGS_ANGSTROM
    f_lambda *= per_wavelength[:, None, None]
    order = np.argsort(wavelength_m)
    # SKIRT's rows run along y_p = -y (module docstring): reverse them so rows run along +y.
    return wavelength_m[order] * 1.0e10, np.ascontiguousarray(f_lambda[order, ::-1, :])


def _positions(particles: Mapping[str, NDArray[np.floating]], kind: str) -> NDArray[np.float64]:
    if "position_kpc" not in particles:
        raise ValueError(f"{kind}: missing field 'position_kpc'")
    positions = np.asarray(particles["position_kpc"], dtype=np.float64)
    if positions.ndim != 2 or positions.shape[1] != 3:
        raise ValueError(f"{kind}: position_kpc has shape {positions.shape}; expected (n, 3)")
    return positions


def _field(
    particles: Mapping[str, NDArray[np.floating]], kind: str, name: str, n: int
) -> NDArray[np.float64]:
    if name not in particles:
        raise ValueError(f"{kind}: missing field {name!r}")
    values = np.asarray(particles[name], dtype=np.float64)
    if values.shape != (n,):
        raise ValueError(f"{kind}: {name} has shape {values.shape}; expected ({n},)")
    return values


def _write_columns(
    path: Path, *, title: str, columns: list[tuple[str, str, NDArray[np.float64]]]
) -> None:
    """A column text file with the header lines SKIRT's TextInFile reads for units."""
    header = [title] + [
        f"column {number}: {name} ({unit})"
        for number, (name, unit, _) in enumerate(columns, start=1)
    ]
    data = np.column_stack([values for _, _, values in columns])
    np.savetxt(path, data, fmt="%.9g", header="\n".join(header), comments="# ")


def _ski_text(
    *,
    distance_mpc: float,
    config: SkirtConfig,
    with_old_stars: bool,
    with_young_stars: bool,
    with_dust: bool,
) -> str:
    """The SKIRT 9 parameter file (element and attribute names from SKIRT's headers)."""
    fov_pc = field_of_view_kpc(distance_mpc=distance_mpc, config=config) * 1.0e3
    wavelength_range = {
        "minWavelength": f"{_num(config.wavelength_min_um)} micron",
        "maxWavelength": f"{_num(config.wavelength_max_um)} micron",
    }
    root = ET.Element(
        "skirt-simulation-hierarchy",
        type="MonteCarloSimulation",
        format="9",
        producer="darkstack.features.skirt",
        time="",
    )
    simulation = _item(
        root,
        None,
        "MonteCarloSimulation",
        simulationMode="ExtinctionOnly" if with_dust else "NoMedium",
        numPackets=_num(config.num_packets),
    )
    _item(simulation, "units", "ExtragalacticUnits", fluxOutputStyle="Wavelength")
    source_system = _item(simulation, "sourceSystem", "SourceSystem", **wavelength_range)
    sources = ET.SubElement(source_system, "sources", type="Source")
    for present, filename, family, family_attributes in (
        (
            with_old_stars,
            OLD_STARS_NAME,
            "BruzualCharlotSEDFamily",
            {"imf": "Chabrier", "resolution": "Low"},
        ),
        (with_young_stars, YOUNG_STARS_NAME, "MappingsSEDFamily", {}),
    ):
        if present:
            source = ET.SubElement(
                sources, "ParticleSource", filename=filename, importVelocity="false"
            )
            _item(source, "smoothingKernel", "CubicSplineSmoothingKernel")
            _item(source, "sedFamily", family, **family_attributes)
    if with_dust:
        medium_system = _item(simulation, "mediumSystem", "MediumSystem")
        media = ET.SubElement(medium_system, "media", type="Medium")
        medium = ET.SubElement(
            media,
            "ParticleMedium",
            filename=GAS_NAME,
            massType="Mass",
            massFraction=_num(config.dust_to_metal),
            importMetallicity="true",
            importTemperature="true",
            maxTemperature=f"{_num(config.max_dust_temperature_k)} K",
            importVelocity="false",
        )
        _item(medium, "smoothingKernel", "CubicSplineSmoothingKernel")
        _item(
            medium,
            "materialMix",
            "ZubkoDustMix",
            numSilicateSizes=str(ZUBKO_SIZE_BINS),
            numGraphiteSizes=str(ZUBKO_SIZE_BINS),
            numPAHSizes=str(ZUBKO_SIZE_BINS),
        )
        half = f"{_num(0.5 * fov_pc)} pc"
        minus_half = f"{_num(-0.5 * fov_pc)} pc"
        grid = _item(
            medium_system,
            "grid",
            "PolicyTreeSpatialGrid",
            minX=minus_half,
            maxX=half,
            minY=minus_half,
            maxY=half,
            minZ=minus_half,
            maxZ=half,
            treeType="OctTree",
        )
        _item(
            grid,
            "policy",
            "DensityTreePolicy",
            minLevel=str(GRID_MIN_LEVEL),
            maxLevel=str(GRID_MAX_LEVEL),
            maxDustFraction="1e-6",
        )
    instrument_system = _item(simulation, "instrumentSystem", "InstrumentSystem")
    instruments = ET.SubElement(instrument_system, "instruments", type="Instrument")
    frame = ET.SubElement(
        instruments,
        "FrameInstrument",
        instrumentName=INSTRUMENT_NAME,
        distance=f"{_num(distance_mpc)} Mpc",
        inclination=f"{_num(INCLINATION_DEG)} deg",
        azimuth=f"{_num(AZIMUTH_DEG)} deg",
        roll=f"{_num(ROLL_DEG)} deg",
        fieldOfViewX=f"{_num(fov_pc)} pc",
        numPixelsX=str(config.n_pixels),
        centerX="0 pc",
        fieldOfViewY=f"{_num(fov_pc)} pc",
        numPixelsY=str(config.n_pixels),
        centerY="0 pc",
        recordComponents="false",
        numScatteringLevels="0",
        recordPolarization="false",
        recordStatistics="false",
    )
    _item(
        frame,
        "wavelengthGrid",
        "LogWavelengthGrid",
        **wavelength_range,
        numWavelengths=str(config.num_wavelengths),
    )
    ET.indent(root, space="    ")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<!-- A SKIRT 9 parameter file written by darkstack (de los Rios et al. 2023, §3.1) -->\n"
        + ET.tostring(root, encoding="unicode")
        + "\n"
    )


def _item(parent: ET.Element, prop: str | None, item_type: str, **attributes: str) -> ET.Element:
    """A SKIRT item, wrapped in its ``<property type="BaseType">`` element unless top-level."""
    if prop is not None:
        parent = ET.SubElement(parent, prop, type=_PROPERTY_BASE_TYPE[prop])
    return ET.SubElement(parent, item_type, attrib=attributes)


#: The declared (base) type of each item-valued SKIRT property used in the ski file.
_PROPERTY_BASE_TYPE = {
    "units": "Units",
    "sourceSystem": "SourceSystem",
    "smoothingKernel": "SmoothingKernel",
    "sedFamily": "SEDFamily",
    "mediumSystem": "MediumSystem",
    "materialMix": "MaterialMix",
    "grid": "SpatialGrid",
    "policy": "TreePolicy",
    "instrumentSystem": "InstrumentSystem",
    "wavelengthGrid": "WavelengthGrid",
}


def _num(value: float) -> str:
    """A number as SKIRT reads it, without a Python-only form such as ``1e+07``."""
    return f"{value:.9g}".replace("e+", "e")


def _angle_rad(header: Header, axis: int) -> float:
    unit = str(header.get(f"CUNIT{axis}", "arcsec"))
    if unit not in _ANGLE_RAD:
        raise ValueError(f"CUNIT{axis}={unit!r} is not an angle SKIRT writes for a distant frame")
    return abs(float(header[f"CDELT{axis}"])) * _ANGLE_RAD[unit]


def _check_orientation(header: Header, fits_path: Path) -> None:
    """Refuse a frame SKIRT recorded with other angles than darkstack writes, if it says so."""
    for key, expected in (
        ("CROTA1", INCLINATION_DEG),
        ("CROTA2", AZIMUTH_DEG),
        ("CROTA3", ROLL_DEG),
    ):
        if key in header and not np.isclose(float(header[key]), expected, atol=1e-6):
            raise ValueError(
                f"{fits_path}: {key}={header[key]} but darkstack's instrument has {expected:g} "
                "deg; the image orientation would be wrong"
            )


def _log_tail(run: SkirtRun, console: Path) -> str:
    """The last lines of SKIRT's log file, or of its console output if it wrote no log."""
    source = run.log_path if run.log_path.is_file() else console
    lines = source.read_text(errors="replace").splitlines() if source.is_file() else []
    if not lines:
        return "SKIRT wrote no log"
    tail = "\n".join(lines[-LOG_TAIL_LINES:])
    return f"last lines of {source}:\n{tail}"


def _text(output: str | bytes | None) -> str:
    if output is None:
        return ""
    return output.decode(errors="replace") if isinstance(output, bytes) else output


__all__ = [
    "SKIRT_NOT_FOUND_MESSAGE",
    "SkirtConfig",
    "SkirtNotAvailable",
    "SkirtRun",
    "SkirtRunError",
    "field_of_view_kpc",
    "find_skirt",
    "read_skirt_frame",
    "run_skirt",
    "write_skirt_inputs",
]
