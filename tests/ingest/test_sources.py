"""The Source contract: a third snapshot layout needs a reader only, the driver does the rest.

The test source below reads a layout darkstack does not know: one ``.npz`` file holding every
particle of each type, the catalog columns and the header. It is registered under a new name and
run through the unchanged driver; its store must equal the local source's on the same universe.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import illustris_python as il
import numpy as np
import pandas as pd
import pytest

from darkstack.cosmology import CosmologyParams
from darkstack.ingest import sources
from darkstack.ingest.build import run_ingest
from darkstack.ingest.config import IngestConfig
from darkstack.ingest.cutouts import read_cutout
from darkstack.ingest.selection import SelectionConfig
from darkstack.ingest.sources import (
    CATALOG_GROUP_FIELDS,
    CATALOG_SUBHALO_FIELDS,
    KINDS,
    RAW_FIELDS,
    Galaxy,
    RawParticles,
    SimulationInfo,
    Source,
    register_source,
)
from darkstack.ingest.tng_local import SimulationError
from darkstack.store import StoreLayout
from darkstack.tng_layout import offsets_path
from darkstack.units import CodeUnits

SNAP = 99
#: The selection of the session's tiny ingested store (tests/conftest.py).
CONFIG = IngestConfig(selection=SelectionConfig(stellar_mass_min_msun=3e9))


def write_npz_snapshot(base: str, path: Path) -> None:
    """The toy layout: a TNG snapshot flattened into one .npz file."""
    with h5py.File(il.snapshot.snapPath(base, SNAP), "r") as file:
        header = {key: np.asarray(value).tolist() for key, value in file["Header"].attrs.items()}
    with h5py.File(offsets_path(base, SNAP), "r") as file:
        first = file["Subhalo/SnapByType"][()]
    arrays: dict[str, Any] = {"header": json.dumps(header, default=str), "first": first}
    subhalos = il.groupcat.loadSubhalos(base, SNAP, fields=list(CATALOG_SUBHALO_FIELDS))
    groups = il.groupcat.loadHalos(base, SNAP, fields=list(CATALOG_GROUP_FIELDS))
    arrays |= {f"Subhalo/{name}": subhalos[name] for name in CATALOG_SUBHALO_FIELDS}
    arrays |= {f"Group/{name}": groups[name] for name in CATALOG_GROUP_FIELDS}
    for kind, ptype in KINDS.items():
        loaded = il.snapshot.loadSubset(base, SNAP, ptype, fields=list(RAW_FIELDS[kind]))
        arrays |= {f"{kind}/{name}": loaded[name] for name in RAW_FIELDS[kind]}
    np.savez(path, **arrays)


class NpzSource(Source):
    """Reads the toy layout; knows nothing of chunks, offsets files or illustris_python."""

    name = "npz"

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def open(cls, config: IngestConfig, *, sim: str | Path | None) -> NpzSource:
        assert sim is not None and config.snapshot == SNAP
        return cls(Path(sim))

    def describe(self) -> SimulationInfo:
        with np.load(self.path) as data:
            header = json.loads(str(data["header"]))
        return SimulationInfo(
            simulation=str(self.path),
            snapshot=SNAP,
            box_size=header["BoxSize"],
            units=CodeUnits(hubble_param=header["HubbleParam"], scale_factor=header["Time"]),
            mass_table=tuple(header["MassTable"]),
            cosmology=CosmologyParams(
                hubble_param=header["HubbleParam"],
                omega_m=header["Omega0"],
                omega_b=header["OmegaBaryon"],
            ),
        )

    def load_catalog(
        self, *, subhalo_fields: Sequence[str], group_fields: Sequence[str]
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        with np.load(self.path) as data:
            return (
                {name: data[f"Subhalo/{name}"] for name in subhalo_fields},
                {name: data[f"Group/{name}"] for name in group_fields},
            )

    def particle_reader(
        self, galaxies: Sequence[Galaxy], *, info: SimulationInfo, radius: float, **_: Any
    ) -> NpzReader:
        with np.load(self.path) as data:
            first = data["first"][[galaxy.subhalo_id for galaxy in galaxies]]
            length = data["Subhalo/SubhaloLenType"][[galaxy.subhalo_id for galaxy in galaxies]]
        return NpzReader(self.path, radius, info.box_size, first, length)


@dataclass(frozen=True)
class NpzReader:
    path: Path
    radius: float
    box_size: float
    first: np.ndarray
    length: np.ndarray

    def particles(self, galaxy: Galaxy) -> dict[str, RawParticles]:
        out = {}
        with np.load(self.path) as data:
            for kind, ptype in KINDS.items():
                delta = data[f"{kind}/Coordinates"] - np.asarray(galaxy.centre)
                delta -= self.box_size * np.round(delta / self.box_size)
                inside = np.flatnonzero(np.linalg.norm(delta, axis=1) < self.radius)
                start = self.first[galaxy.row, ptype]
                own = (inside >= start) & (inside < start + self.length[galaxy.row, ptype])
                fields = {name: data[f"{kind}/{name}"][inside] for name in RAW_FIELDS[kind]}
                out[kind] = RawParticles(fields, own)
        return out


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registrations made by a test are undone after it."""
    monkeypatch.setattr(sources._SOURCES, "_entries", dict(sources._SOURCES._entries))


