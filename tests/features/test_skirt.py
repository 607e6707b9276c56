"""The SKIRT 9 backend: the ski file and particle files it writes, and a stand-in executable.

SKIRT itself is not installed here. The end-to-end tests put a small Python script named ``skirt``
on PATH that reads the ski file and the old-star file, projects each star with SKIRT's own
FrameInstrument formula and writes a data cube in SKIRT's FITS layout (FITSInOut::write); they
test darkstack's handling of SKIRT's inputs and outputs, not SKIRT's radiative transfer.
"""

from __future__ import annotations

import inspect
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from darkstack.features.skirt import (
    SKIRT_NOT_FOUND_MESSAGE,
    SkirtConfig,
    SkirtNotAvailable,
    SkirtRunError,
    field_of_view_kpc,
    find_skirt,
    read_skirt_frame,
    run_skirt,
    write_skirt_inputs,
)

DISTANCE_MPC = 20.0
ARCSEC_RAD = np.pi / (180.0 * 3600.0)
#: Boltzmann constant in J/K.
K_B_J_PER_K = 1.380649e-23
#: Speed of light in Angstrom/s.
C_ANGSTROM_S = 2.99792458e18
#: TextInFile's column-info header line: "# column N: description (unit)".
COLUMN_INFO = re.compile(r"^#\s*column\s*(\d*)\s*:\s*([^()]*)\(([^)]*)\)\s*$", re.IGNORECASE)
#: Unit strings SKIRT accepts per quantity (SkirtUnitDef.cpp), for the quantities imported here.
SKIRT_UNITS = {
    "length": {"m", "cm", "mm", "km", "AU", "pc", "kpc", "Mpc"},
    "mass": {"kg", "g", "Msun", "amu"},
    "time": {"s", "yr", "Myr", "Gyr"},
    "massrate": {"kg/s", "g/s", "Msun/yr"},
    "pressure": {"Pa", "N/m2", "J/m3", "bar", "mbar", "hPa", "Ba", "erg/cm3", "K/m3"},
    "temperature": {"K"},
    "dimensionless": {"1", ""},
}
#: Quantities of the columns SKIRT expects (ParticleSource / ParticleMedium and SED families).
POSITION_AND_SIZE = ["length"] * 4
BC03_QUANTITIES = [*POSITION_AND_SIZE, "mass", "dimensionless", "time"]
MAPPINGS_QUANTITIES = [
    *POSITION_AND_SIZE,
    "massrate",
    "dimensionless",
    "dimensionless",
    "pressure",
    "dimensionless",
]
GAS_QUANTITIES = [*POSITION_AND_SIZE, "mass", "dimensionless", "temperature"]


def _stars() -> dict[str, np.ndarray]:
    """Five star particles: two younger than 10 Myr, three at or above it."""
    return {
        "position_kpc": np.array(
            [[1.0, 2.0, 3.0], [-4.0, 0.5, 0.0], [0.0, 0.0, 0.0], [2.5, -1.5, 1.0], [3.0, 3.0, -2.0]]
        ),
        "initial_mass_msun": np.array([2.0e6, 3.0e6, 1.5e6, 1.0e6, 4.0e6]),
        "mass_msun": np.array([1.9e6, 2.9e6, 1.0e6, 0.6e6, 2.0e6]),
        "age_gyr": np.array([0.005, 0.0099, 0.010, 1.0, 10.0]),
        "metallicity": np.array([0.02, 0.01, 0.015, 0.008, 0.03]),
    }


def _gas() -> dict[str, np.ndarray]:
    """Four cells: cold, hot, hot but star-forming, just above 8000 K."""
    return {
        "position_kpc": np.array(
            [[0.5, 0.5, 0.5], [10.0, 0.0, 0.0], [-1.0, 1.0, 0.0], [0.0, -3.0, 2.0]]
        ),
        "mass_msun": np.array([1.0e6, 2.0e6, 3.0e6, 4.0e6]),
        "metallicity": np.array([0.02, 0.001, 0.03, 0.01]),
        "temperature_k": np.array([5.0e3, 1.0e6, 2.0e4, 9.0e3]),
        "sfr_msun_yr": np.array([0.0, 0.0, 0.1, 0.0]),
        "smoothing_length_kpc": np.array([0.3, 2.0, 0.2, 0.8]),
        "density_msun_per_kpc3": np.array([1.0e8, 1.0e4, 1.0e9, 1.0e6]),
    }


