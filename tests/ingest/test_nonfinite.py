"""Non-finite particle positions fail only the galaxies whose particles hold them."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from darkstack.features.fields.build import run_fields
from darkstack.features.fields.config import FieldsConfig
from darkstack.ingest.build import run_ingest
from darkstack.ingest.config import IngestConfig
from darkstack.ingest.selection import SelectionConfig
from darkstack.ingest.tng_local import SimulationFiles
from darkstack.store import StoreLayout

# The selection of the ``tiny_ingested_store`` fixture.
CONFIG = IngestConfig(selection=SelectionConfig(stellar_mass_min_msun=3e9))


def _poison_own_gas_cell(sim: Path, subhalo_id: int, *, nth: int) -> tuple[str, int]:
    """NaN into the ``nth`` own gas cell of a subhalo; returns (chunk file, row)."""
    files = SimulationFiles.open(sim, 99)
    index = int(files.subhalo_offsets(np.array([subhalo_id]))[0, 0]) + nth
    chunk = int(np.searchsorted(files.file_offsets()[:, 0], index, side="right")) - 1
    row = index - int(files.file_offsets()[chunk, 0])
    path = files.chunk(chunk)
    with h5py.File(path, "r+") as file:
        file["PartType0/Coordinates"][row, 1] = np.nan
    return f"{path.parent.name}/{path.name}", row


@pytest.fixture(scope="module")
def poisoned(tiny_sim: Path, tiny_ingested_store: Path, tmp_path_factory: pytest.TempPathFactory):
    """A copy of the tiny universe with one NaN in the gas positions of one usable galaxy."""
    root = tmp_path_factory.mktemp("nan")
    shutil.copytree(tiny_sim.parent, root / "sim")
    reference = pd.read_parquet(StoreLayout(tiny_ingested_store).catalog("galaxies"))
    ok = reference[reference.status == "ok"]
    victim = int(ok.subhalo_id.iloc[len(ok) // 2])
    n_gas = int(ok.set_index("subhalo_id").loc[victim, "n_gas"])
    chunk, row = _poison_own_gas_cell(root / "sim" / "output", victim, nth=n_gas // 2)
    return root / "sim" / "output", reference, victim, chunk, row


def test_a_nan_position_fails_only_its_galaxy_naming_file_dataset_and_row(
    poisoned: tuple[Path, pd.DataFrame, int, str, int], tmp_path: Path
) -> None:
    sim, reference, victim, chunk, row = poisoned
    summary = run_ingest(CONFIG, sim=sim, store=tmp_path / "store", progress=False)
    table = pd.read_parquet(StoreLayout(tmp_path / "store").catalog("galaxies"))
    status = dict(zip(table.subhalo_id, table.status, strict=True))
    assert status[victim] == f"failed: non-finite PartType0/Coordinates -- {chunk} row {row}"
    others = table[table.subhalo_id != victim]
    expected = reference[reference.subhalo_id != victim]
    assert (others.status.to_numpy() == expected.status.to_numpy()).all()
    assert summary.report.failed["non-finite PartType0/Coordinates"] == 1
    assert summary.report.complete  # a data failure: the build itself is whole


def test_a_nan_position_fails_the_fields_build_naming_it(tiny_sim: Path, tmp_path: Path) -> None:
    """A voxel field cannot leave a particle out: the piece fails, naming file, dataset, row."""
    sim = tmp_path / "sim"
    shutil.copytree(tiny_sim.parent, sim)
    with h5py.File(sim / "output/snapdir_099/snap_099.1.hdf5", "r+") as file:
        file["PartType1/Coordinates"][5, 0] = np.inf
    summary = run_fields(
        FieldsConfig(grid=16, chunk=8, fields=("hydro_dm_mass",)),
        sim=sim / "output",
        store=tmp_path / "store",
        progress=False,
    )
    assert summary.report.failed == {
        "non-finite PartType1/Coordinates in snapdir_099/snap_099.1.hdf5 row 5": 1
    }
    assert not summary.report.complete
