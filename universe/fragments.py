"""Per-object particle fragments, and the snapshot chunk files assembled from them.

The zoom-like presets (``dwarfs``, ``clusters``) generate one object per task and save each
particle field as its own ``.npy`` fragment, so a build can resume and objects generate in
parallel without holding the whole run in memory. The chunk files are then written from those
fragments in TNG's file order: object after object, each type's particles contiguous across
files as illustris_python's offsets expect.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from darkstack.tng_layout import PARTICLE_FIELDS, SnapshotHeader, output_dir, snapshot_path
from darkstack.universe import tng_format


def fragment_path(fragments: Path, *, kind: str, index: int, ptype: int, name: str) -> Path:
    """Where object ``index`` (a ``kind`` such as ``dwarf``) keeps field ``name`` of ``ptype``."""
    return fragments / f"{kind}{index:06d}.PartType{ptype}.{name}.npy"


def assemble_chunk_file(
    file_index: int,
    *,
    root: Path,
    header: SnapshotHeader,
    snapshot: int,
    counts: dict[int, list[int]],
    fragments: Path,
    kind: str,
    ptypes: Sequence[int],
) -> Path:
    """Write snapshot chunk ``file_index`` of the run at ``root`` from its objects' fragments.

    Parameters
    ----------
    file_index : int
        Which chunk file.
    root : Path
        Simulation root (illustris_python's basePath is ``root/output``).
    header : SnapshotHeader
        The run's header; its layout says which particles each file holds.
    snapshot : int
        Snapshot number.
    counts : dict of int to list of int
        Particles per object, per type, in object order.
    fragments : Path
        Folder of the fragments written with :func:`fragment_path`.
    kind : str
        The fragments' object name.
    ptypes : sequence of int
        The particle types written, in the order their IDs are numbered.

    Returns
    -------
    Path
        The written file.
    """
    id_base = np.cumsum([0, *(header.num_part_total[p] for p in ptypes)])
    particles: dict[int, dict[str, np.ndarray]] = {}
    for rank, ptype in enumerate(ptypes):
        start, stop = header.layout.file_range(file_index=file_index, ptype=ptype)
        if stop == start:
            continue
        first = np.concatenate([[0], np.cumsum(counts[ptype])])
        names = [spec.name for spec in PARTICLE_FIELDS[ptype] if spec.name != "ParticleIDs"]
        columns: dict[str, list[np.ndarray]] = {name: [] for name in names}
        for index in range(len(counts[ptype])):
            lo, hi = max(start, first[index]), min(stop, first[index + 1])
            if lo >= hi:
                continue
            for name in names:
                path = fragment_path(fragments, kind=kind, index=index, ptype=ptype, name=name)
                values = np.load(path, mmap_mode="r")
                columns[name].append(values[lo - first[index] : hi - first[index]])
        particles[ptype] = {name: np.concatenate(parts) for name, parts in columns.items()}
        particles[ptype]["ParticleIDs"] = np.arange(start, stop, dtype=np.uint64) + np.uint64(
            id_base[rank] + 1
        )
    path = snapshot_path(output_dir(root), snapshot, file_index)
    path.parent.mkdir(parents=True, exist_ok=True)
    tng_format.write_snapshot_file(path, header=header, file_index=file_index, particles=particles)
    return path