def _read_columns(path: Path) -> tuple[list[tuple[str, str]], np.ndarray]:
    """Column (description, unit) pairs from the header, checked in order, and the data."""
    infos = []
    for line in path.read_text().splitlines():
        match = COLUMN_INFO.match(line)
        if match:
            assert int(match.group(1)) == len(infos) + 1
            infos.append((match.group(2).strip(), match.group(3).strip()))
    return infos, np.loadtxt(path, ndmin=2).reshape(-1, len(infos))


def _quantity(value: str) -> tuple[float, str]:
    number, unit = value.split()
    return float(number), unit


def _skirt_pixel(
    x: float, y: float, z: float, *, angles_deg: list[float], fov: float, n: int
) -> tuple[int, int]:
    """Pixel (i, j) of a photon packet at (x, y, z): SKIRT's FrameInstrument::pixelOnDetector."""
    import math

    theta, phi, omega = (math.radians(angle) for angle in angles_deg)
    xpp = -math.sin(phi) * x + math.cos(phi) * y
    ypp = (
        -math.cos(phi) * math.cos(theta) * x
        - math.sin(phi) * math.cos(theta) * y
        + math.sin(theta) * z
    )
    xp = math.cos(omega) * xpp - math.sin(omega) * ypp
    yp = math.sin(omega) * xpp + math.cos(omega) * ypp
    size = fov / n
    return math.floor((xp + 0.5 * fov) / size), math.floor((yp + 0.5 * fov) / size)


def _write_skirt_cube(
    path: Path,
    cube: np.ndarray,
    *,
    bunit: str,
    wavelength_um: np.ndarray,
    cdelt_arcsec: float,
    angles_deg: list[float] | None,
) -> None:
    """A data cube laid out as SKIRT's FITSInOut::write lays out a FrameInstrument cube."""
    from astropy.io import fits

    _, ny, nx = cube.shape
    primary = fits.PrimaryHDU(cube.astype(np.float32))
    header = primary.header
    header["BUNIT"] = bunit
    for axis, n in ((1, nx), (2, ny)):
        header[f"CRPIX{axis}"] = (n + 1) / 2.0
        header[f"CRVAL{axis}"] = 0.0
        header[f"CDELT{axis}"] = cdelt_arcsec
        header[f"CUNIT{axis}"] = "arcsec"
        header[f"CTYPE{axis}"] = " "
    header["CUNIT3"] = "micron"
    if angles_deg is not None:
        for axis, angle in enumerate(angles_deg, start=1):
            header[f"CROTA{axis}"] = angle
    table = fits.TableHDU.from_columns(
        [fits.Column(name="GRID_POINTS", format="E16.9", unit="micron", array=wavelength_um)]
    )
    fits.HDUList([primary, table]).writeto(path, overwrite=True)


FAKE_SKIRT_MAIN = """
def main(argv):
    import os
    import xml.etree.ElementTree as ET
    from pathlib import Path

    args = argv[1:]
    ski = Path(args[-1])
    inputs = Path(args[args.index("-i") + 1])
    outputs = Path(args[args.index("-o") + 1])
    frame = ET.parse(ski).find(".//FrameInstrument")
    grid = frame.find(".//LogWavelengthGrid")

    def number(key, element=frame):
        return float(element.get(key).split()[0])

    n = int(frame.get("numPixelsX"))
    fov_pc = number("fieldOfViewX")
    distance_pc = number("distance") * 1e6
    angles = [number(key) for key in ("inclination", "azimuth", "roll")]
    wavelength = np.geomspace(
        number("minWavelength", grid), number("maxWavelength", grid),
        int(grid.get("numWavelengths")),
    )
    stars = inputs / "stars_old.txt"
    assert "# column 1: position x (kpc)" in stars.read_text()
    cube = np.zeros((len(wavelength), n, n))
    for x, y, z, _, initial_mass, *_ in np.loadtxt(stars, ndmin=2):
        i, j = _skirt_pixel(x * 1e3, y * 1e3, z * 1e3, angles_deg=angles, fov=fov_pc, n=n)
        if 0 <= i < n and 0 <= j < n:
            cube[:, j, i] += initial_mass * 1e-6
    cdelt = np.degrees(2 * np.arctan(0.5 * fov_pc / n / distance_pc)) * 3600
    name = f"{ski.stem}_{frame.get('instrumentName')}_total.fits"
    _write_skirt_cube(
        outputs / name, cube, bunit=os.environ.get("FAKE_SKIRT_BUNIT", "W/m2/micron/arcsec2"),
        wavelength_um=wavelength, cdelt_arcsec=cdelt, angles_deg=angles,
    )
    (outputs / f"{ski.stem}_log.txt").write_text("fake SKIRT: wrote " + name + "\\n")


main(sys.argv)
"""

