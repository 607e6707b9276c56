"""``darkstack fields``: deposit a hydro run and its gravity-only twin onto voxel grids, on Dask.

The graph (built here; the kernels are :mod:`~darkstack.features.fields.tiles` and
:mod:`~darkstack.features.deposit.mesh`) has two stages:

1. **bucket**, one task per piece of a field (at most ``particles_per_task`` rows of one
   snapshot chunk, or one group-catalog file): read positions and masses, convert them to
   cell coordinates, sort them by the tiles their stencils reach, periodic images included
   (:func:`~darkstack.features.fields.tiles.bucket`), and write them to
   ``STORE/fields.work/buckets/`` with a small record of where each tile's rows are. TNG's
   snapshot chunks are not spatially sorted, so this is the shuffle that lets a tile read
   only its own particles.
2. **tile**, one task per tile of a field: read the tile's rows of every piece, in the fixed
   order of the pieces, deposit them into a float64 accumulator of tile³ voxels, and write it
   as float32 into its chunk-aligned region of ``STORE/fields.zarr``, then a completion record.

Memory per task is set by the tile and by ``particles_per_task``, never by the grid; a tile too
large for the workers is refused before any work (:func:`check_memory`). Every task is pure
and writes atomically (buckets by rename, zarr chunks by zarr's own rename), so a task rerun
after a lost worker writes the same bytes; a rerun of the build skips finished pieces and
tiles. A piece or tile that fails is recorded and the rest of the build goes on; the build
then reports it, and a rerun retries it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import darkstack
from darkstack.atomic import atomic_path
from darkstack.config import config_to_dict
from darkstack.features.deposit.mesh import GRID_POINTS, cell_coordinates, deposit
from darkstack.features.fields import layout
from darkstack.features.fields.config import FieldsConfig
from darkstack.features.fields.layout import FIELDS, FIELDS_BY_NAME, FieldSpec
from darkstack.features.fields.sources import Piece, Run, pieces, read_points
from darkstack.features.fields.tiles import Tiling, bucket
from darkstack.ingest.tng_local import SimulationError
from darkstack.provenance import describe_change, differing_keys, refuse
from darkstack.status import BuildReport, failure_status, summarise
from darkstack.store import StoreLayout
from darkstack.tasks import map_tasks

if TYPE_CHECKING:
    from distributed import Client

#: Resident memory of a worker before it runs a task (interpreter, numpy, numba, zarr, dask).
WORKER_BASELINE_BYTES = 400 * 2**20
#: Peak bytes per particle of a bucketing task: positions, masses, cell coordinates, first
#: nodes, sort keys and rows, and the bucketed copies (measured: ~150).
BUCKET_BYTES_PER_PARTICLE = 192
#: Bytes per bucketed particle a tile task reads at once (coordinates and weight).
TILE_BYTES_PER_PARTICLE = 32


@dataclass(frozen=True)
class FieldsSummary:
    """What a fields build wrote.

    Attributes
    ----------
    path : Path
        ``STORE/fields.zarr``.
    fields : tuple of str
        Variables built.
    n_tiles : int
        Tiles per field.
    report : BuildReport
        Tiles done, and the pieces or tiles that failed by cause (a rerun retries them).
    """

    path: Path
    fields: tuple[str, ...]
    n_tiles: int
    report: BuildReport


@dataclass(frozen=True)
class TileJob:
    """One tile of one field and where its particles are: (bucket file, rows, weight)."""

    field: str
    tile_id: int
    parts: tuple[tuple[str, int, int, float | None], ...]


def run_fields(
    config: FieldsConfig,
    *,
    sim: str | Path,
    dark: str | Path | None = None,
    store: str | Path,
    client: Client | None = None,
    progress: bool = True,
    rebuild: bool = False,
) -> FieldsSummary:
    """Build ``STORE/fields.zarr`` from a hydro run and, optionally, its gravity-only twin.

    Parameters
    ----------
    config : FieldsConfig
        Grid, scheme, tiling and the fields to build.
    sim : str or Path
        basePath of the hydro run.
    dark : str or Path, optional
        basePath of the gravity-only run; without it the ``dark_*`` fields are not built.
    store : str or Path
        The store to write into.
    client : distributed.Client, optional
        Dask client; None runs every task in this process.
    progress : bool
        Show progress bars.
    rebuild : bool
        Replace a ``fields.zarr`` made with other settings or inputs instead of refusing it.

    Raises
    ------
    SimulationError
        For unreadable runs or a twin whose box or cosmology differs.
    ValueError
        For fields that cannot be built from the given runs, a tile too large for the
        workers, or an existing ``fields.zarr`` made differently (without ``rebuild``).
    """
    store = Path(store)
    runs = {"hydro": Run.open(sim, config.snapshot, option="--sim")}
    if dark is not None:
        runs["dark"] = Run.open(dark, config.snapshot, option="--dark")
        runs["hydro"].check_twin(runs["dark"])
    specs = _selected_fields(config, runs)
    tiling = Tiling(grid=config.grid, tile=config.tile_size, chunk=config.chunk_size)
    check_memory(config, worker_memory(client))
    provenance = _provenance(config, runs)
    path, work = StoreLayout(store).zarr("fields"), StoreLayout(store).work("fields")
    _prepare_zarr(
        path, work, specs=specs, runs=runs, tiling=tiling, provenance=provenance, rebuild=rebuild
    )

    todo = [spec for spec in specs if not _field_done(work, spec.name, tiling)]
    field_pieces = {
        spec.name: pieces(runs[spec.run], spec, per_task=config.particles_per_task) for spec in todo
    }
    statuses = map_tasks(
        _bucket_piece,
        [p for ps in field_pieces.values() for p in ps if not _bucket_record(work, p).exists()],
        client=client,
        description="bucket particles",
        progress=progress,
        runs=runs,
        tiling=tiling,
        scheme=config.scheme,
        work=work,
    )
    records = {p: _read_record(_bucket_record(work, p)) for ps in field_pieces.values() for p in ps}
    bucketed = [spec for spec in todo if all(records[p] for p in field_pieces[spec.name])]
    jobs = [
        _tile_job(spec.name, tile_id, field_pieces[spec.name], records, work)
        for spec in bucketed
        for tile_id in range(tiling.n_tiles)
        if not _tile_record(work, spec.name, tile_id).exists()
    ]
    statuses += map_tasks(
        _deposit_tile,
        jobs,
        client=client,
        description="deposit tiles",
        progress=progress,
        path=path,
        work=work,
        tiling=tiling,
        scheme=config.scheme,
    )
    _remove_partial_zarr_writes(path)
    for spec in bucketed:
        if _field_done(work, spec.name, tiling):
            mine = [records[p] for p in field_pieces[spec.name]]
            _record_statistics(path / spec.name, mine, _tile_sums(work, spec.name, tiling))
    if all(_field_done(work, spec.name, tiling) for spec in specs):
        shutil.rmtree(work / "buckets", ignore_errors=True)
    report = summarise(
        statuses,
        build="fields",
        unit="tiles",
        n_items=len(specs) * tiling.n_tiles,
        n_ok=sum(
            _tile_record(work, spec.name, t).exists()
            for spec in specs
            for t in range(tiling.n_tiles)
        ),
        whole=True,
    )
    return FieldsSummary(
        path=path, fields=tuple(spec.name for spec in specs), n_tiles=tiling.n_tiles, report=report
    )


def worker_memory(client: Client | None) -> tuple[int, int]:
    """(smallest memory_limit in bytes, most threads) of the workers that will run tasks.

    Without a client the tasks run in this process, bounded by the machine (or cgroup) memory.
    """
    if client is None:
        from distributed.system import MEMORY_LIMIT

        return int(MEMORY_LIMIT), 1
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    limits = [int(w["memory_limit"]) for w in workers if w.get("memory_limit")]
    if not limits:
        from distributed.system import MEMORY_LIMIT

        limits = [int(MEMORY_LIMIT)]
    return min(limits), max((int(w.get("nthreads", 1)) for w in workers), default=1)


def task_memory(config: FieldsConfig, *, tile: int | None = None) -> dict[str, int]:
    """Planned peak bytes of one task of each stage (see the module docstring).

    Parameters
    ----------
    config : FieldsConfig
        The build's settings.
    tile : int, optional
        A tile side other than the configured one.
    """
    side = config.tile_size if tile is None else tile
    batch = config.particles_per_task
    return {
        # float64 accumulator, its float32 copy, and the rows of one piece read at once.
        "tile": 12 * side**3 + 2 * batch * TILE_BYTES_PER_PARTICLE,
        "bucket": batch * BUCKET_BYTES_PER_PARTICLE,
    }


def check_memory(config: FieldsConfig, memory: tuple[int, int]) -> None:
    """Refuse, before any work, a tile or batch the workers' memory cannot hold.

    Parameters
    ----------
    config : FieldsConfig
        The build's settings.
    memory : (int, int)
        Smallest worker memory limit (bytes) and threads per worker (tasks run at once).

    Raises
    ------
    ValueError
        One line with the numbers and the largest tile (or batch) that fits.
    """
    limit, threads = memory
    budget = (limit * config.memory_fraction - WORKER_BASELINE_BYTES) / threads
    need = task_memory(config)
    where = (
        f"a task may use {_gib(budget)} ({config.memory_fraction:.0%} of the workers' "
        f"{_gib(limit)} memory_limit, less {_gib(WORKER_BASELINE_BYTES)} for the interpreter, "
        f"shared by {threads} thread(s))"
    )
    if need["tile"] > budget:
        fits = [
            side
            for side in range(config.chunk_size, config.tile_size, config.chunk_size)
            if config.grid % side == 0 and task_memory(config, tile=side)["tile"] <= budget
        ]
        advice = (
            f"set tile={fits[-1]} (--set tile={fits[-1]})"
            if fits
            else "use workers with more memory or fewer threads"
        )
        raise ValueError(
            f"tile {config.tile_size}^3 needs {_gib(need['tile'])} per task (a float64 "
            f"accumulator and float32 copy of {config.tile_size}^3 voxels, and the rows of "
            f"{config.particles_per_task} particles) but {where}; {advice}"
        )
    if need["bucket"] > budget:
        batch = max(int(budget / BUCKET_BYTES_PER_PARTICLE), 0)
        raise ValueError(
            f"particles_per_task={config.particles_per_task} needs {_gib(need['bucket'])} per "
            f"bucketing task but {where}; set particles_per_task={batch} or less"
        )


def _gib(value: float) -> str:
    return f"{value / 2**30:.2f} GiB"


def _selected_fields(config: FieldsConfig, runs: dict[str, Run]) -> list[FieldSpec]:
    available = [
        spec
        for spec in FIELDS
        if spec.run in runs and (spec.kind != "subhalos" or runs[spec.run].subhalo_counts)
    ]
    if not config.fields:
        return available
    for name in config.fields:
        spec = FIELDS_BY_NAME[name]
        if spec.run not in runs:
            raise ValueError(f"field {name} is of the gravity-only run: give it with --dark")
        if spec not in available:
            raise SimulationError(
                f"field {name} needs the group catalog of {runs[spec.run].base_path}, which "
                "has none"
            )
    return [spec for spec in FIELDS if spec.name in config.fields]


def _provenance(config: FieldsConfig, runs: dict[str, Run]) -> dict[str, Any]:
    """What the bytes of ``fields.zarr`` depend on; a rerun must match it to resume."""
    settings = config_to_dict(config)
    settings.pop("memory_fraction")  # where work runs, not what it makes
    hydro = runs["hydro"]
    return {
        "config": settings,
        "sources": {name: str(run.base_path.resolve()) for name, run in runs.items()},
        "box_ckpc_h": hydro.box_size,
        "format_version": layout.FORMAT_VERSION,
    }


def _fingerprint(provenance: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(provenance, sort_keys=True).encode()).hexdigest()[:16]


def _change(path: Path, provenance: dict[str, Any]) -> str:
    """What differs between the provenance of the ``fields.zarr`` at ``path`` and this build's."""
    import zarr

    try:
        attrs = zarr.open_group(path, mode="r").attrs
        saved = {
            "config": json.loads(str(attrs["config"])),
            "sources": json.loads(str(attrs["sources"])),
            "box_ckpc_h": attrs["box_ckpc_h"],
            "format_version": attrs["format_version"],
        }
    except Exception:  # not a zarr group, or one without provenance: nothing to compare
        return "its provenance is unreadable"
    keys = differing_keys(saved, provenance)
    return describe_change(saved, provenance, keys) if keys else "its fingerprint differs"


