"""``darkstack ingest`` from the TNG web API against the local ingest of the same mock universe.

The fake API serves the universe the local ingest reads, so the two stores must agree except
where the API cannot reach: particles in no FoF group (outer fuzz). Two cutout radii are run:
200 kpc, where some spheres hold outer fuzz and some do not, and 1650 kpc, where two spheres
reach particles of a neighbouring FoF group whose centre lies outside them (the mock's groups
are over a Mpc apart), which only the search by group extent finds.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import illustris_python as il
import numpy as np
import pyarrow.parquet as pq
import pytest

from darkstack.ingest.build import run_ingest
from darkstack.ingest.config import ApiConfig, CutoutConfig, IngestConfig
from darkstack.ingest.cutouts import read_cutout
from darkstack.ingest.selection import SelectionConfig
from darkstack.ingest.sources import KINDS
from darkstack.store import StoreLayout, column_units, read_metadata
from darkstack.universe.build import build_universe
from darkstack.universe.config import UniverseConfig

# tests/ has no packages (pytest runs in importlib mode): the helper is a sibling module.
sys.path.insert(0, str(Path(__file__).parent))
from fake_tng_api import FakeTNGAPI, serve_fake_tng_api

SIM = "TNG100-1"
SNAP = 99
KEY = "0123456789abcdef-fake-ingest-key"
#: Lower than the paper's cuts, so a dozen of the mock's galaxies are selected.
SELECTION = SelectionConfig(stellar_mass_min_msun=1.0e9)
CUTOUT_RADII_KPC = {"some-fuzz": 200.0, "several-groups": 1650.0}
#: Columns copied from the group catalog rather than computed from the cutout.
CATALOG_COLUMNS = (
    "subhalo_id",
    "group_id",
    "snap",
    "stellar_mass_msun",
    "sfr_msun_yr",
    "m200c_msun",
    "r200c_kpc",
    "r_half_star_kpc",
    "r_half_gas_kpc",
    "r_half_dm_kpc",
    "gas_mass_msun",
    "dm_mass_msun",
    "vmax_kms",
    "vmax_radius_kpc",
    "n_gas",
    "n_dm",
    "n_stars",
    "position_kpc",
    "velocity_kms",
    "radii_kpc",
    "cutout_radius_kpc",
)


@dataclasses.dataclass(frozen=True)
class Stores:
    """The local and API stores of one cutout radius, and how the API one was made."""

    name: str
    local: Path
    api: Path
    api_config: IngestConfig


@pytest.fixture(scope="module")
def sim_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sim")
    config = UniverseConfig(box_size_mpc_h=8.0, snapshot_files=3, groupcat_files=2, seed=5)
    build_universe(config, root, progress=False)
    return root


@pytest.fixture(scope="module")
def server(sim_root: Path) -> Iterator[FakeTNGAPI]:
    with serve_fake_tng_api(sim_root, api_key=KEY, simulation=SIM) as api:
        yield api


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The key in a file outside every store and cache, as a user would keep it."""
    path = tmp_path_factory.mktemp("secrets") / "tng_api_key"
    path.write_text(f"{KEY}\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module", params=sorted(CUTOUT_RADII_KPC))
