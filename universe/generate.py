"""Turn one group's plan into particles and its group-catalog rows.

Everything here is in darkstack's canonical physical units (kpc, km/s, Msun, yr) and box
coordinates; :mod:`darkstack.universe.to_tng` converts to TNG code units at write time. A group
is generated from its own random stream, so any subset of groups can be generated on any worker
in any order and the bytes do not change.

Particle order inside a group is TNG's: subhalo by subhalo (central first), then the group's
inner fuzz. The outer fuzz (particles around the group that belong to no group) is returned
separately because TNG stores it after all groups.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from darkstack import measure
from darkstack.constants import (
    BOLTZMANN_ERG_PER_K,
    KMS_CM_S,
    KPC_CM,
    PROTON_MASS_G,
    YEAR_S,
    Z_SUN,
)
from darkstack.cosmology import (
    cosmic_age_gyr,
    critical_density_msun_per_kpc3,
    scale_factor_at_age,
)
from darkstack.units import internal_energy_kms2
from darkstack.universe import kinematics, relations
from darkstack.universe.galaxy import (
    COLD_GAS_ELECTRON_ABUNDANCE,
    COLD_GAS_NEUTRAL_FRACTION,
    COLD_GAS_TEMPERATURE_K,
    HOT_GAS_ELECTRON_ABUNDANCE,
    HOT_GAS_METALLICITY_ZSUN,
    HOT_GAS_NEUTRAL_FRACTION,
    GalaxyComponents,
    galaxy_components,
)
from darkstack.universe.plan import DM, GAS, PARTICLE_TYPES, STARS, GroupPlan, Plan, SubhaloPlan
from darkstack.universe.profiles import MassComponent

FloatArray = NDArray[np.float64]
Fields = dict[str, np.ndarray]

#: Molecular gas depletion time of nearby star-forming disks, M_H2 / SFR ~ 2 Gyr (Bigiel et al.
#: 2008, AJ 136, 2846; Leroy et al. 2008, AJ 136, 2782): the star-forming gas holds SFR x this.
DEPLETION_TIME_GYR = 2.0
#: Velocity dispersion of the cold disk gas (HI linewidths, e.g. Tamburro et al. 2009).
COLD_GAS_DISPERSION_KMS = 8.0
#: Stellar-disk dispersion as a fraction of the circular velocity (a warm thin disk).
STELLAR_DISK_DISPERSION_FRACTION = 0.15
#: Turbulent velocity of the hot halo as a fraction of V200 (hydrostatic, weakly turbulent).
HOT_GAS_TURBULENCE_FRACTION = 0.1
#: Mean molecular weight of fully ionised primordial gas, for the virial temperature.
IONISED_MEAN_MOLECULAR_WEIGHT = 0.59
#: Radii below the gravitational softening of TNG100 (0.74 kpc) do not define Vmax.
VMAX_MIN_RADIUS_KPC = 0.74
#: Stellar metallicity falls with age (a simple age-metallicity relation), dex per Gyr.
STELLAR_METALLICITY_AGE_GRADIENT_DEX_PER_GYR = 0.04

_GAS_FIELDS = (
    "position_kpc",
    "velocity_kms",
    "mass_msun",
    "density_msun_per_kpc3",
    "internal_energy_kms2",
    "electron_abundance",
    "neutral_hydrogen_abundance",
    "sfr_msun_yr",
    "metallicity",
)
_DM_FIELDS = ("position_kpc", "velocity_kms")
_STAR_FIELDS = (
    "position_kpc",
    "velocity_kms",
    "mass_msun",
    "initial_mass_msun",
    "formation_scale_factor",
    "metallicity",
)
#: Canonical fields of each particle type, in order.
CANONICAL_FIELDS: dict[int, tuple[str, ...]] = {
    GAS: _GAS_FIELDS,
    DM: _DM_FIELDS,
    STARS: _STAR_FIELDS,
}


@dataclass
class GroupOutput:
    """One group's particles (members in TNG order, outer fuzz apart) and catalog rows."""

    members: dict[int, Fields]
    outer: dict[int, Fields]
    group: dict[str, np.ndarray]
    subhalos: list[dict[str, np.ndarray]] = field(default_factory=list)


