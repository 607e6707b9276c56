"""IllustrisTNG's on-disk layout: snapshot chunks, group catalogs and the offsets file.

This module is the only place in darkstack that knows how TNG stores a snapshot (Nelson et al.
2019, Comput. Astrophys. Cosmol. 6, 2, and the TNG data specifications). It receives plain
arrays already in TNG code units (ckpc/h, 1e10 Msun/h, km/s sqrt(a), see
:mod:`darkstack.units`) and writes them so that ``illustris_python`` reads the result as if it
were a TNG data release:

- ``SIM/output/snapdir_SSS/snap_SSS.N.hdf5``: the particles of each type split into chunk files
  independently of the halos they belong to;
- ``SIM/output/groups_SSS/fof_subhalo_tab_SSS.N.hdf5``: the FoF groups and Subfind subhalos,
  again split into chunks with boundaries independent of each other;
- ``SIM/postprocessing/offsets/offsets_SSS.hdf5``: where each chunk, group and subhalo starts,
  which ``illustris_python`` needs to load the particles of one halo or subhalo.

Inside every particle type the particles follow TNG's order: groups in order; within a group its
subhalos in order, then the group's inner fuzz; the outer fuzz (particles in no group) last.
Every file is written under a temporary name and moved into place, and the same inputs always
give the same bytes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import h5py
import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

import darkstack
from darkstack.hdf5 import atomic_hdf5

__all__ = [
    "GROUP_FIELDS",
    "NUM_PART_TYPES",
    "OFFSETS_FIELDS",
    "PARTICLE_FIELDS",
    "PROVENANCE_ATTRIBUTE",
    "SUBHALO_FIELDS",
    "FieldSpec",
    "SnapshotHeader",
    "SnapshotLayout",
    "chunk_ranges",
    "group_catalog_path",
    "offsets_path",
    "particle_offsets",
    "snapshot_path",
    "split_num_part_total",
    "write_group_catalog",
    "write_offsets",
    "write_snapshot_file",
]

Int64Array = NDArray[np.int64]
PathLike = str | os.PathLike[str]

#: Particle types in a TNG snapshot (gas, DM, unused, tracers, stars and wind, black holes).
NUM_PART_TYPES: Final = 6
#: TNG's code units in cgs (Header/UnitLength_in_cm etc.): ckpc/h, 1e10 Msun/h and km/s.
UNIT_LENGTH_IN_CM: Final = 3.085678e21
UNIT_MASS_IN_G: Final = 1.989e43
UNIT_VELOCITY_IN_CM_PER_S: Final = 1.0e5
#: Root attribute of every file darkstack writes, so a mock is never mistaken for real TNG data.
PROVENANCE_ATTRIBUTE: Final = "DarkstackMockUniverse"

_VERSION_TAG = f"darkstack-{darkstack.__version__}"
_PROVENANCE = np.bytes_(
    f"written by the {_VERSION_TAG} mock universe (darkstack.universe) in the IllustrisTNG "
    "layout; not an IllustrisTNG data release".encode()
)
# AREPO stamps its git commit and date; the mock records darkstack's version in their place.
_GIT_COMMIT = np.bytes_(_VERSION_TAG.encode())
_GIT_DATE = np.bytes_(b"darkstack mock universe")
# TNG's initial conditions start at z = 127.
_TIME_BEGIN = 1.0 / 128.0
_INT32_MAX: Final = int(np.iinfo(np.int32).max)

# Source dtype kinds that convert to the spec's kind without losing meaning: no float -> int.
_LOSSLESS_KINDS = MappingProxyType({"i": "biu", "u": "biu", "f": "biuf"})


@dataclass(frozen=True)
class FieldSpec:
    """One dataset in a TNG file.

    Parameters
    ----------
    name : str
        Dataset name, e.g. ``"Coordinates"``.
    dtype : numpy dtype
        On-disk dtype, as in the TNG data release.
    width : int
        Values per entry: 1 for a column of shape (N,), otherwise shape (N, width).
    units : str
        TNG code units of the values ("" for dimensionless).
    description : str
        What the values are.
    """

    name: str
    dtype: np.dtype[Any]
    width: int
    units: str
    description: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype", np.dtype(self.dtype))
        if self.width < 1:
            raise ValueError(f"FieldSpec {self.name!r}: width must be >= 1, got {self.width}")

    def shape(self, count: int) -> tuple[int, ...]:
        """Shape of this field for ``count`` entries."""
        return (count,) if self.width == 1 else (count, self.width)


def _spec(name: str, dtype: DTypeLike, width: int, units: str, description: str) -> FieldSpec:
    return FieldSpec(name, np.dtype(dtype), width, units, description)


_COORDINATES = _spec("Coordinates", np.float64, 3, "ckpc/h", "Position in the periodic box.")
_PARTICLE_IDS = _spec("ParticleIDs", np.uint64, 1, "", "Unique particle ID.")
_VELOCITIES = _spec("Velocities", np.float32, 3, "km/s sqrt(a)", "Particle velocity.")
_MASSES = _spec("Masses", np.float32, 1, "1e10 Msun/h", "Particle mass.")
_METALLICITY = _spec("GFM_Metallicity", np.float32, 1, "", "Metal mass fraction M_Z / M.")

#: Datasets of each particle type darkstack writes, keyed by type number. DM (type 1) has no
#: Masses: its particle mass is Header/MassTable[1], as in TNG.
PARTICLE_FIELDS: Mapping[int, tuple[FieldSpec, ...]] = MappingProxyType(
    {
        0: (
            _spec("CenterOfMass", np.float32, 3, "ckpc/h", "Centre of mass of the gas cell."),
            _COORDINATES,
            _spec("Density", np.float32, 1, "(1e10 Msun/h)/(ckpc/h)^3", "Comoving gas density."),
            _spec("ElectronAbundance", np.float32, 1, "", "Electrons per hydrogen nucleus."),
            _METALLICITY,
            _spec("InternalEnergy", np.float32, 1, "(km/s)^2", "Thermal energy per unit mass."),
            _MASSES,
            _spec("NeutralHydrogenAbundance", np.float32, 1, "", "Neutral fraction of H."),
            _PARTICLE_IDS,
            _spec("StarFormationRate", np.float32, 1, "Msun/yr", "Instantaneous SFR."),
            _VELOCITIES,
        ),
        1: (_COORDINATES, _PARTICLE_IDS, _VELOCITIES),
        4: (
            _COORDINATES,
            _spec("GFM_InitialMass", np.float32, 1, "1e10 Msun/h", "Stellar mass at birth."),
            _METALLICITY,
            _spec(
                "GFM_StellarFormationTime",
                np.float32,
                1,
                "scale factor",
                "Scale factor at birth; negative for wind particles.",
            ),
            _MASSES,
            _PARTICLE_IDS,
            _VELOCITIES,
        ),
    }
)

_LEN_TYPE = "number of particles of each type"
_MASS_TYPE = "mass of each particle type"

#: FoF group catalog datasets (``Group`` in ``fof_subhalo_tab_SSS.N.hdf5``).
GROUP_FIELDS: tuple[FieldSpec, ...] = (
    _spec("GroupFirstSub", np.int32, 1, "", "Index of the first subhalo; -1 if none."),
    _spec("GroupLen", np.int32, 1, "", "Number of particles in the group."),
    _spec("GroupLenType", np.int32, 6, "", f"Group {_LEN_TYPE}."),
    _spec("GroupMass", np.float32, 1, "1e10 Msun/h", "Total mass of the group."),
    _spec("GroupMassType", np.float32, 6, "1e10 Msun/h", f"Group {_MASS_TYPE}."),
    _spec("GroupNsubs", np.int32, 1, "", "Number of subhalos in the group."),
    _spec("GroupPos", np.float32, 3, "ckpc/h", "Position of the particle of minimum potential."),
    _spec("GroupVel", np.float32, 3, "km/s/a", "Mass-weighted group velocity."),
    _spec("Group_M_Crit200", np.float32, 1, "1e10 Msun/h", "Mass inside 200 rho_crit."),
    _spec("Group_R_Crit200", np.float32, 1, "ckpc/h", "Radius enclosing 200 rho_crit."),
)

#: Subfind subhalo catalog datasets (``Subhalo`` in ``fof_subhalo_tab_SSS.N.hdf5``).
SUBHALO_FIELDS: tuple[FieldSpec, ...] = (
    _spec("SubhaloCM", np.float32, 3, "ckpc/h", "Centre of mass."),
    _spec("SubhaloFlag", np.uint8, 1, "", "0 for subhalos of non-cosmological origin."),
    _spec("SubhaloGrNr", np.int32, 1, "", "Index of the parent FoF group."),
    _spec("SubhaloHalfmassRadType", np.float32, 6, "ckpc/h", "Half-mass radius of each type."),
    _spec("SubhaloLen", np.int32, 1, "", "Number of particles in the subhalo."),
    _spec("SubhaloLenType", np.int32, 6, "", f"Subhalo {_LEN_TYPE}."),
    _spec("SubhaloMass", np.float32, 1, "1e10 Msun/h", "Total bound mass."),
    _spec("SubhaloMassType", np.float32, 6, "1e10 Msun/h", f"Subhalo {_MASS_TYPE}."),
    _spec("SubhaloParent", np.int32, 1, "", "Index of the parent subhalo within the group."),
    _spec("SubhaloPos", np.float32, 3, "ckpc/h", "Position of the particle of minimum potential."),
    _spec("SubhaloSFR", np.float32, 1, "Msun/yr", "Star formation rate of its gas."),
    _spec("SubhaloVel", np.float32, 3, "km/s", "Peculiar velocity."),
    _spec("SubhaloVmax", np.float32, 1, "km/s", "Maximum circular velocity."),
    _spec("SubhaloVmaxRad", np.float32, 1, "ckpc/h", "Radius of the maximum circular velocity."),
)

_SNAP_BY_TYPE = _spec("SnapByType", np.int64, 6, "", "First snapshot index of each type.")

#: Datasets of ``offsets_SSS.hdf5``, keyed by HDF5 group.
OFFSETS_FIELDS: Mapping[str, tuple[FieldSpec, ...]] = MappingProxyType(
    {
        "FileOffsets": (
            _spec("Group", np.int64, 1, "", "First group index of each group-catalog chunk."),
            _spec("SnapByType", np.int64, 6, "", "First particle index of each snapshot chunk."),
            _spec("Subhalo", np.int64, 1, "", "First subhalo index of each group-catalog chunk."),
        ),
        "Group": (_SNAP_BY_TYPE,),
        "Subhalo": (_SNAP_BY_TYPE,),
    }
)


def snapshot_path(sim_root: PathLike, snap: int, file_index: int) -> Path:
    """Path of one snapshot chunk: ``SIM/output/snapdir_SSS/snap_SSS.N.hdf5``."""
    return Path(sim_root) / "output" / f"snapdir_{snap:03d}" / f"snap_{snap:03d}.{file_index}.hdf5"


def group_catalog_path(sim_root: PathLike, snap: int, file_index: int) -> Path:
    """Path of one group-catalog chunk: ``SIM/output/groups_SSS/fof_subhalo_tab_SSS.N.hdf5``."""
    name = f"fof_subhalo_tab_{snap:03d}.{file_index}.hdf5"
    return Path(sim_root) / "output" / f"groups_{snap:03d}" / name


def offsets_path(sim_root: PathLike, snap: int) -> Path:
    """Path of the offsets file: ``SIM/postprocessing/offsets/offsets_SSS.hdf5``."""
    return Path(sim_root) / "postprocessing" / "offsets" / f"offsets_{snap:03d}.hdf5"


def chunk_ranges(total: int, n_files: int) -> Int64Array:
    """Split ``total`` items into ``n_files`` contiguous chunks as evenly as possible.

    Parameters
    ----------
    total : int
        Number of items (particles of one type, groups or subhalos).
    n_files : int
        Number of chunk files.

    Returns
    -------
    numpy.ndarray of int64, shape (n_files + 1,)
        Boundaries: chunk ``i`` holds items ``[b[i], b[i + 1])``. Chunk sizes differ by at most
        one; ``b[0] == 0`` and ``b[-1] == total``.
    """
    if total < 0:
        raise ValueError(f"total must be >= 0, got {total}")
    if n_files < 1:
        raise ValueError(f"n_files must be >= 1, got {n_files}")
    # Python integers: i * total may exceed int64 for very large simulations.
    return np.array([i * int(total) // n_files for i in range(n_files + 1)], dtype=np.int64)


def split_num_part_total(
    counts: ArrayLike,
) -> tuple[NDArray[np.uint32], NDArray[np.uint32]]:
    """Split particle counts into TNG's ``NumPart_Total`` and ``NumPart_Total_HighWord``.

    Parameters
    ----------
    counts : array_like of int
        Non-negative counts (one per particle type).

    Returns
    -------
    low, high : numpy.ndarray of uint32
        The low and high 32-bit words: ``count == low + high * 2**32``.
    """
    values = np.asarray(counts)
    if values.dtype.kind not in "iu" or (values < 0).any():
        raise ValueError(f"particle counts must be non-negative integers, got {values!r}")
    values = values.astype(np.uint64)
    low = (values & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    high = (values >> np.uint64(32)).astype(np.uint32)
    return low, high


@dataclass(frozen=True, kw_only=True)
class SnapshotLayout:
    """How the particles of each type are split across the chunk files of one snapshot.

    Each type is split independently with :func:`chunk_ranges`, so chunk boundaries fall
    anywhere, including inside a group or subhalo.

    Parameters
    ----------
    num_part_total : sequence of int
        Total particles of each of the 6 types.
    num_files : int
        Number of snapshot chunk files.
    """

    num_part_total: tuple[int, ...]
    num_files: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "num_part_total", tuple(int(n) for n in self.num_part_total))
        if len(self.num_part_total) != NUM_PART_TYPES:
            raise ValueError(
                f"num_part_total needs {NUM_PART_TYPES} counts, got {len(self.num_part_total)}"
            )
        if min(self.num_part_total) < 0:
            raise ValueError(f"num_part_total must be >= 0, got {self.num_part_total}")
        if self.num_files < 1:
            raise ValueError(f"num_files must be >= 1, got {self.num_files}")
        largest = int(np.diff(self.boundaries, axis=1).max())
        if largest > _INT32_MAX:
            # Header/NumPart_ThisFile is int32 in TNG.
            raise ValueError(
                f"{largest} particles of one type in a single file exceed TNG's int32 "
                f"NumPart_ThisFile; use more than {self.num_files} files"
            )

    @cached_property
    def boundaries(self) -> Int64Array:
        """Chunk boundaries of each type, shape (6, num_files + 1) (read-only)."""
        bounds = np.stack([chunk_ranges(n, self.num_files) for n in self.num_part_total])
        bounds.setflags(write=False)
        return bounds

    @property
    def file_offsets(self) -> Int64Array:
        """First global index of each type in each file, shape (num_files, 6).

        This is ``FileOffsets/SnapByType`` of the offsets file.
        """
        return np.ascontiguousarray(self.boundaries[:, :-1].T)

    def num_part_this_file(self, file_index: int) -> Int64Array:
        """Particles of each type in one file (``Header/NumPart_ThisFile``), shape (6,)."""
        self._check_file_index(file_index)
        return self.boundaries[:, file_index + 1] - self.boundaries[:, file_index]

    def file_range(self, *, file_index: int, ptype: int) -> tuple[int, int]:
        """Global ``[start, stop)`` of type ``ptype`` stored in file ``file_index``."""
        self._check_file_index(file_index)
        bounds = self.boundaries[ptype]
        return int(bounds[file_index]), int(bounds[file_index + 1])

    def files_touching(self, *, ptype: int, start: int, stop: int) -> Int64Array:
        """Files holding part of the global particle range ``[start, stop)`` of type ``ptype``.

        Parameters
        ----------
        ptype : int
            Particle type.
        start, stop : int
            Global index range of that type, ``0 <= start <= stop <= num_part_total[ptype]``.

        Returns
        -------
        numpy.ndarray of int64
            Indices of the files, in order; empty for an empty range. Files that hold no
            particle of this type are never listed.
        """
        total = self.num_part_total[ptype]
        if not 0 <= start <= stop <= total:
            raise ValueError(f"range [{start}, {stop}) of PartType{ptype} is outside [0, {total})")
        if start == stop:
            return np.empty(0, dtype=np.int64)
        bounds = self.boundaries[ptype]
        first = int(np.searchsorted(bounds, start, side="right")) - 1
        last = int(np.searchsorted(bounds, stop, side="left")) - 1
        files = np.arange(first, last + 1, dtype=np.int64)
        return files[bounds[files + 1] > bounds[files]]

    def _check_file_index(self, file_index: int) -> None:
        if not 0 <= file_index < self.num_files:
            raise ValueError(f"file_index {file_index} outside [0, {self.num_files})")


@dataclass(frozen=True, kw_only=True)
class SnapshotHeader:
    """Cosmology and particle bookkeeping of one snapshot, rendered as TNG's ``Header``.

    Parameters
    ----------
    box_size : float
        Side of the periodic box in ckpc/h.
    hubble_param : float
        h.
    omega_m, omega_lambda, omega_b : float
        Matter, dark-energy and baryon density parameters.
    redshift : float
        Redshift of the snapshot.
    scale_factor : float
        Scale factor, ``1 / (1 + redshift)``.
    mass_table : sequence of float
        Mass of each type in 1e10 Msun/h, nonzero only for types without a ``Masses`` field
        (DM), as in TNG.
    num_part_total : sequence of int
        Total particles of each of the 6 types.
    num_files : int
        Number of snapshot chunk files.
    """

    box_size: float
    hubble_param: float
    omega_m: float
    omega_lambda: float
    omega_b: float
    redshift: float
    scale_factor: float
    mass_table: tuple[float, ...]
    num_part_total: tuple[int, ...]
    num_files: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "mass_table", tuple(float(m) for m in self.mass_table))
        object.__setattr__(self, "num_part_total", tuple(int(n) for n in self.num_part_total))
        for name in ("mass_table", "num_part_total"):
            if len(getattr(self, name)) != NUM_PART_TYPES:
                raise ValueError(f"{name} needs {NUM_PART_TYPES} values, got {getattr(self, name)}")
        if self.box_size <= 0 or self.hubble_param <= 0:
            raise ValueError("box_size and hubble_param must be positive")
        if abs(self.scale_factor * (1.0 + self.redshift) - 1.0) > 1e-6:
            raise ValueError(
                f"scale_factor {self.scale_factor} does not match redshift {self.redshift}"
            )
        for ptype, (count, mass) in enumerate(
            zip(self.num_part_total, self.mass_table, strict=True)
        ):
            self._check_type(ptype, count=count, mass=mass)
        _ = self.layout  # validates the counts and the per-file int32 limit

    @staticmethod
    def _check_type(ptype: int, *, count: int, mass: float) -> None:
        if ptype not in PARTICLE_FIELDS:
            if count or mass:
                raise ValueError(
                    f"PartType{ptype} is not written by darkstack (only {list(PARTICLE_FIELDS)}):"
                    f" num_part_total and mass_table must be 0, got {count} and {mass}"
                )
        elif any(spec.name == "Masses" for spec in PARTICLE_FIELDS[ptype]):
            if mass:
                raise ValueError(
                    f"PartType{ptype} stores per-particle Masses, so mass_table[{ptype}] must be"
                    f" 0 as in TNG, got {mass}"
                )
        elif count and mass <= 0:
            raise ValueError(
                f"PartType{ptype} has no Masses field: mass_table[{ptype}] must hold its "
                f"particle mass (> 0), got {mass}"
            )

    @cached_property
    def layout(self) -> SnapshotLayout:
        """The chunk layout of the particles."""
        return SnapshotLayout(num_part_total=self.num_part_total, num_files=self.num_files)

    def attributes(self, *, file_index: int) -> dict[str, Any]:
        """TNG's complete ``Header`` attributes of one chunk file, with TNG's dtypes.

        Parameters
        ----------
        file_index : int
            Chunk file the header is for (sets ``NumPart_ThisFile``).

        Returns
        -------
        dict
            Attribute name to numpy scalar or array, in a fixed order.
        """
        low, high = split_num_part_total(self.num_part_total)
        return {
            "BoxSize": np.float64(self.box_size),
            "Composition_vector_length": np.int32(0),
            "Flag_Cooling": np.int32(1),
            "Flag_DoublePrecision": np.int32(0),
            "Flag_Feedback": np.int32(1),
            "Flag_Metals": np.int32(0),
            "Flag_Sfr": np.int32(1),
            "Flag_StellarAge": np.int32(1),
            "Git_commit": _GIT_COMMIT,
            "Git_date": _GIT_DATE,
            "HubbleParam": np.float64(self.hubble_param),
            "MassTable": np.asarray(self.mass_table, dtype=np.float64),
            "NumFilesPerSnapshot": np.int32(self.num_files),
            "NumPart_ThisFile": self.layout.num_part_this_file(file_index).astype(np.int32),
            "NumPart_Total": low,
            "NumPart_Total_HighWord": high,
            "Omega0": np.float64(self.omega_m),
            "OmegaBaryon": np.float64(self.omega_b),
            "OmegaLambda": np.float64(self.omega_lambda),
            "Redshift": np.float64(self.redshift),
            "Time": np.float64(self.scale_factor),
            "UnitLength_in_cm": np.float64(UNIT_LENGTH_IN_CM),
            "UnitMass_in_g": np.float64(UNIT_MASS_IN_G),
            "UnitVelocity_in_cm_per_s": np.float64(UNIT_VELOCITY_IN_CM_PER_S),
        }


def particle_offsets(
    group_len_type: ArrayLike,
    subhalo_len_type: ArrayLike,
    subhalo_group_number: ArrayLike,
) -> tuple[Int64Array, Int64Array]:
    """First snapshot index of each type for every group and subhalo, in TNG's order.

    Particles of each type are ordered by group; inside a group its subhalos come first, in
    order, then the group's inner fuzz; particles in no group come after all groups.

    Parameters
    ----------
    group_len_type : array_like of int, shape (n_groups, 6)
        ``GroupLenType``.
    subhalo_len_type : array_like of int, shape (n_subhalos, 6)
        ``SubhaloLenType``.
    subhalo_group_number : array_like of int, shape (n_subhalos,)
        ``SubhaloGrNr``: non-decreasing, each in ``[0, n_groups)``.

    Returns
    -------
    group_offsets : numpy.ndarray of int64, shape (n_groups, 6)
        ``Group/SnapByType``: exclusive cumulative sum of ``GroupLenType``.
    subhalo_offsets : numpy.ndarray of int64, shape (n_subhalos, 6)
        ``Subhalo/SnapByType``: the group's offset plus the lengths of the group's earlier
        subhalos.

    Raises
    ------
    ValueError
        If the shapes disagree, a length is negative, subhalos are not sorted by group, or the
        subhalos of a group hold more particles of a type than the group.
    """
    group_len = _index_array(group_len_type, name="GroupLenType", width=NUM_PART_TYPES)
    sub_len = _index_array(subhalo_len_type, name="SubhaloLenType", width=NUM_PART_TYPES)
    group_number = _index_array(subhalo_group_number, name="SubhaloGrNr", width=1)
    n_groups, n_subs = len(group_len), len(sub_len)
    if len(group_number) != n_subs:
        raise ValueError(
            f"SubhaloGrNr has {len(group_number)} entries but SubhaloLenType has {n_subs}"
        )
    if (group_len < 0).any() or (sub_len < 0).any():
        raise ValueError("GroupLenType and SubhaloLenType must be >= 0")
    if n_subs and (group_number.min() < 0 or group_number.max() >= n_groups):
        raise ValueError(f"SubhaloGrNr must lie in [0, {n_groups}) (the number of groups)")
    if (np.diff(group_number) < 0).any():
        first = int(np.flatnonzero(np.diff(group_number) < 0)[0]) + 1
        raise ValueError(f"subhalos must be sorted by SubhaloGrNr; subhalo {first} is not")

    in_subhalos = np.zeros_like(group_len)
    np.add.at(in_subhalos, group_number, sub_len)
    too_many = np.argwhere(in_subhalos > group_len)
    if len(too_many):
        group, ptype = (int(i) for i in too_many[0])
        raise ValueError(
            f"the subhalos of group {group} hold {in_subhalos[group, ptype]} particles of "
            f"PartType{ptype}, more than GroupLenType[{group}, {ptype}] = "
            f"{group_len[group, ptype]}"
        )

    group_offsets = _exclusive_cumsum(group_len)
    sub_cumsum = _exclusive_cumsum(sub_len)
    # Subhalos are sorted by group, so the group's first subhalo starts its run.
    first_of_group = np.searchsorted(group_number, group_number, side="left")
    subhalo_offsets = group_offsets[group_number] + sub_cumsum - sub_cumsum[first_of_group]
    return group_offsets, subhalo_offsets


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
        Destination, usually :func:`snapshot_path`.
    header : SnapshotHeader
        Snapshot-wide header; its layout sets how many particles this file holds.
    file_index : int
        Index of this chunk.
    particles : mapping of int to mapping of str to array_like
        For each type in :data:`PARTICLE_FIELDS`, exactly its fields with exactly this file's
        count of particles (``header.layout.file_range``), in TNG code units. A type with no
        particles in this file may be omitted; it gets no ``PartTypeN`` group, as in TNG.

    Raises
    ------
    ValueError
        If a type or field is missing or unexpected, or a field has the wrong shape, length or
        dtype kind; the message names the field and the file.
    """
    path = Path(path)
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
        where = f"PartType{ptype} of {path}"
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
            _write_datasets(file.create_group(f"PartType{ptype}"), PARTICLE_FIELDS[ptype], columns)
        _write_run_metadata(file, header=header)


