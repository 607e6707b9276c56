"""IllustrisTNG's on-disk layout: paths, headers, fields, chunking and offsets.

The one module of darkstack that knows how a TNG snapshot is stored (Nelson et al. 2019,
Comput. Astrophys. Cosmol. 6, 2, and the TNG data specifications,
https://www.tng-project.org/data/docs/specifications/). The mock universe's writer
(:mod:`darkstack.universe.tng_format`) and ingest's readers (:mod:`darkstack.ingest.tng_local`,
:mod:`darkstack.ingest.api_source`) both take their paths, header keys, field specs and offsets
from here:

- ``basePath/snapdir_SSS/snap_SSS.N.hdf5``: the particles of each type, split into chunk files
  independently of the halos they belong to;
- ``basePath/groups_SSS/fof_subhalo_tab_SSS.N.hdf5``: the FoF groups and Subfind subhalos,
  again split into chunks with boundaries independent of each other;
- ``basePath/../postprocessing/offsets/offsets_SSS.hdf5``: where each chunk, group and subhalo
  starts, which ``illustris_python`` needs to load the particles of one halo or subhalo.

``basePath`` is what illustris_python calls it: a simulation's ``output/`` folder
(:func:`output_dir` of a simulation root ``SIM``).

Inside every particle type the particles follow TNG's order: groups in order; within a group its
subhalos in order, then the group's inner fuzz; the outer fuzz (particles in no group) last
(:func:`particle_offsets`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

import darkstack

__all__ = [
    "DARK_SUBHALO_FIELDS",
    "DM",
    "FILE_OFFSETS_DATASET",
    "GAS",
    "GROUP_FIELDS",
    "INT32_MAX",
    "LOWRES_DM",
    "NUM_PART_TYPES",
    "OFFSETS_FIELDS",
    "PARTICLE_FIELDS",
    "PROVENANCE_ATTRIBUTE",
    "STARS",
    "SUBHALO_FIELDS",
    "SUBHALO_MATCHING_DATASETS",
    "SUBHALO_OFFSETS_DATASET",
    "TNG_FULL_SNAPSHOT_REDSHIFTS",
    "FieldSpec",
    "SnapshotHeader",
    "SnapshotLayout",
    "chunk_ranges",
    "group_catalog_dir",
    "group_catalog_path",
    "index_array",
    "linear_field_path",
    "offsets_path",
    "output_dir",
    "part_type_group",
    "particle_offsets",
    "postprocessing_dir",
    "run_metadata",
    "scale_factor_of",
    "snapshot_dir",
    "snapshot_path",
    "split_num_part_total",
    "subhalo_matching_group",
    "subhalo_matching_path",
]

Int64Array = NDArray[np.int64]
PathLike = str | os.PathLike[str]

#: Particle types in a TNG snapshot (gas, DM, unused, tracers, stars and wind, black holes).
NUM_PART_TYPES: Final = 6
#: The particle types darkstack reads and writes: gas cells, dark matter, stars (and wind).
GAS: Final = 0
DM: Final = 1
#: Zoom runs' coarse dark matter beyond the high-resolution region, with per-particle masses.
LOWRES_DM: Final = 2
STARS: Final = 4
#: TNG's code units in cgs (Header/UnitLength_in_cm etc.): ckpc/h, 1e10 Msun/h and km/s.
UNIT_LENGTH_IN_CM: Final = 3.085678e21
UNIT_MASS_IN_G: Final = 1.989e43
UNIT_VELOCITY_IN_CM_PER_S: Final = 1.0e5
#: Root attribute of every file darkstack writes, so a mock is never mistaken for real TNG data.
PROVENANCE_ATTRIBUTE: Final = "DarkstackMockUniverse"
#: Redshift of each of TNG's 20 full snapshots (data specifications, rounded as listed there):
#: snapshot 99 is z = 0 (a = 1), snapshot 50 is z = 1 (a = 0.5).
TNG_FULL_SNAPSHOT_REDSHIFTS: Mapping[int, float] = MappingProxyType(
    {
        2: 12.0,
        3: 11.0,
        4: 10.0,
        6: 9.0,
        8: 8.0,
        11: 7.0,
        13: 6.0,
        17: 5.0,
        21: 4.0,
        25: 3.0,
        33: 2.0,
        40: 1.5,
        50: 1.0,
        59: 0.7,
        67: 0.5,
        72: 0.4,
        78: 0.3,
        84: 0.2,
        91: 0.1,
        99: 0.0,
    }
)

_VERSION_TAG = f"darkstack-{darkstack.__version__}"
# AREPO stamps its git commit and date; darkstack's files record darkstack's version instead.
_GIT_COMMIT = np.bytes_(_VERSION_TAG.encode())
_GIT_DATE = np.bytes_(b"darkstack mock universe")
# TNG's initial conditions start at z = 127.
_TIME_BEGIN = 1.0 / 128.0
#: TNG stores per-file particle counts and catalog lengths as int32.
INT32_MAX: Final = int(np.iinfo(np.int32).max)
#: Header keys a snapshot must have for darkstack to read it (every GADGET/AREPO header does).
_REQUIRED_HEADER_KEYS = (
    "BoxSize",
    "HubbleParam",
    "MassTable",
    "NumFilesPerSnapshot",
    "NumPart_Total",
    "Omega0",
    "OmegaLambda",
    "Redshift",
    "Time",
)


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
_VELOCITIES = _spec(
    "Velocities", np.float32, 3, "km/s sqrt(a)", "Velocity; times sqrt(a) it is peculiar."
)
_MASSES = _spec("Masses", np.float32, 1, "1e10 Msun/h", "Particle mass.")
_METALLICITY = _spec("GFM_Metallicity", np.float32, 1, "", "Metal mass fraction M_Z / M.")

#: Datasets of each particle type darkstack writes, keyed by type number. DM (type 1) has no
#: Masses: its particle mass is Header/MassTable[1], as in TNG.
PARTICLE_FIELDS: Mapping[int, tuple[FieldSpec, ...]] = MappingProxyType(
    {
        GAS: (
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
        DM: (_COORDINATES, _PARTICLE_IDS, _VELOCITIES),
        LOWRES_DM: (_COORDINATES, _MASSES, _PARTICLE_IDS, _VELOCITIES),
        STARS: (
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
    _spec(
        "GroupVel", np.float32, 3, "km/s/a", "Mass-weighted velocity; divided by a it is peculiar."
    ),
    _spec("Group_M_Crit200", np.float32, 1, "1e10 Msun/h", "Mass inside 200 rho_crit(z)."),
    _spec("Group_R_Crit200", np.float32, 1, "ckpc/h", "Radius enclosing 200 rho_crit(z)."),
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
    _spec("SubhaloVel", np.float32, 3, "km/s", "Peculiar velocity (no factor of a)."),
    _spec("SubhaloVmax", np.float32, 1, "km/s", "Maximum circular velocity."),
    _spec("SubhaloVmaxRad", np.float32, 1, "ckpc/h", "Radius of the maximum circular velocity."),
)

#: Subhalo datasets of a gravity-only (TNG-Dark) catalog: no star formation rate, and no
#: SubhaloFlag, which marks subhalos of baryonic (non-cosmological) origin.
DARK_SUBHALO_FIELDS: tuple[FieldSpec, ...] = tuple(
    spec for spec in SUBHALO_FIELDS if spec.name not in ("SubhaloFlag", "SubhaloSFR")
)

#: Datasets of ``subhalo_matching_to_dark.hdf5`` (one ``Snapshot_N`` group per snapshot): for
#: every subhalo of the hydro run, the index of its twin in the Dark run's catalog, -1 if
#: none; TNG gives one array per matching algorithm (LHaloTree's and SubLink's).
SUBHALO_MATCHING_DATASETS: tuple[FieldSpec, ...] = (
    _spec("SubhaloIndexDark_LHaloTree", np.int32, 1, "", "Dark subhalo matched by LHaloTree."),
    _spec("SubhaloIndexDark_SubLink", np.int32, 1, "", "Dark subhalo matched by SubLink."),
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
#: The offsets datasets a reader needs: where each snapshot chunk and each subhalo starts.
FILE_OFFSETS_DATASET: Final = "FileOffsets/SnapByType"
SUBHALO_OFFSETS_DATASET: Final = "Subhalo/SnapByType"


# --- paths -----------------------------------------------------------------------------------


def output_dir(sim_root: PathLike) -> Path:
    """A simulation's ``output/`` folder, illustris_python's ``basePath``."""
    return Path(sim_root) / "output"


def snapshot_dir(base_path: PathLike, snap: int) -> Path:
    """Folder of the snapshot chunks: ``basePath/snapdir_SSS``."""
    return Path(base_path) / f"snapdir_{snap:03d}"


def snapshot_path(base_path: PathLike, snap: int, file_index: int) -> Path:
    """Path of one snapshot chunk: ``basePath/snapdir_SSS/snap_SSS.N.hdf5``."""
    return snapshot_dir(base_path, snap) / f"snap_{snap:03d}.{file_index}.hdf5"


def group_catalog_dir(base_path: PathLike, snap: int) -> Path:
    """Folder of the group-catalog chunks: ``basePath/groups_SSS``."""
    return Path(base_path) / f"groups_{snap:03d}"


def group_catalog_path(base_path: PathLike, snap: int, file_index: int) -> Path:
    """Path of one group-catalog chunk: ``basePath/groups_SSS/fof_subhalo_tab_SSS.N.hdf5``."""
    return group_catalog_dir(base_path, snap) / f"fof_subhalo_tab_{snap:03d}.{file_index}.hdf5"


def offsets_path(base_path: PathLike, snap: int) -> Path:
    """Path of the offsets file: ``basePath/../postprocessing/offsets/offsets_SSS.hdf5``."""
    return postprocessing_dir(base_path) / "offsets" / f"offsets_{snap:03d}.hdf5"


def postprocessing_dir(base_path: PathLike) -> Path:
    """TNG's ``postprocessing/`` folder, a sibling of the basePath (``output/``)."""
    return Path(base_path).parent / "postprocessing"


