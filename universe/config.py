"""Configuration of the mock universe and its presets.

Masses are M200c in Msun (physical), the box is comoving Mpc/h as TNG quotes it, particle masses
are in Msun. Presets only change the size and resolution; the physics recipes are the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from darkstack.config import Checked, OneOf, Range, Rule
from darkstack.tng_layout import TNG_FULL_SNAPSHOT_REDSHIFTS

PresetName = Literal["quick", "small", "paper"]

Positive = Annotated[float, Range(gt=0)]
PositiveInt = Annotated[int, Range(ge=1)]
Fraction = Annotated[float, Range(ge=0, le=1)]
#: A log-normal scatter: 0 is none, a negative one is a sign error, not less scatter.
ScatterDex = Annotated[float, Range(ge=0)]


def mass_function_models() -> list[str]:
    """colossus' halo mass functions that have M200c (the masses the universe draws)."""
    from colossus.lss import mass_function

    return [name for name, m in mass_function.models.items() if {"*", "200c"} & set(m.mdefs)]


def concentration_models() -> list[str]:
    """colossus' c(M) relations that have c200c."""
    from colossus.halo import concentration

    return [name for name, m in concentration.models.items() if "200c" in m.mdefs]


def _tng_redshift(config: UniverseConfig) -> str | None:
    tng_redshift = TNG_FULL_SNAPSHOT_REDSHIFTS.get(config.snapshot)
    if tng_redshift is None or tng_redshift == config.redshift:
        return None
    return (
        f"{tng_redshift:g}: snapshot {config.snapshot} is TNG's z = {tng_redshift:g} (or choose "
        "another snapshot number)"
    )


@dataclass(frozen=True, kw_only=True)
class SatelliteConfig(Checked):
    """Satellite subhalos, sub-satellites and non-cosmological clumps.

    Parameters
    ----------
    shmf_normalisation : float
        A in dN/dln(psi) = A psi^-0.9, psi = m_sub/M200c (evolved subhalo mass function with
        the slope of Springel et al. 2008 and Giocoli et al. 2008; A = 0.025 puts ~10% of the
        host mass in subhalos with 1e-4 < psi < 0.1).
    mass_ratio_max : float
        Largest subhalo-to-host mass ratio drawn.
    min_dm_particles : int
        Subhalos resolved with fewer dark-matter particles are not drawn.
    gas_free_fraction : float
        Fraction of satellites stripped of all gas (ram pressure), so some subhalos have none.
    subsatellite_fraction : float
        Probability that a satellite hosts a satellite of its own (SubhaloParent != 0).
    spurious_fraction : float
        Fraction of satellites that are baryonic clumps with little dark matter, flagged
        SubhaloFlag = 0 as TNG flags subhalos of non-cosmological origin.
    """

    shmf_normalisation: Annotated[float, Range(ge=0)] = 0.025
    mass_ratio_max: Annotated[float, Range(gt=0, le=1)] = 0.1
    min_dm_particles: PositiveInt = 40
    gas_free_fraction: Fraction = 0.4
    subsatellite_fraction: Fraction = 0.15
    spurious_fraction: Fraction = 0.03


@dataclass(frozen=True, kw_only=True)
class DarkTwinConfig(Checked):
    """The gravity-only twin (``darkstack universe --dark-twin``), see docs/universe.md.

    Parameters
    ----------
    halo_mass_relation : {"velliscig14", "none"}
        How a twin halo's M200c follows from its hydro halo's: "velliscig14" maps it back
        through the hydro-to-DMO ratio of Velliscig et al. 2014 (their AGN 8.0 fit); "none"
        keeps the hydro mass (an ablation).
        See :func:`darkstack.universe.dark.log_hydro_to_dmo_mass_ratio`.
    subhalo_jitter_kpc : float
        Standard deviation per axis (physical kpc) of the offset between a subhalo's position
        in the hydro run and in its twin; matched TNG subhalos sit a few kpc apart.
    """

    halo_mass_relation: Literal["velliscig14", "none"] = "velliscig14"
    subhalo_jitter_kpc: Annotated[float, Range(ge=0)] = 2.0


