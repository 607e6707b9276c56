"""A local IllustrisTNG snapshot (a ``basePath``): checked once, then read chunk by chunk.

The group catalog and offsets are read through illustris_python, as every TNG user reads them;
snapshot chunks are read here with h5py field by field, because the cutout pass reads each chunk
exactly once for all galaxies (illustris_python's readers serve one object or one whole type).
Every failure a user can meet (wrong basePath, a missing or truncated chunk, no offsets file, a
field absent from a chunk) is a :class:`SimulationError` that names the file and what was
expected.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from darkstack.units import CodeUnits


class SimulationError(ValueError):
    """A simulation folder or file that is not what an IllustrisTNG reader expects."""


@dataclass(frozen=True)
class SimulationFiles:
    """The files of one snapshot of a TNG-layout simulation, validated.

    Use :meth:`open` to build it; it checks the folder layout and reads the snapshot header.
    """

    base_path: Path
    snapshot: int
    num_files: int
    box_size: float
    units: CodeUnits
    mass_table: tuple[float, ...]
    num_part_total: tuple[int, ...]

    @classmethod
    def open(cls, base_path: str | Path, snapshot: int) -> SimulationFiles:
        """Check the layout under ``base_path`` (TNG's ``output/`` folder) and read the header."""
        base = Path(base_path)
        if not base.is_dir():
            raise SimulationError(f"--sim {base} does not exist; expected a TNG output/ folder")
        snapdir = base / f"snapdir_{snapshot:03d}"
        groups = base / f"groups_{snapshot:03d}"
        for folder, what in ((snapdir, "snapshot chunks"), (groups, "group catalog")):
            if not folder.is_dir():
                hint = (
                    f"; did you mean --sim {base / 'output'}?"
                    if (base / "output" / folder.name).is_dir()
                    else ""
                )
                raise SimulationError(
                    f"{folder} not found: expected the {what} of snapshot {snapshot} under the "
                    f"basePath {base} (the simulation's output/ folder){hint}"
                )
        offsets = offsets_file(base, snapshot)
        if not offsets.is_file():
            raise SimulationError(
                f"{offsets} not found: snapshot {snapshot} has no offsets file, which locating "
                "subhalos in the chunks needs (TNG ships it under postprocessing/offsets/)"
            )
        header = read_attributes(chunk_path(base, snapshot, 0), "Header")
        missing = [key for key in _HEADER_KEYS if key not in header]
        if missing:
            raise SimulationError(
                f"{chunk_path(base, snapshot, 0)}: Header lacks {missing}; not a TNG snapshot"
            )
        num_files = int(header["NumFilesPerSnapshot"])
        absent = [i for i in range(num_files) if not chunk_path(base, snapshot, i).is_file()]
        if absent:
            raise SimulationError(
                f"{snapdir}: chunk files {absent[:5]} of {num_files} are missing "
                f"(Header/NumFilesPerSnapshot = {num_files})"
            )
        low = np.asarray(header["NumPart_Total"], dtype=np.int64)
        high = np.asarray(header.get("NumPart_Total_HighWord", np.zeros(6)), dtype=np.int64)
        return cls(
            base_path=base,
            snapshot=snapshot,
            num_files=num_files,
            box_size=float(header["BoxSize"]),
            units=CodeUnits(
                hubble_param=float(header["HubbleParam"]), scale_factor=float(header["Time"])
            ),
            mass_table=tuple(float(m) for m in header["MassTable"]),
            num_part_total=tuple(int(n) for n in low + (high << 32)),
        )

    def chunk(self, file_index: int) -> Path:
        """Path of snapshot chunk ``file_index``."""
        return chunk_path(self.base_path, self.snapshot, file_index)

    def file_offsets(self) -> np.ndarray:
        """First global index of each type in each chunk, shape (num_files, 6)."""
        path = offsets_file(self.base_path, self.snapshot)
        return np.asarray(read_dataset(path, "FileOffsets/SnapByType"), dtype=np.int64)

    def subhalo_offsets(self, subhalo_ids: np.ndarray) -> np.ndarray:
        """First global index of each type of the given subhalos, shape (n, 6)."""
        path = offsets_file(self.base_path, self.snapshot)
        with _open(path) as file:
            if "Subhalo/SnapByType" not in file:
                raise SimulationError(f"{path}: Subhalo/SnapByType missing")
            table = file["Subhalo/SnapByType"]
            return (
                np.stack([table[int(i)] for i in subhalo_ids])
                if len(subhalo_ids)
                else (np.zeros((0, 6), dtype=np.int64))
            )

    def read_chunk(
        self, file_index: int, ptype: int, fields: Sequence[str]
    ) -> dict[str, np.ndarray]:
        """Fields of one particle type from one chunk (empty arrays when it holds none)."""
        path = self.chunk(file_index)
        with _open(path) as file:
            count = int(file["Header"].attrs["NumPart_ThisFile"][ptype])
            group = f"PartType{ptype}"
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


_HEADER_KEYS = (
    "BoxSize",
    "HubbleParam",
    "Time",
    "MassTable",
    "NumFilesPerSnapshot",
    "NumPart_Total",
)


def chunk_path(base_path: str | Path, snapshot: int, file_index: int) -> Path:
    """``basePath/snapdir_SSS/snap_SSS.N.hdf5``."""
    return Path(base_path) / f"snapdir_{snapshot:03d}" / f"snap_{snapshot:03d}.{file_index}.hdf5"


def offsets_file(base_path: str | Path, snapshot: int) -> Path:
    """``SIM/postprocessing/offsets/offsets_SSS.hdf5`` beside the basePath, where TNG keeps it."""
    return Path(base_path).parent / "postprocessing" / "offsets" / f"offsets_{snapshot:03d}.hdf5"


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