def linear_field_path(root: PathLike) -> Path:
    """``SIM/linear_field.zarr``: the mock universe's linear density field (not a TNG file)."""
    return Path(root) / "linear_field.zarr"


def subhalo_matching_path(base_path: PathLike) -> Path:
    """Hydro-to-Dark subhalo match: ``basePath/../postprocessing/subhalo_matching_to_dark.hdf5``."""
    return postprocessing_dir(base_path) / "subhalo_matching_to_dark.hdf5"


def subhalo_matching_group(snap: int) -> str:
    """HDF5 group of one snapshot in the matching file: ``Snapshot_N`` (no zero padding)."""
    return f"Snapshot_{snap}"


def part_type_group(ptype: int) -> str:
    """HDF5 group of one particle type in a snapshot chunk or a cutout: ``PartTypeN``."""
    return f"PartType{ptype}"


# --- chunking --------------------------------------------------------------------------------


def chunk_ranges(total: int, n_files: int) -> Int64Array:
    """Split ``total`` items into ``n_files`` contiguous chunks as evenly as possible.

    This is how darkstack chunks what it writes; AREPO's own chunks are uneven, so a reader
    takes chunk sizes from ``NumPart_ThisFile`` and the offsets file, never from here.

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
    """How darkstack splits the particles of each type across the chunk files of a snapshot.

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
        if largest > INT32_MAX:
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


