"""The gravity-only twin of a mock universe: a Dark run of the same halos, like TNG100-1-Dark.

``darkstack universe --out SIM --dark-twin SIM_DARK`` writes, beside the hydro run ``SIM``, a
run ``SIM_DARK`` with the same box, cosmology and redshift and the same halos, in TNG's layout
through :mod:`darkstack.universe.tng_format` (the one writer):

- **Particles**: PartType1 only. The hydro run's whole mass (dark matter, gas, stars) is folded
  into dark-matter particles of mass ``m_DM Omega_m / (Omega_m - Omega_b)``, as TNG-Dark's
  particles weigh its hydro run's dark matter plus baryons; the particle count is that mass
  over this particle mass, rounded, and the mass table holds the total over the count (within
  1/(2N) of the nominal mass), so the twin's total mass is the hydro run's exactly.
- **Halos**: every hydro FoF group has a twin at the same place. Its M200c is the hydro
  halo's measured ``Group_M_Crit200`` mapped back through the hydro-to-DMO mass ratio of
  Velliscig et al. 2014 (:func:`log_hydro_to_dmo_mass_ratio`); its particles follow an NFW
  profile of the central's dark-matter-only concentration to that M200c inside R200c. Beyond
  R200c the halo continues as NFW out to ``halo_extent_r200`` R200c (FoF members to
  ``fof_extent_r200``, outer fuzz beyond), scaled down by one factor for the whole box where
  the hydro run's mass does not suffice; mass left over is an unbound uniform background,
  stored with the outer fuzz.
- **Subhalos**: the hydro run's satellites keep their place, velocity and folded mass (all
  their types in dark matter), NFW with their DMO concentration inside their truncation
  radius. The mock has no subhalo disruption (satellites are drawn from an evolved subhalo
  mass function, never destroyed), so every subhalo of cosmological origin has a twin; the
  baryonic clumps (``SubhaloFlag = 0``) have none and are matched to -1. Every twin position
  carries a Gaussian jitter of ``subhalo_jitter_kpc`` per axis.
- **Catalog**: Group and Subhalo fields as TNG-Dark has them (no SubhaloSFR, no SubhaloFlag:
  :data:`~darkstack.tng_layout.DARK_SUBHALO_FIELDS`), measured on the twin's particles with
  the same code as the hydro catalog; the groups keep the hydro run's order.
- **Match**: ``SIM/postprocessing/subhalo_matching_to_dark.hdf5`` maps every hydro subhalo to
  its twin, in TNG's layout.

Random streams: a twin group's plan uses ``SeedSequence(seed, spawn_key=(3, i))`` and its
particles ``(4, i)`` for the hydro group drawn ``i``-th; the background's k-th chunk
``(5, k)``. So the same seed gives the same twin, serially or on any Dask cluster.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import h5py
import numpy as np
from numpy.typing import ArrayLike, NDArray

from darkstack.config import dump_config
from darkstack.cosmology import critical_density_msun_per_kpc3
from darkstack.tasks import map_tasks
from darkstack.tng_layout import (
    DARK_SUBHALO_FIELDS,
    DM,
    SnapshotHeader,
    output_dir,
    part_type_group,
    snapshot_path,
)
from darkstack.units import CodeUnits
from darkstack.universe import tng_format, to_tng
from darkstack.universe.build import save_fragments, spans, write_snapshot
from darkstack.universe.generate import group_row, sample_shell_positions_kpc, subhalo_row
from darkstack.universe.kinematics import sample_isotropic_velocities_kms
from darkstack.universe.plan import GAS, HALO_VELOCITY_DISPERSION_KMS, STARS, GroupPlan, Plan
from darkstack.universe.profiles import DoublePowerLawHalo

if TYPE_CHECKING:
    from distributed import Client

FloatArray = NDArray[np.float64]
Fields = dict[str, np.ndarray]

#: Velliscig et al. 2014 (MNRAS 442, 2641), eq. 2 with their table 1 fit of M200c for the
#: cosmo-OWLS AGN 8.0 model (the one that reproduces observed baryon fractions):
#: log10(M_hydro/M_DMO) = A + (B - A) / (1 + exp(-(log10(M_DMO/Msun) + C) / D)).
VELLISCIG14_M200C = {"A": -0.1077, "B": 0.0, "C": -13.5715, "D": 0.2786}
_FRAGMENTS = ".darkstack-fragments"
# Tiny groups (below Subfind's resolution) spread as in the hydro run (universe.generate).
_TINY_GROUP_SIZE_KPC = 20.0
_TINY_GROUP_DISPERSION_KMS = 30.0


def log_hydro_to_dmo_mass_ratio(m_dmo_msun: ArrayLike) -> FloatArray:
    """log10(M200c_hydro / M200c_DMO) of a halo of DMO mass ``m_dmo_msun`` (Velliscig+14).

    Parameters
    ----------
    m_dmo_msun : array_like
        M200c of the halo in the gravity-only run, Msun.

    Returns
    -------
    ndarray
        The log ratio (-0.108 for galaxy halos, rising to 0 above ~1e14 Msun), eq. 2 of
        Velliscig et al. 2014 with :data:`VELLISCIG14_M200C`.
    """
    p = VELLISCIG14_M200C
    x = np.log10(np.asarray(m_dmo_msun, dtype=np.float64))
    return p["A"] + (p["B"] - p["A"]) / (1.0 + np.exp(-(x + p["C"]) / p["D"]))


def dmo_mass_msun(m_hydro_msun: ArrayLike) -> FloatArray:
    """The DMO M200c whose hydro counterpart, by :func:`log_hydro_to_dmo_mass_ratio`, is given.

    M_hydro = M_DMO 10^ratio(M_DMO) rises monotonically with M_DMO, so the inverse is read
    off a table of 1e-4 dex steps (exact to ~1e-9 dex by linear interpolation).
    """
    log_dmo = np.arange(6.0, 17.0, 1.0e-4)
    log_hydro = log_dmo + log_hydro_to_dmo_mass_ratio(10.0**log_dmo)
    return 10.0 ** np.interp(
        np.log10(np.asarray(m_hydro_msun, dtype=np.float64)), log_hydro, log_dmo
    )


@dataclass(frozen=True)
class TwinSummary:
    """What the twin build wrote.

    Attributes
    ----------
    root : Path
        The Dark run's root ``SIM_DARK``.
    n_groups, n_subhalos, n_particles : int
        Catalog rows and PartType1 particles.
    particle_mass_msun : float
        Mass of one particle.
    n_background : int
        Particles of the unbound background.
    shell_scale : float
        Factor of the halos' NFW continuation beyond R200c (1: complete).
    """

    root: Path
    n_groups: int
    n_subhalos: int
    n_particles: int
    particle_mass_msun: float
    n_background: int
    shell_scale: float


@dataclass(frozen=True)
class _Satellite:
    hydro_rank: int
    parent_rank: int
    offset_kpc: tuple[float, float, float]
    velocity_kms: tuple[float, float, float]
    n: int
    r200_kpc: float
    concentration: float
    truncation_kpc: float


@dataclass(frozen=True)
class _TwinGroup:
    """One twin FoF group before its particles exist (positions relative to ``centre_kpc``)."""

    index: int
    draw_index: int
    centre_kpc: tuple[float, float, float]
    velocity_kms: tuple[float, float, float]
    m200_msun: float
    r200_kpc: float
    concentration: float
    n_core: int
    satellites: tuple[_Satellite, ...]
    n_tiny: int
    shell_nominal: float
    outer_nominal: float
    n_shell: int = 0
    n_fuzz: int = 0
    n_outer: int = 0

    def member_counts(self) -> dict[int, int]:
        bound = self.n_core + self.n_shell if self.r200_kpc > 0 else 0
        return {DM: bound + sum(s.n for s in self.satellites) + self.n_fuzz + self.n_tiny}

    def outer_counts(self) -> dict[int, int]:
        return {DM: self.n_outer}


@dataclass(frozen=True)
class _Background:
    """A chunk of the unbound uniform background (outer fuzz of no group)."""

    chunk: int
    n: int
    #: First of the hydro run's lattice particles this chunk copies; None draws new ones.
    lattice_start: int | None = None

    def member_counts(self) -> dict[int, int]:
        return {DM: 0}

    def outer_counts(self) -> dict[int, int]:
        return {DM: self.n}


@dataclass(frozen=True)
class _Context:
    """What every generation task needs (small: it ships with each task)."""

    seed: int
    box_kpc: float
    particle_mass_msun: float
    rho_crit_msun_per_kpc3: float
    fof_extent_r200: float
    halo_extent_r200: float
    hubble_param: float
    scale_factor: float
    #: Folder of the hydro run's unbound lattice particles (``.npy``), when it has a web.
    lattice: Path | None = None


def build_dark_twin(
    plan: Plan,
    *,
    group_rows: Sequence[dict[str, np.ndarray]],
    subhalo_rows: Sequence[dict[str, np.ndarray]],
    hydro_root: Path,
    hydro_header: SnapshotHeader,
    dark_root: Path,
    client: Client | None = None,
    progress: bool = True,
    lattice: tuple[np.ndarray, np.ndarray] | None = None,
) -> TwinSummary:
    """Write the gravity-only twin of a hydro run just written (see the module docstring).

    Parameters
    ----------
    plan : Plan
        The hydro run's plan.
    group_rows, subhalo_rows : sequence of dict
        The hydro run's measured catalog rows (canonical units), in catalog order.
    hydro_root : Path
        The hydro run's root ``SIM``; its snapshot is read for the total mass and the match
        file is written into its ``postprocessing/``.
    hydro_header : SnapshotHeader
        The hydro snapshot's header (box, cosmology, redshift, chunking).
    dark_root : Path
        An empty (prepared) root ``SIM_DARK``.
    client : distributed.Client, optional
        Dask client for the generation and writing tasks.
    progress : bool
        Show progress bars.
    lattice : (positions_kpc, velocities_kms), optional
        The hydro run's unbound lattice particles (its cosmic web, ``config.web``): the twin
        gets the same ones, and any mass its halos leave over follows them too.

    Returns
    -------
    TwinSummary
    """
    config = plan.config
    units = CodeUnits(hubble_param=hydro_header.hubble_param, scale_factor=config.scale_factor)
    total_msun = hydro_total_mass_msun(output_dir(hydro_root), config.snapshot, hydro_header)
    omega_m, omega_b = plan.cosmology.omega_m, plan.cosmology.omega_b
    nominal_mass = config.dm_particle_mass_msun * omega_m / (omega_m - omega_b)
    if lattice is not None:  # a lattice particle already stands for all the matter of its cell
        nominal_mass = config.dm_particle_mass_msun
    n_lattice = 0 if lattice is None else len(lattice[0])
    n_total = round(total_msun / nominal_mass)
    particle_mass = total_msun / n_total
    context = _Context(
        seed=config.seed,
        box_kpc=plan.box_size_kpc,
        particle_mass_msun=particle_mass,
        rho_crit_msun_per_kpc3=critical_density_msun_per_kpc3(config.redshift, plan.cosmology),
        fof_extent_r200=config.fof_extent_r200,
        halo_extent_r200=config.halo_extent_r200,
        hubble_param=hydro_header.hubble_param,
        scale_factor=config.scale_factor,
    )
    first_sub = np.concatenate([[0], np.cumsum([int(r["n_subhalos"]) for r in group_rows])])
    drafts = [
        _draft(
            plan,
            index,
            group,
            group_rows[index],
            subhalo_rows[first_sub[index] : first_sub[index + 1]],
            context,
        )
        for index, group in enumerate(plan.groups)
    ]
    groups, n_background, scale = _fill(
        drafts,
        n_total - n_lattice,
        seed=config.seed,
        fuzz_probability=config.inner_fuzz_probability,
    )
    items: list[_TwinGroup | _Background] = [*groups]
    limit = config.max_particles_per_batch
    lattice_path = None
    if lattice is not None:
        lattice_path = dark_root / _FRAGMENTS / "lattice"
        lattice_path.mkdir(parents=True, exist_ok=True)
        np.save(lattice_path / "position_kpc.npy", lattice[0])
        np.save(lattice_path / "velocity_kms.npy", lattice[1])
        items += [
            _Background(chunk=-1 - k, n=min(limit, n_lattice - start), lattice_start=start)
            for k, start in enumerate(range(0, n_lattice, limit))
        ]
    context = dataclasses.replace(context, lattice=lattice_path)
    items += [
        _Background(chunk=k, n=min(limit, n_background - start))
        for k, start in enumerate(range(0, n_background, limit))
    ]

    batches = spans(
        [item.member_counts() for item in items],
        [item.outer_counts() for item in items],
        limit=limit,
    )
    fragments = dark_root / _FRAGMENTS
    rows = map_tasks(
        _generate_batch,
        [(span.index, [items[i] for i in members]) for span, members in batches],
        client=client,
        description="generate the Dark twin",
        progress=progress,
        context=context,
        fragments=fragments,
    )
    # The hydro run's header (box, cosmology, redshift, chunking) with PartType1 alone.
    header = dataclasses.replace(
        hydro_header,
        mass_table=tuple(
            float(units.msun_to_mass(particle_mass)) if ptype == DM else 0.0 for ptype in range(6)
        ),
        num_part_total=tuple(n_total if ptype == DM else 0 for ptype in range(6)),
    )
    write_snapshot(
        dark_root,
        header=header,
        snapshot=config.snapshot,
        spans=[span for span, _ in batches],
        fragments=fragments,
        client=client,
        progress=progress,
    )
    twin_groups = [row for batch_rows in rows for row in batch_rows[0]]
    twin_subhalos = [row for batch_rows in rows for row in batch_rows[1]]
    catalog_groups, catalog_subhalos = to_tng.group_catalog(twin_groups, twin_subhalos, units)
    tng_format.write_catalogs(
        dark_root,
        snap=config.snapshot,
        header=header,
        groups=catalog_groups,
        subhalos=catalog_subhalos,
        num_files=config.groupcat_files,
        subhalo_fields=DARK_SUBHALO_FIELDS,
    )
    tng_format.write_subhalo_matching(
        hydro_root,
        snap=config.snapshot,
        dark_index=_match(plan, groups),
        n_dark_subhalos=len(twin_subhalos),
    )
    dump_config(config, dark_root / "universe.yaml")
    shutil.rmtree(fragments)
    return TwinSummary(
        root=dark_root,
        n_groups=len(twin_groups),
        n_subhalos=len(twin_subhalos),
        n_particles=n_total,
        particle_mass_msun=particle_mass,
        n_background=n_background,
        shell_scale=scale,
    )


def hydro_total_mass_msun(base_path: Path, snapshot: int, header: SnapshotHeader) -> float:
    """Total mass (Msun) of every particle of a snapshot: mass-table types and ``Masses``."""
    units = CodeUnits(hubble_param=header.hubble_param, scale_factor=header.scale_factor)
    total = 0.0
    for index in range(header.num_files):
        with h5py.File(snapshot_path(base_path, snapshot, index), "r") as file:
            counts = file["Header"].attrs["NumPart_ThisFile"]
            for ptype, count in enumerate(counts):
                if not count:
                    continue
                if header.mass_table[ptype] > 0:
                    total += int(count) * header.mass_table[ptype]
                else:
                    masses = file[f"{part_type_group(ptype)}/Masses"][()]
                    total += float(masses.sum(dtype=np.float64))
    return float(units.mass_to_msun(total))


def _draft(
    plan: Plan,
    index: int,
    group: GroupPlan,
    row: dict[str, np.ndarray],
    subhalos: Sequence[dict[str, np.ndarray]],
    context: _Context,
) -> _TwinGroup:
    """A twin group with its fixed particle counts; the shells beyond R200c come later."""
    config = plan.config
    rng = np.random.default_rng(
        np.random.SeedSequence(config.seed, spawn_key=(3, group.draw_index))
    )
    mass = context.particle_mass_msun
    jitter = config.dark_twin.subhalo_jitter_kpc
    centre = np.mod(np.asarray(group.position_kpc) + rng.normal(0.0, jitter, 3), context.box_kpc)
    placed = _TwinGroup(
        index=index,
        draw_index=group.draw_index,
        centre_kpc=_as_tuple(centre),
        velocity_kms=group.velocity_kms,
        m200_msun=0.0,
        r200_kpc=0.0,
        concentration=1.0,
        n_core=0,
        satellites=(),
        n_tiny=0,
        shell_nominal=0.0,
        outer_nominal=0.0,
    )
    if not group.subhalos:
        folded = float(np.sum(row["mass_type_msun"]))
        return dataclasses.replace(placed, n_tiny=max(1, round(folded / mass)))
    m_hydro = float(row["m_crit200_msun"])
    if m_hydro <= 0.0:  # never reached 200 rho_crit: the central's own mass, folded
        m_dmo = float(np.sum(subhalos[0]["mass_type_msun"]))
    elif config.dark_twin.halo_mass_relation == "velliscig14":
        m_dmo = float(dmo_mass_msun(m_hydro))
    else:
        m_dmo = m_hydro
    r200 = float(np.cbrt(3.0 * m_dmo / (4.0 * np.pi * 200.0 * context.rho_crit_msun_per_kpc3)))
    central = group.subhalos[0]
    ranks = {}
    satellites: list[_Satellite] = []
    for rank, (plan_sub, sub_row) in enumerate(zip(group.subhalos, subhalos, strict=True)):
        if rank == 0 or plan_sub.flag == 0:  # baryonic clumps have no dark twin
            continue
        ranks[rank] = len(satellites) + 1
        satellites.append(
            _Satellite(
                hydro_rank=rank,
                parent_rank=ranks.get(plan_sub.parent_rank, 0),
                offset_kpc=_as_tuple(np.asarray(plan_sub.offset_kpc) + rng.normal(0.0, jitter, 3)),
                velocity_kms=plan_sub.velocity_kms,
                n=max(1, round(float(np.sum(sub_row["mass_type_msun"])) / mass)),
                r200_kpc=plan_sub.r200_kpc,
                concentration=plan_sub.concentration_dmo,
                truncation_kpc=plan_sub.truncation_radius_kpc,
            )
        )
    inside = sum(s.n for s in satellites if np.linalg.norm(s.offset_kpc) < r200)
    n200 = round(m_dmo / mass)
    host = _host_profile(m_dmo, r200, central.concentration_dmo, context)
    m_r200, m_fof, m_max = host.enclosed_mass_msun(
        np.array([1.0, context.fof_extent_r200, context.halo_extent_r200]) * r200
    )
    return dataclasses.replace(
        placed,
        m200_msun=m_dmo,
        r200_kpc=r200,
        concentration=central.concentration_dmo,
        n_core=max(n200 - inside, 1),
        satellites=tuple(satellites),
        shell_nominal=n200 * (m_fof / m_r200 - 1.0),
        outer_nominal=n200 * (m_max - m_fof) / m_r200,
    )


def _fill(
    drafts: Sequence[_TwinGroup], n_total: int, *, seed: int, fuzz_probability: float
) -> tuple[list[_TwinGroup], int, float]:
    """Give the halos their shells beyond R200c from the particles the hydro mass leaves."""
    fixed = sum(d.member_counts()[DM] for d in drafts)
    nominal = sum(d.shell_nominal + d.outer_nominal for d in drafts)
    if fixed > n_total:
        raise RuntimeError(
            f"the twin's halos need {fixed} particles inside R200c but the hydro run's mass "
            f"makes {n_total}: the hydro halos hold too little mass beyond R200c"
        )
    scale = min(1.0, (n_total - fixed) / nominal) if nominal > 0 else 1.0
    groups = []
    for draft in drafts:
        if draft.r200_kpc <= 0:
            groups.append(draft)
            continue
        rng = np.random.default_rng(
            np.random.SeedSequence(seed, spawn_key=(3, draft.draw_index, 1))
        )
        shell = int(np.floor(scale * draft.shell_nominal))
        # As in the hydro run, a share of the FoF shell beyond R200c is unbound inner fuzz.
        fuzz = int(rng.binomial(shell, fuzz_probability))
        groups.append(
            dataclasses.replace(
                draft,
                n_shell=shell - fuzz,
                n_fuzz=fuzz,
                n_outer=int(np.floor(scale * draft.outer_nominal)),
            )
        )
    used = sum(g.member_counts()[DM] + g.outer_counts()[DM] for g in groups)
    return groups, n_total - used, scale


def _host_profile(
    m200_msun: float, r200_kpc: float, concentration: float, context: _Context
) -> DoublePowerLawHalo:
    """NFW of the twin's host halo, to ``halo_extent_r200`` R200c."""
    return DoublePowerLawHalo.from_mass(
        mass_msun=m200_msun,
        radius_kpc=r200_kpc,
        concentration=concentration,
        alpha=1.0,
        beta=3.0,
        gamma=1.0,
        truncation_radius_kpc=context.halo_extent_r200 * r200_kpc,
    )


