"""The ``dwarfs`` universe: isolated dwarf galaxies written like zoom simulations.

Each dwarf is one FoF group with one subhalo. Its dark matter is an (alpha, beta, gamma) halo
whose shape follows Di Cintio et al. (2014) from M*/Mhalo, plus a scatter of the slope at
``slope_radius_kpc`` (the target), and the population is resampled so the target is flat over
``slope_range`` (so stellar mass alone cannot give it). High-resolution dark matter
(PartType1) fills ``highres_radius_kpc``; coarse dark matter (PartType2, per-particle masses,
as zoom runs write it) the rest of R200c. Stars (PartType4) are tracers in equilibrium in the
total potential, drawn from an Osipkov-Merritt distribution function
(:mod:`darkstack.universe.osipkov_merritt`).

Random streams: the population uses ``SeedSequence(seed, spawn_key=(0,))``; dwarf ``i``'s
particles ``spawn_key=(1, i)``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import yaml
from scipy.optimize import brentq

from darkstack.config import (
    Checked,
    Increasing,
    OneOf,
    Range,
    Rule,
    config_to_dict,
    dump_config,
)
from darkstack.cosmology import TNG_COSMOLOGY, CosmologyParams
from darkstack.store.parquet import table_with_units, write_table_atomic
from darkstack.tasks import map_tasks
from darkstack.tng_layout import (
    DM,
    LOWRES_DM,
    STARS,
    SnapshotHeader,
)
from darkstack.units import CodeUnits
from darkstack.universe import relations, tng_format
from darkstack.universe.fragments import assemble_chunk_file, fragment_path
from darkstack.universe.kinematics import sample_isotropic_velocities_kms
from darkstack.universe.osipkov_merritt import NegativeDistributionError, sample_osipkov_merritt
from darkstack.universe.plan import median_concentration, r200c_kpc
from darkstack.universe.profiles import (
    DoublePowerLawHalo,
    dicintio14_concentration,
    dicintio14_shape,
)

if TYPE_CHECKING:
    from distributed import Client

#: Particle types a dwarf owns, in TNG's order.
DWARF_TYPES = (DM, LOWRES_DM, STARS)
_FRAGMENTS = ".darkstack-fragments"
#: Slope bins of the flat resampling.
_SLOPE_BINS = 12
#: Doublings of an anisotropy radius without a valid DF before the stars are made isotropic.
_ANISOTROPY_RETRIES = 4
#: Candidates drawn per dwarf kept, before flattening the target.
_CANDIDATES_PER_DWARF = 30


def _preset_names() -> list[str]:
    return list(DWARF_PRESETS)


@dataclass(frozen=True, kw_only=True)
class DwarfsConfig(Checked):
    """How the dwarf population is drawn and written.

    Parameters
    ----------
    preset : str
        The preset the values started from (recorded for provenance).
    seed : int
        Seed of every draw.
    n_dwarfs : int
        Dwarfs written.
    log_halo_mass_range : tuple of float
        log10 M200c range (Msun), drawn log-uniformly before flattening.
    stellar_mass_scatter_dex : float
        Scatter of M* about Moster et al. (2013) at fixed halo mass.
    slope_radius_kpc : float
        Radius of the target slope d ln rho / d ln r (150 pc as in the paper).
    slope_scatter : float
        Standard deviation of the Gaussian added to the Di Cintio slope at that radius.
    slope_range : tuple of float
        The target is resampled flat over this range; dwarfs outside it are not drawn.
    r_half_range_kpc : tuple of float
        Projected half-light radius, uniform in this range.
    stellar_inner_slope : float
        Inner slope gamma* of the stars' (2, 5, gamma*) profile (0 is Plummer). A cored
        (Plummer) tracer has no non-negative isotropic or Osipkov-Merritt distribution
        function in a cusped potential (f < 0 at the most bound energies; see
        docs/cusp_core.md), so the default gives the light a mild cusp.
    anisotropy_radius_range : tuple of float
        r_a / R_hlr, log-uniform in this range; the smallest is checked for f >= 0.
    n_stars : int
        Star particles per dwarf.
    highres_radius_kpc : float
        Radius of the high-resolution (PartType1) region.
    highres_particle_mass_msun : float
        Mass of a PartType1 particle (the snapshot's MassTable[1]).
    n_lowres : int
        Coarse (PartType2) particles per dwarf between the high-res region and R200c.
    spacing_kpc : float
        Distance between neighbouring dwarfs on the box's grid.
    snapshot, snapshot_files, groupcat_files : int
        Snapshot number and chunk files.
    """

    preset: Annotated[str, OneOf(_preset_names)] = "quick"
    # numpy's SeedSequence takes no negative entropy.
    seed: Annotated[int, Range(ge=0)] = 0
    n_dwarfs: Annotated[int, Range(ge=1)] = 6
    log_halo_mass_range: Annotated[tuple[float, float], Range(), Increasing()] = (9.0, 11.5)
    stellar_mass_scatter_dex: Annotated[float, Range(ge=0)] = 0.3
    slope_radius_kpc: Annotated[float, Range(gt=0)] = 0.15
    slope_scatter: Annotated[float, Range(ge=0)] = 0.2
    # A density slope d ln rho / d ln r of a halo is never positive.
    slope_range: Annotated[tuple[float, float], Range(le=0), Increasing()] = (-1.5, 0.0)
    r_half_range_kpc: Annotated[tuple[float, float], Range(gt=0), Increasing(strict=False)] = (
        0.2,
        1.5,
    )
    # The (2, 5, gamma*) profile's mass diverges at the centre for gamma* >= 2.
    stellar_inner_slope: Annotated[float, Range(ge=0, lt=2)] = 0.3
    anisotropy_radius_range: Annotated[
        tuple[float, float], Range(gt=0), Increasing(strict=False)
    ] = (1.0, 20.0)
    # Fewer stars leave too few per shell to measure a half-light radius or a profile.
    n_stars: Annotated[int, Range(ge=10)] = 3000
    highres_radius_kpc: Annotated[float, Range(gt=0)] = 1.0
    highres_particle_mass_msun: Annotated[float, Range(gt=0)] = 5.0e3
    n_lowres: Annotated[int, Range(ge=1)] = 5000
    spacing_kpc: Annotated[float, Range(gt=0)] = 1000.0
    snapshot: Annotated[int, Range(ge=0, le=999)] = 99
    snapshot_files: Annotated[int, Range(ge=1)] = 2
    groupcat_files: Annotated[int, Range(ge=1)] = 1

    RULES = (
        # The target slope is measured in the high-resolution dark matter.
        Rule.ordered(
            "slope_radius_kpc",
            "<",
            "highres_radius_kpc",
            why="the slope is measured in the high-resolution dark matter",
        ),
    )


#: Values each preset changes. quick: a handful of dwarfs for tests and the demo; small: the
#: scaled training set of 400 dwarfs. Its 50 Msun particles put >= 7,700 (expected) in the
#: lightest core's 75-300 pc, the ingest's fit window (issue 19's floor). One MassTable mass
#: that fine would put 1.4e9 particles in the 400 dwarfs' inner 1 kpc, mostly in the heaviest
#: cusps, so the high-resolution region stops at the window's edge: 1.5e8 PartType1 in all,
#: under the issue's 2e8 (docs/cusp_core.md, "The particle budget").
DWARF_PRESETS: dict[str, dict[str, Any]] = {
    "quick": {"preset": "quick", "n_stars": 1500, "highres_particle_mass_msun": 2.0e4},
    "small": {
        "preset": "small",
        "n_dwarfs": 400,
        "n_stars": 4000,
        "highres_particle_mass_msun": 50.0,
        "highres_radius_kpc": 0.3,
        "snapshot_files": 16,
        "groupcat_files": 2,
    },
}


@dataclass(frozen=True, kw_only=True)
class Dwarf:
    """One drawn dwarf: its halo, its stars and where it sits."""

    m200c_msun: float
    r200c_kpc: float
    stellar_mass_msun: float
    halo: DoublePowerLawHalo
    stars: DoublePowerLawHalo
    r_half_kpc: float
    anisotropy_radius_kpc: float
    dicintio_slope: float
    target_slope: float
    position_kpc: tuple[float, float, float]
    n_highres: int


def _halo_with_slope(
    *,
    m200: float,
    r200: float,
    concentration: float,
    alpha: float,
    beta: float,
    slope: float,
    r_kpc: float,
) -> DoublePowerLawHalo:
    """The (alpha, beta, gamma) halo whose slope at ``r_kpc`` is ``slope``; gamma in [0, 1.9]."""

    def halo(gamma: float) -> DoublePowerLawHalo:
        return DoublePowerLawHalo.from_mass(
            mass_msun=m200,
            radius_kpc=r200,
            concentration=concentration,
            alpha=alpha,
            beta=beta,
            gamma=gamma,
            truncation_radius_kpc=r200,
        )

    def miss(gamma: float) -> float:
        return float(halo(gamma).log_slope(r_kpc)) - slope

    lo, hi = 0.0, 1.9
    if miss(lo) <= 0.0:
        return halo(lo)
    if miss(hi) >= 0.0:
        return halo(hi)
    return halo(float(brentq(miss, lo, hi, xtol=1e-6)))


def projected_half_mass_radius_kpc(component: DoublePowerLawHalo) -> float:
    """R enclosing half the projected mass of a spherical profile (numerical, ~1e-4)."""
    r = np.geomspace(1e-4, 1.0, 4000) * component.truncation_radius_kpc
    shell = 4.0 * np.pi * r**3 * component.density_msun_per_kpc3(r)  # dM / d ln r
    total = float(np.trapezoid(shell, np.log(r)))

    def cylinder(R: float) -> float:
        outside = r > R
        inner_frac = np.sqrt(1.0 - (R / r[outside]) ** 2)
        return total - float(np.trapezoid(shell[outside] * inner_frac, np.log(r[outside])))

    return float(brentq(lambda R: cylinder(R) - 0.5 * total, r[1], r[-2]))


def _stellar_profile(
    *, mass_msun: float, r_half_kpc: float, inner_slope: float, r_max_kpc: float
) -> DoublePowerLawHalo:
    unit = DoublePowerLawHalo(
        alpha=2.0,
        beta=5.0,
        gamma=inner_slope,
        scale_radius_kpc=1.0,
        rho_s_msun_per_kpc3=1.0,
        truncation_radius_kpc=r_max_kpc / r_half_kpc * 1.0,
    )
    b = r_half_kpc / projected_half_mass_radius_kpc(unit)
    shaped = DoublePowerLawHalo(
        alpha=2.0,
        beta=5.0,
        gamma=inner_slope,
        scale_radius_kpc=b,
        rho_s_msun_per_kpc3=1.0,
        truncation_radius_kpc=r_max_kpc,
    )
    return DoublePowerLawHalo(
        alpha=2.0,
        beta=5.0,
        gamma=inner_slope,
        scale_radius_kpc=b,
        rho_s_msun_per_kpc3=mass_msun / shaped.total_mass_msun,
        truncation_radius_kpc=r_max_kpc,
    )


def draw_dwarfs(config: DwarfsConfig, cosmology: CosmologyParams = TNG_COSMOLOGY) -> list[Dwarf]:
    """Draw the population: halos, slopes flattened over ``slope_range``, stars, positions."""
    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(0,)))
    n_pool = _CANDIDATES_PER_DWARF * config.n_dwarfs
    log_m = rng.uniform(*config.log_halo_mass_range, n_pool)
    m200 = 10.0**log_m
    mstar = relations.lognormal_scatter(
        rng, relations.moster13_stellar_mass_msun(m200), config.stellar_mass_scatter_dex
    )
    c_dmo = relations.lognormal_scatter(
        rng, median_concentration(m200, model="ludlow16", cosmology=cosmology), 0.11
    )
    r200 = r200c_kpc(m200, cosmology)
    log_ratio = np.log10(mstar / m200)
    dc14_slope = np.empty(n_pool)
    for i in range(n_pool):
        alpha, beta, gamma = dicintio14_shape(float(log_ratio[i]))
        dc14_slope[i] = DoublePowerLawHalo.from_mass(
            mass_msun=m200[i],
            radius_kpc=r200[i],
            concentration=dicintio14_concentration(float(c_dmo[i]), float(log_ratio[i])),
            alpha=alpha,
            beta=beta,
            gamma=gamma,
            truncation_radius_kpc=r200[i],
        ).log_slope(config.slope_radius_kpc)
    goal = dc14_slope + config.slope_scatter * rng.standard_normal(n_pool)
    chosen = _flatten(rng, goal, slope_range=config.slope_range, n=config.n_dwarfs)
    side = math.ceil(config.n_dwarfs ** (1.0 / 3.0))
    dwarfs = []
    for rank, i in enumerate(chosen):
        alpha, beta, _ = dicintio14_shape(float(log_ratio[i]))
        halo = _halo_with_slope(
            m200=float(m200[i]),
            r200=float(r200[i]),
            concentration=dicintio14_concentration(float(c_dmo[i]), float(log_ratio[i])),
            alpha=alpha,
            beta=beta,
            slope=float(goal[i]),
            r_kpc=config.slope_radius_kpc,
        )
        r_half = float(rng.uniform(*config.r_half_range_kpc))
        stars = _stellar_profile(
            mass_msun=float(mstar[i]),
            r_half_kpc=r_half,
            inner_slope=config.stellar_inner_slope,
            r_max_kpc=min(20.0 * r_half, float(r200[i])),
        )
        log_ra = rng.uniform(*np.log10(config.anisotropy_radius_range))
        grid = np.array(np.unravel_index(rank, (side, side, side)), dtype=np.float64)
        dwarfs.append(
            Dwarf(
                m200c_msun=float(m200[i]),
                r200c_kpc=float(r200[i]),
                stellar_mass_msun=float(mstar[i]),
                halo=halo,
                stars=stars,
                r_half_kpc=r_half,
                anisotropy_radius_kpc=float(r_half * 10.0**log_ra),
                dicintio_slope=float(dc14_slope[i]),
                target_slope=float(halo.log_slope(config.slope_radius_kpc)),
                position_kpc=tuple((grid + 0.5) * config.spacing_kpc),
                n_highres=round(
                    float(halo.enclosed_mass_msun(config.highres_radius_kpc))
                    / config.highres_particle_mass_msun
                ),
            )
        )
    return dwarfs


def _flatten(
    rng: np.random.Generator, goal: np.ndarray, *, slope_range: tuple[float, float], n: int
) -> np.ndarray:
    """Indices of ``n`` candidates whose ``goal`` is as flat as the pool allows over the range."""
    edges = np.linspace(*slope_range, _SLOPE_BINS + 1)
    which = np.digitize(goal, edges) - 1
    per_bin = [rng.permutation(np.flatnonzero(which == b)) for b in range(_SLOPE_BINS)]
    chosen: list[int] = []
    depth = 0
    while len(chosen) < n:
        layer = [int(members[depth]) for members in per_bin if depth < members.size]
        if not layer:
            raise ValueError(
                f"only {len(chosen)} candidate dwarfs have a slope in {slope_range}; widen "
                "log_halo_mass_range or slope_range"
            )
        chosen.extend(rng.permutation(layer)[: n - len(chosen)].tolist())
        depth += 1
    return np.sort(np.array(chosen))


def _radii_between(
    rng: np.random.Generator, halo: DoublePowerLawHalo, *, r_lo: float, r_hi: float, n: int
) -> np.ndarray:
    """Radii of ``n`` particles distributed like ``halo``'s mass between ``r_lo`` and ``r_hi``."""
    grid = np.geomspace(max(r_lo, 1e-5 * r_hi), r_hi, 4096)
    if r_lo <= 0:
        grid = np.concatenate([[0.0], grid])
    mass = halo.enclosed_mass_msun(grid)
    return np.interp(rng.uniform(mass[0], mass[-1], n), mass, grid)


def _directions(rng: np.random.Generator, n: int) -> np.ndarray:
    cos_theta = rng.uniform(-1.0, 1.0, n)
    phi = rng.uniform(0.0, 2.0 * np.pi, n)
    sin_theta = np.sqrt(1.0 - cos_theta**2)
    return np.column_stack((sin_theta * np.cos(phi), sin_theta * np.sin(phi), cos_theta))


def generate_dwarf(
    dwarf: Dwarf, *, index: int, config: DwarfsConfig
) -> dict[int, dict[str, np.ndarray]]:
    """Particles of one dwarf, centred on it: position_kpc, velocity_kms, mass_msun by type."""
    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(1, index)))
    components = [dwarf.halo, dwarf.stars]
    r_hr = config.highres_radius_kpc
    out: dict[int, dict[str, np.ndarray]] = {}
    for ptype, r_lo, r_hi, n in (
        (DM, 0.0, r_hr, dwarf.n_highres),
        (LOWRES_DM, r_hr, dwarf.r200c_kpc, config.n_lowres),
    ):
        radii = _radii_between(rng, dwarf.halo, r_lo=r_lo, r_hi=r_hi, n=n)
        position = radii[:, None] * _directions(rng, n)
        velocity = sample_isotropic_velocities_kms(
            rng,
            positions_kpc=position,
            tracer=dwarf.halo,
            components=components,
            r_max_kpc=dwarf.r200c_kpc,
        )
        shell_mass = float(np.diff(dwarf.halo.enclosed_mass_msun(np.array([r_lo, r_hi])))[0])
        out[ptype] = {
            "position_kpc": position,
            "velocity_kms": velocity,
            "mass_msun": np.full(n, shell_mass / n),
        }
    stars = sample_osipkov_merritt(
        rng,
        n=config.n_stars,
        tracer=dwarf.stars,
        components=components,
        anisotropy_radius_kpc=dwarf.anisotropy_radius_kpc,
        r_max_kpc=dwarf.stars.truncation_radius_kpc,
    )
    out[STARS] = {
        "position_kpc": stars.position_kpc,
        "velocity_kms": stars.velocity_kms,
        "mass_msun": np.full(config.n_stars, dwarf.stellar_mass_msun / config.n_stars),
    }
    return out