FAILING_SKIRT = """
from pathlib import Path

args = sys.argv[1:]
log = Path(args[args.index("-o") + 1]) / (Path(args[-1]).stem + "_log.txt")
lines = [f"  log line {k}" for k in range(40)]
lines.append("*** Error: Particle file stars_old.txt has 6 columns but 7 are expected")
log.write_text("\\n".join(lines) + "\\n")
print("*** Error: see the log", file=sys.stderr)
sys.exit(1)
"""

SLOW_SKIRT = """
import time

time.sleep(30)
"""


def _install_skirt(directory: Path, body: str) -> Path:
    """A ``skirt`` executable in ``directory`` running ``body`` with this interpreter."""
    directory.mkdir(parents=True, exist_ok=True)
    executable = directory / "skirt"
    # Postponed annotations: the helpers copied in name types the script does not import.
    executable.write_text(
        f"#!{sys.executable}\nfrom __future__ import annotations\n\nimport sys\n\n"
        f"import numpy as np\n\n{body}"
    )
    executable.chmod(0o755)
    return executable


def _fake_skirt_body() -> str:
    helpers = inspect.getsource(_skirt_pixel) + "\n" + inspect.getsource(_write_skirt_cube)
    return helpers + FAKE_SKIRT_MAIN


# ---------------------------------------------------------------- the ski file