def _generate_batch(
    batch: tuple[int, list[_TwinGroup | _Background]],
    *,
    context: _Context,
    fragments: Path,
) -> tuple[list[dict[str, np.ndarray]], list[dict[str, np.ndarray]]]:
    """Generate a batch of twin groups (and background), save fragments, return catalog rows."""
    index, items = batch
    units = CodeUnits(hubble_param=context.hubble_param, scale_factor=context.scale_factor)
    members: list[Fields] = []
    outer: list[Fields] = []
    group_rows, subhalo_rows = [], []
    for item in items:
        if isinstance(item, _Background):
            outer.append(_background(item, context))
            continue
        group_members, group_outer, row, sub_rows = _generate_group(item, context)
        members.append(group_members)
        outer.append(group_outer)
        group_rows.append(row)
        subhalo_rows.extend(sub_rows)
    for region, parts in (("members", members), ("outer", outer)):
        if not parts:  # a batch of lattice chunks has no members
            continue
        merged = {name: np.concatenate([part[name] for part in parts]) for name in _KINEMATICS}
        if len(merged["position_kpc"]):
            save_fragments(fragments, index, region, DM, to_tng.particle_fields(DM, merged, units))
    return group_rows, subhalo_rows


_KINEMATICS = ("position_kpc", "velocity_kms")


