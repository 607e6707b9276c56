"""The store module: its layout is the contract's, its schemas are what writers build and what
readers refuse, and partitioned catalogs read as their newest write per partition."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xarray as xr
import zarr

from darkstack.store import (
    GALAXIES_CATALOG,
    OBSERVATIONS_ZARR,
    PREDICTIONS_CATALOG,
    CatalogSpec,
    Column,
    SchemaError,
    StoreLayout,
    Variable,
    ZarrSpec,
    catalog_sources,
    column_units,
    open_group,
    read_catalog,
    read_metadata,
    write_catalog,
)

ROOT = Path("/data/STORE")


def test_layout_is_the_contracts() -> None:
    """The paths of shared/CONTRACT.md ("The store"), spelled out independently here."""
    layout = StoreLayout(ROOT)
    assert layout.catalog("galaxies") == ROOT / "catalogs/galaxies.parquet"
    assert layout.catalog("observations") == ROOT / "catalogs/observations.parquet"
    assert layout.catalog("predictions") == ROOT / "catalogs/predictions"
    assert layout.catalog("spectra") == ROOT / "catalogs/spectra"
    assert layout.legacy_catalog("predictions") == ROOT / "catalogs/predictions.parquet"
    for name in ("dwarfs", "clusters", "cluster_observables"):
        assert layout.catalog(name) == ROOT / f"catalogs/{name}.parquet"
    for name in ("observations", "fields", "phase_space", "cluster_maps"):
        assert layout.zarr(name) == ROOT / f"{name}.zarr"
    assert layout.work("observations") == ROOT / "observations.work"
    assert layout.cutout(42) == ROOT / "cutouts/subhalo_00000042.hdf5"
    assert layout.cluster_cutout(7) == ROOT / "cutouts/group_00000007.hdf5"
    assert layout.cutouts_work == ROOT / "cutouts/.work"
    assert layout.hi_cube(42, 1) == ROOT / "cubes/subhalo_00000042_r1.fits"
    assert layout.ingest_config == ROOT / "ingest.yaml"
    assert layout.observe_config == ROOT / "observe.yaml"
    run = layout.run("B_urz_m4_s0")
    assert run.root == ROOT / "runs/B_urz_m4_s0"
    assert (run.config, run.model, run.report) == (
        ROOT / "runs/B_urz_m4_s0/config.yaml",
        ROOT / "runs/B_urz_m4_s0/model.pt",
        ROOT / "runs/B_urz_m4_s0/report",
    )


def test_unknown_names_and_unsafe_runs_are_refused() -> None:
    layout = StoreLayout(ROOT)
    with pytest.raises(ValueError, match=r"'halos' is not a catalog of the store; expected one"):
        layout.catalog("halos")
    with pytest.raises(ValueError, match=r"'images' is not a zarr dataset"):
        layout.zarr("images")
    for name in ("", "../escape", ".hidden"):
        with pytest.raises(ValueError, match="expected a plain directory name"):
            layout.run(name)


def _observations(n_samples: int = 4, n_radii: int = 3, pixels: int = 5) -> xr.Dataset:
    rng = np.random.default_rng(0)
    return OBSERVATIONS_ZARR.build(
        data_vars={
            "images": rng.normal(size=(n_samples, 8, pixels, pixels)),
            "targets": rng.uniform(9, 12, (n_samples, n_radii)),
        },
        coords={
            "sample": range(n_samples),
            "channel": OBSERVATIONS_ZARR.labels("channel"),
            "radius": np.geomspace(1, 100, n_radii),
            "subhalo_id": 7 * np.arange(n_samples),
            "realisation": np.zeros(n_samples),
            "distance_mpc": rng.uniform(10, 20, n_samples),
            "orientation": np.tile([0.0, 0.0, 0.0, 1.0], (n_samples, 1)),
        },
        attrs={"config": "{}", "darkstack_version": "test"},
    )


def test_a_zarr_spec_builds_the_dataset_it_declares(tmp_path: Path) -> None:
    dataset = _observations()
    assert dataset["images"].dims == ("sample", "channel", "y", "x")
    assert dataset["images"].dtype == np.float32  # cast from the float64 given
    assert dataset["targets"].dtype == np.float32
    assert dataset["sample"].dtype == np.int64 and dataset["realisation"].dtype == np.int64
    assert dataset["targets"].attrs["units"] == "log10 Msun"
    assert dataset["radius"].attrs["units"] == "kpc"
    assert dataset.attrs["format_version"] == OBSERVATIONS_ZARR.version == 2
    assert json.loads(dataset.attrs["channel_units"]) == {
        **{f"sdss_{band}": "nanomaggies per pixel" for band in "ugriz"},
        "hi_mom0": "Jy/beam km/s",
        "hi_mom1": "km/s",
        "hi_mom2": "km/s",
    }
    store = tmp_path / "store"
    dataset.to_zarr(StoreLayout(store).zarr("observations"), mode="w", consolidated=False)
    group = open_group(store, OBSERVATIONS_ZARR)
    np.testing.assert_array_equal(group["subhalo_id"][:], [0, 7, 14, 21])


def test_a_zarr_spec_refuses_what_it_does_not_declare() -> None:
    dataset = _observations()
    coords = {name: dataset[name].values for name in dataset.coords}
    data_vars = {name: dataset[name].values for name in dataset.data_vars}
    attrs = {"config": "{}", "darkstack_version": "test"}
    with pytest.raises(SchemaError, match=r"variables missing \['targets'\]"):
        OBSERVATIONS_ZARR.build(
            coords=coords, data_vars={"images": data_vars["images"]}, attrs=attrs
        )
    with pytest.raises(SchemaError, match=r"not in the schema \['extra'\]"):
        OBSERVATIONS_ZARR.build(coords=coords, data_vars={**data_vars, "extra": 1}, attrs=attrs)
    with pytest.raises(SchemaError, match=r"attributes \['darkstack_version'\] are required"):
        OBSERVATIONS_ZARR.build(coords=coords, data_vars=data_vars, attrs={"config": "{}"})
    swapped = {**coords, "channel": ["sdss_g", "sdss_u", *coords["channel"][2:]]}
    with pytest.raises(SchemaError, match=r"channel \['sdss_g', 'sdss_u'"):
        OBSERVATIONS_ZARR.build(coords=swapped, data_vars=data_vars, attrs=attrs)


@pytest.fixture
def observed(tmp_path: Path) -> Path:
    store = tmp_path / "store"
    _observations().to_zarr(StoreLayout(store).zarr("observations"), consolidated=False)
    return store


def test_a_zarr_without_a_variable_is_refused_in_one_line(observed: Path) -> None:
    path = StoreLayout(observed).zarr("observations")
    del zarr.open_group(path, mode="r+")["targets"]
    with pytest.raises(SchemaError) as caught:
        open_group(observed, OBSERVATIONS_ZARR)
    assert str(caught.value) == (
        f"{path}: no variable 'targets'; expected targets(sample, radius) float32 in log10 Msun "
        "(observations.zarr format 2)"
    )


def test_a_zarr_of_another_version_or_shape_is_refused(observed: Path) -> None:
    path = StoreLayout(observed).zarr("observations")
    group = zarr.open_group(path, mode="r+")
    rebuild = f"rebuild it with `darkstack observe --store {observed} --rebuild`"
    group.attrs["format_version"] = 1
    with pytest.raises(SchemaError) as caught:
        open_group(observed, OBSERVATIONS_ZARR)
    assert str(caught.value) == (
        f"{path}: observations.zarr format version 1, this darkstack reads format 2; {rebuild}"
    )
    # Stores written before format versions hold format 1.
    del group.attrs["format_version"]
    with pytest.raises(SchemaError, match=r"format version 1, this darkstack reads format 2"):
        open_group(observed, OBSERVATIONS_ZARR)
    # A dataset nothing rebuilds in place is written again into a new store.
    no_rebuild = dataclasses.replace(OBSERVATIONS_ZARR, rebuilt_by="")
    with pytest.raises(SchemaError, match=r"run `darkstack observe` again into a new store$"):
        open_group(observed, no_rebuild)
    group.attrs["format_version"] = 2
    assert open_group(observed, OBSERVATIONS_ZARR) is not None
    del group["distance_mpc"]
    group.create_array("distance_mpc", shape=(4,), dtype="float32", dimension_names=["sample"])
    with pytest.raises(
        SchemaError,
        match=r"variable 'distance_mpc' is \(sample\) float32; expected distance_mpc\(sample\) "
        r"float64 in Mpc",
    ):
        open_group(observed, OBSERVATIONS_ZARR)


def test_a_missing_dataset_names_the_command_that_writes_it(tmp_path: Path) -> None:
    with pytest.raises(
        FileNotFoundError, match=r"observations\.zarr does not exist: run `darkstack observe` first"
    ):
        open_group(tmp_path, OBSERVATIONS_ZARR)
    with pytest.raises(
        FileNotFoundError, match=r"galaxies\.parquet does not exist: run `darkstack ingest`"
    ):
        read_catalog(tmp_path, GALAXIES_CATALOG)


def test_a_future_dataset_is_one_more_spec(tmp_path: Path) -> None:
    """A 3D field: a spec, no code; built, written and checked like observations."""
    fields = ZarrSpec(
        name="fields",
        version=1,
        coords=(Variable(name="x", dims=("x",), dtype="float64", unit="Mpc"),),
        data_vars=(Variable(name="dm_mass", dims=("x", "y", "z"), dtype="float32", unit="Msun"),),
        written_by="darkstack fields",
    )
    dataset = fields.build(
        coords={"x": np.arange(4.0)}, data_vars={"dm_mass": np.ones((4, 4, 4))}, attrs={}
    )
    path = StoreLayout(tmp_path).zarr("fields")
    dataset.to_zarr(path, consolidated=False)
    assert float(fields.check(path)["dm_mass"][:].sum()) == 64.0


GALAXY_COLUMNS = {
    "subhalo_id": [3, 10],
    "group_id": [0, 1],
    "snap": [99, 99],
    "stellar_mass_msun": [2e10, 5e10],
    "sfr_msun_yr": [1.0, 2.5],
    "m200c_msun": [1e12, 3e12],
    "r200c_kpc": [200.0, 290.0],
    "r_half_star_kpc": [3.0, 4.5],
    "radii_kpc": [[1.0, 10.0], [1.0, 10.0]],
    "log10_mdm_enclosed": [[8.5, 10.9], [8.9, 11.2]],
    "status": ["ok", "ok"],
}


def test_catalogs_are_written_with_units_and_version(tmp_path: Path) -> None:
    path = write_catalog(tmp_path, GALAXIES_CATALOG, GALAXY_COLUMNS, metadata={"snapshot": 99})
    assert path == StoreLayout(tmp_path).catalog("galaxies")
    assert read_metadata(path) == {"snapshot": 99, "format_version": 1}
    units = column_units(path)
    assert units["stellar_mass_msun"] == "Msun" and units["log10_mdm_enclosed"] == "log10 Msun"
    assert units["sfr_msun_yr"] == "Msun/yr" and units["subhalo_id"] == ""
    table = read_catalog(tmp_path, GALAXIES_CATALOG, columns=["subhalo_id", "r200c_kpc"])
    assert table.to_pydict() == {"subhalo_id": [3, 10], "r200c_kpc": [200.0, 290.0]}


def test_catalog_writers_keep_to_the_schema(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match=r"columns \['colour'\] are not in the galaxies schema"):
        write_catalog(tmp_path, GALAXIES_CATALOG, {**GALAXY_COLUMNS, "colour": ["red", "blue"]})
    partial = {k: v for k, v in GALAXY_COLUMNS.items() if k != "status"}
    with pytest.raises(SchemaError, match=r"galaxies writer: no column 'status'; expected status"):
        write_catalog(tmp_path, GALAXIES_CATALOG, partial)
    assert not StoreLayout(tmp_path).catalogs.exists()


def test_catalog_readers_refuse_another_version_or_a_missing_column(tmp_path: Path) -> None:
    path = write_catalog(tmp_path, GALAXIES_CATALOG, GALAXY_COLUMNS)
    with pytest.raises(SchemaError) as caught:
        read_catalog(tmp_path, GALAXIES_CATALOG, columns=["subhalo_id", "vmax_kms"])
    assert str(caught.value) == (
        f"{path}: no column 'vmax_kms'; expected vmax_kms [km/s] (galaxies format 1, written "
        "by `darkstack ingest`)"
    )
    table = pq.read_table(path)
    metadata = {**table.schema.metadata, b"darkstack": b'{"format_version": 3}'}
    pq.write_table(table.replace_schema_metadata(metadata), path)
    with pytest.raises(SchemaError, match=rf"^{path}: galaxies format version 3, expected 1"):
        read_catalog(tmp_path, GALAXIES_CATALOG)


def _prediction(run: str, samples: list[int], value: float) -> dict[str, list]:
    n = len(samples)
    row = [value, value + 1.0]
    columns: dict[str, list] = {"run": [run] * n, "split": ["test"] * n, "sample": samples}
    columns["subhalo_id"] = [7 * s for s in samples]
    for column in PREDICTIONS_CATALOG.columns[4:]:
        columns.setdefault(column.name, [row] * n)
    return columns


def test_a_partitioned_catalog_shows_the_newest_write_of_each_partition(tmp_path: Path) -> None:
    # '+', '%' and '/'-free punctuation survive the folder name (percent-encoded).
    runs = ["B_urz+hi_m4", "50%", "2024"]
    for index, run in enumerate(runs):
        write_catalog(tmp_path, PREDICTIONS_CATALOG, _prediction(run, [0, 1], index))
    again = write_catalog(tmp_path, PREDICTIONS_CATALOG, _prediction("50%", [5], 9.0))
    assert again.parent.name == "run=50%25"
    assert again.parent.parent == StoreLayout(tmp_path).catalog("predictions")
    assert read_metadata(again)["partition"] == {"run": "50%"}
    assert "run" not in pq.read_schema(again).names  # the folder says it
    table = read_catalog(tmp_path, PREDICTIONS_CATALOG)
    assert table.column_names[0] == "run"
    rows = sorted(zip(table["run"].to_pylist(), table["sample"].to_pylist(), strict=True))
    assert rows == [("2024", 0), ("2024", 1), ("50%", 5), ("B_urz+hi_m4", 0), ("B_urz+hi_m4", 1)]
    # Any Hive-aware reader sees the same runs.
    assert set(pq.read_table(StoreLayout(tmp_path).catalog("predictions"))["run"].to_pylist()) == {
        *runs
    }


def test_folders_above_the_store_are_not_partitions(tmp_path: Path) -> None:
    store = tmp_path / "seed=3" / "store"
    write_catalog(store, PREDICTIONS_CATALOG, _prediction("a", [0], 1.0))
    write_catalog(store, GALAXIES_CATALOG, GALAXY_COLUMNS)
    assert "seed" not in read_catalog(store, PREDICTIONS_CATALOG).column_names
    for name, source in catalog_sources(store).items():
        with duckdb.connect() as connection:
            assert "seed" not in connection.sql(source.select_sql()).columns, name


def test_a_write_holds_one_partition(tmp_path: Path) -> None:
    columns = _prediction("a", [0, 1], 1.0)
    columns["run"] = ["a", "b"]
    with pytest.raises(SchemaError, match=r"a write of catalog predictions holds one run; got"):
        write_catalog(tmp_path, PREDICTIONS_CATALOG, columns)


def test_an_old_single_file_counts_for_the_partitions_it_alone_holds(tmp_path: Path) -> None:
    layout = StoreLayout(tmp_path)
    kept, replaced = _prediction("kept", [0], 1.0), _prediction("replaced", [0, 1], 2.0)
    # The old file holds every run, and predates the photometric baseline.
    old = {name: kept[name] + replaced[name] for name in kept if name != "baseline_photometric"}
    layout.catalogs.mkdir(parents=True)
    pq.write_table(pa.table(old), layout.legacy_catalog("predictions"))
    assert read_catalog(tmp_path, PREDICTIONS_CATALOG)["run"].to_pylist() == [
        "kept",
        "replaced",
        "replaced",
    ]
    write_catalog(tmp_path, PREDICTIONS_CATALOG, _prediction("replaced", [4], 3.0))
    table = read_catalog(tmp_path, PREDICTIONS_CATALOG).to_pandas()
    assert sorted(zip(table["run"], table["sample"], strict=True)) == [("kept", 0), ("replaced", 4)]
    assert table.set_index("run")["baseline_photometric"].isna().to_dict() == {
        "kept": True,
        "replaced": False,
    }
    source = catalog_sources(tmp_path)["predictions"]
    assert source.legacy == layout.legacy_catalog("predictions").resolve()
    assert source.partitions == (("replaced",),)


def test_a_catalog_without_partitions_keeps_every_write(tmp_path: Path) -> None:
    """An append-only log such as spectra: each write is another record."""
    log = CatalogSpec(
        name="spectra",
        version=1,
        written_by="darkstack spectra",
        columns=(Column(name="statistic", unit=""), Column(name="k_h_mpc", unit="h/Mpc")),
    )
    first = write_catalog(tmp_path, log, {"statistic": ["pk", "pk"], "k_h_mpc": [0.1, 0.2]})
    write_catalog(tmp_path, log, {"statistic": ["pdf"], "k_h_mpc": [0.0]})
    assert first.parent == StoreLayout(tmp_path).catalog("spectra")
    table = read_catalog(tmp_path, log).to_pydict()
    assert sorted(table["statistic"]) == ["pdf", "pk", "pk"]
    assert catalog_sources(tmp_path)["spectra"].partition_keys == ()


def test_only_an_appending_catalog_can_be_partitioned() -> None:
    with pytest.raises(ValueError, match="catalog galaxies is written whole"):
        CatalogSpec(
            name="galaxies",
            version=1,
            written_by="x",
            partition_by=("snap",),
            columns=(Column(name="snap", unit=""),),
        )
    with pytest.raises(ValueError, match=r"partition columns \['run'\] are not columns"):
        CatalogSpec(name="spectra", version=1, written_by="x", partition_by=("run",), columns=())