def test_ski_is_well_formed_with_paper_settings(tmp_path: Path) -> None:
    run = write_skirt_inputs(
        tmp_path, stars=_stars(), gas=_gas(), distance_mpc=DISTANCE_MPC, config=SkirtConfig()
    )
    root = ET.parse(run.ski_path).getroot()
    assert root.tag == "skirt-simulation-hierarchy"
    assert root.get("type") == "MonteCarloSimulation" and root.get("format") == "9"
    simulation = root.find("MonteCarloSimulation")
    assert simulation is not None
    assert float(simulation.get("numPackets", "nan")) == 1e7
    assert simulation.get("simulationMode") == "ExtinctionOnly"
    units = root.find("./MonteCarloSimulation/units/ExtragalacticUnits")
    assert units is not None and units.get("fluxOutputStyle") == "Wavelength"

    source_system = root.find(".//sourceSystem/SourceSystem")
    assert source_system is not None
    assert _quantity(source_system.get("minWavelength", "")) == (0.01, "micron")
    assert _quantity(source_system.get("maxWavelength", "")) == (3.7, "micron")
    sources = {s.get("filename"): s for s in root.iterfind(".//sources/ParticleSource")}
    assert set(sources) == {"stars_old.txt", "stars_young.txt"}
    old_family = sources["stars_old.txt"].find("sedFamily/BruzualCharlotSEDFamily")
    assert old_family is not None and old_family.get("imf") == "Chabrier"
    assert sources["stars_young.txt"].find("sedFamily/MappingsSEDFamily") is not None
    for source in sources.values():
        assert source.find("smoothingKernel/CubicSplineSmoothingKernel") is not None

    medium = root.find(".//mediumSystem/MediumSystem/media/ParticleMedium")
    assert medium is not None
    assert medium.get("filename") == "gas.txt"
    assert medium.get("massType") == "Mass"
    assert float(medium.get("massFraction", "nan")) == 0.3
    assert medium.get("importMetallicity") == "true"
    assert medium.get("importTemperature") == "true"
    assert _quantity(medium.get("maxTemperature", "")) == (8000.0, "K")
    assert medium.find("materialMix/ZubkoDustMix") is not None
    grid = root.find(".//grid/PolicyTreeSpatialGrid")
    assert grid is not None and grid.find("policy/DensityTreePolicy") is not None

    frames = root.findall(".//instrumentSystem/InstrumentSystem/instruments/FrameInstrument")
    assert len(frames) == 1
    frame = frames[0]
    assert _quantity(frame.get("distance", "")) == (DISTANCE_MPC, "Mpc")
    assert frame.get("numPixelsX") == frame.get("numPixelsY") == "128"
    fov_pc = 2 * DISTANCE_MPC * 1e6 * np.tan(0.5 * 17.2 / 60 * np.pi / 180)
    for key in ("fieldOfViewX", "fieldOfViewY"):
        value, unit = _quantity(frame.get(key, ""))
        assert unit == "pc" and value == pytest.approx(fov_pc, rel=1e-8)
    assert field_of_view_kpc(distance_mpc=DISTANCE_MPC, config=SkirtConfig()) == pytest.approx(
        fov_pc / 1e3, rel=1e-12
    )
    wavelengths = frame.find("wavelengthGrid/LogWavelengthGrid")
    assert wavelengths is not None
    assert _quantity(wavelengths.get("minWavelength", "")) == (0.01, "micron")
    assert _quantity(wavelengths.get("maxWavelength", "")) == (3.7, "micron")
    assert wavelengths.get("numWavelengths") == "1000"
    # Every item-valued property is wrapped as SKIRT writes it: <property type="BaseType">.
    for wrapper in ("units", "sourceSystem", "sedFamily", "materialMix", "grid", "wavelengthGrid"):
        assert all(element.get("type") for element in root.iter(wrapper))


def test_instrument_angles_look_down_z_from_minus_z(tmp_path: Path) -> None:
    config = SkirtConfig(n_pixels=64)
    run = write_skirt_inputs(
        tmp_path, stars=_stars(), gas=_gas(), distance_mpc=DISTANCE_MPC, config=config
    )
    frame = ET.parse(run.ski_path).getroot().find(".//FrameInstrument")
    assert frame is not None
    angles = [_quantity(frame.get(key, ""))[0] for key in ("inclination", "azimuth", "roll")]
    theta, phi = np.radians(angles[:2])
    # DistantInstrument: (theta, phi) is the direction towards the observer, here -z.
    towards_observer = [np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)]
    np.testing.assert_allclose(towards_observer, [0.0, 0.0, -1.0], atol=1e-12)
    fov_pc, n = _quantity(frame.get("fieldOfViewX", ""))[0], 64
    centre = n // 2
    i, j = _skirt_pixel(0.2 * fov_pc, 0.0, 0.0, angles_deg=angles, fov=fov_pc, n=n)
    assert i > centre and j in (centre - 1, centre)  # +x runs along SKIRT's x_p
    i, j = _skirt_pixel(0.0, 0.2 * fov_pc, 0.0, angles_deg=angles, fov=fov_pc, n=n)
    assert j < centre - 1 and i in (centre - 1, centre)  # +y runs along -y_p: rows get reversed
    # z is the line of sight: it does not move a packet on the detector.
    assert _skirt_pixel(
        0.1 * fov_pc, 0.3 * fov_pc, 0.0, angles_deg=angles, fov=fov_pc, n=n
    ) == _skirt_pixel(0.1 * fov_pc, 0.3 * fov_pc, 0.4 * fov_pc, angles_deg=angles, fov=fov_pc, n=n)


def test_without_dust_bearing_gas_the_simulation_has_no_medium(tmp_path: Path) -> None:
    gas = _gas()
    gas["temperature_k"] = np.full(4, 1.0e6)
    gas["sfr_msun_yr"] = np.zeros(4)
    run = write_skirt_inputs(
        tmp_path, stars=_stars(), gas=gas, distance_mpc=DISTANCE_MPC, config=SkirtConfig()
    )
    root = ET.parse(run.ski_path).getroot()
    simulation = root.find("MonteCarloSimulation")
    assert simulation is not None and simulation.get("simulationMode") == "NoMedium"
    assert root.find(".//mediumSystem") is None
    assert run.n_dust_cells == 0