def _tng_fields(
    ptype: int, fields: dict[str, np.ndarray], units: CodeUnits, *, centre_kpc: np.ndarray
) -> dict[str, np.ndarray]:
    tng = {
        "Coordinates": units.kpc_to_length(fields["position_kpc"] + centre_kpc),
        "Velocities": units.kms_to_particle_velocity(fields["velocity_kms"]),
    }
    if ptype == STARS:
        n = len(fields["mass_msun"])
        tng |= {
            "Masses": units.msun_to_mass(fields["mass_msun"]),
            "GFM_InitialMass": units.msun_to_mass(fields["mass_msun"]),
            # Old, metal-poor populations, as in dwarf spheroidals.
            "GFM_StellarFormationTime": np.full(n, 0.2),
            "GFM_Metallicity": np.full(n, 2.0e-4),
        }
    elif ptype == LOWRES_DM:
        tng["Masses"] = units.msun_to_mass(fields["mass_msun"])
    return tng


def _fragment(fragments: Path, index: int, ptype: int, name: str) -> Path:
    return fragment_path(fragments, kind="dwarf", index=index, ptype=ptype, name=name)


def _generate_task(
    item: tuple[int, Dwarf], *, config: DwarfsConfig, units: CodeUnits, fragments: Path
) -> dict[str, Any]:
    index, dwarf = item
    record = fragments / f"dwarf{index:06d}.json"
    if record.exists():  # generated by an earlier, interrupted build with this config
        row: dict[str, Any] = json.loads(record.read_text())
        row["len_type"] = {int(k): v for k, v in row["len_type"].items()}
        row["mass_type_msun"] = {int(k): v for k, v in row["mass_type_msun"].items()}
        return row
    # A drawn r_a with no valid DF (f < 0) is doubled until one exists (isotropic last); the
    # r_a used is recorded in truth.parquet, so the population's r_a are those that exist.
    for attempt in range(_ANISOTROPY_RETRIES + 1):
        try:
            particles = generate_dwarf(dwarf, index=index, config=config)
            break
        except NegativeDistributionError:
            radius = (
                2.0 * dwarf.anisotropy_radius_kpc if attempt < _ANISOTROPY_RETRIES else math.inf
            )
            dwarf = dataclasses.replace(dwarf, anisotropy_radius_kpc=radius)
    else:
        particles = generate_dwarf(dwarf, index=index, config=config)
    centre = np.asarray(dwarf.position_kpc)
    for ptype, fields in particles.items():
        for name, values in _tng_fields(ptype, fields, units, centre_kpc=centre).items():
            np.save(_fragment(fragments, index, ptype, name), values)
    star_r = np.linalg.norm(particles[STARS]["position_kpc"], axis=1)
    row = {
        "len_type": {ptype: len(fields["mass_msun"]) for ptype, fields in particles.items()},
        "mass_type_msun": {
            ptype: float(fields["mass_msun"].sum()) for ptype, fields in particles.items()
        },
        "stellar_half_mass_radius_kpc": float(np.median(star_r)),
        "anisotropy_radius_kpc": dwarf.anisotropy_radius_kpc,
    }
    # Written last: its presence says every fragment of this dwarf is complete.
    record.write_text(json.dumps(row))
    return row


