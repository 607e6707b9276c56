"""Writer of the mock universe's files in IllustrisTNG's on-disk layout.

Everything about the layout itself (paths, header keys, field specs, chunking, offsets) lives in
:mod:`darkstack.tng_layout`, which ingest's readers share; this module only writes. It receives
plain arrays already in TNG code units (ckpc/h, 1e10 Msun/h, km/s sqrt(a), see
:mod:`darkstack.units`), checks them against the layout's specs and writes them so that
``illustris_python`` reads the result as if it were a TNG data release. Every file is written
under a temporary name and moved into place, stamped with
:data:`~darkstack.tng_layout.PROVENANCE_ATTRIBUTE`, and the same inputs always give the same
bytes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import MappingProxyType
from typing import Any

import h5py
import numpy as np
from numpy.typing import ArrayLike, NDArray

import darkstack
from darkstack.hdf5 import atomic_hdf5
from darkstack.tng_layout import (
    GROUP_FIELDS,
    INT32_MAX,
    NUM_PART_TYPES,
    OFFSETS_FIELDS,
    PARTICLE_FIELDS,
    PROVENANCE_ATTRIBUTE,
    SUBHALO_FIELDS,
    SUBHALO_MATCHING_DATASETS,
    FieldSpec,
    Int64Array,
    PathLike,
    SnapshotHeader,
    SnapshotLayout,
    chunk_ranges,
    group_catalog_dir,
    group_catalog_path,
    index_array,
    offsets_path,
    output_dir,
    part_type_group,
    particle_offsets,
    run_metadata,
    subhalo_matching_group,
    subhalo_matching_path,
)

__all__ = [
    "check_writable",
    "write_catalogs",
    "write_group_catalog",
    "write_offsets",
    "write_snapshot_file",
    "write_subhalo_matching",
]

_PROVENANCE = np.bytes_(
    f"written by the darkstack-{darkstack.__version__} mock universe (darkstack.universe) in the "
    "IllustrisTNG layout; not an IllustrisTNG data release".encode()
)

# Source dtype kinds that convert to the spec's kind without losing meaning: no float -> int.
_LOSSLESS_KINDS = MappingProxyType({"i": "biu", "u": "biu", "f": "biuf"})


def check_writable(header: SnapshotHeader) -> None:
    """Check that darkstack can write a snapshot with this header.

    darkstack writes only the types of :data:`~darkstack.tng_layout.PARTICLE_FIELDS`, and, as
    in TNG, a type with per-particle ``Masses`` has ``MassTable`` 0 while a type without (DM)
    has its particle mass there. A reader accepts any header; the writer accepts these.

    Raises
    ------
    ValueError
        Naming the type and what was expected.
    """
    for ptype, (count, mass) in enumerate(
        zip(header.num_part_total, header.mass_table, strict=True)
    ):
        if ptype not in PARTICLE_FIELDS:
            if count or mass:
                raise ValueError(
                    f"{part_type_group(ptype)} is not written by darkstack (only "
                    f"{list(PARTICLE_FIELDS)}):"
                    f" num_part_total and mass_table must be 0, got {count} and {mass}"
                )
        elif any(spec.name == "Masses" for spec in PARTICLE_FIELDS[ptype]):
            if mass:
                raise ValueError(
                    f"{part_type_group(ptype)} stores per-particle Masses, so "
                    f"mass_table[{ptype}] must be"
                    f" 0 as in TNG, got {mass}"
                )
        elif count and mass <= 0:
            raise ValueError(
                f"{part_type_group(ptype)} has no Masses field: mass_table[{ptype}] must hold its "
                f"particle mass (> 0), got {mass}"
            )
    _ = header.layout  # validates the per-file int32 limit of NumPart_ThisFile


def write_snapshot_file(
    path: PathLike,
    *,
    header: SnapshotHeader,
    file_index: int,
    particles: Mapping[int, Mapping[str, ArrayLike]],
) -> None:
    """Write one snapshot chunk, ``snap_SSS.N.hdf5``.

    Parameters
    ----------
    path : str or os.PathLike
        Destination, usually :func:`~darkstack.tng_layout.snapshot_path`.
    header : SnapshotHeader
        Snapshot-wide header (see :func:`check_writable`); its layout sets how many particles
        this file holds.
    file_index : int
        Index of this chunk.
    particles : mapping of int to mapping of str to array_like
        For each type in :data:`PARTICLE_FIELDS`, exactly its fields with exactly this file's
        count of particles (``header.layout.file_range``), in TNG code units. A type with no
        particles in this file may be omitted; it gets no ``PartTypeN`` group, as in TNG.

    Raises
    ------
    ValueError
        If the header cannot be written (:func:`check_writable`), a type or field is missing or
        unexpected, or a field has the wrong shape, length or dtype kind; the message names the
        field and the file.
    """
    path = Path(path)
    check_writable(header)
    counts = header.layout.num_part_this_file(file_index)
    unknown = sorted(set(particles) - set(PARTICLE_FIELDS))
    if unknown:
        raise ValueError(
            f"{path}: particle types {unknown} are not written by darkstack; expected a subset of"
            f" {sorted(PARTICLE_FIELDS)}"
        )
    tables: dict[int, dict[str, NDArray[Any]]] = {}
    for ptype, specs in PARTICLE_FIELDS.items():
        count = int(counts[ptype])
        where = f"{part_type_group(ptype)} of {path}"
        if ptype not in particles:
            if count:
                raise ValueError(f"{where}: missing, expected {count} particles of this type")
            continue
        columns = _validated_table(specs, particles[ptype], count=count, where=where)
        if count:
            tables[ptype] = columns

    with _atomic_hdf5(path) as file:
        _write_attributes(file.create_group("Header"), header.attributes(file_index=file_index))
        for ptype, columns in tables.items():
            _write_datasets(
                file.create_group(part_type_group(ptype)), PARTICLE_FIELDS[ptype], columns
            )
        _write_run_metadata(file, header=header)


def write_catalogs(
    sim_root: PathLike,
    *,
    snap: int,
    header: SnapshotHeader,
    groups: Mapping[str, ArrayLike],
    subhalos: Mapping[str, ArrayLike],
    num_files: int,
    subhalo_fields: Sequence[FieldSpec] = SUBHALO_FIELDS,
) -> None:
    """Write a snapshot's group catalog and the offsets file that goes with it.

    Every run writes both from the same rows: :func:`write_group_catalog`, then
    :func:`write_offsets` from the catalog's own ``GroupLenType``, ``SubhaloLenType``,
    ``SubhaloGrNr`` and ``GroupFirstSub``. Subhalo columns not in ``subhalo_fields`` are
    not written (a gravity-only run has no ``SubhaloSFR``).

    Parameters
    ----------
    sim_root, snap, header, groups, subhalos, num_files, subhalo_fields
        As for :func:`write_group_catalog`.
    """
    names = {spec.name for spec in subhalo_fields}
    write_group_catalog(
        sim_root,
        snap=snap,
        header=header,
        groups=groups,
        subhalos={key: value for key, value in subhalos.items() if key in names},
        num_files=num_files,
        subhalo_fields=subhalo_fields,
    )
    write_offsets(
        sim_root,
        snap=snap,
        group_len_type=groups["GroupLenType"],
        subhalo_len_type=subhalos["SubhaloLenType"],
        subhalo_group_number=subhalos["SubhaloGrNr"],
        group_first_sub=groups["GroupFirstSub"],
        layout=header.layout,
        groupcat_num_files=num_files,
    )


def write_group_catalog(
    sim_root: PathLike,
    *,
    snap: int,
    header: SnapshotHeader,
    groups: Mapping[str, ArrayLike],
    subhalos: Mapping[str, ArrayLike],
    num_files: int,
    subhalo_fields: Sequence[FieldSpec] = SUBHALO_FIELDS,
) -> list[Path]:
    """Write the FoF/Subfind group catalog, ``fof_subhalo_tab_SSS.N.hdf5`` for every chunk.

    Groups and subhalos are split across ``num_files`` chunks independently of each other with
    :func:`chunk_ranges` (the same split :func:`write_offsets` records). Every chunk has a
    ``Header`` and ``Group``, ``Subhalo`` and ``IDs`` groups, empty where the chunk holds no
    rows, as in TNG.

    Parameters
    ----------
    sim_root : str or os.PathLike
        Simulation root ``SIM`` (``illustris_python``'s basePath is ``SIM/output``).
    snap : int
        Snapshot number.
    header : SnapshotHeader
        Snapshot header; supplies the cosmology of the catalog header.
    groups : mapping of str to array_like
        Exactly the fields of :data:`GROUP_FIELDS`, one row per group.
    subhalos : mapping of str to array_like
        Exactly the fields of ``subhalo_fields``, one row per subhalo, sorted by group.
    num_files : int
        Number of catalog chunk files.
    subhalo_fields : sequence of FieldSpec
        The subhalo datasets: :data:`SUBHALO_FIELDS` for a hydro run,
        :data:`~darkstack.tng_layout.DARK_SUBHALO_FIELDS` for a gravity-only one.

    Returns
    -------
    list of pathlib.Path
        The chunk files written, in order.

    Raises
    ------
    ValueError
        If a field is missing, unexpected or malformed, or the catalog is inconsistent
        (lengths, ``GroupFirstSub``, ``GroupNsubs``, subhalo order).
    """
    if num_files < 1:
        raise ValueError(f"num_files must be >= 1, got {num_files}")
    base_path = output_dir(sim_root)
    chunks = f"the catalog chunks in {group_catalog_dir(base_path, snap)}"
    group_columns = _validated_table(
        GROUP_FIELDS, groups, count=_row_count(groups, "GroupLenType"), where=f"Group of {chunks}"
    )
    subhalo_columns = _validated_table(
        subhalo_fields,
        subhalos,
        count=_row_count(subhalos, "SubhaloLenType"),
        where=f"Subhalo of {chunks}",
    )
    _check_catalog(group_columns, subhalo_columns)

    n_groups, n_subs = len(group_columns["GroupLen"]), len(subhalo_columns["SubhaloLen"])
    if max(n_groups, n_subs) > INT32_MAX:
        # Ngroups_Total and Nsubgroups_Total are int32 in TNG's catalog header.
        raise ValueError(f"{n_groups} groups or {n_subs} subhalos exceed TNG's int32 counts")
    group_bounds = chunk_ranges(n_groups, num_files)
    sub_bounds = chunk_ranges(n_subs, num_files)
    written = []
    for index in range(num_files):
        group_rows = slice(*group_bounds[index : index + 2])
        sub_rows = slice(*sub_bounds[index : index + 2])
        path = group_catalog_path(base_path, snap, index)
        with _atomic_hdf5(path) as file:
            _write_attributes(
                file.create_group("Header"),
                header.group_catalog_attributes(
                    n_groups=(group_rows.stop - group_rows.start, n_groups),
                    n_subs=(sub_rows.stop - sub_rows.start, n_subs),
                    num_files=num_files,
                ),
            )
            _write_rows(file.create_group("Group"), GROUP_FIELDS, group_columns, rows=group_rows)
            _write_rows(
                file.create_group("Subhalo"), subhalo_fields, subhalo_columns, rows=sub_rows
            )
            file.create_group("IDs")  # TNG's public catalogs carry no particle IDs (Nids = 0)
            _write_run_metadata(file, header=header)
        written.append(path)
    return written


def write_offsets(
    sim_root: PathLike,
    *,
    snap: int,
    group_len_type: ArrayLike,
    subhalo_len_type: ArrayLike,
    subhalo_group_number: ArrayLike,
    group_first_sub: ArrayLike,
    layout: SnapshotLayout,
    groupcat_num_files: int,
) -> Path:
    """Write ``offsets_SSS.hdf5``, which ``illustris_python`` needs to load halo particles.

    Parameters
    ----------
    sim_root : str or os.PathLike
        Simulation root ``SIM``.
    snap : int
        Snapshot number.
    group_len_type : array_like of int, shape (n_groups, 6)
        ``GroupLenType``.
    subhalo_len_type : array_like of int, shape (n_subhalos, 6)
        ``SubhaloLenType``.
    subhalo_group_number : array_like of int, shape (n_subhalos,)
        ``SubhaloGrNr``.
    group_first_sub : array_like of int, shape (n_groups,)
        ``GroupFirstSub``, checked against ``subhalo_group_number``.
    layout : SnapshotLayout
        Chunk layout of the snapshot.
    groupcat_num_files : int
        Number of group-catalog chunk files (as given to :func:`write_group_catalog`).

    Returns
    -------
    pathlib.Path
        The offsets file.

    Raises
    ------
    ValueError
        If the catalog is inconsistent (see :func:`particle_offsets`), ``GroupFirstSub`` does
        not match, or the groups hold more particles than the snapshot.
    """
    if groupcat_num_files < 1:
        raise ValueError(f"groupcat_num_files must be >= 1, got {groupcat_num_files}")
    group_offsets, subhalo_offsets = particle_offsets(
        group_len_type, subhalo_len_type, subhalo_group_number
    )
    group_number = index_array(subhalo_group_number, name="SubhaloGrNr", width=1)
    _check_first_sub(
        index_array(group_first_sub, name="GroupFirstSub", width=1),
        group_number,
        n_groups=len(group_offsets),
    )
    in_groups = index_array(group_len_type, name="GroupLenType", width=NUM_PART_TYPES).sum(0)
    if (in_groups > np.asarray(layout.num_part_total)).any():
        raise ValueError(
            f"the groups hold {in_groups.tolist()} particles of each type, more than the "
            f"snapshot's {list(layout.num_part_total)}"
        )

    path = offsets_path(output_dir(sim_root), snap)
    file_offsets = {
        "Group": chunk_ranges(len(group_offsets), groupcat_num_files)[:-1],
        "SnapByType": layout.file_offsets,
        "Subhalo": chunk_ranges(len(subhalo_offsets), groupcat_num_files)[:-1],
    }
    with _atomic_hdf5(path) as file:
        _write_datasets(
            file.create_group("FileOffsets"), OFFSETS_FIELDS["FileOffsets"], file_offsets
        )
        for name, offsets in (("Group", group_offsets), ("Subhalo", subhalo_offsets)):
            _write_datasets(file.create_group(name), OFFSETS_FIELDS[name], {"SnapByType": offsets})
    return path


def write_subhalo_matching(
    sim_root: PathLike, *, snap: int, dark_index: ArrayLike, n_dark_subhalos: int
) -> Path:
    """Write ``postprocessing/subhalo_matching_to_dark.hdf5`` of a hydro run, TNG's layout.

    One group ``Snapshot_N`` holds :data:`~darkstack.tng_layout.SUBHALO_MATCHING_DATASETS`;
    the mock's twin is made subhalo by subhalo, so both algorithms' arrays are the one match.

    Parameters
    ----------
    sim_root : str or os.PathLike
        Simulation root ``SIM`` of the hydro run.
    snap : int
        Snapshot number.
    dark_index : array_like of int, shape (n_hydro_subhalos,)
        For each hydro subhalo, the index of its Dark twin, -1 if it has none.
    n_dark_subhalos : int
        Subhalos in the Dark catalog; every index must point into it.

    Returns
    -------
    pathlib.Path
        The matching file.

    Raises
    ------
    ValueError
        If an index is neither -1 nor a Dark subhalo.
    """
    index = index_array(dark_index, name="SubhaloIndexDark", width=1)
    bad = np.flatnonzero((index < -1) | (index >= n_dark_subhalos))
    if len(bad):
        raise ValueError(
            f"SubhaloIndexDark[{bad[0]}] = {index[bad[0]]} is neither -1 nor one of the "
            f"{n_dark_subhalos} Dark subhalos"
        )
    path = subhalo_matching_path(output_dir(sim_root))
    columns = {spec.name: index for spec in SUBHALO_MATCHING_DATASETS}
    with _atomic_hdf5(path) as file:
        _write_datasets(
            file.create_group(subhalo_matching_group(snap)), SUBHALO_MATCHING_DATASETS, columns
        )
    return path


@contextmanager
def _atomic_hdf5(path: Path) -> Iterator[h5py.File]:
    """An atomic TNG file, stamped as written by darkstack's mock universe."""
    with atomic_hdf5(path) as file:
        file.attrs[PROVENANCE_ATTRIBUTE] = _PROVENANCE
        yield file


def _write_datasets(
    parent: h5py.Group, specs: Sequence[FieldSpec], columns: Mapping[str, ArrayLike]
) -> None:
    """Write one dataset per spec, in spec order, cast to the spec dtype."""
    for spec in specs:
        # No timestamps: identical inputs must give identical bytes.
        parent.create_dataset(
            spec.name, data=np.asarray(columns[spec.name], dtype=spec.dtype), track_times=False
        )


def _write_rows(
    parent: h5py.Group,
    specs: Sequence[FieldSpec],
    columns: Mapping[str, NDArray[Any]],
    *,
    rows: slice,
) -> None:
    """Write the ``rows`` of a catalog table; AREPO writes no dataset into a chunk without rows."""
    if rows.stop > rows.start:
        _write_datasets(parent, specs, {name: column[rows] for name, column in columns.items()})


def _write_attributes(target: h5py.Group, attributes: Mapping[str, Any]) -> None:
    for name, value in attributes.items():
        target.attrs[name] = value


def _write_run_metadata(file: h5py.File, *, header: SnapshotHeader) -> None:
    """``Config`` and ``Parameters`` groups (:func:`~darkstack.tng_layout.run_metadata`)."""
    config, parameters = run_metadata(header)
    _write_attributes(file.create_group("Config"), config)
    _write_attributes(file.create_group("Parameters"), parameters)


def _row_count(columns: Mapping[str, ArrayLike], name: str) -> int:
    """Rows of a catalog table, read from its ``name`` column (0 if absent or scalar)."""
    shape = np.shape(columns[name]) if name in columns else ()
    return shape[0] if shape else 0


def _validated_table(
    specs: Sequence[FieldSpec],
    columns: Mapping[str, ArrayLike],
    *,
    count: int,
    where: str,
) -> dict[str, NDArray[Any]]:
    """Check that ``columns`` holds exactly ``specs`` with ``count`` rows; cast to spec dtypes."""
    names = [spec.name for spec in specs]
    missing = [name for name in names if name not in columns]
    extra = sorted(set(columns) - set(names))
    if missing or extra:
        problems = [f"missing field {name!r}" for name in missing]
        problems += [f"unexpected field {name!r}" for name in extra]
        raise ValueError(f"{where}: {', '.join(problems)}; expected exactly {names}")
    return {
        spec.name: _validated_column(spec, columns[spec.name], count=count, where=where)
        for spec in specs
    }


def _validated_column(
    spec: FieldSpec, values: ArrayLike, *, count: int, where: str
) -> NDArray[Any]:
    array = np.asarray(values)
    expected = spec.shape(count)
    if array.shape != expected:
        raise ValueError(
            f"{where}: field {spec.name!r} has shape {array.shape}, expected {expected}"
            f" ({count} entries of width {spec.width})"
        )
    if array.dtype.kind not in _LOSSLESS_KINDS[spec.dtype.kind]:
        raise ValueError(
            f"{where}: field {spec.name!r} has dtype {array.dtype}, which cannot be stored as"
            f" {spec.dtype} without losing information"
        )
    if spec.dtype.kind in "iu" and array.size:
        low, high = int(array.min()), int(array.max())
        info = np.iinfo(spec.dtype)
        if low < info.min or high > info.max:
            raise ValueError(
                f"{where}: field {spec.name!r} has values in [{low}, {high}], outside the range"
                f" of {spec.dtype}"
            )
    return array.astype(spec.dtype, copy=False)


def _check_first_sub(
    group_first_sub: Int64Array, group_number: Int64Array, *, n_groups: int
) -> None:
    if len(group_first_sub) != n_groups:
        raise ValueError(f"GroupFirstSub has {len(group_first_sub)} entries for {n_groups} groups")
    expected = np.full(n_groups, -1, dtype=np.int64)
    has_subs = np.bincount(group_number, minlength=n_groups) > 0
    expected[has_subs] = np.searchsorted(group_number, np.flatnonzero(has_subs), side="left")
    wrong = np.flatnonzero(group_first_sub != expected)
    if len(wrong):
        group = int(wrong[0])
        raise ValueError(
            f"GroupFirstSub[{group}] = {group_first_sub[group]}, but SubhaloGrNr puts the first "
            f"subhalo of group {group} at {expected[group]} (-1 means no subhalo)"
        )


def _check_catalog(
    groups: Mapping[str, NDArray[Any]], subhalos: Mapping[str, NDArray[Any]]
) -> None:
    """Check that the catalog columns agree with each other, so the offsets are meaningful."""
    group_number = subhalos["SubhaloGrNr"].astype(np.int64)
    group_offsets, _ = particle_offsets(
        groups["GroupLenType"], subhalos["SubhaloLenType"], group_number
    )
    n_groups = len(group_offsets)
    _check_first_sub(groups["GroupFirstSub"].astype(np.int64), group_number, n_groups=n_groups)
    sums = (
        ("GroupLen", groups["GroupLen"], groups["GroupLenType"]),
        ("SubhaloLen", subhalos["SubhaloLen"], subhalos["SubhaloLenType"]),
    )
    for name, total, by_type in sums:
        wrong = np.flatnonzero(total.astype(np.int64) != by_type.astype(np.int64).sum(axis=1))
        if len(wrong):
            raise ValueError(f"{name}[{wrong[0]}] is not the sum of {name}Type[{wrong[0]}]")
    nsubs = np.bincount(group_number, minlength=n_groups)
    wrong = np.flatnonzero(groups["GroupNsubs"] != nsubs)
    if len(wrong):
        raise ValueError(
            f"GroupNsubs[{wrong[0]}] = {groups['GroupNsubs'][wrong[0]]}, but {nsubs[wrong[0]]} "
            "subhalos have that SubhaloGrNr"
        )