# --- headers ---------------------------------------------------------------------------------


def scale_factor_of(attributes: Mapping[str, Any], *, source: str) -> float:
    """The scale factor ``Header/Time`` of a snapshot chunk, catalog chunk or cutout.

    Raises
    ------
    ValueError
        The header has no ``Time``; the message names ``source``.
    """
    if "Time" not in attributes:
        raise ValueError(f"{source}: Header has no Time; the snapshot's scale factor is unknown")
    return float(attributes["Time"])


@dataclass(frozen=True, kw_only=True)
class SnapshotHeader:
    """Cosmology and particle bookkeeping of one snapshot: TNG's ``Header``, both ways.

    :meth:`attributes` renders it as the ``Header`` of a snapshot chunk and
    :meth:`group_catalog_attributes` as that of a catalog chunk (the writer);
    :meth:`from_attributes` reads it back from a chunk's ``Header`` (the readers).

    Parameters
    ----------
    box_size : float
        Side of the periodic box in ckpc/h.
    hubble_param : float
        h.
    omega_m, omega_lambda : float
        Matter and dark-energy density parameters.
    omega_b : float or None
        Baryon density parameter; None where the header has no ``OmegaBaryon`` (TNG writes it,
        GADGET's standard header does not).
    redshift : float
        Redshift of the snapshot.
    scale_factor : float
        Scale factor ``a = 1 / (1 + redshift)`` (``Header/Time``); lengths in ckpc/h times a/h
        are physical kpc.
    mass_table : sequence of float
        Mass of each type in 1e10 Msun/h, nonzero only for types without a ``Masses`` field
        (DM in TNG).
    num_part_total : sequence of int
        Total particles of each of the 6 types.
    num_files : int
        Number of snapshot chunk files.
    """

    box_size: float
    hubble_param: float
    omega_m: float
    omega_lambda: float
    omega_b: float | None
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
        if not 0.0 < self.scale_factor <= 1.0 or self.redshift < 0:
            raise ValueError(
                f"need 0 < scale_factor <= 1 and redshift >= 0, got {self.scale_factor} and "
                f"{self.redshift}"
            )
        if abs(self.scale_factor * (1.0 + self.redshift) - 1.0) > 1e-6:
            raise ValueError(
                f"scale_factor {self.scale_factor} does not match redshift {self.redshift}"
            )
        if min(self.num_part_total) < 0:
            raise ValueError(f"num_part_total must be >= 0, got {self.num_part_total}")
        if self.num_files < 1:
            raise ValueError(f"num_files must be >= 1, got {self.num_files}")

    @classmethod
    def from_attributes(cls, attributes: Mapping[str, Any], *, source: str) -> SnapshotHeader:
        """Read the ``Header`` attributes of a snapshot chunk.

        Parameters
        ----------
        attributes : mapping
            The chunk's ``Header`` attributes (h5py's ``attrs``).
        source : str
            What the attributes came from (a path), named in errors.

        Raises
        ------
        ValueError
            A required key is missing or a value is inconsistent; the message names ``source``.
        """
        missing = [key for key in _REQUIRED_HEADER_KEYS if key not in attributes]
        if missing:
            raise ValueError(f"{source}: Header lacks {missing}; not a TNG snapshot")
        low = np.asarray(attributes["NumPart_Total"], dtype=np.int64)
        high = np.asarray(
            attributes.get("NumPart_Total_HighWord", np.zeros(NUM_PART_TYPES)), dtype=np.int64
        )
        baryons = attributes.get("OmegaBaryon")
        try:
            return cls(
                box_size=float(attributes["BoxSize"]),
                hubble_param=float(attributes["HubbleParam"]),
                omega_m=float(attributes["Omega0"]),
                omega_lambda=float(attributes["OmegaLambda"]),
                omega_b=None if baryons is None else float(baryons),
                redshift=float(attributes["Redshift"]),
                scale_factor=scale_factor_of(attributes, source=source),
                mass_table=tuple(float(m) for m in attributes["MassTable"]),
                num_part_total=tuple(int(n) for n in low + (high << 32)),
                num_files=int(attributes["NumFilesPerSnapshot"]),
            )
        except ValueError as error:
            raise ValueError(f"{source}: Header is inconsistent: {error}") from None

    @cached_property
    def layout(self) -> SnapshotLayout:
        """How darkstack chunks the particles of this snapshot (:class:`SnapshotLayout`)."""
        return SnapshotLayout(num_part_total=self.num_part_total, num_files=self.num_files)

    def attributes(self, *, file_index: int) -> dict[str, Any]:
        """TNG's complete ``Header`` attributes of one chunk file, with TNG's dtypes.

        Parameters
        ----------
        file_index : int
            Chunk file the header is for (sets ``NumPart_ThisFile`` from :attr:`layout`).

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
            **({} if self.omega_b is None else {"OmegaBaryon": np.float64(self.omega_b)}),
            "OmegaLambda": np.float64(self.omega_lambda),
            "Redshift": np.float64(self.redshift),
            "Time": np.float64(self.scale_factor),
            "UnitLength_in_cm": np.float64(UNIT_LENGTH_IN_CM),
            "UnitMass_in_g": np.float64(UNIT_MASS_IN_G),
            "UnitVelocity_in_cm_per_s": np.float64(UNIT_VELOCITY_IN_CM_PER_S),
        }

    def group_catalog_attributes(
        self, *, n_groups: tuple[int, int], n_subs: tuple[int, int], num_files: int
    ) -> dict[str, Any]:
        """``Header`` attributes of one group-catalog chunk; counts are (this file, total)."""
        return {
            "BoxSize": np.float64(self.box_size),
            "FlagDoubleprecision": np.int32(0),
            "Git_commit": _GIT_COMMIT,
            "Git_date": _GIT_DATE,
            "HubbleParam": np.float64(self.hubble_param),
            "Ngroups_ThisFile": np.int32(n_groups[0]),
            "Ngroups_Total": np.int32(n_groups[1]),
            "Nids_ThisFile": np.int32(0),
            "Nids_Total": np.int64(0),
            "Nsubgroups_ThisFile": np.int32(n_subs[0]),
            "Nsubgroups_Total": np.int32(n_subs[1]),
            "NumFiles": np.int32(num_files),
            "Omega0": np.float64(self.omega_m),
            "OmegaLambda": np.float64(self.omega_lambda),
            "Redshift": np.float64(self.redshift),
            "Time": np.float64(self.scale_factor),
        }


def run_metadata(header: SnapshotHeader) -> tuple[dict[str, Any], dict[str, Any]]:
    """Attributes of small ``Config`` and ``Parameters`` groups like those of TNG's files.

    AREPO stores a compile-time flag as an empty string and a valued option as a double;
    run-time parameters keep their type (double, int or string).

    Returns
    -------
    config, parameters : dict
        Attributes of ``Config`` and of ``Parameters``.
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
        **({} if header.omega_b is None else {"OmegaBaryon": np.float64(header.omega_b)}),
        "OmegaLambda": np.float64(header.omega_lambda),
        "SnapFormat": np.int32(3),
        "SnapshotFileBase": np.bytes_(b"snap"),
        "TimeBegin": np.float64(_TIME_BEGIN),
        "TimeMax": np.float64(header.scale_factor),
        "UnitLength_in_cm": np.float64(UNIT_LENGTH_IN_CM),
        "UnitMass_in_g": np.float64(UNIT_MASS_IN_G),
        "UnitVelocity_in_cm_per_s": np.float64(UNIT_VELOCITY_IN_CM_PER_S),
    }
    return config, parameters


# --- offsets ---------------------------------------------------------------------------------


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
    group_len = index_array(group_len_type, name="GroupLenType", width=NUM_PART_TYPES)
    sub_len = index_array(subhalo_len_type, name="SubhaloLenType", width=NUM_PART_TYPES)
    group_number = index_array(subhalo_group_number, name="SubhaloGrNr", width=1)
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


def index_array(values: ArrayLike, *, name: str, width: int) -> Int64Array:
    """A catalog column of integers (``width`` per row) as int64, or a one-line error."""
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