class _Buffer:
    """Collects particle arrays of each type in order and concatenates them once."""

    def __init__(self) -> None:
        self._parts: dict[int, list[Fields]] = {ptype: [] for ptype in PARTICLE_TYPES}

    def add(self, ptype: int, fields: Fields) -> None:
        self._parts[ptype].append(fields)

    def fields(self) -> dict[int, Fields]:
        return {ptype: _concatenate(ptype, parts) for ptype, parts in self._parts.items()}


def _concatenate(ptype: int, parts: Sequence[Fields]) -> Fields:
    names = CANONICAL_FIELDS[ptype]
    if not parts:
        return {
            name: np.empty((0, 3) if name.endswith(("_kpc", "_kms")) else (0,)) for name in names
        }
    return {name: np.concatenate([part[name] for part in parts]) for name in names}


def generate_group(plan: Plan, group: GroupPlan) -> GroupOutput:
    """Particles and catalog rows of one group.

    Parameters
    ----------
    plan : Plan
        The universe's plan (configuration, cosmology, box).
    group : GroupPlan
        The group to generate.

    Returns
    -------
    GroupOutput
        Members and outer fuzz per particle type, in box coordinates (kpc, wrapped into the
        periodic box) and peculiar km/s, plus the group's and its subhalos' catalog rows.
    """
    rng = np.random.default_rng(
        np.random.SeedSequence(plan.config.seed, spawn_key=(2, group.draw_index))
    )
    centre = np.asarray(group.position_kpc)
    bulk = np.asarray(group.velocity_kms)
    members, fuzz, outer = _Buffer(), _Buffer(), _Buffer()
    member_counts_by_subhalo: list[dict[int, int]] = []
    if not group.subhalos:
        positions = rng.normal(0.0, 20.0, size=(group.n_tiny_dm, 3))
        fuzz.add(
            DM, {"position_kpc": positions, "velocity_kms": rng.normal(0.0, 30.0, positions.shape)}
        )
    for subhalo in group.subhalos:
        own = _Buffer()
        _generate_subhalo(rng, plan, group, subhalo, own=own, fuzz=fuzz, outer=outer)
        own_fields = own.fields()
        member_counts_by_subhalo.append(
            {ptype: len(own_fields[ptype]["position_kpc"]) for ptype in PARTICLE_TYPES}
        )
        for ptype in PARTICLE_TYPES:
            members.add(ptype, own_fields[ptype])
    for ptype, fields in fuzz.fields().items():
        members.add(ptype, fields)

    member_fields = members.fields()
    outer_fields = outer.fields()
    for fields in (*member_fields.values(), *outer_fields.values()):
        fields["velocity_kms"] = fields["velocity_kms"] + bulk
        fields["position_kpc"] = np.mod(fields["position_kpc"] + centre, plan.box_size_kpc)

    dm_mass = plan.config.dm_particle_mass_msun
    subhalo_rows = []
    start = dict.fromkeys(PARTICLE_TYPES, 0)
    for rank, (subhalo, counts) in enumerate(
        zip(group.subhalos, member_counts_by_subhalo, strict=True)
    ):
        selection = {
            ptype: _slice_fields(member_fields[ptype], start[ptype], start[ptype] + counts[ptype])
            for ptype in PARTICLE_TYPES
        }
        for ptype in PARTICLE_TYPES:
            start[ptype] += counts[ptype]
        subhalo_rows.append(
            subhalo_row(
                selection,
                centre=np.mod(centre + np.asarray(subhalo.offset_kpc), plan.box_size_kpc),
                box_kpc=plan.box_size_kpc,
                dm_mass_msun=dm_mass,
                flag=subhalo.flag,
                parent_rank=subhalo.parent_rank,
                rank=rank,
            )
        )
    measured = group_row(
        member_fields,
        centre=centre,
        box_kpc=plan.box_size_kpc,
        dm_mass_msun=dm_mass,
        rho_crit_msun_per_kpc3=critical_density_msun_per_kpc3(plan.config.redshift, plan.cosmology),
        n_subhalos=len(group.subhalos),
    )
    return GroupOutput(
        members=member_fields, outer=outer_fields, group=measured, subhalos=subhalo_rows
    )