# ---------------------------------------------------------------- the particle files


def test_import_files_have_declared_columns_units_and_values(tmp_path: Path) -> None:
    stars, gas = _stars(), _gas()
    run = write_skirt_inputs(
        tmp_path, stars=stars, gas=gas, distance_mpc=DISTANCE_MPC, config=SkirtConfig()
    )
    assert (run.n_old_stars, run.n_young_stars) == (3, 2)
    old = stars["age_gyr"] >= 0.010
    young = ~old
    # With five stars the 32nd neighbour does not exist: h is the farthest other star.
    separations = np.linalg.norm(
        stars["position_kpc"][:, None, :] - stars["position_kpc"][None, :, :], axis=-1
    )
    smoothing_kpc = separations.max(axis=1)

    for name, quantities, rows in (
        ("stars_old.txt", BC03_QUANTITIES, 3),
        ("stars_young.txt", MAPPINGS_QUANTITIES, 2),
        ("gas.txt", GAS_QUANTITIES, 4),
    ):
        infos, data = _read_columns(tmp_path / name)
        assert data.shape == (rows, len(quantities)), name
        for (description, unit), quantity in zip(infos, quantities, strict=True):
            assert unit in SKIRT_UNITS[quantity], (name, description, unit)
        assert [unit for _, unit in infos[:4]] == ["kpc"] * 4

    infos, old_data = _read_columns(tmp_path / "stars_old.txt")
    assert [unit for _, unit in infos[4:]] == ["Msun", "1", "yr"]
    np.testing.assert_allclose(old_data[:, :3], stars["position_kpc"][old], rtol=1e-8)
    np.testing.assert_allclose(old_data[:, 3], smoothing_kpc[old], rtol=1e-8)
    np.testing.assert_allclose(old_data[:, 4], stars["initial_mass_msun"][old], rtol=1e-8)
    np.testing.assert_allclose(old_data[:, 5], stars["metallicity"][old], rtol=1e-8)
    np.testing.assert_allclose(old_data[:, 6], [1.0e7, 1.0e9, 1.0e10], rtol=1e-8)

    infos, young_data = _read_columns(tmp_path / "stars_young.txt")
    assert [unit for _, unit in infos[4:]] == ["Msun/yr", "1", "1", "Pa", "1"]
    np.testing.assert_allclose(young_data[:, :3], stars["position_kpc"][young], rtol=1e-8)
    np.testing.assert_allclose(young_data[:, 3], smoothing_kpc[young], rtol=1e-8)
    # Constant star formation over MAPPINGS' 10 Myr: M_init / 1e7 yr.
    np.testing.assert_allclose(young_data[:, 4], [0.2, 0.3], rtol=1e-8)
    np.testing.assert_allclose(young_data[:, 5], [0.02, 0.01], rtol=1e-8)
    np.testing.assert_allclose(young_data[:, 6], 5.0)
    # P / k_B = 1e5 K cm^-3 = 1e11 K m^-3, times k_B in J/K, is Pa.
    np.testing.assert_allclose(young_data[:, 7], 1e11 * K_B_J_PER_K, rtol=1e-8)
    np.testing.assert_allclose(young_data[:, 8], 0.2)


def test_given_stellar_smoothing_lengths_are_used(tmp_path: Path) -> None:
    stars = _stars()
    stars["smoothing_length_kpc"] = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    write_skirt_inputs(
        tmp_path, stars=stars, gas=_gas(), distance_mpc=DISTANCE_MPC, config=SkirtConfig()
    )
    _, old_data = _read_columns(tmp_path / "stars_old.txt")
    _, young_data = _read_columns(tmp_path / "stars_young.txt")
    np.testing.assert_allclose(old_data[:, 3], [0.3, 0.4, 0.5])
    np.testing.assert_allclose(young_data[:, 3], [0.1, 0.2])


