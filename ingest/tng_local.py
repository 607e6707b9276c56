"""A local IllustrisTNG snapshot (a ``basePath``): checked once, then read chunk by chunk.

Paths, header keys and offsets datasets come from :mod:`darkstack.tng_layout`, the one module
that knows TNG's layout. Snapshot chunks are read here with h5py field by field, because the
cutout pass reads each chunk exactly once for all galaxies (illustris_python's readers serve
one object or one whole type). Every failure a user can meet (wrong basePath, a missing or
truncated chunk, no offsets file, a field absent from a chunk) is a :class:`SimulationError`
that names the file and what was expected.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from darkstack.cosmology import TNG_COSMOLOGY, CosmologyParams
from darkstack.errors import InputError
from darkstack.tng_layout import (
    FILE_OFFSETS_DATASET,
    NUM_PART_TYPES,
    SUBHALO_OFFSETS_DATASET,
    SnapshotHeader,
    group_catalog_dir,
    offsets_path,
    output_dir,
    part_type_group,
    snapshot_dir,
    snapshot_path,
)
from darkstack.units import CodeUnits


class SimulationError(InputError, ValueError):
    """A simulation folder or file that is not what an IllustrisTNG reader expects."""


@dataclass(frozen=True)
class SimulationFiles:
    """The files of one snapshot of a TNG-layout simulation, validated.

    Use :meth:`open` to build it; it checks the folder layout and reads the snapshot header.
    """

    base_path: Path
    snapshot: int
    header: SnapshotHeader

    @classmethod
    def open(cls, base_path: str | Path, snapshot: int) -> SimulationFiles:
        """Check the layout under ``base_path`` (TNG's ``output/`` folder) and read the header."""
        base = Path(base_path)
        if not base.is_dir():
            raise SimulationError(f"--sim {base} does not exist; expected a TNG output/ folder")
        folders = (
            (snapshot_dir(base, snapshot), "snapshot chunks"),
            (group_catalog_dir(base, snapshot), "group catalog"),
        )
        for folder, what in folders:
            if not folder.is_dir():
                nested = output_dir(base)
                hint = f"; did you mean --sim {nested}?" if (nested / folder.name).is_dir() else ""
                raise SimulationError(
                    f"{folder} not found: expected the {what} of snapshot {snapshot} under the "
                    f"basePath {base} (the simulation's output/ folder){hint}"
                )
        offsets = offsets_path(base, snapshot)
        if not offsets.is_file():
            raise SimulationError(
                f"{offsets} not found: snapshot {snapshot} has no offsets file, which locating "
                "subhalos in the chunks needs (TNG ships it under postprocessing/offsets/)"
            )
        first = snapshot_path(base, snapshot, 0)
        attributes = read_attributes(first, "Header")
        try:
            header = SnapshotHeader.from_attributes(attributes, source=str(first))
        except ValueError as error:
            raise SimulationError(str(error)) from None
        absent = [
            i for i in range(header.num_files) if not snapshot_path(base, snapshot, i).is_file()
        ]
        if absent:
            raise SimulationError(
                f"{snapshot_dir(base, snapshot)}: chunk files {absent[:5]} of {header.num_files} "
                f"are missing (Header/NumFilesPerSnapshot = {header.num_files})"
            )
        return cls(base_path=base, snapshot=snapshot, header=header)

    @property
    def num_files(self) -> int:
        """Number of snapshot chunks."""
        return self.header.num_files

    @property
    def box_size(self) -> float:
        """Side of the periodic box, ckpc/h."""
        return self.header.box_size

    @property
    def mass_table(self) -> tuple[float, ...]:
        """Particle mass of each type without a ``Masses`` field (DM), 1e10 Msun/h."""
        return self.header.mass_table

    @property
    def units(self) -> CodeUnits:
        """Conversions of this snapshot's code units (h and its scale factor)."""
        return CodeUnits(
            hubble_param=self.header.hubble_param, scale_factor=self.header.scale_factor
        )

    @property
    def cosmology(self) -> CosmologyParams:
        """The snapshot's cosmology; TNG's baryon density where the header has none."""
        omega_b = TNG_COSMOLOGY.omega_b if self.header.omega_b is None else self.header.omega_b
        return CosmologyParams(
            hubble_param=self.header.hubble_param, omega_m=self.header.omega_m, omega_b=omega_b
        )

    def chunk(self, file_index: int) -> Path:
        """Path of snapshot chunk ``file_index``."""
        return snapshot_path(self.base_path, self.snapshot, file_index)

    def file_offsets(self) -> np.ndarray:
        """First global index of each type in each chunk, shape (num_files, 6)."""
        path = offsets_path(self.base_path, self.snapshot)
        return np.asarray(read_dataset(path, FILE_OFFSETS_DATASET), dtype=np.int64)

    def subhalo_offsets(self, subhalo_ids: np.ndarray) -> np.ndarray:
        """First global index of each type of the given subhalos, shape (n, 6)."""
        path = offsets_path(self.base_path, self.snapshot)
        with _open(path) as file:
            if SUBHALO_OFFSETS_DATASET not in file:
                raise SimulationError(f"{path}: {SUBHALO_OFFSETS_DATASET} missing")
            table = file[SUBHALO_OFFSETS_DATASET]
            return (
                np.stack([table[int(i)] for i in subhalo_ids])
                if len(subhalo_ids)
                else (np.zeros((0, NUM_PART_TYPES), dtype=np.int64))
            )

    def read_chunk(
        self, file_index: int, ptype: int, fields: Sequence[str]
    ) -> dict[str, np.ndarray]:
        """Fields of one particle type from one chunk (empty arrays when it holds none)."""
        path = self.chunk(file_index)
        with _open(path) as file:
            count = int(file["Header"].attrs["NumPart_ThisFile"][ptype])
            group = part_type_group(ptype)
            if count == 0:
                return {field: np.zeros((0,)) for field in fields}
            if group not in file:
                raise SimulationError(f"{path}: {group} missing but Header says {count} particles")
            out = {}
            for field in fields:
                if field not in file[group]:
                    raise SimulationError(
                        f"{path}: field {group}/{field} missing (needed by ingest; present: "
                        f"{sorted(file[group])})"
                    )
                data = file[group][field]
                if data.shape[0] != count:
                    raise SimulationError(
                        f"{path}: {group}/{field} has {data.shape[0]} rows, Header says {count}"
                    )
                try:
                    out[field] = data[()]
                except OSError as error:
                    raise SimulationError(
                        f"{path}: {group}/{field} is unreadable ({error})"
                    ) from None
            return out


def _open(path: Path) -> h5py.File:
    if not path.is_file():
        raise SimulationError(f"{path} not found")
    try:
        return h5py.File(path, "r")
    except OSError as error:
        raise SimulationError(
            f"{path} is not a readable HDF5 file (truncated or corrupt?): {error}"
        ) from None


def read_attributes(path: Path, group: str) -> dict[str, Any]:
    """Attributes of ``group`` in ``path``, with a clear error for a missing file or group."""
    with _open(path) as file:
        if group not in file:
            raise SimulationError(f"{path}: group {group} missing")
        return dict(file[group].attrs.items())


def read_dataset(path: Path, name: str) -> np.ndarray:
    """A whole dataset, with a clear error for a missing file or dataset."""
    with _open(path) as file:
        if name not in file:
            raise SimulationError(f"{path}: dataset {name} missing")
        return np.asarray(file[name][()])