def _slice_fields(fields: Fields, start: int, stop: int) -> Fields:
    return {name: values[start:stop] for name, values in fields.items()}


def _generate_subhalo(
    rng: np.random.Generator,
    plan: Plan,
    group: GroupPlan,
    subhalo: SubhaloPlan,
    *,
    own: _Buffer,
    fuzz: _Buffer,
    outer: _Buffer,
) -> None:
    """Append a subhalo's particles (relative to the group centre and bulk velocity)."""
    config = plan.config
    galaxy = subhalo.galaxy
    parts = galaxy_components(galaxy)
    dm = subhalo.dark_matter_halo()
    potential: list[MassComponent] = [dm, *parts.present()]
    rotation = _rotation_to(np.asarray(galaxy.spin_axis))
    offset = np.asarray(subhalo.offset_kpc)
    velocity = np.asarray(subhalo.velocity_kms)

    def place(fields: Fields, *, rotate: bool) -> Fields:
        # Disks are generated in the galaxy frame (disk in x-y); spheres need no rotation.
        if rotate:
            fields["position_kpc"] = fields["position_kpc"] @ rotation.T
            fields["velocity_kms"] = fields["velocity_kms"] @ rotation.T
        fields["position_kpc"] = fields["position_kpc"] + offset
        fields["velocity_kms"] = fields["velocity_kms"] + velocity
        return fields

    if subhalo.role == "central":
        edges = (group.r200c_kpc, config.fof_extent_r200 * group.r200c_kpc)
    else:  # a satellite is bound out to its truncation: one shell, no fuzz
        edges = (subhalo.truncation_radius_kpc, subhalo.truncation_radius_kpc)
    dm_pieces = _radial_pieces(
        rng,
        dm,
        counts=(subhalo.n_dm_core, subhalo.n_dm_shell, subhalo.n_dm_fuzz, subhalo.n_dm_outer),
        edges_kpc=(*edges, subhalo.truncation_radius_kpc),
    )
    dm_velocities = kinematics.sample_isotropic_velocities_kms(
        rng,
        positions_kpc=np.concatenate(dm_pieces),
        tracer=dm,
        components=potential,
        r_max_kpc=subhalo.truncation_radius_kpc,
    )
    for target, positions, velocities in zip(
        (own, fuzz, outer), dm_pieces, _split_like(dm_velocities, dm_pieces), strict=True
    ):
        target.add(DM, place({"position_kpc": positions, "velocity_kms": velocities}, rotate=False))

    cold = _cold_gas(rng, parts, potential, galaxy.sfr_msun_yr, subhalo)
    own.add(GAS, place(cold, rotate=True))
    if parts.hot_gas is not None:
        hot_pieces = _radial_pieces(
            rng,
            parts.hot_gas,
            counts=(
                subhalo.n_hot_core,
                subhalo.n_hot_shell,
                subhalo.n_hot_fuzz,
                subhalo.n_hot_outer,
            ),
            edges_kpc=(*edges, parts.hot_gas.truncation_radius_kpc),
        )
        # Cells share the halo's mass equally (the plan counted them at the baryon mass).
        cell_mass = parts.hot_gas.total_mass_msun / max(sum(len(p) for p in hot_pieces), 1)
        for target, positions in zip((own, fuzz, outer), hot_pieces, strict=True):
            cells = _hot_gas(rng, parts.hot_gas, positions, group, cell_mass_msun=cell_mass)
            target.add(GAS, place(cells, rotate=False))
    own.add(STARS, place(_stars(rng, plan, parts, potential, subhalo), rotate=True))