def _generate_group(
    group: _TwinGroup, context: _Context
) -> tuple[Fields, Fields, dict[str, np.ndarray], list[dict[str, np.ndarray]]]:
    """A twin group's members (central, satellites, inner fuzz), outer fuzz and catalog rows."""
    rng = np.random.default_rng(
        np.random.SeedSequence(context.seed, spawn_key=(4, group.draw_index))
    )
    pieces: list[Fields] = []  # one per subhalo, in catalog order
    offsets: list[FloatArray] = []
    fuzz: Fields = _fields(np.empty((0, 3)), np.empty((0, 3)))
    outer: Fields = _fields(np.empty((0, 3)), np.empty((0, 3)))
    if group.r200_kpc > 0:
        host = _host_profile(group.m200_msun, group.r200_kpc, group.concentration, context)
        r200, r_fof = group.r200_kpc, context.fof_extent_r200 * group.r200_kpc
        core = sample_shell_positions_kpc(host, rng, group.n_core, r_min_kpc=0.0, r_max_kpc=r200)
        shell = sample_shell_positions_kpc(
            host, rng, group.n_shell + group.n_fuzz, r_min_kpc=r200, r_max_kpc=r_fof
        )
        beyond = sample_shell_positions_kpc(
            host, rng, group.n_outer, r_min_kpc=r_fof, r_max_kpc=host.truncation_radius_kpc
        )
        positions = np.concatenate([core, shell, beyond])
        velocities = sample_isotropic_velocities_kms(
            rng,
            positions_kpc=positions,
            tracer=host,
            components=[host],
            r_max_kpc=host.truncation_radius_kpc,
        )
        bound = group.n_core + group.n_shell
        pieces.append(_fields(positions[:bound], velocities[:bound]))
        offsets.append(np.zeros(3))
        stop = bound + group.n_fuzz
        fuzz = _fields(positions[bound:stop], velocities[bound:stop])
        outer = _fields(positions[stop:], velocities[stop:])
    for satellite in group.satellites:
        profile = DoublePowerLawHalo.from_mass(
            mass_msun=satellite.n * context.particle_mass_msun,
            radius_kpc=satellite.r200_kpc,
            concentration=satellite.concentration,
            alpha=1.0,
            beta=3.0,
            gamma=1.0,
            truncation_radius_kpc=satellite.truncation_kpc,
        )
        positions = sample_shell_positions_kpc(
            profile, rng, satellite.n, r_min_kpc=0.0, r_max_kpc=satellite.truncation_kpc
        )
        velocities = sample_isotropic_velocities_kms(
            rng,
            positions_kpc=positions,
            tracer=profile,
            components=[profile],
            r_max_kpc=satellite.truncation_kpc,
        )
        offset = np.asarray(satellite.offset_kpc)
        pieces.append(_fields(positions + offset, velocities + np.asarray(satellite.velocity_kms)))
        offsets.append(offset)
    if group.n_tiny:
        fuzz = _fields(
            rng.normal(0.0, _TINY_GROUP_SIZE_KPC, (group.n_tiny, 3)),
            rng.normal(0.0, _TINY_GROUP_DISPERSION_KMS, (group.n_tiny, 3)),
        )
    centre = np.asarray(group.centre_kpc)
    bulk = np.asarray(group.velocity_kms)
    for fields in (*pieces, fuzz, outer):
        fields["position_kpc"] = np.mod(fields["position_kpc"] + centre, context.box_kpc)
        fields["velocity_kms"] = fields["velocity_kms"] + bulk
    parents = [0] * len(offsets[: len(offsets) - len(group.satellites)])
    parents += [s.parent_rank for s in group.satellites]
    subhalo_rows = [
        subhalo_row(
            _with_empty_baryons(piece),
            centre=np.mod(centre + offset, context.box_kpc),
            box_kpc=context.box_kpc,
            dm_mass_msun=context.particle_mass_msun,
            flag=1,
            parent_rank=parent,
            rank=rank,
        )
        for rank, (piece, offset, parent) in enumerate(zip(pieces, offsets, parents, strict=True))
    ]
    members = {
        name: np.concatenate([piece[name] for piece in (*pieces, fuzz)]) for name in _KINEMATICS
    }
    row = group_row(
        _with_empty_baryons(members),
        centre=centre,
        box_kpc=context.box_kpc,
        dm_mass_msun=context.particle_mass_msun,
        rho_crit_msun_per_kpc3=context.rho_crit_msun_per_kpc3,
        n_subhalos=len(pieces),
    )
    return members, outer, row, subhalo_rows


