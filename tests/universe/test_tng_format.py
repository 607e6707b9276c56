"""Round trip of the TNG writer through illustris_python, the reader real TNG users use.

A tiny simulation is built by hand: four groups (one without subhalos) holding six subhalos,
inner fuzz in most groups and outer fuzz, in four snapshot chunks and three catalog chunks whose
boundaries cut through a subhalo. Every ParticleID encodes the particle's type, group and
subhalo, so a loaded particle shows where the writer put it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import illustris_python as il
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from darkstack.tng_layout import (
    GROUP_FIELDS,
    PARTICLE_FIELDS,
    PROVENANCE_ATTRIBUTE,
    SUBHALO_FIELDS,
    FieldSpec,
    SnapshotHeader,
    SnapshotLayout,
    chunk_ranges,
    group_catalog_path,
    offsets_path,
    output_dir,
    particle_offsets,
    snapshot_path,
    split_num_part_total,
)
from darkstack.universe import tng_format
from darkstack.universe.tng_format import write_group_catalog, write_offsets, write_snapshot_file

SNAP = 99
TYPES = (0, 1, 4)  # gas, DM, stars: the box universe's types (zooms add PartType2)
Table = dict[str, NDArray[Any]]


@dataclass(frozen=True)
class Structure:
    """Particle counts as (gas, DM, stars) of each subhalo, inner fuzz and outer fuzz."""

    sub_len: Sequence[Sequence[int]]
    group_of_sub: Sequence[int]
    inner_fuzz: Sequence[Sequence[int]]
    outer_fuzz: Sequence[int]


# Group 2 has no subhalo, group 3 no inner fuzz. With four snapshot files, subhalo 1 (gas, DM)
# and subhalo 0 (stars) straddle a file boundary; the three catalog chunks split group 0's
# subhalos.
MAIN_SIM = Structure(
    sub_len=[(40, 60, 20), (15, 25, 8), (5, 10, 0), (30, 45, 12), (20, 30, 10), (8, 12, 3)],
    group_of_sub=[0, 0, 0, 1, 3, 3],
    inner_fuzz=[(10, 20, 2), (5, 8, 0), (12, 18, 1), (0, 0, 0)],
    outer_fuzz=(25, 40, 4),
)


def encode_id(ptype: int, group: int, subhalo: int, index: int) -> int:
    """ParticleID of the index-th particle of a type; group/subhalo -1 mean none."""
    return ptype * 10**12 + (group + 1) * 10**8 + (subhalo + 1) * 10**4 + index


def decode_owner(ids: NDArray[np.uint64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(group, subhalo) of each ParticleID, -1 for none."""
    values = ids.astype(np.int64)
    return values // 10**8 % 10**4 - 1, values // 10**4 % 10**4 - 1


@dataclass(frozen=True)
class MockSim:
    """A written simulation and the arrays it was written from (already in spec dtypes)."""

    root: Path
    header: SnapshotHeader
    particles: dict[int, Table]
    groups: Table
    subhalos: Table
    groupcat_files: int

    @property
    def base(self) -> str:
        """illustris_python's basePath."""
        return str(self.root / "output")

    def file_particles(self, file_index: int) -> dict[int, Table]:
        """The particles of every type stored in one snapshot file."""
        layout = self.header.layout
        return {
            ptype: {
                name: column[slice(*layout.file_range(file_index=file_index, ptype=ptype))]
                for name, column in table.items()
            }
            for ptype, table in self.particles.items()
        }


def _random_table(specs: Sequence[FieldSpec], *, count: int, rng: np.random.Generator) -> Table:
    return {
        spec.name: rng.uniform(0.0, 1000.0, size=spec.shape(count)).astype(spec.dtype)
        for spec in specs
    }