def _radial_pieces(
    rng: np.random.Generator,
    tracer: MassComponent,
    *,
    counts: tuple[int, int, int, int],
    edges_kpc: tuple[float, float, float],
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Positions bound to the subhalo, in the inner fuzz and in the outer fuzz.

    ``counts`` are (inside the first edge, bound shell, fuzz shell, beyond the second edge);
    the bound and fuzz particles of the shell between the edges are drawn together.
    """
    n_core, n_shell, n_fuzz, n_outer = counts
    r_inner, r_edge, r_max = edges_kpc
    core = sample_shell_positions_kpc(tracer, rng, n_core, r_min_kpc=0.0, r_max_kpc=r_inner)
    shell = sample_shell_positions_kpc(
        tracer, rng, n_shell + n_fuzz, r_min_kpc=r_inner, r_max_kpc=r_edge
    )
    outer = sample_shell_positions_kpc(tracer, rng, n_outer, r_min_kpc=r_edge, r_max_kpc=r_max)
    return np.concatenate([core, shell[:n_shell]]), shell[n_shell:], outer


def _split_like(values: FloatArray, pieces: Sequence[FloatArray]) -> list[FloatArray]:
    return np.split(values, np.cumsum([len(piece) for piece in pieces])[:-1])


def sample_shell_positions_kpc(
    component: MassComponent,
    rng: np.random.Generator,
    n: int,
    *,
    r_min_kpc: float,
    r_max_kpc: float,
) -> FloatArray:
    """Positions of a spherical component restricted to a shell, by inverse CDF in radius.

    The counts of each shell are fixed by the plan (they decide TNG's file offsets), so shells
    are sampled directly instead of drawing the whole profile and splitting by radius.
    """
    if n == 0:
        return np.empty((0, 3))
    inner = max(r_min_kpc, 1.0e-5 * r_max_kpc)
    grid = np.geomspace(inner, r_max_kpc, 2048)
    if r_min_kpc == 0.0:
        grid = np.concatenate([[0.0], grid])
    cumulative = np.maximum.accumulate(component.enclosed_mass_msun(grid))
    radii = np.interp(rng.uniform(cumulative[0], cumulative[-1], n), cumulative, grid)
    directions = rng.normal(size=(n, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return radii[:, None] * directions


def _hot_gas(
    rng: np.random.Generator,
    hot: MassComponent,
    positions_kpc: FloatArray,
    group: GroupPlan,
    *,
    cell_mass_msun: float,
) -> Fields:
    """Hot halo cells at the virial temperature, pressure supported with weak turbulence."""
    n = len(positions_kpc)
    v200 = measure.circular_velocity_kms(mass_msun=group.m200c_msun, r_kpc=group.r200c_kpc)
    t_vir = (
        IONISED_MEAN_MOLECULAR_WEIGHT
        * PROTON_MASS_G
        * (v200 * KMS_CM_S) ** 2
        / (2.0 * BOLTZMANN_ERG_PER_K)
    )
    return {
        "position_kpc": positions_kpc,
        "velocity_kms": rng.normal(0.0, HOT_GAS_TURBULENCE_FRACTION * v200, positions_kpc.shape),
        "mass_msun": np.full(n, cell_mass_msun),
        "density_msun_per_kpc3": hot.density_msun_per_kpc3(np.linalg.norm(positions_kpc, axis=1)),
        "internal_energy_kms2": np.full(n, internal_energy_kms2(t_vir, HOT_GAS_ELECTRON_ABUNDANCE)),
        "electron_abundance": np.full(n, HOT_GAS_ELECTRON_ABUNDANCE),
        "neutral_hydrogen_abundance": np.full(n, HOT_GAS_NEUTRAL_FRACTION),
        "sfr_msun_yr": np.zeros(n),
        "metallicity": np.full(n, HOT_GAS_METALLICITY_ZSUN * Z_SUN),
    }


def _cold_gas(
    rng: np.random.Generator,
    parts: GalaxyComponents,
    potential: Sequence[MassComponent],
    sfr_msun_yr: float,
    subhalo: SubhaloPlan,
) -> Fields:
    """The cold disk, in the galaxy frame, rotating at the circular velocity of the total mass."""
    n = subhalo.n_cold_gas
    disk = parts.gas_disk
    if disk is None or n == 0:
        return _concatenate(GAS, [])
    positions = disk.sample_positions_kpc(rng, n)
    density = disk.density_at_msun_per_kpc3(
        np.hypot(positions[:, 0], positions[:, 1]), positions[:, 2]
    )
    velocities = kinematics.sample_disk_velocities_kms(
        rng,
        positions_kpc=positions,
        components=potential,
        dispersion_kms=COLD_GAS_DISPERSION_KMS,
        asymmetric_drift=False,
    )
    metallicity = relations.lognormal_scatter(rng, np.full(n, subhalo.galaxy.gas_metallicity), 0.05)
    mass = np.full(n, disk.total_mass_msun / n)
    return {
        "position_kpc": positions,
        "velocity_kms": velocities,
        "mass_msun": mass,
        "density_msun_per_kpc3": density,
        "internal_energy_kms2": np.full(
            n, internal_energy_kms2(COLD_GAS_TEMPERATURE_K, COLD_GAS_ELECTRON_ABUNDANCE)
        ),
        "electron_abundance": np.full(n, COLD_GAS_ELECTRON_ABUNDANCE),
        "neutral_hydrogen_abundance": np.full(n, COLD_GAS_NEUTRAL_FRACTION),
        "sfr_msun_yr": _star_formation_rates(density, mass, sfr_msun_yr),
        "metallicity": metallicity,
    }


def _star_formation_rates(
    density_msun_per_kpc3: FloatArray, mass_msun: FloatArray, sfr_msun_yr: float
) -> FloatArray:
    """Put the galaxy's SFR on its densest cold gas, the cells holding SFR x the depletion time.

    Stars form in molecular gas, which is used up in ~2 Gyr (:data:`DEPLETION_TIME_GYR`), so
    the star-forming gas holds SFR x 2 Gyr of mass; it is taken as the densest cells (all the
    cold gas if it holds less). Within them SFR_i ∝ m_i rho_i^0.5 (a cell's mass over its
    free-fall time, Schmidt's law). Only these cells carry dust in the renderers (dust follows
    star-forming gas, de los Rios et al. 2023, §3.1), which puts it in a thin inner layer as in
    the dust-to-stellar geometry of da Cunha et al. (2010).
    """
    n = density_msun_per_kpc3.size
    if n == 0 or sfr_msun_yr <= 0:
        return np.zeros(n)
    order = np.argsort(density_msun_per_kpc3)[::-1]
    held = np.cumsum(mass_msun[order])
    target = sfr_msun_yr * DEPLETION_TIME_GYR * 1.0e9
    # The densest cells up to and including the one that reaches the target mass.
    n_forming = min(int(np.searchsorted(held, target)) + 1, n)
    forming = order[:n_forming]
    weight = mass_msun[forming] * np.sqrt(density_msun_per_kpc3[forming])
    sfr = np.zeros(n)
    sfr[forming] = sfr_msun_yr * weight / weight.sum()
    return sfr


def _stars(
    rng: np.random.Generator,
    plan: Plan,
    parts: GalaxyComponents,
    potential: Sequence[MassComponent],
    subhalo: SubhaloPlan,
) -> Fields:
    """Disk and bulge stars with ages from the SFH, then wind particles, in the galaxy frame."""
    galaxy = subhalo.galaxy
    n = subhalo.n_stars
    n_bulge = round(n * galaxy.bulge_fraction) if parts.bulge is not None else 0
    n_disk = n - n_bulge if parts.stellar_disk is not None else 0
    n_bulge = n - n_disk
    positions = [np.empty((0, 3))]
    velocities = [np.empty((0, 3))]
    if n_disk:
        assert parts.stellar_disk is not None
        disk_positions = parts.stellar_disk.sample_positions_kpc(rng, n_disk)
        sigma = STELLAR_DISK_DISPERSION_FRACTION * kinematics.circular_velocity_kms(
            potential, np.linalg.norm(disk_positions, axis=1)
        )
        positions.append(disk_positions)
        velocities.append(
            kinematics.sample_disk_velocities_kms(
                rng,
                positions_kpc=disk_positions,
                components=potential,
                dispersion_kms=sigma,
                asymmetric_drift=True,
            )
        )
    if n_bulge:
        assert parts.bulge is not None
        bulge_positions = parts.bulge.sample_positions_kpc(rng, n_bulge)
        positions.append(bulge_positions)
        velocities.append(
            kinematics.sample_isotropic_velocities_kms(
                rng,
                positions_kpc=bulge_positions,
                tracer=parts.bulge,
                components=potential,
                r_max_kpc=parts.bulge.truncation_radius_kpc,
            )
        )
    t0_gyr = float(cosmic_age_gyr(plan.config.scale_factor, plan.cosmology))
    formation_gyr = relations.sample_formation_times_gyr(
        rng, tau_gyr=galaxy.sfh_tau_gyr, cosmic_time_gyr=t0_gyr, n=n
    )
    age_gyr = t0_gyr - formation_gyr
    initial_mass = np.full(n, plan.config.baryon_particle_mass_msun)
    stars: Fields = {
        "position_kpc": np.concatenate(positions),
        "velocity_kms": np.concatenate(velocities),
        "mass_msun": initial_mass
        * (1.0 - relations.leitner_kravtsov11_mass_loss_fraction(age_gyr * 1.0e9)),
        "initial_mass_msun": initial_mass,
        "formation_scale_factor": scale_factor_at_age(formation_gyr, plan.cosmology),
        "metallicity": galaxy.gas_metallicity
        * 10.0
        ** (-STELLAR_METALLICITY_AGE_GRADIENT_DEX_PER_GYR * age_gyr + rng.normal(0.0, 0.1, n)),
    }
    return _concatenate(STARS, [stars, _winds(rng, plan, subhalo, t0_gyr)])


def _winds(rng: np.random.Generator, plan: Plan, subhalo: SubhaloPlan, t0_gyr: float) -> Fields:
    """Wind-phase cells: launched from the disk along its axis in the last ~20 Myr.

    TNG stores them with the stars and marks them by a negative GFM_StellarFormationTime
    (minus the scale factor at launch).
    """
    n = subhalo.n_wind
    galaxy = subhalo.galaxy
    radius = rng.gamma(2.0, galaxy.disk_scale_length_kpc, n)
    phi = rng.uniform(0.0, 2.0 * np.pi, n)
    side = rng.choice([-1.0, 1.0], n)
    speed = rng.uniform(300.0, 600.0, n)
    launch_age_gyr = rng.uniform(0.0, 0.02, n)
    height = side * speed * launch_age_gyr * 1.0e9 * YEAR_S * KMS_CM_S / KPC_CM
    mass = np.full(n, plan.config.baryon_particle_mass_msun)
    return {
        "position_kpc": np.column_stack((radius * np.cos(phi), radius * np.sin(phi), height)),
        "velocity_kms": np.column_stack((np.zeros(n), np.zeros(n), side * speed)),
        "mass_msun": mass,
        "initial_mass_msun": mass,
        "formation_scale_factor": -scale_factor_at_age(t0_gyr - launch_age_gyr, plan.cosmology),
        "metallicity": np.full(n, galaxy.gas_metallicity),
    }


def _rotation_to(axis: FloatArray) -> FloatArray:
    """Rotation matrix taking +z to ``axis`` (Rodrigues' formula)."""
    z = np.array([0.0, 0.0, 1.0])
    v = np.cross(z, axis)
    c = float(np.dot(z, axis))
    if np.linalg.norm(v) < 1e-12:
        return np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])
    vx = np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])
    return np.eye(3) + vx + vx @ vx / (1.0 + c)