@dataclass(frozen=True, kw_only=True)
class WebConfig(Checked):
    """The cosmic web (:mod:`darkstack.universe.web`), see docs/universe.md.

    Parameters
    ----------
    enabled : bool
        Draw halos from the biased linear field and write the unbound dark matter as a
        displaced particle lattice; off, halos sit at uniform random positions and nothing
        lies between them. On, every dark-matter particle weighs ``Omega_m rho_crit V /
        lattice^3`` (``dm_particle_mass_msun`` is replaced by it).
    lattice : int
        Lattice points (and unbound particles before halos claim theirs) per side.
    second_order : bool
        Add the second-order (2LPT) displacement to the Zel'dovich one.
    collapse_scale_mpc_h : float, optional
        Augmented LPT (Kitaura & Hess 2013): below this comoving scale (Gaussian kernel) the
        displacement is spherical collapse's instead of LPT's, so collapsed regions stay
        collapsed instead of streaming through each other; ``None`` is plain LPT.
    particle_mesh_steps : int, optional
        Move the lattice by gravity instead: 2LPT at ``particle_mesh_start_redshift``, then
        this many particle-mesh steps to the snapshot (FastPM, Feng et al. 2016;
        :mod:`darkstack.universe.particle_mesh`). LPT lets shells cross: at 0.13-0.25 h/Mpc
        in a 50 Mpc/h box it gives 0.74 of the linear power of its phases, gravity 0.89 (means
        of 20 realisations, docs/universe.md). ``None`` keeps (A)LPT. Excludes
        ``collapse_scale_mpc_h``.
    particle_mesh_start_redshift : float
        Where the particle-mesh steps start (FastPM's 10 steps from z = 9 reach k ~ 1 h/Mpc).
    seed : int, optional
        Seed of the phases; ``None`` uses the universe's seed.
    halo_sampling_grid : int
        Side of the grid on which the halo intensity is sampled (at most the lattice), fine
        enough to resolve the smallest halo's Lagrangian radius.
    """

    enabled: bool = False
    lattice: Annotated[int, Range(ge=8)] = 128
    second_order: bool = True
    collapse_scale_mpc_h: Annotated[float, Range(gt=0)] | None = None
    particle_mesh_steps: Annotated[int, Range(ge=1)] | None = None
    particle_mesh_start_redshift: Annotated[float, Range(gt=0)] = 9.0
    seed: int | None = None
    halo_sampling_grid: Annotated[int, Range(ge=8)] = 128

    RULES = (
        Rule(
            "particle_mesh_steps",
            lambda c: (
                "None when collapse_scale_mpc_h is set (gravity or ALPT, not both)"
                if c.particle_mesh_steps is not None and c.collapse_scale_mpc_h is not None
                else None
            ),
        ),
    )