def build_sim(
    root: Path, *, structure: Structure, snapshot_files: int = 4, groupcat_files: int = 3
) -> MockSim:
    """Write a simulation with the given structure under ``root``."""
    rng = np.random.default_rng(42)
    n_groups, n_subs = len(structure.inner_fuzz), len(structure.group_of_sub)
    sub_len_type = np.zeros((n_subs, 6), dtype=np.int64)
    sub_len_type[:, TYPES] = np.reshape(structure.sub_len, (n_subs, len(TYPES)))
    fuzz_type = np.zeros((n_groups, 6), dtype=np.int64)
    fuzz_type[:, TYPES] = np.reshape(structure.inner_fuzz, (n_groups, len(TYPES)))
    outer_type = np.zeros(6, dtype=np.int64)
    outer_type[list(TYPES)] = structure.outer_fuzz
    group_number = np.asarray(structure.group_of_sub, dtype=np.int64)
    group_len_type = fuzz_type.copy()
    np.add.at(group_len_type, group_number, sub_len_type)

    particles = {}
    for ptype in TYPES:
        owners: list[tuple[int, int]] = []
        for group in range(n_groups):
            for sub in np.flatnonzero(group_number == group):
                owners += [(group, int(sub))] * int(sub_len_type[sub, ptype])
            owners += [(group, -1)] * int(fuzz_type[group, ptype])
        owners += [(-1, -1)] * int(outer_type[ptype])
        table = _random_table(PARTICLE_FIELDS[ptype], count=len(owners), rng=rng)
        table["ParticleIDs"] = np.array(
            [encode_id(ptype, g, s, k) for k, (g, s) in enumerate(owners)], dtype=np.uint64
        )
        if ptype == 4:
            birth = rng.uniform(0.05, 1.0, len(owners))
            table["GFM_StellarFormationTime"] = np.where(
                np.arange(len(owners)) % 4 == 0, -birth, birth
            ).astype(np.float32)
        particles[ptype] = table

    nsubs = np.bincount(group_number, minlength=n_groups)
    groups = _random_table(GROUP_FIELDS, count=n_groups, rng=rng)
    groups |= {
        "GroupFirstSub": np.where(
            nsubs > 0, np.searchsorted(group_number, np.arange(n_groups)), -1
        ).astype(np.int32),
        "GroupLen": group_len_type.sum(axis=1).astype(np.int32),
        "GroupLenType": group_len_type.astype(np.int32),
        "GroupNsubs": nsubs.astype(np.int32),
    }
    subhalos = _random_table(SUBHALO_FIELDS, count=n_subs, rng=rng)
    subhalos |= {
        "SubhaloFlag": (np.arange(n_subs) % 5 != 4).astype(np.uint8),
        "SubhaloGrNr": group_number.astype(np.int32),
        "SubhaloLen": sub_len_type.sum(axis=1).astype(np.int32),
        "SubhaloLenType": sub_len_type.astype(np.int32),
        "SubhaloParent": np.zeros(n_subs, dtype=np.int32),
    }

    header = SnapshotHeader(
        box_size=35000.0,
        hubble_param=0.6774,
        omega_m=0.3089,
        omega_lambda=0.6911,
        omega_b=0.0486,
        redshift=0.0,
        scale_factor=1.0,
        mass_table=(0.0, 5.0e-4, 0.0, 0.0, 0.0, 0.0),
        num_part_total=tuple(int(n) for n in group_len_type.sum(axis=0) + outer_type),
        num_files=snapshot_files,
    )
    sim = MockSim(root, header, particles, groups, subhalos, groupcat_files)
    for index in range(snapshot_files):
        write_snapshot_file(
            snapshot_path(output_dir(root), SNAP, index),
            header=header,
            file_index=index,
            particles=sim.file_particles(index),
        )
    write_group_catalog(
        root,
        snap=SNAP,
        header=header,
        groups=groups,
        subhalos=subhalos,
        num_files=groupcat_files,
    )
    write_offsets(
        root,
        snap=SNAP,
        group_len_type=group_len_type,
        subhalo_len_type=sub_len_type,
        subhalo_group_number=group_number,
        group_first_sub=groups["GroupFirstSub"],
        layout=header.layout,
        groupcat_num_files=groupcat_files,
    )
    return sim


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> MockSim:
    return build_sim(tmp_path_factory.mktemp("mock") / "SIM", structure=MAIN_SIM)


@pytest.fixture(autouse=True)
def _serial_illustris(monkeypatch: pytest.MonkeyPatch) -> None:
    # illustris_python forks a process pool when OMP_NUM_THREADS > 1; the serial path is enough.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def all_files(root: Path) -> Iterator[Path]:
    """Every file under ``root``, sorted."""
    return (path for path in sorted(root.rglob("*")) if path.is_file())


# --- chunking and layout ---------------------------------------------------------------------


def test_chunk_ranges_are_even_and_cover_everything() -> None:
    assert chunk_ranges(10, 3).tolist() == [0, 3, 6, 10]
    assert chunk_ranges(2, 4).tolist() == [0, 0, 1, 1, 2]
    assert chunk_ranges(0, 2).tolist() == [0, 0, 0]
    assert chunk_ranges(10, 3).dtype == np.int64
    with pytest.raises(ValueError, match="n_files"):
        chunk_ranges(5, 0)
    with pytest.raises(ValueError, match="total"):
        chunk_ranges(-1, 2)


