"""Write the mock universe: plan, generate halo batches, assemble TNG chunk files.

The build has two kinds of tasks, each a pure function of its inputs so it can run on any Dask
worker, in any order, and give the same bytes:

1. ``generate`` (one per batch of consecutive groups): particles of those groups, converted
   to TNG code units and saved as ``.npy`` fragments, plus their catalog rows. Memory is
   bounded by one batch.
2. ``assemble`` (one per snapshot chunk file): the slices of the fragments that fall into that
   file's particle ranges, with ParticleIDs, written as ``snap_SSS.N.hdf5``.

The group catalog, the offsets file, ``truth.parquet`` and ``universe.yaml`` (the resolved
config) are written last; the fragments are deleted.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from darkstack.config import config_to_dict, dump_config
from darkstack.cosmology import TNG_COSMOLOGY, CosmologyParams, as_dict
from darkstack.errors import InputError
from darkstack.store.parquet import table_with_units, write_table_atomic
from darkstack.tasks import map_tasks
from darkstack.tng_layout import (
    PARTICLE_FIELDS,
    SnapshotHeader,
    linear_field_path,
    output_dir,
    postprocessing_dir,
    snapshot_path,
)
from darkstack.units import CodeUnits
from darkstack.universe import tng_format, to_tng
from darkstack.universe.config import UniverseConfig
from darkstack.universe.generate import GroupOutput, generate_group
from darkstack.universe.plan import DM, PARTICLE_TYPES, GroupPlan, Plan, SubhaloPlan, draw_plan
from darkstack.universe.web import CosmicWeb, web_for

if TYPE_CHECKING:
    from distributed import Client

    from darkstack.universe.dark import TwinSummary

#: Radii (kpc) of the analytic enclosed dark-matter profile stored in truth.parquet: the
#: paper's 20 log-spaced radii from 1 to 100 kpc.
TRUTH_RADII_KPC = np.geomspace(1.0, 100.0, 20)
_FRAGMENTS = ".darkstack-fragments"
_REGIONS = ("members", "outer")


class UniverseOutputError(InputError, ValueError):
    """The output folder cannot hold a new universe."""


@dataclass(frozen=True)
class UniverseSummary:
    """What a build wrote."""

    root: Path
    n_groups: int
    n_subhalos: int
    particles_by_type: dict[int, int]
    n_snapshot_files: int
    n_groupcat_files: int
    twin: TwinSummary | None = None

    @property
    def n_particles(self) -> int:
        return sum(self.particles_by_type.values())


@dataclass(frozen=True)
class Span:
    """Where a batch's particles go in each type's global order: its members, then its part
    of the outer fuzz (which TNG stores after every group's members)."""

    index: int
    member_start: dict[int, int]
    member_count: dict[int, int]
    outer_start: dict[int, int]
    outer_count: dict[int, int]


@dataclass(frozen=True)
class _Batch:
    """Consecutive groups of the plan and their span."""

    span: Span
    plan: Plan


def build_universe(
    config: UniverseConfig,
    out: str | Path,
    *,
    client: Client | None = None,
    overwrite: bool = False,
    progress: bool = True,
    cosmology: CosmologyParams = TNG_COSMOLOGY,
    dark_twin: str | Path | None = None,
) -> UniverseSummary:
    """Write a mock universe in IllustrisTNG's on-disk layout.

    Parameters
    ----------
    config : UniverseConfig
        What to draw and how to write it.
    out : str or Path
        The simulation root ``SIM``; illustris_python's basePath is ``SIM/output``.
    client : distributed.Client, optional
        Dask client to run the tasks on; ``None`` runs them in this process.
    overwrite : bool
        Replace an existing universe at ``out``.
    progress : bool
        Show progress bars.
    cosmology : CosmologyParams
        The cosmology (TNG's Planck 2015 by default).
    dark_twin : str or Path, optional
        Also write the gravity-only twin at this root (:mod:`darkstack.universe.dark`), and
        the hydro-to-Dark match into ``out``'s ``postprocessing/``.

    Returns
    -------
    UniverseSummary
        Counts of what was written.
    """
    root = _prepare_output(Path(out), overwrite=overwrite)
    dark_root = None
    if dark_twin is not None:
        dark_root = _prepare_output(Path(dark_twin), overwrite=overwrite, option="--dark-twin")
        if dark_root == root:
            raise UniverseOutputError(
                f"--dark-twin {dark_twin} is --out itself; the twin needs a folder of its own"
            )
    web = web_for(
        config.web,
        box_mpc_h=config.box_size_mpc_h,
        redshift=config.redshift,
        cosmology=cosmology,
        seed=config.seed,
    )
    if web is not None:  # every dark-matter particle weighs one lattice cell's matter
        config = dataclasses.replace(config, dm_particle_mass_msun=web.particle_mass_msun())
    plan = draw_plan(config, cosmology, client=client, progress=progress, web=web)
    units = CodeUnits(hubble_param=cosmology.hubble_param, scale_factor=config.scale_factor)
    batches = _batches(plan)
    fragments = root / _FRAGMENTS
    fragments.mkdir(exist_ok=True)
    rows = map_tasks(
        _generate_batch,
        batches,
        client=client,
        description="generate halos",
        progress=progress,
        fragments=fragments,
    )
    totals = plan.totals()
    all_spans = [batch.span for batch in batches]
    lattice: tuple[np.ndarray, np.ndarray] | None = None
    if web is not None:
        lattice = _unbound_lattice(web, plan, [m for batch_rows in rows for m in batch_rows[2]])
        all_spans += _save_lattice(fragments, lattice, units, after=all_spans, config=config)
        totals[DM] += len(lattice[0])
        web.save_linear_field(linear_field_path(root))
    header = SnapshotHeader(
        box_size=config.box_size_mpc_h * 1.0e3,  # comoving ckpc/h, exactly as configured
        hubble_param=cosmology.hubble_param,
        omega_m=cosmology.omega_m,
        omega_lambda=cosmology.omega_lambda,
        omega_b=cosmology.omega_b,
        redshift=config.redshift,
        scale_factor=config.scale_factor,
        mass_table=tuple(
            float(units.msun_to_mass(config.dm_particle_mass_msun)) if ptype == DM else 0.0
            for ptype in range(6)
        ),
        num_part_total=tuple(totals.get(ptype, 0) for ptype in range(6)),
        num_files=config.snapshot_files,
    )
    write_snapshot(
        root,
        header=header,
        snapshot=config.snapshot,
        spans=all_spans,
        fragments=fragments,
        client=client,
        progress=progress,
    )

    group_rows = [row for batch_rows in rows for row in batch_rows[0]]
    subhalo_rows = [row for batch_rows in rows for row in batch_rows[1]]
    groups, subhalos = to_tng.group_catalog(group_rows, subhalo_rows, units)
    tng_format.write_catalogs(
        root,
        snap=config.snapshot,
        header=header,
        groups=groups,
        subhalos=subhalos,
        num_files=config.groupcat_files,
    )
    _write_truth(root, plan, subhalo_rows, config=config)
    dump_config(config, root / "universe.yaml")
    shutil.rmtree(fragments)
    twin = None
    if dark_root is not None:
        from darkstack.universe.dark import build_dark_twin

        twin = build_dark_twin(
            plan,
            group_rows=group_rows,
            subhalo_rows=subhalo_rows,
            hydro_root=root,
            hydro_header=header,
            dark_root=dark_root,
            client=client,
            progress=progress,
            lattice=lattice,
        )
    return UniverseSummary(
        root=root,
        n_groups=len(group_rows),
        n_subhalos=len(subhalo_rows),
        particles_by_type={ptype: totals[ptype] for ptype in PARTICLE_TYPES},
        n_snapshot_files=config.snapshot_files,
        n_groupcat_files=config.groupcat_files,
        twin=twin,
    )


def _prepare_output(root: Path, *, overwrite: bool, option: str = "--out") -> Path:
    if root.exists() and not root.is_dir():
        raise UniverseOutputError(
            f"{option} {root} is a file; expected a folder for the simulation"
        )
    existing = [output_dir(root), postprocessing_dir(output_dir(root)), root / "truth.parquet"]
    if any(path.exists() for path in existing):
        if not overwrite:
            raise UniverseOutputError(
                f"{option} {root} already holds a simulation (output/, postprocessing/ or "
                "truth.parquet); choose an empty folder or pass --overwrite"
            )
        for path in existing:
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / ".darkstack-write-test"
        probe.touch()
        probe.unlink()
    except OSError as error:
        raise UniverseOutputError(f"{option} {root} is not writable: {error.strerror}") from None
    return root.resolve()


def _batches(plan: Plan) -> list[_Batch]:
    """Consecutive groups of about ``max_particles_per_batch`` particles, with their offsets."""
    return [
        _Batch(
            span=span, plan=dataclasses.replace(plan, groups=tuple(plan.groups[i] for i in rows))
        )
        for span, rows in spans(
            [group.member_counts() for group in plan.groups],
            [group.outer_counts() for group in plan.groups],
            limit=plan.config.max_particles_per_batch,
        )
    ]


def spans(
    member_counts: Sequence[Mapping[int, int]],
    outer_counts: Sequence[Mapping[int, int]],
    *,
    limit: int,
) -> list[tuple[Span, list[int]]]:
    """Cut groups, in order, into batches of about ``limit`` particles.

    Parameters
    ----------
    member_counts, outer_counts : sequence of mapping of int to int
        Each group's particles of each type in the group and in its outer fuzz.
    limit : int
        A batch closes once it holds at least this many particles.

    Returns
    -------
    list of (Span, list of int)
        Each batch's span and the indices of its groups.
    """
    types = sorted({p for counts in (*member_counts, *outer_counts) for p in counts})
    member_cursor = dict.fromkeys(types, 0)
    outer_cursor = dict.fromkeys(types, 0)
    batches: list[tuple[Span, list[int]]] = []
    current: list[int] = []

    def close() -> None:
        members = {p: sum(member_counts[i].get(p, 0) for i in current) for p in types}
        outer = {p: sum(outer_counts[i].get(p, 0) for i in current) for p in types}
        span = Span(
            index=len(batches),
            member_start=dict(member_cursor),
            member_count=members,
            outer_start=dict(outer_cursor),
            outer_count=outer,
        )
        batches.append((span, list(current)))
        for p in types:
            member_cursor[p] += members[p]
            outer_cursor[p] += outer[p]
        current.clear()

    size = 0
    for index in range(len(member_counts)):
        current.append(index)
        size += sum(member_counts[index].values()) + sum(outer_counts[index].values())
        if size >= limit:
            close()
            size = 0
    if current:
        close()
    return batches


def write_snapshot(
    root: Path,
    *,
    header: SnapshotHeader,
    snapshot: int,
    spans: Sequence[Span],
    fragments: Path,
    client: Client | None,
    progress: bool,
) -> None:
    """Task 2 for every chunk file: assemble the fragments of ``spans`` into the snapshot."""
    member_totals = {
        ptype: sum(span.member_count.get(ptype, 0) for span in spans) for ptype in PARTICLE_TYPES
    }
    map_tasks(
        _assemble_file,
        list(range(header.num_files)),
        client=client,
        description="write snapshot chunks",
        progress=progress,
        root=root,
        header=header,
        snapshot=snapshot,
        spans=list(spans),
        member_totals=member_totals,
        fragments=fragments,
    )


def save_fragments(
    fragments: Path, batch: int, region: str, ptype: int, fields: Mapping[str, np.ndarray]
) -> None:
    """Save one batch's TNG fields of one type and region (``members`` or ``outer``)."""
    for field, values in fields.items():
        path = _fragment_path(fragments, batch, region, ptype, field)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, values)