def _prepare_zarr(
    path: Path,
    work: Path,
    *,
    specs: Sequence[FieldSpec],
    runs: dict[str, Run],
    tiling: Tiling,
    provenance: dict[str, Any],
    rebuild: bool,
) -> None:
    """Create the empty dataset (NaN until a tile is written), or check the existing one."""
    import dask.array as da
    import xarray as xr
    import zarr

    fingerprint = _fingerprint(provenance)
    if path.exists():
        try:
            existing = zarr.open_group(path, mode="r").attrs.get("fingerprint")
        except Exception:  # not a zarr group (e.g. a half-created one): treat as different
            existing = None
        if existing == fingerprint:
            return
        if not rebuild:
            raise refuse(path, _change(path, provenance), what="replace it")
    shutil.rmtree(path, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    hydro = runs["hydro"]
    grid, chunk = tiling.grid, tiling.chunk
    header = hydro.header
    box_mpc = float(hydro.units.length_to_kpc(header.box_size)) / 1.0e3
    cell_mpc = box_mpc / grid
    axis = np.arange(grid) * cell_mpc
    common = {
        "units": layout.FIELD_UNITS,
        "box_mpc_h": hydro.box_mpc_h,
        "grid": grid,
        "scheme": provenance["config"]["scheme"],
        "config": json.dumps(provenance["config"], sort_keys=True),
    }
    variables = {
        spec.name: (
            layout.DIMS,
            # Dask blocks of a tile (fewer graph tasks), stored in zarr chunks of ``chunk``.
            da.full((grid,) * 3, np.nan, dtype=np.float32, chunks=tiling.tile),
            {
                **common,
                "description": spec.description,
                "run": spec.run,
                "source": provenance["sources"][spec.run],
            },
        )
        for spec in specs
    }
    coords = {
        dim: (dim, axis, {"units": layout.COORDINATE_UNITS, "convention": layout.GRID_CONVENTION})
        for dim in layout.DIMS
    }
    absent = sorted(spec.name for spec in FIELDS if spec not in specs)
    dataset = xr.Dataset(
        variables,
        coords=coords,
        attrs={
            **common,
            "box_ckpc_h": hydro.box_size,
            "box_mpc": box_mpc,
            "chunk": chunk,
            "tile": tiling.tile,
            "grid_convention": layout.GRID_CONVENTION,
            "redshift": header.redshift,
            "hubble_param": header.hubble_param,
            "omega_m": header.omega_m,
            "omega_lambda": header.omega_lambda,
            "sources": json.dumps(provenance["sources"], sort_keys=True),
            "absent_fields": ", ".join(absent),
            "format_version": layout.FORMAT_VERSION,
            "darkstack_version": darkstack.__version__,
            "fingerprint": fingerprint,
        },
    )
    # compute=False writes the metadata and coordinates; the tiles fill the variables.
    encoding = {spec.name: {"chunks": (chunk,) * 3} for spec in specs}
    dataset.to_zarr(path, mode="w", compute=False, consolidated=False, encoding=encoding)


def _bucket_record(work: Path, piece: Piece) -> Path:
    return work / "buckets" / piece.field / f"{piece.label}.json"


def _tile_record(work: Path, field: str, tile_id: int) -> Path:
    return work / "tiles" / field / f"{tile_id:06d}.json"


def _read_record(path: Path) -> dict[str, Any]:
    """A bucket's record, or an empty mapping while it has not been written."""
    return json.loads(path.read_text()) if path.exists() else {}


def _write_json(path: Path, content: dict[str, Any]) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(content, sort_keys=True))


