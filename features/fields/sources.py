"""Reading a TNG-layout run into what a field deposits: positions and masses, piece by piece.

A field is built from pieces: a slice of at most ``particles_per_task`` rows of one snapshot
chunk, or one group-catalog file. :func:`read_points` hands the deposit plain arrays,
positions in the box's comoving ckpc/h (gridding needs nothing else) and masses in Msun, as
MARTINI's readers hand its core canonical units. Star particles exclude TNG's wind-phase cells
(negative ``GFM_StellarFormationTime``), which TNG stores beside the stars but counts as gas.
Paths and headers come from :mod:`darkstack.tng_layout`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from numpy.typing import NDArray

from darkstack.features.fields.layout import FieldSpec
from darkstack.ingest.tng_local import SimulationError, read_attributes
from darkstack.status import DataError
from darkstack.tng_layout import (
    SnapshotHeader,
    group_catalog_path,
    output_dir,
    part_type_group,
    snapshot_path,
)
from darkstack.units import CodeUnits

#: Header values a gravity-only twin must share with its hydro run (relative tolerance).
_TWIN_KEYS = {
    "box_size": "BoxSize (ckpc/h)",
    "hubble_param": "HubbleParam",
    "omega_m": "Omega0",
    "omega_lambda": "OmegaLambda",
    "redshift": "Redshift",
}
_TWIN_RTOL = 1e-6


@dataclass(frozen=True)
class Run:
    """One snapshot of one simulation: its header and how many rows each file holds.

    Build it with :meth:`open`, which checks the folders and reads every chunk's header.
    """

    base_path: Path
    snapshot: int
    header: SnapshotHeader
    particle_counts: tuple[tuple[int, ...], ...]
    subhalo_counts: tuple[int, ...]

    @classmethod
    def open(cls, base_path: str | Path, snapshot: int, *, option: str = "--sim") -> Run:
        """Read the headers of the snapshot and group catalog of ``base_path`` (``output/``).

        Parameters
        ----------
        base_path : str or Path
            The simulation's basePath.
        snapshot : int
            Snapshot number.
        option : str
            The command-line option that named it, for error messages.

        Raises
        ------
        SimulationError
            For a missing folder, chunk or header key, naming the file.
        """
        base = Path(base_path)
        if not base.is_dir():
            raise SimulationError(f"{option} {base} does not exist; expected a TNG output/ folder")
        first = snapshot_path(base, snapshot, 0)
        if not first.is_file():
            nested = output_dir(base)
            hint = f"; did you mean {option} {nested}?" if nested.is_dir() else ""
            raise SimulationError(f"{option} {base}: {first} not found{hint}")
        try:
            header = SnapshotHeader.from_attributes(
                read_attributes(first, "Header"), source=str(first)
            )
        except ValueError as error:
            raise SimulationError(str(error)) from None
        # TNG's own chunks hold any number of rows: each file's header says how many.
        counts = tuple(
            tuple(int(n) for n in _header(snapshot_path(base, snapshot, i))["NumPart_ThisFile"])
            for i in range(header.num_files)
        )
        return cls(
            base_path=base,
            snapshot=snapshot,
            header=header,
            particle_counts=counts,
            subhalo_counts=_subhalo_counts(base, snapshot),
        )

    @property
    def box_size(self) -> float:
        """Comoving box side in ckpc/h."""
        return self.header.box_size

    @property
    def box_mpc_h(self) -> float:
        """Comoving box side in Mpc/h."""
        return self.header.box_size / 1.0e3

    @property
    def units(self) -> CodeUnits:
        """Conversions from this run's code units."""
        return CodeUnits(
            hubble_param=self.header.hubble_param, scale_factor=self.header.scale_factor
        )

    def check_twin(self, dark: Run) -> None:
        """Refuse a gravity-only run whose box or cosmology is not this run's.

        Raises
        ------
        SimulationError
            Naming the first header value that differs and both runs.
        """
        for key, label in _TWIN_KEYS.items():
            mine, theirs = getattr(self.header, key), getattr(dark.header, key)
            if not np.isclose(mine, theirs, rtol=_TWIN_RTOL, atol=0.0):
                raise SimulationError(
                    f"--dark {dark.base_path}: {label} {theirs:g} differs from the hydro run's "
                    f"{mine:g} (--sim {self.base_path}); a gravity-only twin shares the box and "
                    "cosmology of its hydro run"
                )