def write_group_catalog(
    sim_root: PathLike,
    *,
    snap: int,
    header: SnapshotHeader,
    groups: Mapping[str, ArrayLike],
    subhalos: Mapping[str, ArrayLike],
    num_files: int,
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
        Exactly the fields of :data:`SUBHALO_FIELDS`, one row per subhalo, sorted by group.
    num_files : int
        Number of catalog chunk files.

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
    pattern = group_catalog_path(sim_root, snap, 0).with_name(f"fof_subhalo_tab_{snap:03d}.*.hdf5")
    group_columns = _validated_table(
        GROUP_FIELDS, groups, count=_row_count(groups, "GroupLenType"), where=f"Group of {pattern}"
    )
    subhalo_columns = _validated_table(
        SUBHALO_FIELDS,
        subhalos,
        count=_row_count(subhalos, "SubhaloLenType"),
        where=f"Subhalo of {pattern}",
    )
    _check_catalog(group_columns, subhalo_columns)

    n_groups, n_subs = len(group_columns["GroupLen"]), len(subhalo_columns["SubhaloLen"])
    if max(n_groups, n_subs) > _INT32_MAX:
        # Ngroups_Total and Nsubgroups_Total are int32 in TNG's catalog header.
        raise ValueError(f"{n_groups} groups or {n_subs} subhalos exceed TNG's int32 counts")
    group_bounds = chunk_ranges(n_groups, num_files)
    sub_bounds = chunk_ranges(n_subs, num_files)
    written = []
    for index in range(num_files):
        group_rows = slice(*group_bounds[index : index + 2])
        sub_rows = slice(*sub_bounds[index : index + 2])
        path = group_catalog_path(sim_root, snap, index)
        with _atomic_hdf5(path) as file:
            _write_attributes(
                file.create_group("Header"),
                _group_catalog_header(
                    header,
                    n_groups=(group_rows.stop - group_rows.start, n_groups),
                    n_subs=(sub_rows.stop - sub_rows.start, n_subs),
                    num_files=num_files,
                ),
            )
            _write_rows(file.create_group("Group"), GROUP_FIELDS, group_columns, rows=group_rows)
            _write_rows(
                file.create_group("Subhalo"), SUBHALO_FIELDS, subhalo_columns, rows=sub_rows
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
    group_number = _index_array(subhalo_group_number, name="SubhaloGrNr", width=1)
    _check_first_sub(
        _index_array(group_first_sub, name="GroupFirstSub", width=1),
        group_number,
        n_groups=len(group_offsets),
    )
    in_groups = _index_array(group_len_type, name="GroupLenType", width=NUM_PART_TYPES).sum(0)
    if (in_groups > np.asarray(layout.num_part_total)).any():
        raise ValueError(
            f"the groups hold {in_groups.tolist()} particles of each type, more than the "
            f"snapshot's {list(layout.num_part_total)}"
        )

    path = offsets_path(sim_root, snap)
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
    """Write small ``Config`` and ``Parameters`` groups like those of TNG's files.

    AREPO stores a compile-time flag as an empty string and a valued option as a double;
    run-time parameters keep their type (double, int or string).
    """
    flag = np.bytes_(b"")
    config = {
        "COOLING": flag,
        "FOF": flag,
        "FOF_PRIMARY_LINK_TYPES": np.float64(2),
        "GFM": flag,
        "GFM_STELLAR_EVOLUTION": np.float64(0),
        "GFM_WINDS": flag,
        "NTYPES": np.float64(NUM_PART_TYPES),
        "SUBFIND": flag,
    }
    parameters = {
        "BoxSize": np.float64(header.box_size),
        "ComovingIntegrationOn": np.int32(1),
        "HubbleParam": np.float64(header.hubble_param),
        "NumFilesPerSnapshot": np.int32(header.num_files),
        "Omega0": np.float64(header.omega_m),
        "OmegaBaryon": np.float64(header.omega_b),
        "OmegaLambda": np.float64(header.omega_lambda),
        "SnapFormat": np.int32(3),
        "SnapshotFileBase": np.bytes_(b"snap"),
        "TimeBegin": np.float64(_TIME_BEGIN),
        "TimeMax": np.float64(header.scale_factor),
        "UnitLength_in_cm": np.float64(UNIT_LENGTH_IN_CM),
        "UnitMass_in_g": np.float64(UNIT_MASS_IN_G),
        "UnitVelocity_in_cm_per_s": np.float64(UNIT_VELOCITY_IN_CM_PER_S),
    }
    _write_attributes(file.create_group("Config"), config)
    _write_attributes(file.create_group("Parameters"), parameters)


def _group_catalog_header(
    header: SnapshotHeader,
    *,
    n_groups: tuple[int, int],
    n_subs: tuple[int, int],
    num_files: int,
) -> dict[str, Any]:
    """``Header`` attributes of one catalog chunk; counts are (this file, total)."""
    return {
        "BoxSize": np.float64(header.box_size),
        "FlagDoubleprecision": np.int32(0),
        "Git_commit": _GIT_COMMIT,
        "Git_date": _GIT_DATE,
        "HubbleParam": np.float64(header.hubble_param),
        "Ngroups_ThisFile": np.int32(n_groups[0]),
        "Ngroups_Total": np.int32(n_groups[1]),
        "Nids_ThisFile": np.int32(0),
        "Nids_Total": np.int64(0),
        "Nsubgroups_ThisFile": np.int32(n_subs[0]),
        "Nsubgroups_Total": np.int32(n_subs[1]),
        "NumFiles": np.int32(num_files),
        "Omega0": np.float64(header.omega_m),
        "OmegaLambda": np.float64(header.omega_lambda),
        "Redshift": np.float64(header.redshift),
        "Time": np.float64(header.scale_factor),
    }


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


def _index_array(values: ArrayLike, *, name: str, width: int) -> Int64Array:
    array = np.asarray(values)
    expected_ndim = 1 if width == 1 else 2
    if (
        array.dtype.kind not in "iu"
        or array.ndim != expected_ndim
        or (width > 1 and array.shape[1] != width)
    ):
        shape = "(n,)" if width == 1 else f"(n, {width})"
        raise ValueError(
            f"{name} must be an integer array of shape {shape}, got {array.dtype} {array.shape}"
        )
    return array.astype(np.int64)


def _exclusive_cumsum(lengths: Int64Array) -> Int64Array:
    offsets = np.zeros_like(lengths)
    np.cumsum(lengths[:-1], axis=0, out=offsets[1:])
    return offsets


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
