"""``darkstack fields``: tiled deposits, the build into fields.zarr, resuming, bad input."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from darkstack.cli import cli
from darkstack.config import ConfigError, load_config
from darkstack.features.deposit.mesh import cell_coordinates, deposit
from darkstack.features.fields import build
from darkstack.features.fields.build import check_memory, run_fields
from darkstack.features.fields.config import FieldsConfig
from darkstack.features.fields.layout import FIELDS
from darkstack.features.fields.tiles import Tiling, bucket
from darkstack.ingest.tng_local import SimulationError
from darkstack.provenance import ProvenanceError

# Small pieces (several per snapshot chunk) and tiles: every code path of the graph is used.
SETTINGS = FieldsConfig(grid=32, chunk=8, tile=16, particles_per_task=12_000)


def _assemble(cells: np.ndarray, weights: np.ndarray, *, tiling: Tiling, scheme: str) -> Any:
    """The tiled deposit, every tile from its own bucket, as the build's tasks do it."""
    buckets = bucket(cells, weights, tiling=tiling, scheme=scheme)
    grid = np.full((tiling.grid,) * 3, np.nan)
    for tile in range(tiling.n_tiles):
        rows = slice(buckets.offsets[tile], buckets.offsets[tile + 1])
        mine = buckets.weights[rows] if buckets.weights.size > 1 else buckets.weights
        grid[tiling.tile_region(tile)] = deposit(
            buckets.cells[rows], mine, shape=(tiling.tile,) * 3, scheme=scheme, periodic=False
        )
    return grid


points = st.integers(min_value=1, max_value=80).flatmap(
    lambda n: st.tuples(
        st.lists(st.tuples(*[st.floats(-1.0, 17.0, allow_nan=False)] * 3), min_size=n, max_size=n),
        st.lists(st.floats(0.0, 3.0, allow_nan=False), min_size=n, max_size=n),
    )
)


@settings(max_examples=40, deadline=None)
@given(
    data=points,
    scheme=st.sampled_from(["ngp", "cic", "tsc"]),
    tile=st.sampled_from([4, 8]),
    equal_weights=st.booleans(),
)
def test_tiled_deposit_is_the_one_tile_deposit_bit_for_bit(
    data: tuple[list[tuple[float, float, float]], list[float]],
    scheme: str,
    tile: int,
    equal_weights: bool,
) -> None:
    cells = np.array(data[0])  # some outside [0, 16): the box is periodic
    weights = np.array([1.5]) if equal_weights else np.array(data[1])
    tiled = _assemble(cells, weights, tiling=Tiling(16, tile, 4), scheme=scheme)
    whole = _assemble(cells, weights, tiling=Tiling(16, 16, 4), scheme=scheme)
    np.testing.assert_array_equal(tiled, whole)
    # ... and the plain periodic deposit, summed in another order.
    plain = deposit(cells, weights, shape=(16, 16, 16), scheme=scheme)
    np.testing.assert_allclose(tiled, plain, rtol=1e-12, atol=1e-12)