@dataclass(frozen=True, kw_only=True)
class UniverseConfig(Checked):
    """How the mock universe is drawn and written.

    Parameters
    ----------
    preset : {"quick", "small", "paper"}
        The preset the other values started from (recorded for provenance).
    seed : int
        Seed of every random draw; the same seed gives the same bytes.
    snapshot : int
        Snapshot number written (TNG's z = 0 is 99, its z = 1 is 50).
    redshift : float
        Redshift of the snapshot; the scale factor is ``1 / (1 + redshift)``. One of TNG's 20
        full snapshot numbers must carry TNG's redshift (50 needs ``redshift=1``, see
        :data:`~darkstack.tng_layout.TNG_FULL_SNAPSHOT_REDSHIFTS`). The galaxy population is the
        z = 0 one at any redshift (see docs/universe.md); the epoch sets the comoving units,
        the header and the age of the Universe the stars are born in.
    box_size_mpc_h : float
        Comoving side of the periodic box in Mpc/h.
    halo_mass_min_msun, halo_mass_max_msun : float
        Range of M200c drawn from the halo mass function.
    mass_function_model : str
        colossus mass-function model (Tinker et al. 2008 by default).
    concentration_model : str
        colossus c(M) model for the dark-matter-only concentration (Ludlow et al. 2016).
    concentration_scatter_dex : float
        Log-normal scatter of c at fixed mass (Dutton & Maccio 2014 find ~0.11 dex).
    dm_particle_mass_msun, baryon_particle_mass_msun : float
        Particle masses; TNG100-1 has 7.5e6 and 1.4e6.
    dm_response : {"dicintio14", "none"}
        "dicintio14" makes the inner dark-matter profile respond to M*/Mhalo; "none" keeps NFW
        (an ablation: the profile is then a fixed function of halo mass and concentration).
    halo_extent_r200 : float
        Dark matter and hot gas are sampled to this many R200c.
    fof_extent_r200 : float
        Particles inside this radius belong to the FoF group; beyond it they are outer fuzz.
    inner_fuzz_probability : float
        Chance that a group particle between R200c and the FoF edge is unbound (inner fuzz).
    stellar_mass_scatter_dex, sfr_scatter_dex, hi_mass_scatter_dex : float
        Log-normal scatter of the stellar-to-halo, star-forming main sequence and HI relations.
    quenched_sfr_offset_dex : float
        How far below the main sequence quenched galaxies sit.
    stellar_mass_concentration_correlation : float
        Correlation, in [-1, 1], of a galaxy's stellar-to-halo residual with its halo's
        concentration residual (both in units of their scatter): positive gives early-forming,
        concentrated halos more stars at fixed halo mass (Hearin & Watson 2013's assembly
        dependence; Matthee et al. 2017 find it in EAGLE). 0 draws M* from halo mass alone.
    sfr_concentration_correlation : float
        Correlation, in [-1, 1], of a galaxy's main-sequence residual with its halo's
        concentration residual (both in units of their scatter). Negative is age matching
        (Hearin & Watson 2013): at fixed M*, early-forming, concentrated halos host galaxies
        that formed their stars early and now form fewer, so they are redder. Concentration
        is an imperfect proxy of formation time, hence a partial correlation; 0 draws the SFR
        independently of the halo.
    galaxy_size_model : {"kravtsov13", "shen03"}
        Stellar half-mass radii from the halo radius (Kravtsov 2013: 0.015 R200c, 0.2 dex) or
        from the stellar mass alone (Shen et al. 2003's late-type relation; an ablation in
        which sizes say nothing about the halo beyond M*).
    tiny_group_fraction : float
        FoF groups too small for Subfind (no subhalo, GroupFirstSub = -1), per halo drawn.
    snapshot_files, groupcat_files : int
        Chunk files per snapshot and per group catalog.
    max_particles_per_batch : int
        Generation works on batches of halos of about this many particles (bounded memory).
    satellites : SatelliteConfig
        Satellite population.
    dark_twin : DarkTwinConfig
        The gravity-only twin, written only when asked for (``--dark-twin``).
    web : WebConfig
        The cosmic web: halo positions and unbound dark matter from one linear field.
    """

    preset: PresetName = "quick"
    seed: int = 0
    snapshot: Annotated[int, Range(ge=0, le=999)] = 99
    redshift: Annotated[float, Range(ge=0, lt=1000)] = 0.0
    box_size_mpc_h: Positive = 28.0
    halo_mass_min_msun: Positive = 10**11.2
    halo_mass_max_msun: Positive = 10**12.8
    mass_function_model: Annotated[str, OneOf(mass_function_models)] = "tinker08"
    concentration_model: Annotated[str, OneOf(concentration_models)] = "ludlow16"
    concentration_scatter_dex: ScatterDex = 0.11
    dm_particle_mass_msun: Positive = 1.0e8
    baryon_particle_mass_msun: Positive = 1.87e7
    dm_response: Literal["dicintio14", "none"] = "dicintio14"
    halo_extent_r200: Annotated[float, Range(ge=1)] = 2.0
    fof_extent_r200: Annotated[float, Range(ge=1)] = 1.5
    inner_fuzz_probability: Fraction = 0.3
    stellar_mass_scatter_dex: ScatterDex = 0.15
    sfr_scatter_dex: ScatterDex = 0.2
    hi_mass_scatter_dex: ScatterDex = 0.3
    quenched_sfr_offset_dex: Annotated[float, Range(ge=0)] = 1.5
    stellar_mass_concentration_correlation: Annotated[float, Range(ge=-1, le=1)] = 0.0
    sfr_concentration_correlation: Annotated[float, Range(ge=-1, le=1)] = -0.6
    galaxy_size_model: Literal["kravtsov13", "shen03"] = "kravtsov13"
    tiny_group_fraction: Fraction = 0.05
    snapshot_files: PositiveInt = 8
    groupcat_files: PositiveInt = 3
    max_particles_per_batch: PositiveInt = 1_000_000
    satellites: SatelliteConfig = field(default_factory=SatelliteConfig)
    dark_twin: DarkTwinConfig = field(default_factory=DarkTwinConfig)
    web: WebConfig = field(default_factory=WebConfig)

    RULES = (
        Rule.ordered("halo_mass_min_msun", "<", "halo_mass_max_msun", spec=".4g"),
        Rule.ordered(
            "fof_extent_r200", "<=", "halo_extent_r200", why="particles are drawn no further"
        ),
        Rule("redshift", _tng_redshift),
    )

    @property
    def scale_factor(self) -> float:
        """The snapshot's scale factor, ``1 / (1 + redshift)``."""
        return 1.0 / (1.0 + self.redshift)