def test_layout_answers_file_ranges_and_touching_files() -> None:
    layout = SnapshotLayout(num_part_total=(10, 3, 0, 0, 0, 0), num_files=4)
    assert layout.boundaries[0].tolist() == [0, 2, 5, 7, 10]
    assert layout.file_range(file_index=1, ptype=0) == (2, 5)
    assert layout.num_part_this_file(0).tolist() == [2, 0, 0, 0, 0, 0]
    assert layout.file_offsets.shape == (4, 6)
    assert layout.file_offsets[:, 1].tolist() == [0, 0, 1, 2]
    assert layout.files_touching(ptype=0, start=1, stop=6).tolist() == [0, 1, 2]
    assert layout.files_touching(ptype=0, start=2, stop=5).tolist() == [1]
    # DM file 0 is empty, so it never holds part of a range.
    assert layout.files_touching(ptype=1, start=0, stop=2).tolist() == [1, 2]
    assert layout.files_touching(ptype=0, start=4, stop=4).tolist() == []
    with pytest.raises(ValueError, match="outside"):
        layout.files_touching(ptype=1, start=0, stop=4)
    with pytest.raises(ValueError, match="file_index"):
        layout.file_range(file_index=4, ptype=0)


def test_fixture_splits_a_subhalo_of_every_type_across_files(sim: MockSim) -> None:
    _, sub_offsets = particle_offsets(
        sim.groups["GroupLenType"], sim.subhalos["SubhaloLenType"], sim.subhalos["SubhaloGrNr"]
    )
    for ptype in TYPES:
        spans = [
            sim.header.layout.files_touching(
                ptype=ptype, start=int(start), stop=int(start + length)
            )
            for start, length in zip(
                sub_offsets[:, ptype], sim.subhalos["SubhaloLenType"][:, ptype], strict=True
            )
        ]
        assert max(len(files) for files in spans) >= 2, f"no subhalo straddles PartType{ptype}"


# --- headers ---------------------------------------------------------------------------------

SNAPSHOT_HEADER = {
    "BoxSize": ("f8", ()),
    "Composition_vector_length": ("i4", ()),
    "Flag_Cooling": ("i4", ()),
    "Flag_DoublePrecision": ("i4", ()),
    "Flag_Feedback": ("i4", ()),
    "Flag_Metals": ("i4", ()),
    "Flag_Sfr": ("i4", ()),
    "Flag_StellarAge": ("i4", ()),
    "Git_commit": ("S", ()),
    "Git_date": ("S", ()),
    "HubbleParam": ("f8", ()),
    "MassTable": ("f8", (6,)),
    "NumFilesPerSnapshot": ("i4", ()),
    "NumPart_ThisFile": ("i4", (6,)),
    "NumPart_Total": ("u4", (6,)),
    "NumPart_Total_HighWord": ("u4", (6,)),
    "Omega0": ("f8", ()),
    "OmegaBaryon": ("f8", ()),
    "OmegaLambda": ("f8", ()),
    "Redshift": ("f8", ()),
    "Time": ("f8", ()),
    "UnitLength_in_cm": ("f8", ()),
    "UnitMass_in_g": ("f8", ()),
    "UnitVelocity_in_cm_per_s": ("f8", ()),
}

GROUPCAT_HEADER = {
    "BoxSize": ("f8", ()),
    "FlagDoubleprecision": ("i4", ()),
    "Git_commit": ("S", ()),
    "Git_date": ("S", ()),
    "HubbleParam": ("f8", ()),
    "Ngroups_ThisFile": ("i4", ()),
    "Ngroups_Total": ("i4", ()),
    "Nids_ThisFile": ("i4", ()),
    "Nids_Total": ("i8", ()),
    "Nsubgroups_ThisFile": ("i4", ()),
    "Nsubgroups_Total": ("i4", ()),
    "NumFiles": ("i4", ()),
    "Omega0": ("f8", ()),
    "OmegaLambda": ("f8", ()),
    "Redshift": ("f8", ()),
    "Time": ("f8", ()),
}


def assert_attributes(
    attrs: Mapping[str, Any], expected: Mapping[str, tuple[str, tuple[int, ...]]]
) -> None:
    assert sorted(attrs) == sorted(expected)
    for name, (code, shape) in expected.items():
        value = np.asarray(attrs[name])
        dtype_ok = value.dtype.kind == "S" if code == "S" else value.dtype == np.dtype(code)
        assert dtype_ok, f"{name} has dtype {value.dtype}, expected {code}"
        assert value.shape == shape, name