def build_dwarfs(
    config: DwarfsConfig,
    out: str | Path,
    *,
    client: Client | None = None,
    overwrite: bool = False,
    progress: bool = True,
    cosmology: CosmologyParams = TNG_COSMOLOGY,
) -> list[Dwarf]:
    """Write the dwarfs in IllustrisTNG's layout, plus ``truth.parquet`` and ``universe.yaml``.

    Parameters
    ----------
    config : DwarfsConfig
        What to draw.
    out : str or Path
        Simulation root; illustris_python's basePath is ``out/output``.
    client : distributed.Client, optional
        Runs one task per dwarf (and per chunk file) on it; ``None`` runs here.
    overwrite : bool
        Replace an existing output.
    progress : bool
        Show progress bars.
    cosmology : CosmologyParams
        TNG's by default.

    Returns
    -------
    list of Dwarf
        The drawn dwarfs, in group order.
    """
    root = Path(out)
    fragments = root / _FRAGMENTS
    resumable = (fragments / "universe.yaml").is_file() and (
        (fragments / "universe.yaml").read_text() == yaml.safe_dump(config_to_dict(config))
    )
    if root.exists() and any(root.iterdir()) and not resumable:
        if not overwrite:
            raise FileExistsError(f"{root} is not empty; pass overwrite=True to replace it")
        shutil.rmtree(root)
    fragments.mkdir(parents=True, exist_ok=True)
    # An interrupted build with the same config resumes: finished dwarfs are kept.
    (fragments / "universe.yaml").write_text(yaml.safe_dump(config_to_dict(config)))
    dwarfs = draw_dwarfs(config, cosmology)
    units = CodeUnits(hubble_param=cosmology.hubble_param, scale_factor=1.0)
    rows = map_tasks(
        _generate_task,
        list(enumerate(dwarfs)),
        client=client,
        description="generate dwarfs",
        progress=progress,
        config=config,
        units=units,
        fragments=fragments,
    )
    counts = {ptype: [row["len_type"][ptype] for row in rows] for ptype in DWARF_TYPES}
    side = math.ceil(config.n_dwarfs ** (1.0 / 3.0))
    header = SnapshotHeader(
        box_size=float(units.kpc_to_length(side * config.spacing_kpc)),
        hubble_param=cosmology.hubble_param,
        omega_m=cosmology.omega_m,
        omega_lambda=cosmology.omega_lambda,
        omega_b=cosmology.omega_b,
        redshift=0.0,
        scale_factor=1.0,
        mass_table=tuple(
            float(units.msun_to_mass(config.highres_particle_mass_msun)) if p == DM else 0.0
            for p in range(6)
        ),
        num_part_total=tuple(sum(counts.get(p, [])) for p in range(6)),
        num_files=config.snapshot_files,
    )
    map_tasks(
        assemble_chunk_file,
        list(range(config.snapshot_files)),
        client=client,
        description="write snapshot chunks",
        progress=progress,
        root=root,
        header=header,
        snapshot=config.snapshot,
        counts=counts,
        fragments=fragments,
        kind="dwarf",
        ptypes=DWARF_TYPES,
    )
    _write_catalog(root, dwarfs, rows, config=config, header=header, units=units)
    dwarfs = [
        dataclasses.replace(d, anisotropy_radius_kpc=row["anisotropy_radius_kpc"])
        for d, row in zip(dwarfs, rows, strict=True)
    ]
    _write_truth(root, dwarfs, config=config)
    dump_config(config, root / "universe.yaml")
    shutil.rmtree(fragments)
    return dwarfs