#: Lightest halo of the presets with a cosmic web. dm2gal's galaxies (M* > 1e8 Msun/h = 1.48e8
#: Msun) start there: Moster et al. 2013 (``relations.moster13_stellar_mass_msun``) gives
#: M* = 1.2e8 Msun at M200c = 10^10.6 Msun, 3.5e8 at 10^10.8, 2.8e9 at 10^11.2.
FIELD_HALO_MASS_MIN_LOG_MSUN = 10.6

#: Values each preset changes from the defaults. quick: >=150 selectable centrals in under a
#: minute, no cosmic web; small: >=1000 in a 50 Mpc/h web (dark matter from a 512^3 lattice,
#: so ``dm_particle_mass_msun`` is replaced by the lattice's); paper: TNG100's 75 Mpc/h box
#: with a 1820^3 lattice (TNG100-1-Dark's particle mass), a cluster job.
PRESETS: dict[str, dict[str, Any]] = {
    "quick": {"preset": "quick"},
    "small": {
        "preset": "small",
        "box_size_mpc_h": 50.0,
        "halo_mass_min_msun": 10**FIELD_HALO_MASS_MIN_LOG_MSUN,
        "halo_mass_max_msun": 10**13.3,
        "dm_particle_mass_msun": 2.5e7,
        "stellar_mass_concentration_correlation": 0.4,
        "snapshot_files": 16,
        "groupcat_files": 4,
        "web": {"enabled": True, "lattice": 512, "particle_mesh_steps": 10},
    },
    "paper": {
        "preset": "paper",
        "box_size_mpc_h": 75.0,
        "halo_mass_min_msun": 10**FIELD_HALO_MASS_MIN_LOG_MSUN,
        "halo_mass_max_msun": 10**14.8,
        "dm_particle_mass_msun": 7.5e6,
        "baryon_particle_mass_msun": 1.4e6,
        "satellites": {"min_dm_particles": 100},
        "stellar_mass_concentration_correlation": 0.4,
        "web": {"enabled": True, "lattice": 1820, "particle_mesh_steps": 10},
        "snapshot_files": 448,
        "groupcat_files": 56,
    },
}