def _bucket_piece(
    piece: Piece, *, runs: dict[str, Run], tiling: Tiling, scheme: str, work: Path
) -> str:
    """Stage 1 task: bucket one piece and write its rows and record (the record comes last)."""
    record = _bucket_record(work, piece)
    try:
        spec = FIELDS_BY_NAME[piece.field]
        run = runs[spec.run]
        positions, masses = read_points(run, spec, piece)
        cells = cell_coordinates(
            positions, cell_size=run.box_size / tiling.grid, cell_offset=GRID_POINTS
        )
        buckets = bucket(cells, masses, tiling=tiling, scheme=scheme)
        constant = masses.size == 1
        rows = buckets.cells if constant else np.column_stack((buckets.cells, buckets.weights))
        with atomic_path(record.with_suffix(".npy")) as temporary:
            with temporary.open("wb") as file:
                np.save(file, rows)
        n = positions.shape[0]
        _write_json(
            record,
            {
                "offsets": buckets.offsets.tolist(),
                "weight": float(masses[0]) if constant else None,
                "count": n,
                "weight_sum": float(masses[0]) * n if constant else float(np.sum(masses)),
                "weight_sq_sum": (
                    float(masses[0]) ** 2 * n if constant else float(np.sum(masses**2))
                ),
            },
        )
        return "ok"
    except Exception as error:  # one piece's failure is reported, the others go on
        return failure_status(error)


