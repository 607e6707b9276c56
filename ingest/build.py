"""``darkstack ingest``: selection, cutouts and targets into the store, from any source.

The one ingest driver. A :class:`~darkstack.ingest.sources.Source` (a local basePath, the TNG
web API, or any registered reader) describes the snapshot, loads the group catalog and returns
each galaxy's particles; the driver selects galaxies (the paper's Table 1 by default), batches
them, converts and writes their cutouts (:mod:`darkstack.ingest.cutouts`), computes targets from
each written cutout (:mod:`darkstack.ingest.targets`) and writes
``STORE/catalogs/galaxies.parquet`` with one row per selected galaxy and its ``status``.
Targets are always computed from the cutout as stored, so a rerun that skips finished galaxies
writes the same bytes as an uninterrupted run.

Recovery and provenance (:mod:`darkstack.status`, :mod:`darkstack.provenance`): a galaxy that
fails for an environmental reason (a full disk, an unreadable file) is recorded as ``retry: ...``
and has no cutout, so the next run cuts it again; a data failure (no gas, an unresolved centre,
non-finite particles) is its status. Every cutout records the snapshot, simulation and radius it
was cut with; a rerun asking for others refuses, naming the keys, unless ``rebuild`` (then the
stale cutouts are cut again). Target radii and the selection may change freely: every galaxy is
profiled again from its cutout, and only the missing cutouts are cut.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

import darkstack
from darkstack.atomic import atomic_path, remove_partial_writes
from darkstack.config import config_to_dict, dump_config
from darkstack.ingest.config import IngestConfig
from darkstack.ingest.cutouts import read_cutout, to_canonical, write_cutout
from darkstack.ingest.selection import select_subhalos
from darkstack.ingest.sources import (
    CATALOG_GROUP_FIELDS,
    CATALOG_SUBHALO_FIELDS,
    Galaxy,
    ParticleReader,
    SimulationInfo,
    Source,
    open_source,
)
from darkstack.ingest.targets import galaxy_profiles
from darkstack.provenance import describe_change, differing_keys, refuse
from darkstack.status import BuildReport, failure_status, summarise
from darkstack.store import GALAXIES_CATALOG, StoreLayout, read_metadata, write_catalog
from darkstack.tasks import map_tasks
from darkstack.units import CodeUnits

if TYPE_CHECKING:
    from distributed import Client


@dataclass(frozen=True)
class IngestSummary:
    """What an ingest wrote."""

    store: Path
    report: BuildReport

    @property
    def n_selected(self) -> int:
        return self.report.n_items

    @property
    def n_ok(self) -> int:
        return self.report.n_ok


def run_ingest(
    config: IngestConfig,
    *,
    store: str | Path,
    sim: str | Path | None = None,
    client: Client | None = None,
    progress: bool = True,
    source: Source | None = None,
    rebuild: bool = False,
) -> IngestSummary:
    """Select galaxies of a simulation and write their catalog and cutouts into ``store``.

    Parameters
    ----------
    config : IngestConfig
        Selection, cutout and target settings; ``config.source`` names the source.
    store : str or Path
        The store to write (created if needed); galaxies whose cutout exists are not cut again.
    sim : str or Path, optional
        Where the source reads: the simulation's basePath (its ``output/`` folder) for the
        ``local`` source; the ``api`` source takes the simulation from ``config.api``.
    client : distributed.Client, optional
        Dask client for the cutouts (and the source's preparatory pass); None runs them here.
    progress : bool
        Show progress bars.
    source : Source, optional
        An opened source, used instead of opening ``config.source`` at ``sim``.
    rebuild : bool
        Cut again the cutouts made with another snapshot, simulation or radius, instead of
        refusing them.

    Raises
    ------
    ProvenanceError
        Cutouts in ``store`` were made with other settings and ``rebuild`` is false.
    """
    store = Path(store)
    source = open_source(config, sim=sim) if source is None else source
    info = source.describe()
    subhalos, groups = source.load_catalog(
        subhalo_fields=_unique(CATALOG_SUBHALO_FIELDS, source.extra_subhalo_fields),
        group_fields=_unique(CATALOG_GROUP_FIELDS, source.extra_group_fields),
    )
    selected = select_subhalos(
        subhalos, groups, hubble_param=info.units.hubble_param, config=config.selection
    )
    galaxies = _galaxies(subhalos, selected)
    layout = StoreLayout(store)
    made_with = {
        "snapshot": info.snapshot,
        "simulation": info.simulation,
        "radius_kpc": config.cutout.radius_kpc,
    }
    _check_cutouts(layout, galaxies, made_with=made_with, config=config, rebuild=rebuild)
    work_dir = layout.cutouts_work
    reader = None
    if any(not layout.cutout(galaxy.subhalo_id).exists() for galaxy in galaxies):
        _prepare_scratch(work_dir, galaxies, made_with=made_with)
        reader = source.particle_reader(
            galaxies,
            info=info,
            subhalos=subhalos,
            groups=groups,
            radius=float(info.units.kpc_to_length(config.cutout.radius_kpc)),
            work_dir=work_dir,
            client=client,
            progress=progress,
        )
    batches = [
        galaxies[lo : lo + config.galaxies_per_task]
        for lo in range(0, len(galaxies), config.galaxies_per_task)
    ]
    rows = [
        row
        for batch_rows in map_tasks(
            _galaxy_batch,
            batches,
            client=client,
            description="assemble galaxies",
            progress=progress,
            reader=reader,
            info=info,
            store=store,
            config=config,
            fatal=source.fatal_errors,
        )
        for row in batch_rows
    ]
    summary = write_galaxy_catalog(
        store=store,
        units=info.units,
        subhalos=subhalos,
        groups=groups,
        selected=selected,
        config=config,
        rows=rows,
        simulation=info.simulation,
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
    report = summarise((row["status"] for row in rows), build="ingest", unit="galaxies")
    return IngestSummary(store=store, report=report)


#: The attributes of a cutout file that say what it was cut with, and the settings that set them.
_CUTOUT_PROVENANCE = {
    "snapshot": "snapshot",
    "simulation": "--sim (or api.simulation)",
    "radius_kpc": "cutout.min_radius_kpc, cutout.field_of_view_arcmin, cutout.max_distance_mpc",
}
#: Settings that change cutouts; the others change only the catalog, rebuilt every run.
_CUTOUT_KEYS = ("snapshot", "source", "cutout.", "api.simulation")


def _check_cutouts(
    layout: StoreLayout,
    galaxies: Sequence[Galaxy],
    *,
    made_with: Mapping[str, Any],
    config: IngestConfig,
    rebuild: bool,
) -> None:
    """Refuse (or, with ``rebuild``, remove) stored cutouts cut with other settings.

    An unreadable cutout (ingest writes atomically, so only something else breaks one) is
    removed and cut again.
    """
    stale: dict[str, tuple[Any, Any]] = {}
    n_stale = 0
    for galaxy in galaxies:
        path = layout.cutout(galaxy.subhalo_id)
        if not path.exists():
            continue
        try:
            with h5py.File(path, "r") as file:
                attrs = {name: file.attrs.get(name) for name in made_with}
        except OSError:
            path.unlink()
            continue
        differ = {
            name: (attrs[name], value)
            for name, value in made_with.items()
            if not _same(attrs[name], value)
        }
        if differ:
            n_stale += 1
            stale |= differ
            if rebuild:
                path.unlink()
    if not stale or rebuild:
        return
    saved = _saved_config(layout)
    current = config_to_dict(config)
    keys = [
        key
        for key in differing_keys(saved, current)
        if any(
            key == name or (name.endswith(".") and key.startswith(name)) for name in _CUTOUT_KEYS
        )
    ]
    change = describe_change(saved, current, keys) if keys else ""
    attributes = ", ".join(
        f"{name}: {old!r} -> {new!r} (set by {_CUTOUT_PROVENANCE[name]})"
        for name, (old, new) in stale.items()
    )
    raise refuse(
        layout.cutouts,
        f"{n_stale} cutouts: {change + '; ' if change else ''}{attributes}",
        what="cut them again",
    )


def _saved_config(layout: StoreLayout) -> dict[str, Any]:
    """The config of the last complete ingest (the catalog's metadata), or {} without one."""
    path = layout.catalog(GALAXIES_CATALOG.name)
    if not path.exists():
        return {}
    saved = read_metadata(path).get("config")
    return dict(saved) if isinstance(saved, Mapping) else {}


def _same(stored: Any, value: Any) -> bool:
    """Whether a cutout attribute holds ``value`` (HDF5 may hand back bytes or numpy scalars)."""
    if isinstance(stored, bytes):
        stored = stored.decode()
    if stored is None or not isinstance(value, float):
        return bool(stored == value)
    return bool(np.isclose(float(stored), value, rtol=1e-12, atol=0.0))


def _prepare_scratch(
    work_dir: Path, galaxies: Sequence[Galaxy], *, made_with: Mapping[str, Any]
) -> None:
    """``cutouts/.work/``, emptied when it holds fragments of another selection or radius.

    Fragments tag particles by the galaxy's row in the selection, so fragments left by an
    interrupted run with other galaxies or another radius would hand out the wrong particles.
    """
    fingerprint = hashlib.sha256(
        json.dumps(
            {
                **made_with,
                "galaxies": [[g.subhalo_id, *g.centre] for g in galaxies],
            },
            sort_keys=True,
        ).encode()
    ).hexdigest()
    record = work_dir / "fingerprint"
    if work_dir.exists() and (not record.exists() or record.read_text() != fingerprint):
        shutil.rmtree(work_dir)
    if not record.exists():
        work_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(record) as temporary:
            temporary.write_text(fingerprint)


def _unique(*names: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(name for group in names for name in group))


def _galaxies(subhalos: Mapping[str, Any], selected: np.ndarray) -> list[Galaxy]:
    positions = np.asarray(subhalos["SubhaloPos"], dtype=np.float64)
    velocities = np.asarray(subhalos["SubhaloVel"], dtype=np.float64)  # peculiar km/s
    return [
        Galaxy(
            subhalo_id=int(subhalo),
            row=row,
            centre=_triple(positions[subhalo]),
            velocity_kms=_triple(velocities[subhalo]),
        )
        for row, subhalo in enumerate(selected)
    ]


def _triple(vector: Sequence[float]) -> tuple[float, float, float]:
    return (float(vector[0]), float(vector[1]), float(vector[2]))


def _galaxy_batch(
    galaxies: Sequence[Galaxy],
    *,
    reader: ParticleReader | None,
    info: SimulationInfo,
    store: Path,
    config: IngestConfig,
    fatal: tuple[type[BaseException], ...],
) -> list[dict[str, Any]]:
    """One task: write the missing cutouts, then profile every galaxy from its stored file."""
    return [
        profile_galaxy(
            StoreLayout(store).cutout(galaxy.subhalo_id),
            assemble=partial(canonical_particles, galaxy, reader=reader, info=info),
            attributes=cutout_attributes(
                subhalo_id=galaxy.subhalo_id,
                centre=galaxy.centre,
                velocity_kms=galaxy.velocity_kms,
                snapshot=info.snapshot,
                simulation=info.simulation,
                config=config,
            ),
            store=store,
            radii_kpc=config.targets.radii_kpc,
            fatal=fatal,
        )
        for galaxy in galaxies
    ]


def canonical_particles(
    galaxy: Galaxy, *, reader: ParticleReader | None, info: SimulationInfo
) -> dict[str, dict[str, np.ndarray]]:
    """A galaxy's particles from the source's reader, in darkstack's units (any source)."""
    if reader is None:  # every cutout existed when the build started
        raise FileNotFoundError(
            f"the cutout of subhalo {galaxy.subhalo_id} vanished during the build"
        )
    return {
        kind: to_canonical(
            kind,
            raw.fields,
            in_subhalo=raw.in_subhalo,
            centre=galaxy.centre,
            velocity_kms=galaxy.velocity_kms,
            info=info,
        )
        for kind, raw in reader.particles(galaxy).items()
    }


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
    same bytes as an uninterrupted one. A galaxy that fails is recorded with its reason (a data
    failure, or an environmental one that the next run retries: see :mod:`darkstack.status`),
    the others are unaffected; exceptions in ``fatal`` (e.g. a rejected API key, which would
    fail every galaxy alike) stop the build instead.
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
        row = _failed_row(len(radii_kpc), failure_status(error))
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
