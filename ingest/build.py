"""``darkstack ingest``: selection, cutouts and targets into the store.

Reads the group catalog with illustris_python, selects galaxies (the paper's Table 1 by
default), cuts out their particles in two distributed passes (:mod:`darkstack.ingest.cutouts`),
computes targets from each written cutout (:mod:`darkstack.ingest.targets`) and writes
``STORE/catalogs/galaxies.parquet`` with one row per selected galaxy and its ``status``.
Targets are always computed from the cutout as stored, so a rerun that skips finished galaxies
writes the same bytes as an uninterrupted run.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import darkstack
from darkstack.atomic import remove_partial_writes
from darkstack.config import config_to_dict, dump_config
from darkstack.cosmology import TNG_COSMOLOGY, CosmologyParams
from darkstack.ingest.config import IngestConfig
from darkstack.ingest.cutouts import (
    GalaxyJob,
    assemble_galaxy,
    cut_chunk,
    read_cutout,
    write_cutout,
)
from darkstack.ingest.selection import GROUP_FIELDS, SUBHALO_FIELDS, select_subhalos
from darkstack.ingest.targets import galaxy_profiles
from darkstack.ingest.tng_local import SimulationError, SimulationFiles
from darkstack.status import summarise_statuses
from darkstack.store import GALAXIES_CATALOG, StoreLayout, write_catalog
from darkstack.tasks import map_tasks
from darkstack.units import CodeUnits

if TYPE_CHECKING:
    from distributed import Client

#: Group-catalog fields the galaxies catalog copies.
CATALOG_SUBHALO_FIELDS = (
    *SUBHALO_FIELDS,
    "SubhaloPos",
    "SubhaloVel",
    "SubhaloHalfmassRadType",
    "SubhaloVmax",
    "SubhaloVmaxRad",
    "SubhaloLenType",
)
CATALOG_GROUP_FIELDS = (*GROUP_FIELDS, "Group_M_Crit200", "Group_R_Crit200")


@dataclass(frozen=True)
class IngestSummary:
    """What an ingest wrote."""

    store: Path
    n_selected: int
    n_ok: int
    failures: dict[str, int]


def run_ingest(
    config: IngestConfig,
    *,
    sim: str | Path,
    store: str | Path,
    client: Client | None = None,
    progress: bool = True,
) -> IngestSummary:
    """Select galaxies of ``sim`` and write their catalog and cutouts into ``store``.

    Parameters
    ----------
    config : IngestConfig
        Selection, cutout and target settings.
    sim : str or Path
        The simulation's basePath (its ``output/`` folder).
    store : str or Path
        The store to write (created if needed).
    client : distributed.Client, optional
        Dask client for the two passes; None runs them in this process.
    progress : bool
        Show progress bars.
    """
    store = Path(store)
    files = SimulationFiles.open(sim, config.snapshot)
    cosmology = _cosmology(files)
    subhalos, groups = _load_catalog(files)
    selected = select_subhalos(
        subhalos, groups, hubble_param=files.units.hubble_param, config=config.selection
    )
    jobs = _jobs(files, subhalos, selected)
    radius_code = float(files.units.kpc_to_length(config.cutout.radius_kpc))
    layout = StoreLayout(store)
    work_dir = layout.cutouts_work
    pending = [job for job in jobs if not layout.cutout(job.subhalo_id).exists()]
    fragments: list[Path] = []
    if pending:
        work_dir.mkdir(parents=True, exist_ok=True)
        centres = np.array([job.centre for job in jobs]).reshape(-1, 3)
        fragments = map_tasks(
            cut_chunk,
            list(range(files.num_files)),
            client=client,
            description="cut chunks",
            progress=progress,
            files=files,
            centres=centres,
            radius=radius_code,
            work_dir=work_dir,
        )
    batches = [
        jobs[lo : lo + config.galaxies_per_task]
        for lo in range(0, len(jobs), config.galaxies_per_task)
    ]
    rows = [
        row
        for batch_rows in map_tasks(
            _galaxy_batch,
            batches,
            client=client,
            description="assemble galaxies",
            progress=progress,
            files=files,
            fragments=fragments,
            cosmology=cosmology,
            store=store,
            config=config,
        )
        for row in batch_rows
    ]
    summary = write_galaxy_catalog(
        store=store,
        units=files.units,
        subhalos=subhalos,
        groups=groups,
        selected=selected,
        config=config,
        rows=rows,
        simulation=str(files.base_path.resolve()),
    )
    shutil.rmtree(work_dir, ignore_errors=True)
    # A worker lost while writing a cutout leaves its temporary file; the task ran again.
    remove_partial_writes(layout.cutouts)
    return summary


def write_galaxy_catalog(
    *,
    store: Path,
    units: CodeUnits,
    subhalos: Mapping[str, Any],
    groups: Mapping[str, Any],
    selected: np.ndarray,
    config: IngestConfig,
    rows: Sequence[Mapping[str, Any]],
    simulation: str,
) -> IngestSummary:
    """``galaxies.parquet`` (catalog columns + profile rows) and ``ingest.yaml``, any source."""
    catalog = _catalog_columns(units, subhalos, groups, selected, config)
    # An empty selection still writes every column (the schema requires the profile ones).
    for name in rows[0] if rows else _failed_row(len(config.targets.radii_kpc), ""):
        catalog[name] = [row[name] for row in rows]
    metadata = {
        "config": config_to_dict(config),
        "radii_kpc": config.targets.radii_kpc.tolist(),
        "simulation": simulation,
        "snapshot": config.snapshot,
        "darkstack_version": darkstack.__version__,
    }
    write_catalog(store, GALAXIES_CATALOG, catalog, metadata=metadata)
    dump_config(config, StoreLayout(store).ingest_config)
    n_ok, failures = summarise_statuses(row["status"] for row in rows)
    return IngestSummary(store=store, n_selected=len(rows), n_ok=n_ok, failures=failures)


def _cosmology(files: SimulationFiles) -> CosmologyParams:
    header = _snapshot_header(files)
    return CosmologyParams(
        hubble_param=files.units.hubble_param,
        omega_m=float(header.get("Omega0", TNG_COSMOLOGY.omega_m)),
        omega_b=float(header.get("OmegaBaryon", TNG_COSMOLOGY.omega_b)),
    )


def _snapshot_header(files: SimulationFiles) -> dict[str, Any]:
    from darkstack.ingest.tng_local import read_attributes

    return read_attributes(files.chunk(0), "Header")


def _load_catalog(files: SimulationFiles) -> tuple[dict[str, Any], dict[str, Any]]:
    """The group-catalog fields ingest needs, through illustris_python."""
    import illustris_python as il

    base = str(files.base_path)
    try:
        subhalos = il.groupcat.loadSubhalos(
            base, files.snapshot, fields=list(CATALOG_SUBHALO_FIELDS)
        )
        groups = il.groupcat.loadHalos(base, files.snapshot, fields=list(CATALOG_GROUP_FIELDS))
    except (OSError, KeyError, Exception) as error:  # illustris_python raises bare Exception
        raise SimulationError(
            f"group catalog of snapshot {files.snapshot} under {base} could not be read: {error}"
        ) from None
    return subhalos, groups


def _jobs(
    files: SimulationFiles, subhalos: dict[str, Any], selected: np.ndarray
) -> list[GalaxyJob]:
    offsets = files.subhalo_offsets(selected)
    velocities = np.asarray(subhalos["SubhaloVel"], dtype=np.float64)  # peculiar km/s
    return [
        GalaxyJob(
            subhalo_id=int(subhalo),
            row=row,
            centre=_triple(subhalos["SubhaloPos"][subhalo]),
            velocity_kms=_triple(velocities[subhalo]),
            own_start=tuple(int(x) for x in offsets[row]),
            own_length=tuple(int(x) for x in subhalos["SubhaloLenType"][subhalo]),
        )
        for row, subhalo in enumerate(selected)
    ]


def _triple(vector: Sequence[float]) -> tuple[float, float, float]:
    return (float(vector[0]), float(vector[1]), float(vector[2]))


def _galaxy_batch(
    jobs: Sequence[GalaxyJob],
    *,
    files: SimulationFiles,
    fragments: Sequence[Path],
    cosmology: CosmologyParams,
    store: Path,
    config: IngestConfig,
) -> list[dict[str, Any]]:
    """Pass 2 task: assemble missing cutouts, then profile every galaxy from its stored file."""
    return [
        profile_galaxy(
            StoreLayout(store).cutout(job.subhalo_id),
            assemble=partial(
                assemble_galaxy, job, files=files, fragments=fragments, cosmology=cosmology
            ),
            attributes=cutout_attributes(
                subhalo_id=job.subhalo_id,
                centre=job.centre,
                velocity_kms=job.velocity_kms,
                snapshot=files.snapshot,
                simulation=str(files.base_path),
                config=config,
            ),
            store=store,
            radii_kpc=config.targets.radii_kpc,
        )
        for job in jobs
    ]


def cutout_attributes(
    *,
    subhalo_id: int,
    centre: Sequence[float],
    velocity_kms: Sequence[float],
    snapshot: int,
    simulation: str,
    config: IngestConfig,
) -> dict[str, Any]:
    """The attributes every cutout file carries, whatever its source."""
    return {
        "subhalo_id": subhalo_id,
        "snapshot": snapshot,
        "centre_ckpc_h": np.asarray(centre),
        "velocity_kms": np.asarray(velocity_kms),
        "radius_kpc": config.cutout.radius_kpc,
        "simulation": simulation,
    }


def profile_galaxy(
    path: Path,
    *,
    assemble: Callable[[], dict[str, dict[str, np.ndarray]]],
    attributes: Mapping[str, Any],
    store: Path,
    radii_kpc: np.ndarray,
    fatal: tuple[type[BaseException], ...] = (),
) -> dict[str, Any]:
    """The catalog row of one galaxy: its cutout written unless stored, profiled from the file.

    Profiling the file as stored (float32 kinematics) is what makes a resumed build write the
    same bytes as an uninterrupted one. A galaxy that fails is recorded with its reason, the
    others are unaffected; exceptions in ``fatal`` (e.g. a rejected API key, which would fail
    every galaxy alike) stop the build instead.
    """
    try:
        if not path.exists():
            write_cutout(path, assemble(), attributes=attributes)
        particles, _ = read_cutout(path)
        row: dict[str, Any] = dict(galaxy_profiles(particles, radii_kpc=radii_kpc))
        row["status"] = _status(particles, row, r_min_kpc=float(radii_kpc[0]))
    except fatal:
        raise
    except Exception as error:  # one galaxy's failure must not lose the build
        row = _failed_row(len(radii_kpc), f"failed: {type(error).__name__}: {error}")
    row["cutout_file"] = str(path.relative_to(store))
    return row


def _status(
    particles: dict[str, dict[str, np.ndarray]], row: dict[str, Any], *, r_min_kpc: float
) -> str:
    """``ok`` or why the galaxy cannot be used."""
    if particles["gas"]["mass_msun"].size == 0:
        return "failed: no gas particles in the cutout"
    for kind, fields in particles.items():
        for name, values in fields.items():
            if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
                if not (kind == "stars" and name == "age_gyr"):
                    return f"failed: non-finite values in {kind}/{name}"
    if not np.isfinite(row["log10_mdm_enclosed"][0]):
        return f"failed: no dark-matter particle within {r_min_kpc:g} kpc (unresolved)"
    return "ok"


def _failed_row(n_radii: int, status: str) -> dict[str, Any]:
    nan_list = [float("nan")] * n_radii
    return {
        "log10_mdm_enclosed": nan_list,
        "log10_mdm_enclosed_subhalo": nan_list,
        "mstar_enclosed_msun": nan_list,
        "mgas_enclosed_msun": nan_list,
        "mhi_enclosed_msun": nan_list,
        "v_circ_kms": nan_list,
        "r_half_star_cutout_kpc": float("nan"),
        "v_rot_2rhalf_kms": float("nan"),
        "hi_mass_msun": float("nan"),
        "cutout_n_gas": 0,
        "cutout_n_dm": 0,
        "cutout_n_stars": 0,
        "status": status,
    }


def _catalog_columns(
    units: CodeUnits,
    subhalos: Mapping[str, Any],
    groups: Mapping[str, Any],
    selected: np.ndarray,
    config: IngestConfig,
) -> dict[str, Any]:
    """Columns copied (and converted to physical units) from the group catalog."""
    group_id = np.asarray(subhalos["SubhaloGrNr"])[selected]
    mass_type = units.mass_to_msun(np.asarray(subhalos["SubhaloMassType"])[selected])
    half_mass = units.length_to_kpc(np.asarray(subhalos["SubhaloHalfmassRadType"])[selected])
    len_type = np.asarray(subhalos["SubhaloLenType"])[selected]
    radii = config.targets.radii_kpc.tolist()
    return {
        "subhalo_id": selected.astype(np.int64),
        "group_id": group_id.astype(np.int64),
        "snap": np.full(selected.size, config.snapshot, dtype=np.int64),
        "stellar_mass_msun": mass_type[:, 4],
        "sfr_msun_yr": np.asarray(subhalos["SubhaloSFR"], dtype=np.float64)[selected],
        "m200c_msun": units.mass_to_msun(np.asarray(groups["Group_M_Crit200"])[group_id]),
        "r200c_kpc": units.length_to_kpc(np.asarray(groups["Group_R_Crit200"])[group_id]),
        "r_half_star_kpc": half_mass[:, 4],
        "r_half_gas_kpc": half_mass[:, 0],
        "r_half_dm_kpc": half_mass[:, 1],
        "gas_mass_msun": mass_type[:, 0],
        "dm_mass_msun": mass_type[:, 1],
        "vmax_kms": np.asarray(subhalos["SubhaloVmax"], dtype=np.float64)[selected],
        "vmax_radius_kpc": units.length_to_kpc(np.asarray(subhalos["SubhaloVmaxRad"])[selected]),
        "n_gas": len_type[:, 0].astype(np.int64),
        "n_dm": len_type[:, 1].astype(np.int64),
        "n_stars": len_type[:, 4].astype(np.int64),
        "position_kpc": units.length_to_kpc(np.asarray(subhalos["SubhaloPos"])[selected]).tolist(),
        "velocity_kms": np.asarray(subhalos["SubhaloVel"], dtype=np.float64)[selected].tolist(),
        "radii_kpc": [radii] * selected.size,
        "cutout_radius_kpc": np.full(selected.size, config.cutout.radius_kpc),
    }