def test_snapshot_header_is_complete_with_tng_dtypes(sim: MockSim) -> None:
    layout = sim.header.layout
    for index in range(sim.header.num_files):
        with h5py.File(snapshot_path(sim.base, SNAP, index), "r") as file:
            attrs = dict(file["Header"].attrs)
            assert_attributes(attrs, SNAPSHOT_HEADER)
            assert attrs["NumPart_ThisFile"].tolist() == layout.num_part_this_file(index).tolist()
            assert {"Config", "Parameters"} <= set(file)
            assert file["Config"].attrs["NTYPES"] == 6
            assert "mock universe" in file.attrs[PROVENANCE_ATTRIBUTE].decode()
    assert attrs["MassTable"].tolist() == [0.0, 5.0e-4, 0.0, 0.0, 0.0, 0.0]
    assert attrs["NumPart_Total"].tolist() == list(sim.header.num_part_total)
    assert attrs["NumPart_Total_HighWord"].tolist() == [0] * 6
    assert attrs["NumFilesPerSnapshot"] == 4
    assert attrs["Time"] == 1.0
    assert attrs["UnitLength_in_cm"] == 3.085678e21
    assert attrs["UnitMass_in_g"] == 1.989e43
    assert attrs["UnitVelocity_in_cm_per_s"] == 1.0e5


def test_num_part_total_splits_into_high_and_low_words() -> None:
    counts = [0, 2**32 + 5, 2**33, 7, 2**32 - 1, 2**40 + 2**32 + 3]
    low, high = split_num_part_total(counts)
    assert low.dtype == np.uint32 and high.dtype == np.uint32
    assert low.tolist() == [0, 5, 0, 7, 2**32 - 1, 3]
    assert high.tolist() == [0, 1, 2, 0, 0, 2**8 + 1]
    header = {"NumPart_Total": low, "NumPart_Total_HighWord": high}
    assert il.snapshot.getNumPart(header).tolist() == counts
    with pytest.raises(ValueError, match="non-negative"):
        split_num_part_total([1, -1])


def test_group_catalog_header_and_groups_in_every_chunk(sim: MockSim) -> None:
    header = il.groupcat.loadHeader(sim.base, SNAP)
    assert_attributes(header, GROUPCAT_HEADER)
    assert (header["Ngroups_Total"], header["Nsubgroups_Total"], header["NumFiles"]) == (4, 6, 3)
    assert header["Nids_Total"] == 0
    group_bounds, sub_bounds = chunk_ranges(4, 3), chunk_ranges(6, 3)
    for index in range(sim.groupcat_files):
        with h5py.File(group_catalog_path(sim.base, SNAP, index), "r") as file:
            assert {"Header", "Group", "Subhalo", "IDs", "Config", "Parameters"} <= set(file)
            attrs = file["Header"].attrs
            assert attrs["Ngroups_ThisFile"] == np.diff(group_bounds)[index]
            assert attrs["Nsubgroups_ThisFile"] == np.diff(sub_bounds)[index]
            assert file["Group/GroupLen"].shape == (attrs["Ngroups_ThisFile"],)


# --- group catalog round trip ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("loader", "table", "specs"),
    [
        (il.groupcat.loadHalos, "groups", GROUP_FIELDS),
        (il.groupcat.loadSubhalos, "subhalos", SUBHALO_FIELDS),
    ],
)
def test_catalog_loads_exactly_what_was_written(
    sim: MockSim, loader: Callable[..., Any], table: str, specs: Sequence[FieldSpec]
) -> None:
    expected: Table = getattr(sim, table)
    loaded = loader(sim.base, SNAP)
    assert sorted(loaded) == sorted([spec.name for spec in specs] + ["count"])
    assert loaded["count"] == len(next(iter(expected.values())))
    for spec in specs:
        assert loaded[spec.name].dtype == spec.dtype, spec.name
        np.testing.assert_array_equal(loaded[spec.name], expected[spec.name], err_msg=spec.name)
    single_field = specs[2].name
    np.testing.assert_array_equal(
        loader(sim.base, SNAP, fields=[single_field]), expected[single_field]
    )


def test_load_single_returns_each_row(sim: MockSim) -> None:
    for key, table in (("haloID", sim.groups), ("subhaloID", sim.subhalos)):
        for row in range(len(next(iter(table.values())))):
            loaded = il.groupcat.loadSingle(sim.base, SNAP, **{key: row})
            assert sorted(loaded) == sorted(table)
            for name, column in table.items():
                np.testing.assert_array_equal(loaded[name], column[row], err_msg=name)


# --- snapshot round trip ---------------------------------------------------------------------