def _background(chunk: _Background, context: _Context) -> Fields:
    """Unbound particles: the hydro run's lattice when it has a web, else uniform.

    Mass the twin's halos leave over follows the lattice too (copies of random lattice
    particles, offset by about half a lattice cell); without a web it is spread uniformly,
    moving like the halos.
    """
    if context.lattice is not None:
        positions = np.load(context.lattice / "position_kpc.npy", mmap_mode="r")
        velocities = np.load(context.lattice / "velocity_kms.npy", mmap_mode="r")
        if chunk.lattice_start is not None:
            stop = chunk.lattice_start + chunk.n
            return _fields(
                np.array(positions[chunk.lattice_start : stop]),
                np.array(velocities[chunk.lattice_start : stop]),
            )
        rng = np.random.default_rng(
            np.random.SeedSequence(context.seed, spawn_key=(5, chunk.chunk))
        )
        picks = np.sort(rng.integers(0, len(positions), chunk.n))
        cell_kpc = context.box_kpc / np.cbrt(len(positions))
        offsets = rng.uniform(-0.5 * cell_kpc, 0.5 * cell_kpc, (chunk.n, 3))
        return _fields(
            np.mod(positions[picks] + offsets, context.box_kpc), np.array(velocities[picks])
        )
    rng = np.random.default_rng(np.random.SeedSequence(context.seed, spawn_key=(5, chunk.chunk)))
    return _fields(
        rng.uniform(0.0, context.box_kpc, (chunk.n, 3)),
        rng.normal(0.0, HALO_VELOCITY_DISPERSION_KMS, (chunk.n, 3)),
    )


