"""``darkstack spectra``: the pencil FFT, P(k), cross-power, B(k), PDF, regions, the catalog."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import dask.array as da
import numpy as np
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
import zarr
from click.testing import CliRunner

from darkstack.catalogs.query import query_store
from darkstack.cli import cli
from darkstack.features.deposit.mesh import cell_coordinates, deposit, window
from darkstack.features.fields.build import run_fields
from darkstack.features.fields.config import FieldsConfig, SpectraConfig
from darkstack.features.fields.fft import irfftn, rfftn
from darkstack.features.fields.spectra import Spectra, run_spectra
from darkstack.store import SPECTRA_CATALOG

RAW = SpectraConfig(deconvolve_window=False)


@pytest.mark.parametrize("shape", [(24, 20, 18), (15, 16, 17)])
def test_pencil_fft_equals_numpy_on_a_field_chunked_on_all_axes(shape: tuple[int, ...]) -> None:
    values = np.random.default_rng(1).normal(size=shape)
    field = da.from_array(values, chunks=(5, 7, 4))
    # Blocks of ~4 kB: dozens of pencils per axis, so every rechunk really moves data.
    modes = rfftn(field, block_bytes=4096)
    expected = np.fft.rfftn(values)
    assert modes.numblocks[0] == 1 and modes.numblocks[1] > 1 and modes.numblocks[2] > 1
    np.testing.assert_allclose(modes.compute(), expected, rtol=0, atol=1e-12 * abs(expected).max())
    back = irfftn(modes, n=shape[2], block_bytes=4096).compute()
    np.testing.assert_allclose(back, values, rtol=0, atol=1e-12)
    single = rfftn(field, precision="single", block_bytes=4096).compute()
    assert single.dtype == np.complex64
    np.testing.assert_allclose(single, expected, rtol=0, atol=1e-6 * abs(expected).max())


def _independent_modes(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Independent modes per bin of width k_F and their mean |k| / k_F, counted the long way
    (Pylians' rule: half of the k_z = 0 and Nyquist planes)."""
    k = np.fft.fftfreq(n, 1.0 / n)
    k[n // 2] = n // 2  # Pylians counts the Nyquist index as +n/2
    kx, ky, kz = np.meshgrid(k, k, np.arange(n // 2 + 1), indexing="ij")
    plane = (kz == 0) | (kz == n // 2)
    line = (kx == 0) | (kx == n // 2)
    keep = ~(plane & ((kx < 0) | (line & (ky < 0))))
    k = np.sqrt(kx**2 + ky**2 + kz**2)[keep]
    counts = np.bincount(k.astype(int))
    return counts, np.bincount(k.astype(int), weights=k) / counts


@pytest.mark.parametrize("deconvolve", [False, True])
def test_power_of_a_plane_wave_is_its_closed_form(deconvolve: bool) -> None:
    """1 + A cos(2 pi m x / N) has P = A^2 L^3 / (4 N_modes) in bin m, nothing elsewhere."""
    n, m, amplitude, box = 32, 5, 0.3, 50.0
    x = np.arange(n)
    field = np.broadcast_to(
        1.0 + amplitude * np.cos(2 * np.pi * m * x / n)[:, None, None], (n,) * 3
    )
    config = SpectraConfig(deconvolve_window=deconvolve)
    (pk,) = Spectra(config=config, box_mpc_h=box, scheme="cic").power([field])
    modes, mean_k = (values[1:] for values in _independent_modes(n))
    np.testing.assert_array_equal(pk.counts, modes)
    np.testing.assert_allclose(pk.bins, mean_k * 2 * np.pi / box, rtol=1e-12)
    expected = np.zeros_like(pk.values)
    expected[m - 1] = amplitude**2 * box**3 / (4 * modes[m - 1])
    if deconvolve:  # the CIC window of the mode (m, 0, 0), divided out twice
        expected[m - 1] /= window(np.pi * m / n, scheme="cic") ** 2
    np.testing.assert_allclose(pk.values, expected, rtol=1e-12, atol=1e-12 * expected.max())


@pytest.mark.parametrize("scheme", ["ngp", "cic", "tsc"])
def test_poisson_points_leave_no_power_once_shot_noise_is_subtracted(scheme: str) -> None:
    rng = np.random.default_rng(3)
    n, points, box = 32, 60_000, 80.0
    cells = rng.uniform(0, n, (points, 3))
    field = deposit(cells, shape=(n,) * 3, scheme=scheme)
    shot = box**3 / points
    measure = Spectra(config=SpectraConfig(), box_mpc_h=box, scheme=scheme)
    (raw,) = measure.power([field])
    (clean,) = measure.power([field], shot_noise=shot)
    # Mode-weighted means over all bins: ~1/sqrt(16k modes) = 0.8% scatter.
    assert np.average(clean.values / shot, weights=clean.counts) == pytest.approx(0.0, abs=0.04)
    # The deconvolved noise rises toward the Nyquist frequency as Jing's aliasing says.
    shape = (raw.values - clean.values) / shot
    assert shape[0] == pytest.approx(1.0, abs=0.01) and shape[-1] > shape[0]
    assert np.average(raw.values / (shape * shot), weights=raw.counts) == pytest.approx(
        1.0, abs=0.04
    )


def test_cross_power_of_related_and_unrelated_fields() -> None:
    rng = np.random.default_rng(4)
    a = rng.lognormal(size=(24,) * 3)
    b = rng.lognormal(size=(24,) * 3)
    measure = Spectra(config=RAW, box_mpc_h=30.0, scheme="cic")
    (pa,) = measure.power([a])
    cross, r = measure.power([a, 3.0 * a + 1.0])
    np.testing.assert_allclose(r.values, 1.0, rtol=1e-12)
    # delta of 3a + 1 is 3 mean(a) / (3 mean(a) + 1) times delta of a.
    scale = 3 * a.mean() / (3 * a.mean() + 1)
    np.testing.assert_allclose(cross.values, scale * pa.values, rtol=1e-10)
    _, unrelated = measure.power([a, b])
    assert np.average(np.abs(unrelated.values), weights=unrelated.counts) < 0.05


def _clustered_field(n: int, box: float) -> np.ndarray:
    """A CIC field of 2e6 particles in blobs and a uniform background."""
    rng = np.random.default_rng(9)
    centres = rng.uniform(0, box, (300, 3))
    blobs = centres[rng.integers(0, 300, 1_000_000)] + rng.normal(0, 2.0, (1_000_000, 3))
    positions = np.concatenate([blobs % box, rng.uniform(0, box, (1_000_000, 3))])
    return deposit(cell_coordinates(positions, cell_size=box / n), shape=(n,) * 3)


@pytest.fixture(scope="module")
def oracle_field() -> tuple[np.ndarray, float]:
    return _clustered_field(128, 200.0), 200.0


def test_power_and_cross_power_equal_pylians(
    pk_library: ModuleType, oracle_field: tuple[np.ndarray, float]
) -> None:
    field, box = oracle_field
    delta = (field / field.mean() - 1).astype(np.float32)
    other = np.roll(field, 3, axis=0) ** 0.5
    delta_other = (other / other.mean() - 1).astype(np.float32)
    measure = Spectra(config=SpectraConfig(), box_mpc_h=box, scheme="cic")
    (pk,) = measure.power([field])
    theirs = pk_library.Pk(delta, box, 0, "CIC", 1, False)
    np.testing.assert_allclose(pk.bins, theirs.k3D, rtol=1e-10)
    np.testing.assert_array_equal(pk.counts, theirs.Nmodes3D)
    np.testing.assert_allclose(pk.values, theirs.Pk[:, 0], rtol=1e-4)
    cross, r = measure.power([field, other])
    both = pk_library.XPk([delta, delta_other], box, 0, ["CIC", "CIC"], 1)
    scale = np.sqrt(both.Pk[:, 0, 0] * both.Pk[:, 0, 1])  # a cross-power may cross zero
    assert np.all(np.abs(cross.values - both.XPk[:, 0, 0]) <= 1e-4 * scale)
    their_r = both.XPk[:, 0, 0] / scale
    np.testing.assert_allclose(r.values, their_r, rtol=0, atol=1e-4)


def test_bispectrum_equals_pylians(
    pk_library: ModuleType, oracle_field: tuple[np.ndarray, float]
) -> None:
    field, box = oracle_field
    delta = (field / field.mean() - 1).astype(np.float32)
    config = SpectraConfig(triangles=((0.5, 0.6),))  # the dm2gal code's triangle
    b, q = Spectra(config=config, box_mpc_h=box, scheme="cic").bispectra(field)
    theta = np.linspace(0, np.pi, 25)
    theirs = pk_library.Bk(delta, box, 0.5, 0.6, theta, "CIC", 1)
    np.testing.assert_array_equal(b.bins, theta)
    np.testing.assert_allclose(b.values, theirs.B, rtol=1e-3)
    np.testing.assert_allclose(q.values, theirs.Q, rtol=1e-3)
    np.testing.assert_allclose(b.counts, theirs.triangles * 128.0**6, rtol=1e-5)
    assert (b.k1_h_mpc, b.k2_h_mpc) == (0.5, 0.6)


def test_pdf_counts_the_voxels_of_each_bin() -> None:
    rng = np.random.default_rng(5)
    field = np.where(rng.random((16,) * 3) < 0.3, 0.0, 10 ** rng.uniform(6, 10, (16,) * 3))
    config = SpectraConfig(pdf_bins=8, pdf_log10_min=6.0, pdf_log10_max=10.0)
    pdf = Spectra(config=config, box_mpc_h=10.0, scheme="cic").pdf(field)
    counts, _ = np.histogram(np.log10(field[field > 0]), bins=np.linspace(6, 10, 9))
    np.testing.assert_array_equal(pdf.counts, counts)
    np.testing.assert_allclose(pdf.bins, np.linspace(6.25, 9.75, 8))
    np.testing.assert_allclose(pdf.values, counts / 16**3 / 0.5)
    assert pdf.notes["voxels_below"] == int((field == 0).sum())


@pytest.fixture(scope="module")
def store(tiny_sim: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A built fields.zarr of the tiny universe (32^3) whose hydro_dm_mass is then replaced by
    a 16^3 pattern repeated twice along each axis: every 16^3 region of it is periodic."""
    path = tmp_path_factory.mktemp("spectra") / "store"
    run_fields(FieldsConfig(grid=32, chunk=8), sim=tiny_sim, store=path, progress=False)
    pattern = np.random.default_rng(6).lognormal(size=(16,) * 3).astype(np.float32)
    zarr.open_array(path / "fields.zarr" / "hydro_dm_mass", mode="r+")[:] = np.tile(
        pattern, (2, 2, 2)
    )
    np.save(path / "pattern.npy", pattern)
    return path


def test_a_region_is_measured_as_a_periodic_box_of_its_own(store: Path) -> None:
    pattern = np.load(store / "pattern.npy")
    result = run_spectra(
        SpectraConfig(),
        store=store,
        field="hydro_dm_mass",
        statistic="pk",
        region="8:24,16:32,3:19",
    )
    # The region is a cyclic shift of the pattern, so its power is the pattern's.
    (expected,) = Spectra(config=SpectraConfig(), box_mpc_h=3.5, scheme="cic").power([pattern])
    (measured,) = result.measurements
    np.testing.assert_allclose(measured.values, expected.values, rtol=1e-10)
    np.testing.assert_allclose(measured.bins, expected.bins, rtol=1e-12)


def test_results_go_to_one_parquet_file_per_write_read_as_one_table(store: Path) -> None:
    first = run_spectra(SpectraConfig(), store=store, field="hydro_stellar_mass", statistic="pk")
    second = run_spectra(
        SpectraConfig(),
        store=store,
        field="hydro_dm_mass",
        cross="hydro_stellar_mass",
        statistic="xpk",
    )
    assert first.path != second.path and first.path.parent == second.path.parent
    table = pads.dataset(first.path.parent, format="parquet").to_table()
    rows = [row for row in table.to_pylist() if row["cross"] == "hydro_stellar_mass"]
    assert [row["statistic"] for row in rows] == ["xpk", "r"]
    assert {row["field"] for row in table.to_pylist()} >= {"hydro_dm_mass", "hydro_stellar_mass"}
    schema = pq.read_schema(second.path)
    assert {f.name: f.metadata[b"unit"].decode() for f in schema} == SPECTRA_CATALOG.units
    queried = query_store(store, "SELECT DISTINCT statistic FROM spectra ORDER BY 1")
    assert {"pk", "r", "xpk"} <= set(queried.column("statistic").to_pylist())
    row = rows[0]
    assert row["region"] == "0:32,0:32,0:32" and row["grid"] == 32
    assert row["bins_unit"] == "h/Mpc" and row["values_unit"] in ("(Mpc/h)^3", "")
    assert json.loads(row["config"])["fields_config"]["grid"] == 32


def test_bad_input_is_one_line(store: Path) -> None:
    runner = CliRunner()
    base = ["spectra", "--store", str(store)]
    cases = {
        ("--field", "stars", "--stat", "pk"): "field 'stars' is not in",
        ("--field", "hydro_dm_mass", "--stat", "pk", "--region", "0:40,0:40,0:40"): (
            "x range 0:40 is outside the grid of 32 voxels"
        ),
        ("--field", "hydro_dm_mass", "--stat", "pk", "--region", "0:16,0:16,0:8"): (
            "sides [16, 16, 8] differ; spectra need a cube"
        ),
        ("--field", "hydro_dm_mass", "--stat", "pk", "--region", "0-16"): (
            "expected x0:x1,y0:y1,z0:z1"
        ),
        ("--field", "hydro_dm_mass", "--stat", "xpk"): "--stat xpk needs --cross",
    }
    for arguments, message in cases.items():
        result = runner.invoke(cli, [*base, *arguments])
        assert result.exit_code != 0, arguments
        assert message in result.output, result.output
    missing = runner.invoke(cli, ["spectra", "--store", str(store / "nowhere"), "--field", "a",
                                  "--stat", "pk"])  # fmt: skip
    assert "fields.zarr not found: run `darkstack fields" in missing.output