def _fragment_path(fragments: Path, batch: int, region: str, ptype: int, field: str) -> Path:
    return fragments / f"batch{batch:06d}" / f"{region}.PartType{ptype}.{field}.npy"


def _generate_batch(
    batch: _Batch, *, fragments: Path
) -> tuple[list[dict[str, np.ndarray]], list[dict[str, np.ndarray]], list[float]]:
    """Task 1: generate a batch of groups, save particle fragments, return catalog rows and
    each group's total particle mass (Msun, members and outer fuzz)."""
    plan = batch.plan
    units = CodeUnits(
        hubble_param=plan.cosmology.hubble_param, scale_factor=plan.config.scale_factor
    )
    outputs: list[GroupOutput] = [generate_group(plan, group) for group in plan.groups]
    for region in _REGIONS:
        for ptype in PARTICLE_TYPES:
            parts = [getattr(output, region)[ptype] for output in outputs]
            merged = {
                name: np.concatenate([part[name] for part in parts])
                for name in (parts[0] if parts else {})
            }
            if not merged or len(merged["position_kpc"]) == 0:
                continue
            save_fragments(
                fragments,
                batch.span.index,
                region,
                ptype,
                to_tng.particle_fields(ptype, merged, units),
            )
    masses = [
        sum(
            len(getattr(output, region)[DM]["position_kpc"]) * plan.config.dm_particle_mass_msun
            + sum(
                float(np.sum(getattr(output, region)[p]["mass_msun"]))
                for p in PARTICLE_TYPES
                if p != DM
            )
            for region in _REGIONS
        )
        for output in outputs
    ]
    return (
        [output.group for output in outputs],
        [row for o in outputs for row in o.subhalos],
        masses,
    )