def _fields(positions_kpc: FloatArray, velocities_kms: FloatArray) -> Fields:
    return {"position_kpc": positions_kpc, "velocity_kms": velocities_kms}


def _with_empty_baryons(dm: Fields) -> dict[int, Fields]:
    """The per-type fields the catalog measurements take, with no gas and no stars."""
    empty = {
        "position_kpc": np.empty((0, 3)),
        "velocity_kms": np.empty((0, 3)),
        "mass_msun": np.empty(0),
        "sfr_msun_yr": np.empty(0),
    }
    return {GAS: empty, DM: dm, STARS: empty}


def _match(plan: Plan, groups: Sequence[_TwinGroup]) -> NDArray[np.int64]:
    """For every hydro subhalo, the index of its twin in the Dark catalog, -1 for none."""
    dark_index: list[int] = []
    first = 0
    for group_plan, twin in zip(plan.groups, groups, strict=True):
        twin_rank = {0: 0} | {s.hydro_rank: k + 1 for k, s in enumerate(twin.satellites)}
        n_twin = (1 if twin.r200_kpc > 0 else 0) + len(twin.satellites)
        dark_index += [
            first + twin_rank[rank] if rank in twin_rank else -1
            for rank in range(len(group_plan.subhalos))
        ]
        first += n_twin
    return np.asarray(dark_index, dtype=np.int64)


def _as_tuple(vector: FloatArray) -> tuple[float, float, float]:
    return (float(vector[0]), float(vector[1]), float(vector[2]))


__all__ = [
    "VELLISCIG14_M200C",
    "TwinSummary",
    "build_dark_twin",
    "dmo_mass_msun",
    "hydro_total_mass_msun",
    "log_hydro_to_dmo_mass_ratio",
]