def _masses(fields: dict[int, Fields], dm_mass_msun: float) -> dict[int, FloatArray]:
    return {
        GAS: fields[GAS]["mass_msun"],
        DM: np.full(len(fields[DM]["position_kpc"]), dm_mass_msun),
        STARS: fields[STARS]["mass_msun"],
    }


def _relative(positions: FloatArray, centre: FloatArray, box_kpc: float) -> FloatArray:
    delta = positions - centre
    return delta - box_kpc * np.round(delta / box_kpc)


def subhalo_row(
    fields: dict[int, Fields],
    *,
    centre: FloatArray,
    box_kpc: float,
    dm_mass_msun: float,
    flag: int,
    parent_rank: int,
    rank: int,
) -> dict[str, np.ndarray]:
    """Subfind-like properties measured on the subhalo's particles, as TNG defines them.

    ``fields`` holds every type of :data:`PARTICLE_TYPES` (empty where the subhalo has none),
    in box kpc and km/s; dark-matter particles weigh ``dm_mass_msun``.
    """
    masses = _masses(fields, dm_mass_msun)
    mass_type = np.zeros(6)
    len_type = np.zeros(6, dtype=np.int64)
    half_mass_radius = np.zeros(6)
    offsets, velocities, weights = [], [], []
    for ptype in PARTICLE_TYPES:
        rel = _relative(fields[ptype]["position_kpc"], centre, box_kpc)
        mass_type[ptype] = masses[ptype].sum()
        len_type[ptype] = len(rel)
        r_half = measure.half_mass_radius_kpc(
            distance_kpc=np.linalg.norm(rel, axis=1), mass_msun=masses[ptype]
        )
        # TNG writes 0 for a particle type the subhalo does not have.
        half_mass_radius[ptype] = r_half if np.isfinite(r_half) else 0.0
        offsets.append(rel)
        velocities.append(fields[ptype]["velocity_kms"])
        weights.append(masses[ptype])
    rel_all = np.concatenate(offsets)
    mass_all = np.concatenate(weights)
    total = mass_all.sum()
    peak = measure.vmax(
        distance_kpc=np.linalg.norm(rel_all, axis=1),
        mass_msun=mass_all,
        min_r_kpc=VMAX_MIN_RADIUS_KPC,
    )
    return {
        "position_kpc": centre,
        "cm_kpc": np.mod(centre + (rel_all * mass_all[:, None]).sum(axis=0) / total, box_kpc)
        if total > 0
        else centre,
        "velocity_kms": (np.concatenate(velocities) * mass_all[:, None]).sum(axis=0) / total
        if total > 0
        else np.zeros(3),
        "mass_type_msun": mass_type,
        "len_type": len_type,
        "half_mass_radius_type_kpc": half_mass_radius,
        # The catalogs hold 0, never NaN, where no particle lies beyond the softening.
        "vmax_kms": np.nan_to_num(np.asarray(peak.vmax_kms)),
        "vmax_radius_kpc": np.nan_to_num(np.asarray(peak.r_vmax_kpc)),
        "sfr_msun_yr": np.asarray(fields[GAS]["sfr_msun_yr"].sum()),
        "flag": np.asarray(flag),
        "parent_rank": np.asarray(parent_rank),
        "rank": np.asarray(rank),
    }