@pytest.mark.parametrize("ptype", TYPES)
def test_load_subset_returns_every_particle(sim: MockSim, ptype: int) -> None:
    expected = sim.particles[ptype]
    loaded = il.snapshot.loadSubset(sim.base, SNAP, ptype)
    assert sorted(loaded) == sorted([*expected, "count"])
    assert loaded["count"] == sim.header.num_part_total[ptype]
    for spec in PARTICLE_FIELDS[ptype]:
        assert loaded[spec.name].dtype == spec.dtype, spec.name
        np.testing.assert_array_equal(loaded[spec.name], expected[spec.name], err_msg=spec.name)
    ids = il.snapshot.loadSubset(sim.base, SNAP, ptype, fields=["ParticleIDs"])
    np.testing.assert_array_equal(ids, expected["ParticleIDs"])


def test_dark_matter_has_no_masses(sim: MockSim) -> None:
    assert "Masses" not in il.snapshot.loadSubset(sim.base, SNAP, "dm")
    with pytest.raises(Exception, match="Masses"):
        il.snapshot.loadSubset(sim.base, SNAP, "dm", fields=["Masses"])


def test_wind_particles_keep_negative_formation_times(sim: MockSim) -> None:
    birth = il.snapshot.loadSubset(sim.base, SNAP, "stars", fields=["GFM_StellarFormationTime"])
    assert (birth < 0).any() and (birth > 0).any()


@pytest.mark.parametrize("ptype", TYPES)
def test_load_subhalo_returns_its_particles(sim: MockSim, ptype: int) -> None:
    _, sub_offsets = particle_offsets(
        sim.groups["GroupLenType"], sim.subhalos["SubhaloLenType"], sim.subhalos["SubhaloGrNr"]
    )
    for sub, length in enumerate(sim.subhalos["SubhaloLenType"][:, ptype]):
        loaded = il.snapshot.loadSubhalo(sim.base, SNAP, sub, ptype)
        assert loaded["count"] == length
        if not length:
            continue
        group, owner = decode_owner(loaded["ParticleIDs"])
        assert (owner == sub).all() and (group == sim.subhalos["SubhaloGrNr"][sub]).all()
        start = sub_offsets[sub, ptype]
        for name, column in sim.particles[ptype].items():
            np.testing.assert_array_equal(loaded[name], column[start : start + length])


@pytest.mark.parametrize("ptype", TYPES)
def test_load_halo_returns_subhalos_then_inner_fuzz(sim: MockSim, ptype: int) -> None:
    for group, length in enumerate(sim.groups["GroupLenType"][:, ptype]):
        ids = il.snapshot.loadHalo(sim.base, SNAP, group, ptype, fields=["ParticleIDs"])
        if not length:
            assert ids == {"count": 0}
            continue
        assert len(ids) == length
        owner_group, owner_sub = decode_owner(ids)
        assert (owner_group == group).all()
        members = np.flatnonzero(sim.subhalos["SubhaloGrNr"] == group)
        sub_lengths = sim.subhalos["SubhaloLenType"][members, ptype]
        expected_subs = np.repeat(members, sub_lengths)
        inner_fuzz = length - sub_lengths.sum()
        np.testing.assert_array_equal(owner_sub, np.r_[expected_subs, np.full(inner_fuzz, -1)])


@pytest.mark.parametrize("ptype", TYPES)
def test_outer_fuzz_comes_after_all_groups(sim: MockSim, ptype: int) -> None:
    ids = il.snapshot.loadSubset(sim.base, SNAP, ptype, fields=["ParticleIDs"])
    in_groups = sim.groups["GroupLenType"][:, ptype].sum()
    owner_group, _ = decode_owner(ids)
    assert (owner_group[:in_groups] >= 0).all()
    assert (owner_group[in_groups:] == -1).all()
    assert len(ids) - in_groups == MAIN_SIM.outer_fuzz[TYPES.index(ptype)]