def _write_catalog(
    root: Path,
    dwarfs: list[Dwarf],
    rows: list[dict[str, Any]],
    *,
    config: DwarfsConfig,
    header: SnapshotHeader,
    units: CodeUnits,
) -> None:
    n = len(dwarfs)
    len_type = np.zeros((n, 6), dtype=np.int64)
    mass_type = np.zeros((n, 6))
    half_mass = np.zeros((n, 6))
    for i, row in enumerate(rows):
        for ptype in DWARF_TYPES:
            len_type[i, ptype] = row["len_type"][ptype]
            mass_type[i, ptype] = row["mass_type_msun"][ptype]
        half_mass[i, STARS] = row["stellar_half_mass_radius_kpc"]
    position = np.array([d.position_kpc for d in dwarfs])
    m200 = np.array([d.m200c_msun for d in dwarfs])
    r200 = np.array([d.r200c_kpc for d in dwarfs])
    groups = {
        "GroupFirstSub": np.arange(n),
        "GroupLen": len_type.sum(axis=1),
        "GroupLenType": len_type,
        "GroupMass": units.msun_to_mass(mass_type.sum(axis=1)),
        "GroupMassType": units.msun_to_mass(mass_type),
        "GroupNsubs": np.ones(n, dtype=np.int64),
        "GroupPos": units.kpc_to_length(position),
        "GroupVel": np.zeros((n, 3)),
        "Group_M_Crit200": units.msun_to_mass(m200),
        "Group_R_Crit200": units.kpc_to_length(r200),
    }
    vmax = [_vmax(d) for d in dwarfs]
    subhalos = {
        "SubhaloCM": units.kpc_to_length(position),
        "SubhaloFlag": np.ones(n, dtype=np.uint8),
        "SubhaloGrNr": np.arange(n),
        "SubhaloHalfmassRadType": units.kpc_to_length(half_mass),
        "SubhaloLen": len_type.sum(axis=1),
        "SubhaloLenType": len_type,
        "SubhaloMass": units.msun_to_mass(mass_type.sum(axis=1)),
        "SubhaloMassType": units.msun_to_mass(mass_type),
        "SubhaloParent": np.zeros(n, dtype=np.int64),
        "SubhaloPos": units.kpc_to_length(position),
        "SubhaloSFR": np.zeros(n),
        "SubhaloVel": np.zeros((n, 3)),
        "SubhaloVmax": np.array([v for v, _ in vmax]),
        "SubhaloVmaxRad": units.kpc_to_length(np.array([r for _, r in vmax])),
    }
    tng_format.write_catalogs(
        root,
        snap=config.snapshot,
        header=header,
        groups=groups,
        subhalos=subhalos,
        num_files=config.groupcat_files,
    )


