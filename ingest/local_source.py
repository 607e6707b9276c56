"""The ``local`` ingest source: a TNG basePath on disk, cut out in two passes.

Pass 1 (a task per snapshot chunk, on the Dask client): read the chunk's needed fields once,
find the particles inside the sphere of every selected galaxy with a periodic k-d tree
(``scipy.spatial.cKDTree(boxsize=...)``), and write them, tagged by galaxy, as one fragment
file. Pass 2 (the driver's batches of galaxies): :class:`ChunkFragments` gathers each galaxy's
slices from all fragments. No task reads the whole snapshot for one galaxy. Both passes are pure
functions of their inputs, written atomically, so a rerun skips what exists and a lost worker's
task simply runs again.

The group catalog is read through illustris_python, as every TNG user reads it; the galaxy's
own (bound) particles are told by the offsets file's ``Subhalo/SnapByType`` and
``SubhaloLenType``.

Non-finite positions fail only what they touch: pass 1 leaves a particle whose
``Coordinates`` are not finite out of every sphere (where it is cannot be known) and records its
chunk row; pass 2 fails each galaxy whose own particles include it, naming the file, dataset and
row (:class:`~darkstack.status.DataError`). Other galaxies lose at most that particle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import h5py
import numpy as np
from numpy.typing import NDArray

from darkstack.hdf5 import atomic_hdf5
from darkstack.ingest.cutouts import particles_in_spheres
from darkstack.ingest.sources import (
    KINDS,
    RAW_FIELDS,
    VECTOR_FIELDS,
    Catalog,
    Galaxy,
    RawParticles,
    SimulationInfo,
    Source,
)
from darkstack.ingest.tng_local import SimulationError, SimulationFiles
from darkstack.status import DETAIL, DataError
from darkstack.tasks import map_tasks
from darkstack.tng_layout import part_type_group

if TYPE_CHECKING:
    from distributed import Client

    from darkstack.ingest.config import IngestConfig


@dataclass(frozen=True)
class LocalSource(Source):
    """A snapshot of a TNG-layout simulation on disk (a real TNG ``output/`` or a mock's)."""

    name: ClassVar[str] = "local"

    files: SimulationFiles

    @classmethod
    def open(cls, config: IngestConfig, *, sim: str | Path | None) -> LocalSource:
        """Check the basePath ``sim`` and read the header of ``config.snapshot``."""
        if sim is None:
            raise SimulationError(
                "the local source needs --sim, the simulation's basePath (its output/ folder)"
            )
        return cls(SimulationFiles.open(sim, config.snapshot))

    def describe(self) -> SimulationInfo:
        files = self.files
        return SimulationInfo(
            simulation=str(files.base_path.resolve()),
            snapshot=files.snapshot,
            box_size=files.box_size,
            units=files.units,
            mass_table=files.mass_table,
            cosmology=files.cosmology,
        )

    def load_catalog(
        self, *, subhalo_fields: Sequence[str], group_fields: Sequence[str]
    ) -> tuple[Catalog, Catalog]:
        """The columns through illustris_python."""
        import illustris_python as il

        base, snapshot = str(self.files.base_path), self.files.snapshot
        try:
            subhalos = il.groupcat.loadSubhalos(base, snapshot, fields=list(subhalo_fields))
            groups = il.groupcat.loadHalos(base, snapshot, fields=list(group_fields))
        except Exception as error:  # illustris_python raises bare Exception, OSError, KeyError
            raise SimulationError(
                f"group catalog of snapshot {snapshot} under {base} could not be read: {error}"
            ) from None
        return _columns(subhalos, subhalo_fields), _columns(groups, group_fields)

    def particle_reader(
        self,
        galaxies: Sequence[Galaxy],
        *,
        info: SimulationInfo,
        subhalos: Catalog,
        groups: Catalog,
        radius: float,
        work_dir: Path,
        client: Client | None,
        progress: bool,
    ) -> ChunkFragments:
        """Pass 1: every chunk cut once for all galaxies, into fragments under ``work_dir``."""
        ids = np.array([galaxy.subhalo_id for galaxy in galaxies], dtype=np.int64)
        centres = np.array([galaxy.centre for galaxy in galaxies]).reshape(-1, 3)
        fragments = map_tasks(
            cut_chunk,
            list(range(self.files.num_files)),
            client=client,
            description="cut chunks",
            progress=progress,
            files=self.files,
            centres=centres,
            radius=radius,
            work_dir=work_dir,
        )
        return ChunkFragments(
            fragments=tuple(fragments),
            own_start=self.files.subhalo_offsets(ids),
            own_length=np.asarray(subhalos["SubhaloLenType"], dtype=np.int64)[ids].reshape(-1, 6),
        )


def _columns(loaded: Mapping[str, object] | NDArray[np.generic], fields: Sequence[str]) -> Catalog:
    """illustris_python returns a bare array when one field is asked for, a dict otherwise."""
    if isinstance(loaded, np.ndarray):
        return {fields[0]: loaded}
    return {name: np.asarray(loaded[name]) for name in fields}


@dataclass(frozen=True)
class ChunkFragments:
    """Pass 2: a galaxy's particles gathered from the fragments of every chunk.

    Attributes
    ----------
    fragments : tuple of Path
        One fragment file per chunk, particles tagged by the galaxy's row in the selection.
    own_start, own_length : ndarray of int64, shape (n_galaxies, 6)
        First global index and number of each type of each galaxy's own particles
        (``Subhalo/SnapByType`` and ``SubhaloLenType``), by row.
    """

    fragments: tuple[Path, ...]
    own_start: NDArray[np.int64]
    own_length: NDArray[np.int64]

    def particles(self, galaxy: Galaxy) -> dict[str, RawParticles]:
        """The particles in the galaxy's sphere, its own marked.

        Raises
        ------
        DataError
            One of the galaxy's own particles has non-finite coordinates in its snapshot chunk.
        """
        raw: dict[str, dict[str, list[np.ndarray]]] = {kind: {} for kind in KINDS}
        for path in self.fragments:
            with h5py.File(path, "r") as fragment:
                for kind in KINDS:
                    group = fragment[kind]
                    self._check_finite(galaxy, group, KINDS[kind], chunk=fragment.attrs["chunk"])
                    tags = group["galaxy"][()]
                    lo, hi = np.searchsorted(tags, [galaxy.row, galaxy.row + 1])
                    for field in (*RAW_FIELDS[kind], "index"):
                        raw[kind].setdefault(field, []).append(group[field][lo:hi])
        particles = {}
        for kind, ptype in KINDS.items():
            merged = {field: np.concatenate(parts) for field, parts in raw[kind].items()}
            index = merged.pop("index")
            start = self.own_start[galaxy.row, ptype]
            stop = start + self.own_length[galaxy.row, ptype]
            particles[kind] = RawParticles(merged, (index >= start) & (index < stop))
        return particles

    def _check_finite(self, galaxy: Galaxy, group: h5py.Group, ptype: int, *, chunk: str) -> None:
        if "nonfinite_index" not in group:
            return
        index = group["nonfinite_index"][()]
        start = self.own_start[galaxy.row, ptype]
        mine = np.flatnonzero(
            (index >= start) & (index < start + self.own_length[galaxy.row, ptype])
        )
        if mine.size:
            rows = group["nonfinite_row"][()][mine]
            raise DataError(
                f"non-finite {part_type_group(ptype)}/Coordinates{DETAIL}{chunk} "
                f"row{'s' if rows.size > 1 else ''} {', '.join(str(int(r)) for r in rows[:5])}"
                + (f" and {rows.size - 5} more" if rows.size > 5 else "")
            )


def cut_chunk(
    file_index: int,
    *,
    files: SimulationFiles,
    centres: NDArray[np.float64],
    radius: float,
    work_dir: Path,
) -> Path:
    """Pass 1 task: the particles of one chunk inside any galaxy's sphere, as a fragment file.

    The fragment holds, per kind, the raw fields of the selected particles (a particle inside
    several spheres appears once per sphere), ``galaxy`` (row in the selection) and ``index``
    (global index of the particle in its type, to tell the galaxy's own particles); and, when
    the chunk has particles with non-finite coordinates, their ``nonfinite_index`` (global) and
    ``nonfinite_row`` (row in the chunk). Its attribute ``chunk`` names the snapshot file.
    """
    path = work_dir / f"chunk_{file_index:05d}.hdf5"
    if path.exists():  # a finished fragment from an interrupted run
        return path
    offsets = files.file_offsets()[file_index]
    chunk = files.chunk(file_index)
    with atomic_hdf5(path) as out:
        out.attrs["chunk"] = f"{chunk.parent.name}/{chunk.name}"
        for kind, ptype in KINDS.items():
            data = files.read_chunk(file_index, ptype, RAW_FIELDS[kind])
            coordinates = np.asarray(data["Coordinates"]).reshape(-1, 3)
            finite = np.isfinite(coordinates).all(axis=1)
            located = np.flatnonzero(finite)
            sphere, particle = particles_in_spheres(
                coordinates[located], centres, radius, files.box_size
            )
            particle = located[particle]
            group = out.create_group(kind)
            if located.size < finite.size:
                rows = np.flatnonzero(~finite)
                group.create_dataset("nonfinite_row", data=rows, track_times=False)
                group.create_dataset(
                    "nonfinite_index", data=rows + offsets[ptype], track_times=False
                )
            group.create_dataset("galaxy", data=sphere, track_times=False)
            group.create_dataset("index", data=particle + offsets[ptype], track_times=False)
            for field in RAW_FIELDS[kind]:
                values = np.asarray(data[field])
                values = (
                    values[particle]
                    if len(values)
                    else values.reshape((0, 3) if field in VECTOR_FIELDS else (0,))
                )
                group.create_dataset(field, data=values, track_times=False)
    return path