@dataclass(frozen=True, order=True)
class Piece:
    """What one bucketing task reads: rows ``[start, stop)`` of one file of one field."""

    field: str
    file_index: int
    start: int
    stop: int

    @property
    def label(self) -> str:
        """A file-name-safe name of the piece."""
        return f"{self.file_index:05d}_{self.start:012d}"


def pieces(run: Run, spec: FieldSpec, *, per_task: int) -> list[Piece]:
    """The pieces of ``spec`` in ``run``, in file then row order (the order sums are made in)."""
    if spec.kind == "subhalos":
        counts = list(run.subhalo_counts)
        step = max(max(counts, default=0), 1)  # group catalogs are small: one file per piece
    else:
        counts = [file_counts[spec.part_type] for file_counts in run.particle_counts]
        step = per_task
    return [
        Piece(spec.name, index, start, min(start + step, count))
        for index, count in enumerate(counts)
        for start in range(0, count, step)
    ]


def read_points(
    run: Run, spec: FieldSpec, piece: Piece
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Positions (ckpc/h, comoving, shape (n, 3)) and masses (Msun) of one piece.

    Masses have shape (n,), or (1,) when every particle weighs the same (the mass table).

    Raises
    ------
    SimulationError
        For a missing or unreadable file or dataset, naming it.
    DataError
        For non-finite positions, naming the file, dataset and row.
    """
    rows = slice(piece.start, piece.stop)
    if spec.kind == "subhalos":
        path = group_catalog_path(run.base_path, run.snapshot, piece.file_index)
        dataset = "Subhalo/SubhaloPos"
        positions = _finite(
            _read(path, dataset, rows), path=path, dataset=dataset, start=rows.start
        )
        masses = _read(path, f"Subhalo/{spec.mass_dataset}", rows)
        if spec.mass_column is not None:
            masses = masses[:, spec.mass_column]
    else:
        path = snapshot_path(run.base_path, run.snapshot, piece.file_index)
        group = part_type_group(spec.part_type)
        dataset = f"{group}/Coordinates"
        positions = _finite(
            _read(path, dataset, rows), path=path, dataset=dataset, start=rows.start
        )
        table_mass = run.header.mass_table[spec.part_type]
        masses = np.array([table_mass]) if table_mass > 0 else _read(path, f"{group}/Masses", rows)
        if spec.part_type == 4:
            formed = _read(path, f"{group}/GFM_StellarFormationTime", rows) > 0
            positions = positions[formed]
            masses = masses[formed] if masses.size > 1 else masses
    return positions.astype(np.float64), run.units.mass_to_msun(masses)


def _finite(positions: NDArray[Any], *, path: Path, dataset: str, start: int) -> NDArray[Any]:
    """``positions``, or a DataError naming the first non-finite row of the file."""
    located = np.isfinite(positions).all(axis=1)
    if not located.all():
        # Unlike a galaxy's cutout, a field cannot leave a particle out: the piece fails.
        rows = start + np.flatnonzero(~located)
        raise DataError(
            f"non-finite {dataset} in {path.parent.name}/{path.name} row {int(rows[0])}"
            + (f" and {rows.size - 1} more" if rows.size > 1 else "")
        )
    return positions


def _header(path: Path) -> dict[str, Any]:
    return read_attributes(path, "Header")


def _subhalo_counts(base: Path, snapshot: int) -> tuple[int, ...]:
    """Subhalos per group-catalog file; none when the run has no catalog."""
    first = group_catalog_path(base, snapshot, 0)
    if not first.is_file():
        return ()
    return tuple(
        int(_header(group_catalog_path(base, snapshot, i))["Nsubgroups_ThisFile"])
        for i in range(int(_header(first)["NumFiles"]))
    )


def _read(path: Path, name: str, rows: slice) -> NDArray[Any]:
    try:
        with h5py.File(path, "r") as file:
            if name not in file:
                raise SimulationError(f"{path}: dataset {name} missing")
            return np.asarray(file[name][rows])
    except OSError as error:
        raise SimulationError(f"{path}: {name} is unreadable ({error})") from None