def _particles(sim: Path, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Every particle or subhalo of a field, read with illustris_python (ckpc/h, Msun)."""
    import illustris_python as il

    with h5py.File(sim / "snapdir_099" / "snap_099.0.hdf5", "r") as file:
        header = dict(file["Header"].attrs)
    h = float(header["HubbleParam"])
    if kind == "dm":
        positions = il.snapshot.loadSubset(str(sim), 99, "dm", ["Coordinates"])
        return positions, np.array([header["MassTable"][1] * 1e10 / h])
    if kind == "stars":
        stars = il.snapshot.loadSubset(
            str(sim), 99, "stars", ["Coordinates", "Masses", "GFM_StellarFormationTime"]
        )
        formed = stars["GFM_StellarFormationTime"] > 0  # wind cells are gas in TNG
        return stars["Coordinates"][formed], stars["Masses"][formed].astype(np.float64) * 1e10 / h
    subhalos = il.groupcat.loadSubhalos(str(sim), 99, fields=["SubhaloPos", kind])
    mass = subhalos[kind] if kind == "SubhaloMass" else subhalos[kind][:, 4]
    return subhalos["SubhaloPos"], mass.astype(np.float64) * 1e10 / h


@pytest.fixture(scope="module")
def built(tiny_sim: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """fields.zarr of the tiny universe, the run standing in as its own gravity-only twin."""
    store = tmp_path_factory.mktemp("fields") / "store"
    summary = run_fields(SETTINGS, sim=tiny_sim, dark=tiny_sim, store=store, progress=False)
    assert summary.report.complete and not summary.report.retry, summary.report
    return store


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("dark_dm_mass", "dm"),
        ("hydro_dm_mass", "dm"),
        ("hydro_stellar_mass", "stars"),
        ("dark_subhalo_mass", "SubhaloMass"),
        ("hydro_stellar_mass_subhalo", "SubhaloMassType"),
    ],
)
def test_each_field_is_the_deposit_of_its_objects(
    built: Path, tiny_sim: Path, name: str, kind: str
) -> None:
    dataset = xr.open_zarr(built / "fields.zarr", consolidated=False)
    field = dataset[name]
    positions, masses = _particles(tiny_sim, kind)
    box = float(dataset.attrs["box_ckpc_h"])
    expected = deposit(cell_coordinates(positions, cell_size=box / 32), masses, shape=(32,) * 3)
    assert field.dtype == np.float32 and field.shape == (32, 32, 32)
    assert field.encoding["chunks"] == (8, 8, 8)
    np.testing.assert_allclose(field.values, expected, rtol=1e-6, atol=1e-6 * expected.max())
    total = masses.sum() * (positions.shape[0] if masses.size == 1 else 1)
    assert field.attrs["weight_sum_msun"] == pytest.approx(total, rel=1e-12)
    assert field.attrs["deposited_msun"] == pytest.approx(total, rel=1e-12)
    assert field.attrs["units"] == "Msun" and field.attrs["scheme"] == "cic"
    assert field.attrs["grid"] == 32 and field.attrs["source"] == str(tiny_sim.resolve())
    assert field.attrs["box_mpc_h"] == pytest.approx(7.0)
    assert '"grid": 32' in field.attrs["config"]


def test_dataset_coordinates_and_attributes(built: Path) -> None:
    dataset = xr.open_zarr(built / "fields.zarr", consolidated=False)
    assert sorted(dataset.data_vars) == sorted(spec.name for spec in FIELDS)
    h = dataset.attrs["hubble_param"]
    np.testing.assert_allclose(dataset.x.values, np.arange(32) * 7.0 / 32 / h)
    assert dataset.x.attrs["units"] == "Mpc"
    assert dataset.attrs["format_version"] == 1 and dataset.attrs["absent_fields"] == ""
    assert not (built / "fields.work" / "buckets").exists()  # scratch removed when complete


def test_tiles_of_any_size_write_the_same_bytes(
    built: Path, tiny_sim: Path, tmp_path: Path
) -> None:
    settings_one_tile = FieldsConfig(grid=32, chunk=8, tile=32, particles_per_task=12_000)
    run_fields(settings_one_tile, sim=tiny_sim, dark=tiny_sim, store=tmp_path, progress=False)
    tiled = xr.open_zarr(built / "fields.zarr", consolidated=False)
    whole = xr.open_zarr(tmp_path / "fields.zarr", consolidated=False)
    for name in tiled.data_vars:
        np.testing.assert_array_equal(tiled[name].values, whole[name].values, err_msg=name)


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_a_rerun_after_failures_redoes_only_them_and_writes_the_same_bytes(
    built: Path, tiny_sim: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deposit_tile, read_points = build._deposit_tile, build.read_points

    def failing_tile(job: build.TileJob, **kwargs: Any) -> str:
        if job.field == "hydro_dm_mass" and job.tile_id == 3:
            raise OSError("disk full")  # not caught: the task itself fails ...
        return deposit_tile(job, **kwargs)

    def failing_read(run: Any, spec: Any, piece: Any) -> Any:
        if spec.name == "hydro_stellar_mass" and piece.file_index == 1:
            raise OSError("chunk unreadable")
        return read_points(run, spec, piece)

    monkeypatch.setattr(build, "read_points", failing_read)
    monkeypatch.setattr(build, "_deposit_tile", lambda job, **kw: _caught(failing_tile, job, kw))
    first = run_fields(SETTINGS, sim=tiny_sim, dark=tiny_sim, store=tmp_path, progress=False)
    failures = first.report.retry | first.report.failed
    assert sum(failures.values()) == 2, first.report
    assert any("chunk unreadable" in reason for reason in failures)
    assert not first.report.complete
    partial = xr.open_zarr(tmp_path / "fields.zarr", consolidated=False)
    assert np.isnan(partial.hydro_dm_mass[0:16, 16:32, 16:32]).all()  # tile 3 never written
    assert np.isnan(partial.hydro_stellar_mass).all()  # no tile of a field missing a piece
    assert "weight_sum_msun" not in partial.hydro_stellar_mass.attrs

    monkeypatch.undo()
    calls: list[tuple[str, int]] = []

    def counted(job: build.TileJob, **kwargs: Any) -> str:
        calls.append((job.field, job.tile_id))
        return deposit_tile(job, **kwargs)

    monkeypatch.setattr(build, "_deposit_tile", counted)
    second = run_fields(SETTINGS, sim=tiny_sim, dark=tiny_sim, store=tmp_path, progress=False)
    assert second.report.complete, second.report
    assert second.report.n_ok == second.report.n_items
    assert sorted(calls) == [("hydro_dm_mass", 3)] + [("hydro_stellar_mass", t) for t in range(8)]
    assert _tree(tmp_path / "fields.zarr") == _tree(built / "fields.zarr")


def _caught(task: Any, job: build.TileJob, kwargs: dict[str, Any]) -> str:
    """As map_tasks would see a task whose error escapes: the build records it."""
    try:
        return str(task(job, **kwargs))
    except OSError as error:
        return f"failed: {error}"


def test_without_dark_the_dark_fields_are_absent(tiny_sim: Path, tmp_path: Path) -> None:
    settings_hydro = FieldsConfig(grid=16, chunk=8)
    summary = run_fields(settings_hydro, sim=tiny_sim, store=tmp_path, progress=False)
    assert summary.fields == (
        "hydro_dm_mass",
        "hydro_stellar_mass",
        "hydro_stellar_mass_subhalo",
    )
    dataset = xr.open_zarr(tmp_path / "fields.zarr", consolidated=False)
    assert dataset.attrs["absent_fields"] == "dark_dm_mass, dark_subhalo_mass"
    with pytest.raises(ValueError, match="dark_dm_mass is of the gravity-only run"):
        run_fields(
            FieldsConfig(grid=16, chunk=8, fields=("dark_dm_mass",)),
            sim=tiny_sim,
            store=tmp_path / "other",
            progress=False,
        )


def test_a_store_built_otherwise_needs_rebuild(tiny_sim: Path, tmp_path: Path) -> None:
    run_fields(FieldsConfig(grid=16, chunk=8), sim=tiny_sim, store=tmp_path, progress=False)
    with pytest.raises(
        ProvenanceError, match=r"other settings \(config\.chunk: 8 -> 4\); pass --rebuild"
    ):
        run_fields(FieldsConfig(grid=16, chunk=4), sim=tiny_sim, store=tmp_path, progress=False)
    run_fields(
        FieldsConfig(grid=16, chunk=4), sim=tiny_sim, store=tmp_path, progress=False, rebuild=True
    )
    rebuilt = xr.open_zarr(tmp_path / "fields.zarr", consolidated=False)
    assert rebuilt.hydro_dm_mass.encoding["chunks"] == (4, 4, 4)


def test_a_twin_with_another_box_is_refused(tiny_sim: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(tiny_sim.parent, other)
    for chunk in (other / "output" / "snapdir_099").glob("*.hdf5"):
        with h5py.File(chunk, "r+") as file:
            file["Header"].attrs["BoxSize"] = 2 * file["Header"].attrs["BoxSize"]
    with pytest.raises(SimulationError, match=r"BoxSize \(ckpc/h\) 14000 differs from the hydro"):
        run_fields(FieldsConfig(grid=16), sim=tiny_sim, dark=other / "output", store=tmp_path / "s")


def test_bad_grids_tiles_and_fields_are_one_line_errors() -> None:
    with pytest.raises(ConfigError, match="grid=96; expected a multiple of the zarr chunk 64"):
        load_config(FieldsConfig, overrides=["grid=96"])
    with pytest.raises(ConfigError, match="tile=24; expected a multiple of the chunk 16 that"):
        load_config(FieldsConfig, overrides=["grid=96", "chunk=16", "tile=24"])
    with pytest.raises(ConfigError, match=r"fields=\('stars',\); expected names one of \["):
        load_config(FieldsConfig, overrides=["fields=[stars]"])


def test_a_tile_too_large_for_the_workers_is_refused_with_the_numbers() -> None:
    config = FieldsConfig(grid=2048, tile=1024)
    with pytest.raises(ValueError) as refused:
        check_memory(config, (2 * 2**30, 1))
    message = str(refused.value)
    # 1024^3 voxels of float64 + float32 (12 GiB) and 2e6 rows of 32 B twice (0.12 GiB),
    # against 60% of 2 GiB less the 0.39 GiB baseline; 256 is the largest divisor of 2048
    # (in steps of the 64-voxel chunk) that fits: 0.19 + 0.12 GiB.
    assert "tile 1024^3 needs 12.12 GiB per task" in message
    assert "a task may use 0.81 GiB" in message and "set tile=256" in message
    assert "\n" not in message
    check_memory(FieldsConfig(grid=2048, tile=256), (2 * 2**30, 1))  # 0.2 GiB fits


def test_cli_builds_and_reports_bad_input_in_one_line(tiny_sim: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    store = tmp_path / "store"
    result = runner.invoke(
        cli, ["fields", "--sim", str(tiny_sim), "--store", str(store), "--grid", "16"]
    )
    assert result.exit_code == 0, result.output
    assert "hydro_dm_mass, hydro_stellar_mass, hydro_stellar_mass_subhalo" in result.output
    assert "grid: 16" in (store / "fields.yaml").read_text()
    bad = runner.invoke(
        cli, ["fields", "--sim", str(tiny_sim), "--store", str(store), "--grid", "96"]
    )
    assert bad.exit_code == 2
    assert bad.output.splitlines()[0].startswith(
        "darkstack: error: --set: grid=96; expected a multiple of the zarr chunk 64 voxels"
    )