def stores(
    request: pytest.FixtureRequest,
    sim_root: Path,
    server: FakeTNGAPI,
    key_file: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Stores:
    name = request.param
    work = tmp_path_factory.mktemp(name)
    local_config = IngestConfig(
        selection=SELECTION, cutout=CutoutConfig(min_radius_kpc=CUTOUT_RADII_KPC[name])
    )
    api_config = dataclasses.replace(
        local_config,
        source="api",
        api=ApiConfig(
            simulation=SIM,
            base_url=server.base_url,
            key_file=str(key_file),
            cache_dir=str(work / "cache"),
        ),
    )
    run_ingest(local_config, sim=sim_root / "output", store=work / "local", progress=False)
    run_ingest(api_config, store=work / "api", progress=False)
    return Stores(name=name, local=work / "local", api=work / "api", api_config=api_config)


@pytest.fixture(scope="module")
def membership(sim_root: Path) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per particle type: all ParticleIDs, sorted, and each one's FoF group (-1 for none).

    TNG stores each type's particles group by group (GroupLenType long each), the particles of
    no group last; illustris_python reads them in that order.
    """
    base_path = str(sim_root / "output")
    length = il.groupcat.loadHalos(base_path, SNAP, fields=["GroupLenType"])
    table = {}
    for ptype in KINDS.values():
        ids = il.snapshot.loadSubset(base_path, SNAP, ptype, fields=["ParticleIDs"])
        ends = np.cumsum(length[:, ptype])
        group = np.searchsorted(ends, np.arange(ids.size), side="right")
        group[group == len(ends)] = -1
        order = np.argsort(ids)
        table[ptype] = (ids[order], group[order])
    return table


def groups_of(
    membership: dict[int, tuple[np.ndarray, np.ndarray]], ptype: int, ids: np.ndarray
) -> np.ndarray:
    """FoF group of each particle ID of type ``ptype`` (-1 for outer fuzz)."""
    sorted_ids, group = membership[ptype]
    return group[np.searchsorted(sorted_ids, ids)]


def file_bytes(root: Path) -> dict[Path, bytes]:
    """Every file under ``root`` by its relative path."""
    return {path.relative_to(root): path.read_bytes() for path in root.rglob("*") if path.is_file()}


def catalog(store: Path) -> dict[str, list[Any]]:
    return pq.read_table(StoreLayout(store).catalog("galaxies")).to_pydict()


def test_same_galaxies_and_catalog_columns(stores: Stores, server: FakeTNGAPI) -> None:
    local, api = catalog(stores.local), catalog(stores.api)
    assert len(api["subhalo_id"]) >= 10
    assert api["subhalo_id"] == local["subhalo_id"]
    local_path = StoreLayout(stores.local).catalog("galaxies")
    api_path = StoreLayout(stores.api).catalog("galaxies")
    assert column_units(api_path) == column_units(local_path)
    for name in CATALOG_COLUMNS:
        assert api[name] == local[name], name
    local_meta, api_meta = read_metadata(local_path), read_metadata(api_path)
    assert api_meta["simulation"] == f"{server.base_url}{SIM}"
    assert api_meta["config"]["source"] == "api"
    for key in ("radii_kpc", "snapshot", "darkstack_version"):
        assert api_meta[key] == local_meta[key], key
    assert StoreLayout(stores.api).ingest_config.is_file()


def test_api_cutouts_are_local_cutouts_without_outer_fuzz(
    stores: Stores, membership: dict[int, tuple[np.ndarray, np.ndarray]]
) -> None:
    with_fuzz, several_groups = 0, 0
    for subhalo_id in catalog(stores.local)["subhalo_id"]:
        local, local_attrs = read_cutout(StoreLayout(stores.local).cutout(subhalo_id))
        api, api_attrs = read_cutout(StoreLayout(stores.api).cutout(subhalo_id))
        assert sorted(api_attrs) == sorted(local_attrs)
        for name in set(local_attrs) - {"simulation"}:
            np.testing.assert_array_equal(api_attrs[name], local_attrs[name], name)
        fuzz_in_sphere = 0
        groups_in_sphere: set[int] = set()
        for kind, ptype in KINDS.items():
            local_ids, api_ids = local[kind]["particle_id"], api[kind]["particle_id"]
            assert sorted(api[kind]) == sorted(local[kind])
            # Every API particle is a local one with identical fields (both sorted by ID).
            shared = np.isin(local_ids, api_ids)
            assert shared.sum() == api_ids.size, f"{subhalo_id} {kind}: particles not local"
            for field, values in api[kind].items():
                np.testing.assert_array_equal(values, local[kind][field][shared], f"{kind}/{field}")
            # Every local particle the API lacks belongs to no FoF group.
            missing_groups = groups_of(membership, ptype, local_ids[~shared])
            assert np.all(missing_groups == -1), f"{subhalo_id} {kind}: a group was missed"
            fuzz_in_sphere += missing_groups.size
            groups_in_sphere |= set(groups_of(membership, ptype, api_ids).tolist())
        with_fuzz += fuzz_in_sphere > 0
        several_groups += len(groups_in_sphere) > 1
    n_galaxies = len(catalog(stores.local)["subhalo_id"])
    if stores.name == "some-fuzz":
        assert 0 < with_fuzz < n_galaxies, "the radius should put fuzz in some spheres only"
    else:
        assert several_groups >= 2, "the radius should reach neighbouring groups"


def test_targets_equal_unless_outer_fuzz_is_in_the_sphere(stores: Stores) -> None:
    local, api = catalog(stores.local), catalog(stores.api)
    for row, subhalo_id in enumerate(local["subhalo_id"]):
        local_particles, _ = read_cutout(StoreLayout(stores.local).cutout(subhalo_id))
        api_particles, _ = read_cutout(StoreLayout(stores.api).cutout(subhalo_id))
        lacking = {
            kind: local_particles[kind]["particle_id"].size
            - api_particles[kind]["particle_id"].size
            for kind in KINDS
        }
        for kind, count in lacking.items():
            assert local[f"cutout_n_{kind}"][row] - api[f"cutout_n_{kind}"][row] == count
        if not any(lacking.values()):
            for name in local:
                np.testing.assert_array_equal(api[name][row], local[name][row], name)


def test_rerun_makes_no_request_and_writes_identical_bytes(
    stores: Stores, server: FakeTNGAPI, tmp_path: Path
) -> None:
    before = server.request_count
    # A new client on the same cache stands for a rerun; a new store makes it write everything.
    run_ingest(stores.api_config, store=tmp_path / "again", progress=False)
    assert server.request_count == before
    assert file_bytes(tmp_path / "again") == file_bytes(stores.api)


def test_api_key_is_in_no_file_of_the_store_or_the_cache(stores: Stores) -> None:
    cache = Path(stores.api_config.api.cache_dir)
    files = [path for root in (stores.api, cache) for path in root.rglob("*") if path.is_file()]
    assert any(path.suffix == ".hdf5" for path in files)
    for path in files:
        assert KEY not in str(path)
        assert KEY.encode() not in path.read_bytes(), path