def test_a_registered_third_source_writes_the_local_sources_store(
    tiny_ingested_store: Path, tmp_path: Path, registry: None
) -> None:
    npz = tmp_path / "snapshot.npz"
    write_npz_snapshot(str(tiny_ingested_store.parent / "sim" / "output"), npz)
    register_source("npz", NpzSource)
    assert "npz" in sources.source_names()

    run_ingest(dataclasses.replace(CONFIG, source="npz"), sim=npz, store=tmp_path, progress=False)

    local = pd.read_parquet(StoreLayout(tiny_ingested_store).catalog("galaxies"))
    mine = pd.read_parquet(StoreLayout(tmp_path).catalog("galaxies"))
    assert len(mine) >= 3 and (mine.status == "ok").sum() >= 3
    pd.testing.assert_frame_equal(mine, local)
    for path in sorted(StoreLayout(tiny_ingested_store).cutouts.glob("*.hdf5")):
        expected, expected_attrs = read_cutout(path)
        particles, attrs = read_cutout(StoreLayout(tmp_path).cutouts / path.name)
        assert attrs["simulation"] == str(npz)
        assert attrs["snapshot"] == expected_attrs["snapshot"] == SNAP
        for kind, fields in expected.items():
            assert sorted(particles[kind]) == sorted(fields)
            for name, values in fields.items():
                np.testing.assert_array_equal(particles[kind][name], values, f"{kind}/{name}")


def test_an_unknown_source_is_a_one_line_error(tmp_path: Path) -> None:
    config = IngestConfig(source="nope")
    with pytest.raises(ValueError, match=r"unknown ingest source 'nope'; registered: api, local"):
        run_ingest(config, sim=tmp_path, store=tmp_path / "store")


def test_the_local_source_needs_a_base_path(tmp_path: Path) -> None:
    with pytest.raises(SimulationError, match="needs --sim"):
        run_ingest(IngestConfig(), store=tmp_path / "store")


def test_a_registered_name_must_be_a_source(registry: None) -> None:
    register_source("broken", "darkstack.ingest.build:run_ingest")
    with pytest.raises(TypeError, match=r"'broken' is .* not a Source subclass"):
        sources.source_class("broken")


def test_sources_are_imported_only_when_opened() -> None:
    code = (
        "import sys\n"
        "import darkstack.ingest.build\n"
        "from darkstack.ingest.sources import source_class\n"
        "modules = ('darkstack.ingest.api_source', 'darkstack.ingest.local_source')\n"
        "assert not any(m in sys.modules for m in modules), 'imported eagerly'\n"
        "assert source_class('api').name == 'api'\n"
        "assert 'darkstack.ingest.api_source' in sys.modules\n"
        "assert 'darkstack.ingest.local_source' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