def test_types_and_rows_absent_from_a_chunk(tmp_path: Path) -> None:
    # Three DM particles in four files leave file 0 without DM; one group in three catalog
    # chunks leaves chunks 0 and 1 empty.
    tiny = Structure(
        sub_len=[(0, 2, 0)], group_of_sub=[0], inner_fuzz=[(0, 0, 0)], outer_fuzz=(0, 1, 0)
    )
    sim = build_sim(tmp_path / "SIM", structure=tiny)
    for index, expected in enumerate([set(), {"PartType1"}, {"PartType1"}, {"PartType1"}]):
        with h5py.File(snapshot_path(sim.base, SNAP, index), "r") as file:
            assert {name for name in file if name.startswith("PartType")} == expected
    np.testing.assert_array_equal(
        il.snapshot.loadSubset(sim.base, SNAP, "dm", fields=["ParticleIDs"]),
        sim.particles[1]["ParticleIDs"],
    )
    assert il.snapshot.loadSubset(sim.base, SNAP, "gas") == {"count": 0}
    assert il.snapshot.loadSubhalo(sim.base, SNAP, 0, "dm", fields=["ParticleIDs"]).size == 2

    for index in range(2):
        with h5py.File(group_catalog_path(sim.base, SNAP, index), "r") as file:
            assert len(file["Group"]) == len(file["Subhalo"]) == len(file["IDs"]) == 0
    np.testing.assert_array_equal(il.groupcat.loadHalos(sim.base, SNAP, fields=["GroupLen"]), [2])
    assert il.groupcat.loadSingle(sim.base, SNAP, haloID=0)["GroupLen"] == 2

    # Omitting a type absent from the file writes the same bytes as passing it empty.
    omitted = tmp_path / "omitted.hdf5"
    particles = {ptype: table for ptype, table in sim.file_particles(0).items() if ptype != 1}
    write_snapshot_file(omitted, header=sim.header, file_index=0, particles=particles)
    assert omitted.read_bytes() == snapshot_path(sim.base, SNAP, 0).read_bytes()


def test_offsets_file_layout(sim: MockSim) -> None:
    with h5py.File(offsets_path(sim.base, SNAP), "r") as file:
        assert file["FileOffsets/Group"][()].tolist() == [0, 1, 2]
        assert file["FileOffsets/Subhalo"][()].tolist() == [0, 2, 4]
        np.testing.assert_array_equal(
            file["FileOffsets/SnapByType"], sim.header.layout.file_offsets
        )
        for name, rows in (("Group", 4), ("Subhalo", 6)):
            assert file[f"{name}/SnapByType"].dtype == np.int64
            assert file[f"{name}/SnapByType"].shape == (rows, 6)


# --- validation and file safety --------------------------------------------------------------


Mutation = Callable[[dict[int, Table]], None]


def _drop(ptype: int, name: str | None = None) -> Mutation:
    """Remove a field, or the whole type when ``name`` is None."""

    def mutate(particles: dict[int, Table]) -> None:
        if name is None:
            del particles[ptype]
        else:
            del particles[ptype][name]

    return mutate


def _set(ptype: int, name: str, make: Callable[[Table], NDArray[Any]]) -> Mutation:
    def mutate(particles: dict[int, Table]) -> None:
        particles[ptype][name] = make(particles[ptype])

    return mutate


@pytest.mark.parametrize(
    ("mutate", "field", "expectation"),
    [
        pytest.param(_drop(0, "Masses"), "Masses", "missing field", id="missing-field"),
        pytest.param(
            _set(1, "Masses", lambda t: np.ones(len(t["ParticleIDs"]), dtype=np.float32)),
            "Masses",
            "unexpected field",
            id="dm-masses",
        ),
        pytest.param(
            _set(4, "Potential", lambda t: np.zeros(len(t["ParticleIDs"]))),
            "Potential",
            "unexpected field",
            id="extra-field",
        ),
        pytest.param(
            _set(0, "Density", lambda t: t["Density"][:-1]), "Density", "expected (42,)", id="short"
        ),
        pytest.param(
            _set(1, "Coordinates", lambda t: t["Coordinates"][:, :2]),
            "Coordinates",
            "expected (67, 3)",
            id="width",
        ),
        pytest.param(
            _set(4, "ParticleIDs", lambda t: t["ParticleIDs"].astype(np.float64)),
            "ParticleIDs",
            "cannot be stored as uint64",
            id="float-ids",
        ),
        pytest.param(
            _set(4, "ParticleIDs", lambda t: t["ParticleIDs"].astype(np.int64) - 10**13),
            "ParticleIDs",
            "outside the range of uint64",
            id="negative-ids",
        ),
        pytest.param(
            lambda particles: particles.pop(1) and None, "PartType1", "missing", id="type"
        ),
    ],
)
def test_snapshot_writer_rejects_malformed_fields(
    sim: MockSim,
    tmp_path: Path,
    mutate: Mutation,
    field: str,
    expectation: str,
) -> None:
    particles = {ptype: dict(table) for ptype, table in sim.file_particles(0).items()}
    mutate(particles)
    path = snapshot_path(tmp_path, SNAP, 0)
    with pytest.raises(ValueError) as error:
        write_snapshot_file(path, header=sim.header, file_index=0, particles=particles)
    message = str(error.value)
    assert field in message and str(path) in message and expectation in message, message
    assert list(all_files(tmp_path)) == []