def _tile_job(
    field: str,
    tile_id: int,
    field_pieces: Sequence[Piece],
    records: dict[Piece, dict[str, Any]],
    work: Path,
) -> TileJob:
    parts = []
    for piece in field_pieces:
        record = records[piece]
        start, stop = record["offsets"][tile_id], record["offsets"][tile_id + 1]
        if stop > start:
            rows = str(_bucket_record(work, piece).with_suffix(".npy"))
            parts.append((rows, start, stop, record["weight"]))
    return TileJob(field=field, tile_id=tile_id, parts=tuple(parts))


def _deposit_tile(job: TileJob, *, path: Path, work: Path, tiling: Tiling, scheme: str) -> str:
    """Stage 2 task: deposit one tile's particles, write its zarr region, then its record."""
    import zarr

    try:
        grid = np.zeros((tiling.tile,) * 3, dtype=np.float64)
        for rows_path, start, stop, weight in job.parts:
            rows = np.load(rows_path, mmap_mode="r")[start:stop]
            weights = np.array([weight]) if weight is not None else rows[:, 3]
            deposit(rows[:, :3], weights, shape=grid.shape, scheme=scheme, periodic=False, out=grid)
        array = zarr.open_array(path / job.field, mode="r+")
        array[tiling.tile_region(job.tile_id)] = grid.astype(np.float32)
        _write_json(_tile_record(work, job.field, job.tile_id), {"sum_msun": float(grid.sum())})
        return "ok"
    except Exception as error:  # one tile's failure is reported, the others go on
        return failure_status(error)


def _field_done(work: Path, field: str, tiling: Tiling) -> bool:
    return all(_tile_record(work, field, t).exists() for t in range(tiling.n_tiles))


def _tile_sums(work: Path, field: str, tiling: Tiling) -> list[float]:
    return [
        float(json.loads(_tile_record(work, field, t).read_text())["sum_msun"])
        for t in range(tiling.n_tiles)
    ]


def _record_statistics(
    array_path: Path, records: Sequence[dict[str, Any]], tile_sums: Sequence[float]
) -> None:
    """A finished field's points, their weight sums (for shot noise) and the mass deposited."""
    import zarr

    zarr.open_array(array_path, mode="r+").attrs.update(
        {
            "points": int(sum(r["count"] for r in records)),
            "weight_sum_msun": float(sum(r["weight_sum"] for r in records)),
            "weight_sq_sum_msun2": float(sum(r["weight_sq_sum"] for r in records)),
            "deposited_msun": float(sum(tile_sums)),
        }
    )


def _remove_partial_zarr_writes(path: Path) -> None:
    """zarr writes a chunk to ``*.partial`` then renames it; a killed writer leaves the former."""
    for leftover in path.rglob("*.partial"):
        leftover.unlink(missing_ok=True)