def _vmax(dwarf: Dwarf) -> tuple[float, float]:
    from darkstack.universe.kinematics import circular_velocity_kms

    r = np.geomspace(0.01, dwarf.r200c_kpc, 512)
    v = circular_velocity_kms([dwarf.halo, dwarf.stars], r)
    return float(v.max()), float(r[np.argmax(v)])


#: Units of truth.parquet's columns.
TRUTH_UNITS = {
    "subhalo_id": "",
    "m200c_msun": "Msun",
    "r200c_kpc": "kpc",
    "stellar_mass_msun": "Msun",
    "r_half_kpc": "kpc",
    "anisotropy_radius_kpc": "kpc",
    "alpha": "",
    "beta": "",
    "gamma": "",
    "scale_radius_kpc": "kpc",
    "stellar_inner_slope": "",
    "stellar_scale_radius_kpc": "kpc",
    "dicintio_slope": "",
    "dm_log_slope_true": "",
}


def _write_truth(root: Path, dwarfs: list[Dwarf], *, config: DwarfsConfig) -> None:
    """``truth.parquet``: each dwarf's analytic model (for tests and validation only)."""
    columns = {
        "subhalo_id": np.arange(len(dwarfs), dtype=np.int64),
        "m200c_msun": [d.m200c_msun for d in dwarfs],
        "r200c_kpc": [d.r200c_kpc for d in dwarfs],
        "stellar_mass_msun": [d.stellar_mass_msun for d in dwarfs],
        "r_half_kpc": [d.r_half_kpc for d in dwarfs],
        "anisotropy_radius_kpc": [d.anisotropy_radius_kpc for d in dwarfs],
        "alpha": [d.halo.alpha for d in dwarfs],
        "beta": [d.halo.beta for d in dwarfs],
        "gamma": [d.halo.gamma for d in dwarfs],
        "scale_radius_kpc": [d.halo.scale_radius_kpc for d in dwarfs],
        "stellar_inner_slope": [d.stars.gamma for d in dwarfs],
        "stellar_scale_radius_kpc": [d.stars.scale_radius_kpc for d in dwarfs],
        "dicintio_slope": [d.dicintio_slope for d in dwarfs],
        "dm_log_slope_true": [d.target_slope for d in dwarfs],
    }
    table = table_with_units(
        columns, units=TRUTH_UNITS, metadata={"slope_radius_kpc": config.slope_radius_kpc}
    )
    write_table_atomic(table, root / "truth.parquet")


__all__ = [
    "DWARF_PRESETS",
    "Dwarf",
    "DwarfsConfig",
    "build_dwarfs",
    "draw_dwarfs",
    "generate_dwarf",
]