def _catalog_case(table: str, name: str, make: Callable[[NDArray[Any]], NDArray[Any]] | None):
    def mutate(groups: Table, subhalos: Table) -> None:
        target = groups if table == "groups" else subhalos
        if make is None:
            del target[name]
        else:
            target[name] = make(target[name])

    return mutate


@pytest.mark.parametrize(
    ("mutate", "expectation"),
    [
        pytest.param(_catalog_case("groups", "GroupMass", None), "missing field 'GroupMass'"),
        pytest.param(
            _catalog_case("subhalos", "SubhaloVmax", lambda c: c[:-1]), "'SubhaloVmax' has shape"
        ),
        pytest.param(
            _catalog_case("groups", "GroupFirstSub", lambda c: np.roll(c, 1)), "GroupFirstSub[0]"
        ),
        pytest.param(_catalog_case("groups", "GroupNsubs", lambda c: c + 1), "GroupNsubs[0]"),
        pytest.param(_catalog_case("groups", "GroupLen", lambda c: c + 1), "GroupLen[0]"),
        pytest.param(
            _catalog_case("subhalos", "SubhaloGrNr", lambda c: c[::-1].copy()),
            "sorted by SubhaloGrNr",
        ),
        pytest.param(
            _catalog_case("groups", "GroupLenType", lambda c: c // 2), "GroupLenType[0, 0]"
        ),
    ],
)
def test_group_catalog_writer_rejects_inconsistent_catalogs(
    sim: MockSim, tmp_path: Path, mutate: Callable[[Table, Table], None], expectation: str
) -> None:
    groups, subhalos = dict(sim.groups), dict(sim.subhalos)
    mutate(groups, subhalos)
    with pytest.raises(ValueError) as error:
        write_group_catalog(
            tmp_path, snap=SNAP, header=sim.header, groups=groups, subhalos=subhalos, num_files=3
        )
    assert expectation in str(error.value), str(error.value)
    assert list(all_files(tmp_path)) == []


def test_offsets_writer_checks_group_first_sub_and_totals(sim: MockSim, tmp_path: Path) -> None:
    arguments = {
        "snap": SNAP,
        "group_len_type": sim.groups["GroupLenType"],
        "subhalo_len_type": sim.subhalos["SubhaloLenType"],
        "subhalo_group_number": sim.subhalos["SubhaloGrNr"],
        "group_first_sub": sim.groups["GroupFirstSub"],
        "layout": sim.header.layout,
        "groupcat_num_files": 3,
    }
    with pytest.raises(ValueError, match=r"GroupFirstSub\[2\]"):
        write_offsets(tmp_path, **arguments | {"group_first_sub": [0, 3, 4, 4]})
    small = SnapshotLayout(num_part_total=(10, 10, 0, 0, 10, 0), num_files=2)
    with pytest.raises(ValueError, match="more than the snapshot"):
        write_offsets(tmp_path, **arguments | {"layout": small})
    assert list(all_files(tmp_path)) == []


@pytest.mark.parametrize(
    ("change", "expectation"),
    [
        ({"redshift": 1.0}, "does not match redshift"),
        ({"scale_factor": 2.0, "redshift": -0.5}, "0 < scale_factor <= 1"),
        ({"num_files": 0}, "num_files"),
    ],
)
def test_snapshot_header_rejects_inconsistent_values(
    sim: MockSim, change: dict[str, Any], expectation: str
) -> None:
    with pytest.raises(ValueError) as error:
        dataclasses.replace(sim.header, **change)
    assert expectation in str(error.value), str(error.value)


@pytest.mark.parametrize(
    ("change", "expectation"),
    [
        ({"mass_table": (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)}, "PartType1 has no Masses"),
        ({"mass_table": (1.0, 5.0e-4, 0.0, 0.0, 0.0, 0.0)}, "mass_table[0] must be 0"),
        ({"num_part_total": (1, 1, 0, 0, 0, 1)}, "PartType5 is not written"),
    ],
)
def test_writer_refuses_headers_of_types_it_does_not_write(
    sim: MockSim, tmp_path: Path, change: dict[str, Any], expectation: str
) -> None:
    # A reader takes such headers (real TNG has tracers and black holes); the writer does not.
    header = dataclasses.replace(sim.header, **change)
    with pytest.raises(ValueError) as error:
        write_snapshot_file(tmp_path / "snap.hdf5", header=header, file_index=0, particles={})
    assert expectation in str(error.value), str(error.value)
    assert list(all_files(tmp_path)) == []


def test_particle_offsets_rejects_inconsistent_catalogs() -> None:
    group_len = [[0, 5, 0, 0, 0, 0], [0, 5, 0, 0, 0, 0]]
    with pytest.raises(ValueError, match=r"group 0 hold 6 particles of PartType1"):
        particle_offsets(group_len, [[0, 3, 0, 0, 0, 0], [0, 3, 0, 0, 0, 0]], [0, 0])
    with pytest.raises(ValueError, match="sorted by SubhaloGrNr"):
        particle_offsets(group_len, [[0, 1, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0]], [1, 0])
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        particle_offsets(group_len, [[0, 1, 0, 0, 0, 0]], [2])


def test_failed_write_leaves_previous_file_untouched(
    sim: MockSim, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "snap.hdf5"
    write_snapshot_file(path, header=sim.header, file_index=1, particles=sim.file_particles(1))
    before = path.read_bytes()

    def fail(*_: object, **__: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(tng_format, "_write_run_metadata", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        write_snapshot_file(path, header=sim.header, file_index=1, particles=sim.file_particles(1))
    assert path.read_bytes() == before
    assert list(all_files(tmp_path)) == [path]


def test_writes_are_byte_deterministic(tmp_path: Path) -> None:
    first = build_sim(tmp_path / "first", structure=MAIN_SIM)
    time.sleep(1.1)  # HDF5 timestamps have one-second resolution
    second = build_sim(tmp_path / "second", structure=MAIN_SIM)
    first_files = [path.relative_to(first.root) for path in all_files(first.root)]
    assert first_files == [path.relative_to(second.root) for path in all_files(second.root)]
    assert len(first_files) == 4 + 3 + 1
    for relative in first_files:
        assert (first.root / relative).read_bytes() == (second.root / relative).read_bytes()


# --- properties ------------------------------------------------------------------------------

lengths_6 = st.lists(st.integers(0, 30), min_size=6, max_size=6)


@settings(max_examples=150, deadline=None)
@given(
    subhalos_per_group=st.lists(st.lists(lengths_6, max_size=4), max_size=8),
    inner_fuzz=st.lists(lengths_6, min_size=8, max_size=8),
    outer_fuzz=lengths_6,
    n_files=st.integers(1, 7),
)
def test_offsets_nest_and_chunks_cover(
    subhalos_per_group: list[list[list[int]]],
    inner_fuzz: list[list[int]],
    outer_fuzz: list[int],
    n_files: int,
) -> None:
    n_groups = len(subhalos_per_group)
    sub_len = np.array([s for subs in subhalos_per_group for s in subs], dtype=np.int64)
    sub_len = sub_len.reshape(-1, 6)
    group_number = np.repeat(np.arange(n_groups), [len(subs) for subs in subhalos_per_group])
    group_len = np.array(inner_fuzz[:n_groups], dtype=np.int64).reshape(-1, 6)
    np.add.at(group_len, group_number, sub_len)

    group_offsets, sub_offsets = particle_offsets(group_len, sub_len, group_number)

    group_ends = group_offsets + group_len
    np.testing.assert_array_equal(group_offsets[1:], group_ends[:-1])  # contiguous, in order
    assert (group_offsets[:1] == 0).all()
    sub_ends = sub_offsets + sub_len
    assert (sub_offsets >= group_offsets[group_number]).all()
    assert (sub_ends <= group_ends[group_number]).all()
    same_group = group_number[1:] == group_number[:-1]
    assert (sub_offsets[1:][same_group] == sub_ends[:-1][same_group]).all()  # no overlap

    totals = group_len.sum(axis=0) + np.array(outer_fuzz)
    layout = SnapshotLayout(num_part_total=tuple(totals.tolist()), num_files=n_files)
    for ptype, total in enumerate(totals):
        bounds = chunk_ranges(int(total), n_files)
        sizes = np.diff(bounds)
        assert bounds[0] == 0 and bounds[-1] == total
        assert sizes.min() >= 0 and sizes.max() - sizes.min() <= 1
        for start, stop in zip(sub_offsets[:, ptype], sub_ends[:, ptype], strict=True):
            files = layout.files_touching(ptype=ptype, start=int(start), stop=int(stop))
            if stop > start:
                assert bounds[files[0]] <= start < bounds[files[0] + 1]
                assert bounds[files[-1]] < stop <= bounds[files[-1] + 1]
                assert (np.diff(files) >= 1).all()
            else:
                assert len(files) == 0
