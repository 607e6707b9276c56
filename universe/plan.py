"""Draw the mock universe's halos and galaxies: every scalar, before any particle exists.

The plan fixes what each halo is (mass, concentration, dark-matter shape, galaxy, satellites,
position) and how many particles of each type it owns, so the TNG particle order and every
file offset are known before generation. Generation (:mod:`darkstack.universe.generate`) then
turns one group's plan into particles, independently of every other group, which is what lets
it stream halo by halo and run on a Dask cluster.

Random streams: the plan's global draws use ``SeedSequence(seed, spawn_key=(0,))``; halo ``i``'s
galaxy draws use ``spawn_key=(1, i)``; its particles ``spawn_key=(2, i)``. So a halo's galaxy does
not change when another halo is added, and the same seed gives the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from darkstack.constants import RHO_CRIT0_H2_MSUN_PER_KPC3
from darkstack.cosmology import CosmologyParams, colossus_cosmology, cosmic_age_gyr
from darkstack.measure import circular_velocity_kms
from darkstack.tasks import map_tasks
from darkstack.tng_layout import DM, GAS, STARS
from darkstack.universe import relations
from darkstack.universe.config import UniverseConfig
from darkstack.universe.galaxy import (
    GalaxyStructure,
    cold_gas_mass_for_hi,
    galaxy_components,
    mean_mass_loss_fraction,
)
from darkstack.universe.profiles import (
    DoublePowerLawHalo,
    dicintio14_concentration,
    dicintio14_shape,
)

if TYPE_CHECKING:
    from distributed import Client

    from darkstack.universe.web import CosmicWeb

#: Halos whose galaxies one planning task draws.
_HALOS_PER_TASK = 256
#: Particle types the mock universe writes: gas, dark matter and stars (and wind).
PARTICLE_TYPES = (GAS, DM, STARS)

#: Peculiar velocity dispersion of halos per axis (km/s), roughly the z=0 value of
#: linear theory for galaxy-mass halos (e.g. Sheth & Diaferio 2001).
HALO_VELOCITY_DISPERSION_KMS = 250.0
#: How long a wind particle stays in the wind phase before recoupling; with the SFR it sets
#: how many wind particles a star-forming galaxy has (TNG's winds recouple within ~tens of Myr).
WIND_PHASE_DURATION_YR = 2.0e7


def r200c_kpc(
    m200c_msun: NDArray[np.float64] | float, cosmology: CosmologyParams
) -> NDArray[np.float64]:
    """R200c in physical kpc at z = 0 from M200c in Msun."""
    rho_crit = RHO_CRIT0_H2_MSUN_PER_KPC3 * cosmology.hubble_param**2
    return np.cbrt(3.0 * np.asarray(m200c_msun) / (4.0 * np.pi * 200.0 * rho_crit))


@dataclass(frozen=True, kw_only=True)
class SubhaloPlan:
    """One subhalo of a group: its dark matter, its galaxy and where it sits.

    Offsets and velocities are relative to the group's centre and bulk velocity.
    """

    role: str  # "central", "satellite", "subsatellite" or "clump"
    flag: int
    parent_rank: int
    offset_kpc: tuple[float, float, float]
    velocity_kms: tuple[float, float, float]
    infall_mass_msun: float
    r200_kpc: float
    concentration_dmo: float
    concentration: float
    alpha: float
    beta: float
    gamma: float
    truncation_radius_kpc: float
    galaxy: GalaxyStructure
    # Particles this subhalo owns. For the central, dark matter and hot gas are split by
    # radius: "core" inside R200c (bound), and the FoF shell (R200c..fof edge) which splits
    # into "shell" (bound) and the group's inner fuzz; beyond the edge is outer fuzz.
    n_dm_core: int
    n_dm_shell: int
    n_dm_fuzz: int
    n_dm_outer: int
    n_hot_core: int
    n_hot_shell: int
    n_hot_fuzz: int
    n_hot_outer: int
    n_cold_gas: int
    n_stars: int
    n_wind: int

    def dark_matter_halo(self) -> DoublePowerLawHalo:
        """The subhalo's dark-matter profile (the analytic truth)."""
        return DoublePowerLawHalo.from_mass(
            mass_msun=self.galaxy.dm_mass_r200_msun,
            radius_kpc=self.r200_kpc,
            concentration=self.concentration,
            alpha=self.alpha,
            beta=self.beta,
            gamma=self.gamma,
            truncation_radius_kpc=self.truncation_radius_kpc,
        )

    def member_counts(self) -> dict[int, int]:
        """Particles of each type bound to this subhalo."""
        return {
            GAS: self.n_cold_gas + self.n_hot_core + self.n_hot_shell,
            DM: self.n_dm_core + self.n_dm_shell,
            STARS: self.n_stars + self.n_wind,
        }