def test_hot_gas_carries_no_dust_unless_star_forming(tmp_path: Path) -> None:
    gas = _gas()
    run = write_skirt_inputs(
        tmp_path, stars=_stars(), gas=gas, distance_mpc=DISTANCE_MPC, config=SkirtConfig()
    )
    medium = ET.parse(run.ski_path).getroot().find(".//ParticleMedium")
    assert medium is not None
    max_temperature_k = _quantity(medium.get("maxTemperature", ""))[0]
    mass_fraction = float(medium.get("massFraction", "nan"))
    infos, data = _read_columns(tmp_path / "gas.txt")
    assert [unit for _, unit in infos] == ["kpc"] * 4 + ["Msun", "1", "K"]
    np.testing.assert_allclose(data[:, :3], gas["position_kpc"], rtol=1e-8)
    np.testing.assert_allclose(data[:, 3], gas["smoothing_length_kpc"], rtol=1e-8)
    np.testing.assert_allclose(data[:, 4], gas["mass_msun"], rtol=1e-8)
    np.testing.assert_allclose(data[:, 5], gas["metallicity"], rtol=1e-8)
    # Star-forming cells carry their cold-phase temperature, so SKIRT's cut keeps them.
    np.testing.assert_allclose(data[:, 6], [5.0e3, 1.0e6, 1.0e3, 9.0e3])
    # ParticleMedium: imported mass = massFraction * Z * M where T < maxTemperature, else 0.
    dust_msun = np.where(data[:, 6] < max_temperature_k, mass_fraction * data[:, 5] * data[:, 4], 0)
    np.testing.assert_allclose(dust_msun, [0.3 * 0.02 * 1e6, 0.0, 0.3 * 0.03 * 3e6, 0.0])
    assert run.n_dust_cells == 2


def test_bad_particle_input_is_refused(tmp_path: Path) -> None:
    stars = _stars()
    del stars["age_gyr"]
    with pytest.raises(ValueError, match="age_gyr"):
        write_skirt_inputs(
            tmp_path, stars=stars, gas=_gas(), distance_mpc=10.0, config=SkirtConfig()
        )
    lone_star = {key: value[:1] for key, value in _stars().items()}
    with pytest.raises(ValueError, match="smoothing_length_kpc"):
        write_skirt_inputs(
            tmp_path, stars=lone_star, gas=_gas(), distance_mpc=10.0, config=SkirtConfig()
        )
    with pytest.raises(ValueError, match="distance_mpc"):
        write_skirt_inputs(
            tmp_path, stars=_stars(), gas=_gas(), distance_mpc=0.0, config=SkirtConfig()
        )


# ---------------------------------------------------------------- finding and running SKIRT


def test_without_skirt_run_raises_one_line_not_available(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "")
    config = SkirtConfig()
    assert find_skirt(config) is None
    run = write_skirt_inputs(
        tmp_path, stars=_stars(), gas=_gas(), distance_mpc=DISTANCE_MPC, config=config
    )
    with pytest.raises(SkirtNotAvailable) as caught:
        run_skirt(run, config=config)
    assert str(caught.value) == SKIRT_NOT_FOUND_MESSAGE
    assert str(caught.value) == (
        "SKIRT executable not found on PATH (set photometry.skirt.executable); "
        "the built-in bc03 renderer is the default"
    )
    assert "\n" not in str(caught.value)
    missing = SkirtConfig(executable=str(tmp_path / "no" / "skirt"))
    assert find_skirt(missing) is None
    with pytest.raises(SkirtNotAvailable) as caught:
        run_skirt(run, config=missing)
    assert "no/skirt" in str(caught.value) and "\n" not in str(caught.value)