def group_row(
    fields: dict[int, Fields],
    *,
    centre: FloatArray,
    box_kpc: float,
    dm_mass_msun: float,
    rho_crit_msun_per_kpc3: float,
    n_subhalos: int,
) -> dict[str, np.ndarray]:
    """FoF group properties measured on its member particles (M200c, R200c as Subfind does)."""
    masses = _masses(fields, dm_mass_msun)
    mass_all = np.concatenate([masses[ptype] for ptype in PARTICLE_TYPES])
    velocity_all = np.concatenate([fields[ptype]["velocity_kms"] for ptype in PARTICLE_TYPES])
    radius_all = np.linalg.norm(
        np.concatenate(
            [_relative(fields[ptype]["position_kpc"], centre, box_kpc) for ptype in PARTICLE_TYPES]
        ),
        axis=1,
    )
    m200, r200 = measure.spherical_overdensity(
        distance_kpc=radius_all,
        mass_msun=mass_all,
        density_msun_per_kpc3=200.0 * rho_crit_msun_per_kpc3,
    )
    return {
        "position_kpc": centre,
        "velocity_kms": (velocity_all * mass_all[:, None]).sum(axis=0) / mass_all.sum(),
        "mass_type_msun": np.array([masses[p].sum() if p in masses else 0.0 for p in range(6)]),
        "len_type": np.array(
            [len(masses[p]) if p in masses else 0 for p in range(6)], dtype=np.int64
        ),
        # 0, as in TNG's catalogs, for a group whose mean density never reaches 200 rho_crit.
        "m_crit200_msun": np.nan_to_num(np.asarray(m200)),
        "r_crit200_kpc": np.nan_to_num(np.asarray(r200)),
        "n_subhalos": np.asarray(n_subhalos),
    }


__all__ = [
    "CANONICAL_FIELDS",
    "GroupOutput",
    "generate_group",
    "group_row",
    "sample_shell_positions_kpc",
    "subhalo_row",
]