@dataclass(frozen=True, kw_only=True)
class GroupPlan:
    """One FoF group: its subhalos in Subfind order (central first, then by length)."""

    draw_index: int
    position_kpc: tuple[float, float, float]
    velocity_kms: tuple[float, float, float]
    m200c_msun: float
    r200c_kpc: float
    subhalos: tuple[SubhaloPlan, ...]
    n_tiny_dm: int = 0

    def fuzz_counts(self) -> dict[int, int]:
        """Inner fuzz: group particles bound to no subhalo."""
        counts = {GAS: 0, DM: self.n_tiny_dm, STARS: 0}
        if self.subhalos:
            counts[GAS] += self.subhalos[0].n_hot_fuzz
            counts[DM] += self.subhalos[0].n_dm_fuzz
        return counts

    def member_counts(self) -> dict[int, int]:
        """All particles of the FoF group (subhalos then inner fuzz)."""
        counts = self.fuzz_counts()
        for subhalo in self.subhalos:
            for ptype, n in subhalo.member_counts().items():
                counts[ptype] += n
        return counts

    def outer_counts(self) -> dict[int, int]:
        """Particles around the group but outside it (outer fuzz)."""
        if not self.subhalos:
            return {GAS: 0, DM: 0, STARS: 0}
        central = self.subhalos[0]
        return {GAS: central.n_hot_outer, DM: central.n_dm_outer, STARS: 0}

    @property
    def length(self) -> int:
        return sum(self.member_counts().values())


@dataclass(frozen=True, kw_only=True)
class Plan:
    """The whole mock universe before particles: groups in TNG order (by length)."""

    config: UniverseConfig
    cosmology: CosmologyParams
    box_size_kpc: float  # physical, at the snapshot's epoch
    groups: tuple[GroupPlan, ...] = field(repr=False)

    def totals(self) -> dict[int, int]:
        """Particles of each type in the snapshot."""
        totals = {ptype: 0 for ptype in PARTICLE_TYPES}
        for group in self.groups:
            for counts in (group.member_counts(), group.outer_counts()):
                for ptype, n in counts.items():
                    totals[ptype] += n
        return totals


def draw_plan(
    config: UniverseConfig,
    cosmology: CosmologyParams,
    *,
    client: Client | None = None,
    progress: bool = False,
    web: CosmicWeb | None = None,
) -> Plan:
    """Draw every halo and galaxy of the mock universe.

    Parameters
    ----------
    config : UniverseConfig
        Sizes, resolution and scatter.
    cosmology : CosmologyParams
        The simulation's cosmology.
    client : distributed.Client, optional
        Draw the galaxies of batches of halos on this Dask client.
    progress : bool
        Show a progress bar.
    web : CosmicWeb, optional
        The cosmic web the halos are drawn from (``config.web``); ``None`` places them
        uniformly at random. It records each halo's Lagrangian centre.

    Returns
    -------
    Plan
        Groups sorted by length as Subfind orders them; tiny subhalo-less groups last.
    """
    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(0,)))
    h = cosmology.hubble_param
    # Physical side at the snapshot's epoch: the configured side is comoving.
    box_kpc = config.box_size_mpc_h * 1.0e3 / h * config.scale_factor
    masses = _draw_halo_masses(rng, config, cosmology, box_kpc)
    radii = r200c_kpc(masses, cosmology)
    if web is None:
        positions = _place_halos(rng, radii * config.fof_extent_r200, box_kpc)
        velocities = rng.normal(0.0, HALO_VELOCITY_DISPERSION_KMS, size=(masses.size, 3))
    else:  # from the biased linear field, moving with the lattice (darkstack.universe.web)
        # Not kept apart in Eulerian space: gravity gathers a forming group's matter into a
        # small volume, and rejecting the halos that land close there cut the halo-matter bias
        # to 0.75-0.81 of Tinker's in one mass bin or another (0.97-1.05 without; 512^3 and
        # 256^3 small, docs/universe.md). Their Lagrangian patches stay disjoint through the
        # lattice claims, so no mass is counted twice.
        positions = np.array(
            [web.draw_halo(rng, i, float(masses[i]), box_kpc) for i in range(masses.size)]
        ).reshape(masses.size, 3)
        velocities = np.array([web.halo_velocity_kms(i) for i in range(masses.size)])
        velocities = velocities.reshape(masses.size, 3)
    concentration_dmo = _draw_concentrations(rng, config, cosmology, masses)

    indices = np.arange(masses.size)
    chunks = [
        (indices[lo : lo + _HALOS_PER_TASK], masses, concentration_dmo, positions, velocities)
        for lo in range(0, masses.size, _HALOS_PER_TASK)
    ]
    groups = [
        group
        for chunk_groups in map_tasks(
            _plan_groups,
            chunks,
            client=client,
            description="draw galaxies",
            progress=progress,
            config=config,
            cosmology=cosmology,
        )
        for group in chunk_groups
    ]
    groups.extend(_plan_tiny_groups(rng, config, box_kpc, first_index=masses.size))
    order = sorted(range(len(groups)), key=lambda i: (-groups[i].length, groups[i].draw_index))
    return Plan(
        config=config,
        cosmology=cosmology,
        box_size_kpc=box_kpc,
        groups=tuple(groups[i] for i in order),
    )