def test_fake_skirt_end_to_end_units_and_orientation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    executable = _install_skirt(tmp_path / "bin", _fake_skirt_body())
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    config = SkirtConfig(n_pixels=16, num_wavelengths=40)
    assert find_skirt(config) == executable
    assert find_skirt(SkirtConfig(executable=str(executable))) == executable

    fov_kpc = field_of_view_kpc(distance_mpc=DISTANCE_MPC, config=config)
    stars = _stars()
    # Two old stars at distinct places: A at (+x, +y) twice as massive as B at (-x, +y).
    stars["position_kpc"][3] = [0.213 * fov_kpc, 0.337 * fov_kpc, 5.0]
    stars["position_kpc"][4] = [-0.301 * fov_kpc, 0.112 * fov_kpc, -5.0]
    stars["initial_mass_msun"][3:] = [2.0e6, 1.0e6]
    stars["position_kpc"][2] = [10 * fov_kpc, 0.0, 0.0]  # outside the field
    run = write_skirt_inputs(
        tmp_path / "work", stars=stars, gas=_gas(), distance_mpc=DISTANCE_MPC, config=config
    )

    frame_path = run_skirt(run, config=config)
    assert frame_path == run.frame_path == tmp_path / "work" / "out" / "galaxy_sdss_total.fits"
    assert (tmp_path / "work" / "skirt_console.txt").is_file()
    wavelength_angstrom, f_lambda = read_skirt_frame(frame_path)

    np.testing.assert_allclose(wavelength_angstrom, np.geomspace(0.01, 3.7, 40) * 1e4, rtol=1e-7)
    assert f_lambda.shape == (40, 16, 16)
    pixel_kpc = fov_kpc / 16
    expected = np.zeros((16, 16))
    for (x, y, _), surface_brightness in (
        (stars["position_kpc"][3], 2.0),
        (stars["position_kpc"][4], 1.0),
    ):
        expected[int((y + fov_kpc / 2) // pixel_kpc), int((x + fov_kpc / 2) // pixel_kpc)] = (
            surface_brightness
        )
    assert expected[13, 11] == 2.0 and expected[9, 3] == 1.0  # rows +y, columns +x
    # By hand: the pixel subtends (2 atan(Δ / 2d))^2; 1 W m^-2 micron^-1 = 0.1 erg/s/cm2/A.
    cdelt_arcsec = 2 * np.arctan(0.5 * pixel_kpc / (DISTANCE_MPC * 1e3)) / ARCSEC_RAD
    per_unit = cdelt_arcsec**2 * 0.1
    for frame in f_lambda:
        np.testing.assert_allclose(frame, expected * per_unit, rtol=1e-6)


def test_fake_skirt_frequency_units_convert_to_f_lambda(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    executable = _install_skirt(tmp_path / "bin", _fake_skirt_body())
    monkeypatch.setenv("FAKE_SKIRT_BUNIT", "MJy/sr")
    config = SkirtConfig(executable=str(executable), n_pixels=8, num_wavelengths=5)
    stars = _stars()
    # All old stars in pixel (4, 4), clear of pixel borders (12.5 kpc pixels).
    stars["position_kpc"][2:] = [[0.1, 0.1, 0.0]] * 3
    run = write_skirt_inputs(
        tmp_path / "work", stars=stars, gas=_gas(), distance_mpc=DISTANCE_MPC, config=config
    )
    wavelength_angstrom, f_lambda = read_skirt_frame(run_skirt(run, config=config))
    value_mjy_sr = 1e-6 * stars["initial_mass_msun"][2:].sum()
    pixel_kpc = field_of_view_kpc(distance_mpc=DISTANCE_MPC, config=config) / 8
    pixel_sr = (2 * np.arctan(0.5 * pixel_kpc / (DISTANCE_MPC * 1e3))) ** 2
    # f_nu = 1e6 Jy * 1e-23 erg/s/cm2/Hz per Jy * Omega; f_lambda = f_nu c / lambda^2.
    expected = value_mjy_sr * 1e6 * 1e-23 * pixel_sr * C_ANGSTROM_S / wavelength_angstrom**2
    np.testing.assert_allclose(f_lambda[:, 4, 4], expected, rtol=1e-6)
    assert np.count_nonzero(f_lambda) == 5


def test_failing_skirt_error_quotes_log_tail(tmp_path: Path) -> None:
    executable = _install_skirt(tmp_path / "bin", FAILING_SKIRT)
    config = SkirtConfig(executable=str(executable))
    run = write_skirt_inputs(
        tmp_path / "work", stars=_stars(), gas=_gas(), distance_mpc=DISTANCE_MPC, config=config
    )
    with pytest.raises(SkirtRunError) as caught:
        run_skirt(run, config=config)
    message = str(caught.value)
    assert "exit code 1" in message and str(run.log_path) in message
    assert "*** Error: Particle file stars_old.txt has 6 columns but 7 are expected" in message
    assert "log line 39" in message and "log line 5\n" not in message


def test_skirt_without_frame_is_an_error_even_with_a_stale_one(tmp_path: Path) -> None:
    executable = _install_skirt(tmp_path / "bin", "sys.exit(0)\n")
    config = SkirtConfig(executable=str(executable))
    run = write_skirt_inputs(
        tmp_path / "work", stars=_stars(), gas=_gas(), distance_mpc=DISTANCE_MPC, config=config
    )
    run.frame_path.write_text("a frame left by an earlier run")
    with pytest.raises(SkirtRunError, match=r"wrote no galaxy_sdss_total\.fits"):
        run_skirt(run, config=config)


def test_skirt_timeout_is_an_error(tmp_path: Path) -> None:
    executable = _install_skirt(tmp_path / "bin", SLOW_SKIRT)
    config = SkirtConfig(executable=str(executable), timeout_s=0.5)
    run = write_skirt_inputs(
        tmp_path / "work", stars=_stars(), gas=_gas(), distance_mpc=DISTANCE_MPC, config=config
    )
    with pytest.raises(SkirtRunError, match=r"within 0\.5 s"):
        run_skirt(run, config=config)


# ---------------------------------------------------------------- reading SKIRT's cube


@pytest.mark.parametrize(
    ("bunit", "to_f_lambda"),
    [
        ("W/m2/micron/arcsec2", lambda omega_arcsec2, lam: 0.1 * omega_arcsec2),
        ("W/m3/sr", lambda omega_arcsec2, lam: 1e-7 * omega_arcsec2 * ARCSEC_RAD**2),
        # lambda f_lambda: W/m2 per arcsec2 times Omega, over lambda in Angstrom, W/m2 -> cgs.
        ("W/m2/arcsec2", lambda omega_arcsec2, lam: 1e3 * omega_arcsec2 / lam),
    ],
)
def test_read_frame_units(
    bunit: str, to_f_lambda: Callable[[float, np.ndarray], np.ndarray], tmp_path: Path
) -> None:
    wavelength_um = np.array([0.35, 0.62, 0.91])
    cube = np.zeros((3, 4, 5))
    cube[:, 0, 4] = [1.0, 2.0, 3.0]  # SKIRT's last column and first row: +x, -y
    path = tmp_path / "cube.fits"
    _write_skirt_cube(
        path, cube, bunit=bunit, wavelength_um=wavelength_um, cdelt_arcsec=0.4, angles_deg=None
    )
    wavelength_angstrom, f_lambda = read_skirt_frame(path)
    np.testing.assert_allclose(wavelength_angstrom, wavelength_um * 1e4, rtol=1e-7)
    assert f_lambda.shape == (3, 4, 5)
    expected = np.array([1.0, 2.0, 3.0]) * to_f_lambda(0.16, wavelength_angstrom)
    np.testing.assert_allclose(f_lambda[:, 3, 4], expected, rtol=1e-6)
    assert np.count_nonzero(f_lambda) == 3


def test_read_frame_refuses_unknown_units_and_other_orientations(tmp_path: Path) -> None:
    path = tmp_path / "cube.fits"
    cube = np.ones((2, 3, 3))
    wavelength_um = np.array([0.5, 0.6])
    _write_skirt_cube(
        path,
        cube,
        bunit="1/s/cm2/keV/arcsec2",
        wavelength_um=wavelength_um,
        cdelt_arcsec=0.4,
        angles_deg=None,
    )
    with pytest.raises(ValueError, match="BUNIT"):
        read_skirt_frame(path)
    _write_skirt_cube(
        path,
        cube,
        bunit="MJy/sr",
        wavelength_um=wavelength_um,
        cdelt_arcsec=0.4,
        angles_deg=[0.0, 0.0, 90.0],
    )
    with pytest.raises(ValueError, match="CROTA1"):
        read_skirt_frame(path)