def _unbound_lattice(
    web: CosmicWeb, plan: Plan, group_masses: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Positions and velocities of the lattice particles no group claims (plan order)."""
    centres = np.array(
        [
            web.lagrangian_mpc_h.get(
                group.draw_index,
                # a tiny group has no Lagrangian draw: its patch is where it sits
                np.asarray(group.position_kpc) * (web.box_mpc_h / plan.box_size_kpc),
            )
            for group in plan.groups
        ]
    ).reshape(-1, 3)
    sites = web.unclaimed_sites(centres, np.asarray(group_masses, dtype=np.float64))
    return web.particles(sites, plan.box_size_kpc)


def _save_lattice(
    fragments: Path,
    lattice: tuple[np.ndarray, np.ndarray],
    units: CodeUnits,
    *,
    after: Sequence[Span],
    config: UniverseConfig,
) -> list[Span]:
    """Save the unbound lattice as outer-fuzz fragments after the groups' batches."""
    last = after[-1] if after else None
    outer_start = {ptype: 0 for ptype in PARTICLE_TYPES}
    if last is not None:
        outer_start = {p: last.outer_start[p] + last.outer_count[p] for p in PARTICLE_TYPES}
    member_start = {ptype: 0 for ptype in PARTICLE_TYPES}
    if last is not None:
        member_start = {p: last.member_start[p] + last.member_count[p] for p in PARTICLE_TYPES}
    positions, velocities = lattice
    new: list[Span] = []
    limit = config.max_particles_per_batch
    for lo in range(0, len(positions), limit):
        hi = min(lo + limit, len(positions))
        span = Span(
            index=len(after) + len(new),
            member_start=dict(member_start),
            member_count=dict.fromkeys(PARTICLE_TYPES, 0),
            outer_start=dict(outer_start),
            outer_count={p: (hi - lo if p == DM else 0) for p in PARTICLE_TYPES},
        )
        fields = {"position_kpc": positions[lo:hi], "velocity_kms": velocities[lo:hi]}
        save_fragments(
            fragments, span.index, "outer", DM, to_tng.particle_fields(DM, fields, units)
        )
        outer_start[DM] += hi - lo
        new.append(span)
    return new


def _assemble_file(
    file_index: int,
    *,
    root: Path,
    header: SnapshotHeader,
    snapshot: int,
    spans: list[Span],
    member_totals: dict[int, int],
    fragments: Path,
) -> Path:
    """Task 2: cut this chunk's particle ranges from the fragments and write the file."""
    id_base = np.cumsum([0, *(header.num_part_total[p] for p in PARTICLE_TYPES)])
    particles: dict[int, dict[str, np.ndarray]] = {}
    for type_rank, ptype in enumerate(PARTICLE_TYPES):
        start, stop = header.layout.file_range(file_index=file_index, ptype=ptype)
        if stop == start:
            continue
        pieces = list(_pieces(spans, ptype, start, stop, member_totals[ptype]))
        fields = [spec.name for spec in PARTICLE_FIELDS[ptype] if spec.name != "ParticleIDs"]
        columns = {
            field: np.concatenate(
                [
                    np.load(_fragment_path(fragments, b, region, ptype, field), mmap_mode="r")[
                        lo:hi
                    ]
                    for b, region, lo, hi in pieces
                ]
            )
            for field in fields
        }
        # IDs are unique across types (TNG's stars inherit gas IDs from one shared range).
        columns["ParticleIDs"] = np.arange(start, stop, dtype=np.uint64) + np.uint64(
            id_base[type_rank] + 1
        )
        particles[ptype] = columns
    path = snapshot_path(output_dir(root), snapshot, file_index)
    path.parent.mkdir(parents=True, exist_ok=True)
    tng_format.write_snapshot_file(path, header=header, file_index=file_index, particles=particles)
    return path


def _pieces(
    spans: Iterable[Span], ptype: int, start: int, stop: int, member_total: int
) -> Iterable[tuple[int, str, int, int]]:
    """(batch, region, lo, hi) slices of fragments covering global range [start, stop)."""
    for region in _REGIONS:
        for span in spans:
            if region == "members":
                first, count = span.member_start[ptype], span.member_count[ptype]
            else:
                first, count = member_total + span.outer_start[ptype], span.outer_count[ptype]
            lo, hi = max(start, first), min(stop, first + count)
            if lo < hi:
                yield span.index, region, lo - first, hi - first


def _write_truth(
    root: Path, plan: Plan, subhalo_rows: list[dict[str, np.ndarray]], *, config: UniverseConfig
) -> None:
    """``truth.parquet``: the analytic model of every subhalo (for tests and validation only)."""
    columns: dict[str, list[Any]] = {}
    subhalo_id = 0
    for group_id, group in enumerate(plan.groups):
        for subhalo in group.subhalos:
            _append_truth_row(columns, group_id, subhalo_id, group, subhalo)
            subhalo_id += 1
    if subhalo_id != len(subhalo_rows):
        raise RuntimeError("truth and catalog disagree on the number of subhalos")
    units = {name: _TRUTH_UNITS.get(name, "") for name in columns}
    metadata = {
        "config": config_to_dict(config),
        "cosmology": as_dict(plan.cosmology),
        "radii_kpc": TRUTH_RADII_KPC.tolist(),
        "description": "analytic truth of the darkstack mock universe; never read by ingest",
    }
    write_table_atomic(
        table_with_units(columns, units=units, metadata=metadata), root / "truth.parquet"
    )


_TRUTH_UNITS = {
    "position_kpc": "kpc",
    "m200c_msun": "Msun",
    "r200c_kpc": "kpc",
    "dm_mass_r200_msun": "Msun",
    "scale_radius_kpc": "kpc",
    "truncation_radius_kpc": "kpc",
    "stellar_mass_msun": "Msun",
    "initial_stellar_mass_msun": "Msun",
    "sfr_msun_yr": "Msun/yr",
    "sfh_tau_gyr": "Gyr",
    "half_mass_radius_kpc": "kpc",
    "disk_scale_length_kpc": "kpc",
    "disk_scale_height_kpc": "kpc",
    "bulge_scale_radius_kpc": "kpc",
    "hi_mass_msun": "Msun",
    "cold_gas_mass_msun": "Msun",
    "gas_disk_scale_length_kpc": "kpc",
    "gas_disk_scale_height_kpc": "kpc",
    "hot_gas_mass_msun": "Msun",
    "radii_kpc": "kpc",
    "log10_mdm_enclosed": "log10 Msun",
}


def _append_truth_row(
    columns: dict[str, list[Any]],
    group_id: int,
    subhalo_id: int,
    group: GroupPlan,
    subhalo: SubhaloPlan,
) -> None:
    galaxy = subhalo.galaxy
    dm = subhalo.dark_matter_halo()
    row = {
        "subhalo_id": subhalo_id,
        "group_id": group_id,
        "role": subhalo.role,
        "position_kpc": list(np.add(group.position_kpc, subhalo.offset_kpc)),
        "m200c_msun": subhalo.infall_mass_msun,
        "r200c_kpc": subhalo.r200_kpc,
        "dm_mass_r200_msun": galaxy.dm_mass_r200_msun,
        "concentration_dmo": subhalo.concentration_dmo,
        "concentration": subhalo.concentration,
        "alpha": subhalo.alpha,
        "beta": subhalo.beta,
        "gamma": subhalo.gamma,
        "scale_radius_kpc": dm.scale_radius_kpc,
        "truncation_radius_kpc": subhalo.truncation_radius_kpc,
        "radii_kpc": TRUTH_RADII_KPC.tolist(),
        "log10_mdm_enclosed": np.log10(dm.enclosed_mass_msun(TRUTH_RADII_KPC)).tolist(),
        **{
            field.name: getattr(galaxy, field.name)
            for field in dataclasses.fields(galaxy)
            if field.name
            not in (
                "dm_mass_r200_msun",
                "spin_axis",
                "hot_gas_core_radius_kpc",
                "hot_gas_truncation_kpc",
            )
        },
        "spin_axis": list(galaxy.spin_axis),
    }
    for name, value in row.items():
        columns.setdefault(name, []).append(value)


__all__ = ["TRUTH_RADII_KPC", "UniverseOutputError", "UniverseSummary", "build_universe"]