def _plan_groups(
    chunk: tuple[
        NDArray[np.int64],
        NDArray[np.float64],
        NDArray[np.float64],
        NDArray[np.float64],
        NDArray[np.float64],
    ],
    *,
    config: UniverseConfig,
    cosmology: CosmologyParams,
) -> list[GroupPlan]:
    """One task: the groups of a batch of halos (each from its own random stream)."""
    indices, masses, concentrations, positions, velocities = chunk
    return [
        _plan_group(
            config=config,
            cosmology=cosmology,
            draw_index=int(index),
            m200c_msun=float(masses[index]),
            concentration_dmo=float(concentrations[index]),
            position_kpc=positions[index],
            velocity_kms=velocities[index],
        )
        for index in indices
    ]


def _draw_halo_masses(
    rng: np.random.Generator, config: UniverseConfig, cosmology: CosmologyParams, box_kpc: float
) -> NDArray[np.float64]:
    """Poisson number and inverse-CDF masses from the colossus halo mass function."""
    from colossus.lss import mass_function

    colossus_cosmology(cosmology)
    h = cosmology.hubble_param
    ln_mass = np.linspace(
        np.log(config.halo_mass_min_msun), np.log(config.halo_mass_max_msun), 2048
    )
    dn_dlnm = (
        mass_function.massFunction(
            np.exp(ln_mass) * h, 0.0, mdef="200c", model=config.mass_function_model, q_out="dndlnM"
        )
        * h**3
    )  # per comoving Mpc^3 per ln M
    cumulative = np.concatenate(
        [[0.0], np.cumsum(0.5 * (dn_dlnm[1:] + dn_dlnm[:-1]) * np.diff(ln_mass))]
    )
    volume_mpc3 = (box_kpc / 1.0e3) ** 3
    count = rng.poisson(cumulative[-1] * volume_mpc3)
    draws = np.sort(rng.uniform(0.0, cumulative[-1], size=count))[::-1]
    return np.exp(np.interp(draws, cumulative, ln_mass))


def _draw_concentrations(
    rng: np.random.Generator,
    config: UniverseConfig,
    cosmology: CosmologyParams,
    masses: NDArray[np.float64],
) -> NDArray[np.float64]:
    median = median_concentration(masses, model=config.concentration_model, cosmology=cosmology)
    return relations.lognormal_scatter(rng, median, config.concentration_scatter_dex)


def median_concentration(
    m200c_msun: NDArray[np.float64] | float, *, model: str, cosmology: CosmologyParams
) -> NDArray[np.float64]:
    """Median dark-matter-only c200c at z = 0 from colossus' ``model``, via a cached table.

    colossus evaluates some models (Ludlow et al. 2016) by root finding, ~1 ms a call; every
    satellite needs one, so the relation is tabulated once in log M and interpolated.
    """
    log_mass, log_c = _concentration_table(model, cosmology)
    return 10.0 ** np.interp(np.log10(m200c_msun), log_mass, log_c)


@lru_cache(maxsize=8)
def _concentration_table(
    model: str, cosmology: CosmologyParams
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    from colossus.halo import concentration

    colossus_cosmology(cosmology)
    log_mass = np.linspace(8.0, 16.0, 321)
    c = concentration.concentration(
        10.0**log_mass * cosmology.hubble_param, "200c", 0.0, model=model
    )
    return log_mass, np.log10(np.asarray(c, dtype=np.float64))


def _place_halos(
    rng: np.random.Generator,
    exclusion_kpc: NDArray[np.float64],
    box_kpc: float,
) -> NDArray[np.float64]:
    """Uniform positions whose FoF spheres do not overlap (a real FoF would merge them).

    Halos come most massive first, so the rejection loop places the large ones while the box is
    empty. A cell grid of the largest exclusion diameter keeps each test local.
    """
    cell = 2.0 * float(exclusion_kpc.max()) if exclusion_kpc.size else box_kpc
    n_cells = max(1, int(box_kpc // cell))
    cell = box_kpc / n_cells
    grid: dict[tuple[int, int, int], list[int]] = {}
    positions = np.empty((exclusion_kpc.size, 3))
    for index, radius in enumerate(exclusion_kpc):
        for _attempt in range(1000):
            candidate = rng.uniform(0.0, box_kpc, size=3)
            key = tuple(int(c) for c in (candidate // cell) % n_cells)
            neighbours = [
                other
                for dx in (-1, 0, 1)
                for dy in (-1, 0, 1)
                for dz in (-1, 0, 1)
                for other in grid.get(
                    ((key[0] + dx) % n_cells, (key[1] + dy) % n_cells, (key[2] + dz) % n_cells), []
                )
            ]
            if neighbours:
                delta = positions[neighbours] - candidate
                delta -= box_kpc * np.round(delta / box_kpc)
                if np.any(np.linalg.norm(delta, axis=1) < radius + exclusion_kpc[neighbours]):
                    continue
            break
        else:
            raise ValueError(
                f"cannot place {exclusion_kpc.size} halos without overlap in a box of "
                f"{box_kpc:.0f} kpc: raise box_size_mpc_h or halo_mass_min_msun"
            )
        positions[index] = candidate
        grid.setdefault(key, []).append(index)  # type: ignore[arg-type]
    return positions


def _plan_group(
    *,
    config: UniverseConfig,
    cosmology: CosmologyParams,
    draw_index: int,
    m200c_msun: float,
    concentration_dmo: float,
    position_kpc: NDArray[np.float64],
    velocity_kms: NDArray[np.float64],
) -> GroupPlan:
    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(1, draw_index)))
    r200 = float(r200c_kpc(m200c_msun, cosmology))
    central = _plan_subhalo(
        rng,
        config=config,
        cosmology=cosmology,
        role="central",
        infall_mass_msun=m200c_msun,
        concentration_dmo=concentration_dmo,
        truncation_radius_kpc=config.halo_extent_r200 * r200,
        offset_kpc=np.zeros(3),
        velocity_kms=np.zeros(3),
        parent_rank=0,
    )
    others = _plan_satellites(rng, config=config, cosmology=cosmology, central=central)
    # Subfind orders a group's subhalos by length after the central; parents are re-pointed.
    order = sorted(range(len(others)), key=lambda i: -sum(others[i][0].member_counts().values()))
    rank_of = {old: new + 1 for new, old in enumerate(order)}
    subhalos = [central] + [_with_parent(others[i][0], rank_of.get(others[i][1], 0)) for i in order]
    return GroupPlan(
        draw_index=draw_index,
        position_kpc=_as_tuple(position_kpc),
        velocity_kms=_as_tuple(velocity_kms),
        m200c_msun=m200c_msun,
        r200c_kpc=r200,
        subhalos=tuple(subhalos),
    )


def _with_parent(subhalo: SubhaloPlan, parent_rank: int) -> SubhaloPlan:
    return replace(subhalo, parent_rank=parent_rank)


def _plan_subhalo(
    rng: np.random.Generator,
    *,
    config: UniverseConfig,
    cosmology: CosmologyParams,
    role: str,
    infall_mass_msun: float,
    concentration_dmo: float,
    truncation_radius_kpc: float,
    offset_kpc: NDArray[np.float64],
    velocity_kms: NDArray[np.float64],
    parent_rank: int,
) -> SubhaloPlan:
    r200 = float(r200c_kpc(infall_mass_msun, cosmology))
    is_central = role == "central"
    galaxy = _draw_galaxy(
        rng,
        config=config,
        cosmology=cosmology,
        halo_mass_msun=infall_mass_msun,
        r200_kpc=r200,
        concentration_residual=_standardised_concentration_residual(
            concentration_dmo, infall_mass_msun, config=config, cosmology=cosmology
        ),
        satellite=not is_central,
    )
    log_ratio = np.log10(max(galaxy.stellar_mass_msun, 1.0) / infall_mass_msun)
    if config.dm_response == "dicintio14":
        alpha, beta, gamma = dicintio14_shape(log_ratio)
        concentration = float(dicintio14_concentration(concentration_dmo, log_ratio))
    else:
        alpha, beta, gamma, concentration = 1.0, 3.0, 1.0, concentration_dmo
    dm = DoublePowerLawHalo.from_mass(
        mass_msun=galaxy.dm_mass_r200_msun,
        radius_kpc=r200,
        concentration=concentration,
        alpha=alpha,
        beta=beta,
        gamma=gamma,
        truncation_radius_kpc=truncation_radius_kpc,
    )
    m_dm = config.dm_particle_mass_msun
    m_b = config.baryon_particle_mass_msun
    fof_edge = config.fof_extent_r200 * r200
    hot = galaxy_components(galaxy).hot_gas
    if is_central:
        n_dm_core, n_dm_shell_all, n_dm_outer = _shell_counts(
            dm.enclosed_mass_msun, (r200, fof_edge, truncation_radius_kpc), m_dm
        )
        n_hot_core, n_hot_shell_all, n_hot_outer = (
            _shell_counts(hot.enclosed_mass_msun, (r200, fof_edge, truncation_radius_kpc), m_b)
            if hot is not None
            else (0, 0, 0)
        )
        n_dm_fuzz = int(rng.binomial(n_dm_shell_all, config.inner_fuzz_probability))
        n_hot_fuzz = int(rng.binomial(n_hot_shell_all, config.inner_fuzz_probability))
    else:
        n_dm_core = round(float(dm.enclosed_mass_msun(truncation_radius_kpc)) / m_dm)
        n_dm_shell_all = n_dm_outer = n_dm_fuzz = 0
        n_hot_core = n_hot_shell_all = n_hot_outer = n_hot_fuzz = 0
    if role == "clump":
        n_dm_core = 0
    n_stars = round(galaxy.initial_stellar_mass_msun / m_b)
    n_wind = int(rng.poisson(galaxy.sfr_msun_yr * WIND_PHASE_DURATION_YR / m_b))
    return SubhaloPlan(
        role=role,
        flag=0 if role == "clump" else 1,
        parent_rank=parent_rank,
        offset_kpc=_as_tuple(offset_kpc),
        velocity_kms=_as_tuple(velocity_kms),
        infall_mass_msun=infall_mass_msun,
        r200_kpc=r200,
        concentration_dmo=concentration_dmo,
        concentration=concentration,
        alpha=float(alpha),
        beta=float(beta),
        gamma=float(gamma),
        truncation_radius_kpc=truncation_radius_kpc,
        galaxy=galaxy,
        n_dm_core=n_dm_core,
        n_dm_shell=n_dm_shell_all - n_dm_fuzz,
        n_dm_fuzz=n_dm_fuzz,
        n_dm_outer=n_dm_outer,
        n_hot_core=n_hot_core,
        n_hot_shell=n_hot_shell_all - n_hot_fuzz,
        n_hot_fuzz=n_hot_fuzz,
        n_hot_outer=n_hot_outer,
        n_cold_gas=round(galaxy.cold_gas_mass_msun / m_b),
        n_stars=n_stars,
        n_wind=n_wind if n_stars else 0,
    )


def _shell_counts(
    enclosed_mass, edges_kpc: tuple[float, float, float], particle_mass_msun: float
) -> tuple[int, int, int]:
    """Particles in [0, r0), [r0, r1) and [r1, r2) so that cumulative counts round consistently."""
    cumulative = np.rint(np.asarray(enclosed_mass(np.asarray(edges_kpc))) / particle_mass_msun)
    cumulative = np.maximum.accumulate(cumulative.astype(np.int64))
    return (
        int(cumulative[0]),
        int(cumulative[1] - cumulative[0]),
        int(cumulative[2] - cumulative[1]),
    )


def _standardised_concentration_residual(
    concentration_dmo: float,
    halo_mass_msun: float,
    *,
    config: UniverseConfig,
    cosmology: CosmologyParams,
) -> float:
    """How many scatters a halo's concentration lies above the median of its mass."""
    if config.concentration_scatter_dex <= 0:
        return 0.0
    median = float(
        median_concentration(halo_mass_msun, model=config.concentration_model, cosmology=cosmology)
    )
    return float(np.log10(concentration_dmo / median)) / config.concentration_scatter_dex


def _draw_galaxy(
    rng: np.random.Generator,
    *,
    config: UniverseConfig,
    cosmology: CosmologyParams,
    halo_mass_msun: float,
    r200_kpc: float,
    concentration_residual: float,
    satellite: bool,
) -> GalaxyStructure:
    """A galaxy from the scaling relations of :mod:`darkstack.universe.relations`.

    Beyond M*, the galaxy knows its halo through its size (``galaxy_size_model``) and, at
    fixed M*, through its star formation (``sfr_concentration_correlation``, given the halo's
    concentration residual in units of its scatter).
    """
    # Star formation is drawn up to the snapshot's epoch, so every star is younger than it.
    t0_gyr = float(cosmic_age_gyr(config.scale_factor, cosmology))
    rho_mstar = config.stellar_mass_concentration_correlation
    if rho_mstar == 0.0:
        residual = rng.normal(0.0, config.stellar_mass_scatter_dex)
    else:  # assembly bias: concentrated (early-forming) halos hold more stars
        residual = config.stellar_mass_scatter_dex * (
            rho_mstar * concentration_residual + np.sqrt(1.0 - rho_mstar**2) * rng.normal()
        )
    log_mstar = float(np.log10(relations.moster13_stellar_mass_msun(halo_mass_msun)) + residual)
    mstar = 10.0**log_mstar
    quenched_fraction = float(relations.peng10_quenched_fraction(log_mstar))
    if satellite:  # environmental quenching on top of mass quenching (Peng et al. 2012)
        quenched_fraction = 0.5 * (1.0 + quenched_fraction)
    quenched = bool(rng.uniform() < quenched_fraction)
    rho = config.sfr_concentration_correlation
    log_sfr = float(
        relations.speagle14_log_sfr(log_mstar, cosmic_time_gyr=t0_gyr)
    ) + config.sfr_scatter_dex * (
        rho * concentration_residual + np.sqrt(1.0 - rho**2) * rng.normal()
    )
    if quenched:
        log_sfr -= config.quenched_sfr_offset_dex
    sfr = 10.0**log_sfr
    tau_gyr = float(
        relations.delayed_tau_for_specific_sfr(ssfr_per_yr=sfr / mstar, cosmic_time_gyr=t0_gyr)
    )
    mass_loss = mean_mass_loss_fraction(tau_gyr=tau_gyr, cosmic_time_gyr=t0_gyr)

    if config.galaxy_size_model == "kravtsov13":
        r_half = float(
            relations.lognormal_scatter(
                rng,
                relations.kravtsov13_half_mass_radius_kpc(r200_kpc),
                relations.KRAVTSOV13_SCATTER_DEX,
            )
        )
    else:
        r_half = float(relations.shen03_late_type_r50_kpc(mstar)) * float(
            np.exp(rng.normal(0.0, relations.shen03_late_type_ln_scatter(mstar)))
        )
    disk_scale = r_half * relations.half_mass_radius_to_disk_scale_length
    bulge_fraction = float(relations.bulge_to_total(log_mstar))

    gas_free = satellite and rng.uniform() < config.satellites.gas_free_fraction
    log_hi = float(relations.huang12_log_hi_mass(log_mstar)) + rng.normal(
        0.0, config.hi_mass_scatter_dex
    )
    if quenched:  # quenched galaxies are HI-poor (e.g. Catinella et al. 2018)
        log_hi -= 1.0
    hi_mass = 0.0 if gas_free else 10.0**log_hi
    gas_scale = _hi_disk_scale_length_kpc(rng, hi_mass_msun=hi_mass, disk_scale_kpc=disk_scale)
    gas_height = 0.1 + 0.05 * gas_scale
    cold_gas = cold_gas_mass_for_hi(
        hi_mass_msun=hi_mass, scale_length_kpc=gas_scale, scale_height_kpc=gas_height
    )

    baryons = cosmology.baryon_fraction * halo_mass_msun
    # The hot halo keeps a fraction of the baryons not in the galaxy that rises with halo mass,
    # as feedback empties low-mass halos (McGaugh et al. 2010's baryon deficit, qualitatively).
    hot_fraction = (
        0.0
        if satellite
        else float(np.clip(0.25 + 0.2 * (np.log10(halo_mass_msun) - 11.5), 0.1, 0.8))
    )
    hot_gas = max(baryons - mstar - cold_gas, 0.0) * hot_fraction
    return GalaxyStructure(
        stellar_mass_msun=mstar,
        initial_stellar_mass_msun=mstar / (1.0 - mass_loss),
        sfr_msun_yr=sfr,
        quenched=quenched,
        sfh_tau_gyr=tau_gyr,
        half_mass_radius_kpc=r_half,
        disk_scale_length_kpc=disk_scale,
        disk_scale_height_kpc=0.1 * disk_scale,
        bulge_fraction=bulge_fraction,
        bulge_scale_radius_kpc=0.15 * r_half,
        gas_metallicity=float(relations.gas_metallicity_mass_fraction(log_mstar)),
        hi_mass_msun=hi_mass,
        cold_gas_mass_msun=cold_gas,
        gas_disk_scale_length_kpc=gas_scale,
        gas_disk_scale_height_kpc=gas_height,
        hot_gas_mass_msun=hot_gas,
        hot_gas_core_radius_kpc=0.1 * r200_kpc,
        hot_gas_truncation_kpc=config.halo_extent_r200 * r200_kpc,
        dm_mass_r200_msun=(1.0 - cosmology.baryon_fraction) * halo_mass_msun,
        spin_axis=_as_tuple(_random_unit_vector(rng)),
    )


def _hi_disk_scale_length_kpc(
    rng: np.random.Generator, *, hi_mass_msun: float, disk_scale_kpc: float
) -> float:
    """Scale length of the cold disk whose HI reaches 1 Msun/pc^2 at the observed HI radius.

    The radius is drawn from the HI size-mass relation (Wang et al. 2016). The isophote lies
    in the disk's outskirts, where the gas is atomic, so the HI mass sets it; the disk is never
    shorter than the stellar one (HI disks extend beyond the stars, Broeils & Rhee 1997).
    """
    if hi_mass_msun <= 0:
        return disk_scale_kpc
    hi_radius = float(
        relations.lognormal_scatter(
            rng,
            0.5 * relations.wang16_hi_diameter_kpc(hi_mass_msun),
            relations.WANG16_SCATTER_DEX,
        )
    )
    scale = relations.exponential_scale_length_for_isophote_kpc(
        mass_msun=hi_mass_msun, radius_kpc=hi_radius, surface_density_msun_pc2=1.0
    )
    return max(scale, disk_scale_kpc)


def _plan_satellites(
    rng: np.random.Generator,
    *,
    config: UniverseConfig,
    cosmology: CosmologyParams,
    central: SubhaloPlan,
) -> list[tuple[SubhaloPlan, int]]:
    """Satellites (with their parent's pre-sorting index) from an evolved subhalo mass function."""
    sat = config.satellites
    host_mass = central.infall_mass_msun
    host_dm = central.dark_matter_halo()
    psi_min = sat.min_dm_particles * config.dm_particle_mass_msun / host_mass
    if psi_min >= sat.mass_ratio_max:
        return []
    slope = 0.9
    expected = sat.shmf_normalisation / slope * (psi_min**-slope - sat.mass_ratio_max**-slope)
    count = int(rng.poisson(expected))
    # Inverse CDF of psi^-0.9 dln psi between psi_min and psi_max.
    u = rng.uniform(size=count)
    psi = (psi_min**-slope - u * (psi_min**-slope - sat.mass_ratio_max**-slope)) ** (-1.0 / slope)
    satellites: list[tuple[SubhaloPlan, int]] = []
    for ratio in np.sort(psi)[::-1]:
        index = len(satellites)
        role = "clump" if rng.uniform() < sat.spurious_fraction else "satellite"
        # Satellites avoid the centre, where tides destroy them (Springel et al. 2008).
        distance = _radius_in_range(rng, host_dm, 0.1 * central.r200_kpc, central.r200_kpc)
        offset = distance * _random_unit_vector(rng)
        subhalo = _satellite_at(
            rng,
            config=config,
            cosmology=cosmology,
            host=host_dm,
            infall_mass_msun=ratio * host_mass,
            offset_kpc=offset,
            velocity_kms=_orbital_velocity(rng, host_dm, distance),
            role=role,
        )
        if subhalo is None:
            continue
        satellites.append((subhalo, -1))
        if role == "satellite" and rng.uniform() < sat.subsatellite_fraction:
            sub_offset = offset + 0.3 * subhalo.truncation_radius_kpc * _random_unit_vector(rng)
            subsatellite = _satellite_at(
                rng,
                config=config,
                cosmology=cosmology,
                host=host_dm,
                infall_mass_msun=rng.uniform(0.05, 0.2) * ratio * host_mass,
                offset_kpc=sub_offset,
                velocity_kms=np.asarray(subhalo.velocity_kms) + rng.normal(0, 20.0, 3),
                role="subsatellite",
            )
            if subsatellite is not None:
                satellites.append((subsatellite, index))
    return satellites


def _satellite_at(
    rng: np.random.Generator,
    *,
    config: UniverseConfig,
    cosmology: CosmologyParams,
    host: DoublePowerLawHalo,
    infall_mass_msun: float,
    offset_kpc: NDArray[np.float64],
    velocity_kms: NDArray[np.float64],
    role: str,
) -> SubhaloPlan | None:
    """A satellite truncated at its Jacobi radius; None when it keeps too few particles."""
    distance = float(np.linalg.norm(offset_kpc))
    host_enclosed = float(host.enclosed_mass_msun(distance))
    tidal = distance * (infall_mass_msun / (3.0 * host_enclosed)) ** (1.0 / 3.0)
    c_dmo = float(
        relations.lognormal_scatter(
            rng,
            median_concentration(
                infall_mass_msun, model=config.concentration_model, cosmology=cosmology
            ),
            config.concentration_scatter_dex,
        )
    )
    r200 = float(r200c_kpc(infall_mass_msun, cosmology))
    subhalo = _plan_subhalo(
        rng,
        config=config,
        cosmology=cosmology,
        role=role,
        infall_mass_msun=infall_mass_msun,
        concentration_dmo=c_dmo,
        truncation_radius_kpc=min(tidal, r200),
        offset_kpc=offset_kpc,
        velocity_kms=velocity_kms,
        parent_rank=0,
    )
    resolved = subhalo.n_dm_core >= config.satellites.min_dm_particles
    if role == "clump":
        resolved = subhalo.n_stars + subhalo.n_cold_gas > 0
    return subhalo if resolved else None


def _orbital_velocity(
    rng: np.random.Generator, host: DoublePowerLawHalo, distance_kpc: float
) -> NDArray[np.float64]:
    """Isotropic velocity with the host's circular speed as 3D dispersion scale."""
    v_circ = circular_velocity_kms(
        mass_msun=host.enclosed_mass_msun(distance_kpc), r_kpc=distance_kpc
    )
    return rng.normal(0.0, v_circ / np.sqrt(2.0), size=3)


def _radius_in_range(
    rng: np.random.Generator, profile: DoublePowerLawHalo, r_min_kpc: float, r_max_kpc: float
) -> float:
    grid = np.geomspace(r_min_kpc, r_max_kpc, 256)
    cdf = profile.enclosed_mass_msun(grid)
    return float(np.interp(rng.uniform(cdf[0], cdf[-1]), cdf, grid))


def _plan_tiny_groups(
    rng: np.random.Generator, config: UniverseConfig, box_kpc: float, *, first_index: int
) -> list[GroupPlan]:
    """FoF groups below Subfind's resolution: a few dozen DM particles and no subhalo."""
    n_groups = int(rng.poisson(config.tiny_group_fraction * first_index))
    return [
        GroupPlan(
            draw_index=first_index + i,
            position_kpc=_as_tuple(rng.uniform(0.0, box_kpc, size=3)),
            velocity_kms=_as_tuple(rng.normal(0.0, HALO_VELOCITY_DISPERSION_KMS, size=3)),
            m200c_msun=0.0,
            r200c_kpc=0.0,
            subhalos=(),
            n_tiny_dm=int(rng.integers(20, 40)),
        )
        for i in range(n_groups)
    ]


def _random_unit_vector(rng: np.random.Generator) -> NDArray[np.float64]:
    vector = rng.normal(size=3)
    return vector / np.linalg.norm(vector)


def _as_tuple(vector: NDArray[np.float64]) -> tuple[float, float, float]:
    return (float(vector[0]), float(vector[1]), float(vector[2]))


__all__ = [
    "DM",
    "GAS",
    "PARTICLE_TYPES",
    "STARS",
    "GroupPlan",
    "Plan",
    "SubhaloPlan",
    "draw_plan",
    "r200c_kpc",
]
