"""The ``clusters`` universe: galaxy clusters written in IllustrisTNG's layout.

Each cluster is one FoF group. Its first subhalo is the cluster itself: triaxial NFW dark
matter, hot gas in hydrostatic equilibrium (:mod:`.icm`) and the central galaxy (:mod:`.halo`).
Satellite subhalos carry galaxies and no gas (stripped, so the gas is smoother than the
mass). A fraction of clusters is disturbed: an offset subcluster with its own dark matter,
gas and central galaxy is the group's last subhalo. Particle masses scale with the cluster,
so dark matter is written as PartType2 with per-particle masses (as zoom runs write coarse
dark matter; TNG's PartType1 needs one MassTable mass for the whole snapshot).

Random streams: the population uses ``SeedSequence(seed, spawn_key=(0,))``; cluster ``i``'s
particles ``spawn_key=(1, i)``; the state of the gas (core radius, non-thermal pressure)
``spawn_key=(2,)``, so drawing it leaves the rest of the population as it was.

The gas of each cluster departs from the mean profiles in three ways, as real clusters do:
its density and pressure amplitude (``p500_scatter_dex``), its core (cool-core clusters have
small, dense cores; disturbed ones large and flat: ``core_radius_scatter_dex``), and the radius
where turbulent pressure takes over (``nonthermal_b_scatter_dex``), which sets how far the
thermal pressure, and so the SZ signal, under-reports the mass (the hydrostatic bias).
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from scipy.spatial.transform import Rotation

from darkstack.config import Checked, Increasing, OneOf, Range, dump_config
from darkstack.constants import G_KPC_KMS2_PER_MSUN, KEV_ERG, KMS_CM_S, KPC_CM, MSUN_G, Z_SUN
from darkstack.cosmology import TNG_COSMOLOGY, CosmologyParams, overdensity_radius_kpc
from darkstack.store.parquet import table_with_units, write_table_atomic
from darkstack.tasks import map_tasks
from darkstack.tng_layout import GAS, LOWRES_DM, STARS, SnapshotHeader
from darkstack.units import CodeUnits, internal_energy_kms2
from darkstack.universe import relations, tng_format
from darkstack.universe.clusters.halo import ClusterHalo
from darkstack.universe.clusters.icm import FULLY_IONISED_ELECTRON_ABUNDANCE, ClusterGas
from darkstack.universe.clusters.nonthermal import NELSON14_B
from darkstack.universe.clusters.shmr import kravtsov18_central_stellar_mass_msun
from darkstack.universe.clusters.vikhlinin06 import VIKHLININ06
from darkstack.universe.fragments import assemble_chunk_file, fragment_path
from darkstack.universe.kinematics import circular_velocity_kms, sample_isotropic_velocities_kms
from darkstack.universe.plan import median_concentration
from darkstack.universe.profiles import DoublePowerLawHalo, HernquistSphere

if TYPE_CHECKING:
    from distributed import Client

#: Particle types a cluster owns, in TNG's order.
CLUSTER_TYPES = (GAS, LOWRES_DM, STARS)
#: Msun (km/s)^2 / kpc^3 per keV cm^-3.
_KEV_CM3_INTERNAL = KEV_ERG / (MSUN_G * KMS_CM_S**2 / KPC_CM**3)


def _preset_names() -> list[str]:
    return list(CLUSTER_PRESETS)


@dataclass(frozen=True, kw_only=True)
class ClustersConfig(Checked):
    """How the cluster population is drawn and written.

    Parameters
    ----------
    preset : str
        The preset the values started from (recorded for provenance).
    seed : int
        Seed of every draw.
    n_clusters : int
        Clusters written.
    log_m200_range : tuple of float
        log10 M200c (Msun) of the NFW profile, drawn uniformly (log-uniform in mass).
    particles_at_min_mass : int
        Particles (gas plus dark matter) of a cluster at the lower mass limit.
    particles_mass_slope : float
        Particles scale as (M200c / M_min)^slope, so particle masses grow with the cluster.
    gas_particle_fraction : float
        Share of those particles that are gas.
    central_star_particles : int
        Star particles of a central galaxy (satellites get a tenth).
    concentration_scatter_dex, stellar_mass_scatter_dex, p500_scatter_dex : float
        Log-normal scatter of c200c (Diemer & Joyce 2019 median), of the central's stellar
        mass (Kravtsov et al. 2018 median) and of the gas density and pressure amplitude.
    core_radius_scatter_dex : float
        Log-normal scatter of the gas core radius rc of Vikhlinin et al. (2006) about
        :data:`.vikhlinin06.VIKHLININ06`: 0.3 dex spreads the central density by ~0.5 dex
        and R500's by ~0.03 dex, the cool-core to disturbed range of the REXCESS
        density profiles (Croston et al. 2008).
    nonthermal_b_scatter_dex : float
        Log-normal scatter of the Nelson et al. (2014) radius B where non-thermal pressure
        rises: 0.2 dex puts P_nt / P_tot at R500 between 0.15 and 0.31 (1 sigma) about 0.21.
    axis_ratio_range : tuple of float
        Intermediate-to-major axis ratio b/a of the dark matter, uniform; c/b is drawn from
        the same range.
    satellites_per_cluster : int
        Satellite subhalos per cluster, masses log-uniform in ``satellite_mass_ratio_range``.
    satellite_mass_ratio_range : tuple of float
        Satellite-to-cluster M200c ratio.
    disturbed_fraction : float
        Clusters with an offset subcluster.
    subcluster_mass_ratio_range : tuple of float
        Subcluster-to-cluster M200c ratio, log-uniform.
    subcluster_distance_r200 : tuple of float
        Distance of the subcluster from the centre, uniform, in R200c.
    metallicity_zsun : float
        Gas metallicity in solar units (Z_sun of TNG).
    extent_r200 : float
        Dark matter and gas are drawn to this many R200c (the maps project through +-3 R200).
    snapshot, snapshot_files, groupcat_files : int
        Snapshot number and chunk files.
    """

    preset: Annotated[str, OneOf(_preset_names)] = "quick"
    seed: Annotated[int, Range(ge=0)] = 0
    n_clusters: Annotated[int, Range(ge=1)] = 6
    log_m200_range: Annotated[tuple[float, float], Range(gt=0), Increasing()] = (13.5, 15.0)
    particles_at_min_mass: Annotated[int, Range(ge=100)] = 10_000
    particles_mass_slope: Annotated[float, Range(ge=0, le=1)] = 0.25
    gas_particle_fraction: Annotated[float, Range(gt=0, lt=1)] = 0.4
    central_star_particles: Annotated[int, Range(ge=10)] = 500
    concentration_scatter_dex: Annotated[float, Range(ge=0)] = 0.11
    stellar_mass_scatter_dex: Annotated[float, Range(ge=0)] = 0.2
    p500_scatter_dex: Annotated[float, Range(ge=0)] = 0.1
    core_radius_scatter_dex: Annotated[float, Range(ge=0)] = 0.3
    nonthermal_b_scatter_dex: Annotated[float, Range(ge=0)] = 0.2
    axis_ratio_range: Annotated[tuple[float, float], Range(gt=0, le=1), Increasing()] = (
        0.6,
        0.95,
    )
    satellites_per_cluster: Annotated[int, Range(ge=0)] = 10
    satellite_mass_ratio_range: Annotated[tuple[float, float], Range(gt=0, lt=1), Increasing()] = (
        1.0e-3,
        3.0e-2,
    )
    disturbed_fraction: Annotated[float, Range(ge=0, le=1)] = 0.3
    subcluster_mass_ratio_range: Annotated[tuple[float, float], Range(gt=0, le=1), Increasing()] = (
        0.1,
        0.3,
    )
    subcluster_distance_r200: Annotated[tuple[float, float], Range(gt=0), Increasing()] = (0.4, 1.0)
    metallicity_zsun: Annotated[float, Range(ge=0)] = 0.3
    extent_r200: Annotated[float, Range(ge=1)] = 3.0
    snapshot: Annotated[int, Range(ge=0, le=999)] = 99
    snapshot_files: Annotated[int, Range(ge=1)] = 2
    groupcat_files: Annotated[int, Range(ge=1)] = 1


#: Values each preset changes. quick: 6 small clusters for tests; scaled: ~300 clusters of
#: 1e5-2.4e5 particles, 4.8e7 in all (docs/cluster_mass.md gives the disk use).
CLUSTER_PRESETS: dict[str, dict[str, Any]] = {
    "quick": {"preset": "quick"},
    "scaled": {
        "preset": "scaled",
        "n_clusters": 300,
        "particles_at_min_mass": 100_000,
        "particles_mass_slope": 0.2,
        "central_star_particles": 2000,
        "satellites_per_cluster": 20,
        "snapshot_files": 32,
        "groupcat_files": 4,
    },
}


@dataclass(frozen=True, kw_only=True)
class Satellite:
    """A satellite subhalo (no gas) or the subcluster (with gas) of a cluster."""

    halo: ClusterHalo
    offset_kpc: tuple[float, float, float]
    velocity_kms: tuple[float, float, float]
    truncation_r200: float
    has_gas: bool


@dataclass(frozen=True, kw_only=True)
class Cluster:
    """One drawn cluster: its mass model, shape, satellites and where it sits."""

    halo: ClusterHalo
    axis_ratios: tuple[float, float]
    rotation: tuple[float, float, float, float]
    satellites: tuple[Satellite, ...]
    n_particles: int
    position_kpc: tuple[float, float, float]
    log_p500_offset_dex: float


def _spacing_kpc(config: ClustersConfig, cosmology: CosmologyParams) -> float:
    r200_max = float(
        overdensity_radius_kpc(
            10.0 ** config.log_m200_range[1], overdensity=200.0, params=cosmology
        )
    )
    # Neighbouring clusters' particles must not overlap: each extends extent_r200 * R200c, so
    # twice that apart plus a margin, which also keeps a +-3 R200 projection of one cluster
    # free of its neighbours.
    return 3.3 * config.extent_r200 * r200_max


def draw_clusters(
    config: ClustersConfig, cosmology: CosmologyParams = TNG_COSMOLOGY
) -> list[Cluster]:
    """Draw the population: masses, concentrations, galaxies, shapes, satellites, positions."""
    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(0,)))
    n = config.n_clusters
    log_m = rng.uniform(*config.log_m200_range, n)
    m200 = 10.0**log_m
    conc = relations.lognormal_scatter(
        rng,
        median_concentration(m200, model="diemer19", cosmology=cosmology),
        config.concentration_scatter_dex,
    )
    mstar = relations.lognormal_scatter(
        rng, kravtsov18_central_stellar_mass_msun(m200), config.stellar_mass_scatter_dex
    )
    offset = config.p500_scatter_dex * rng.standard_normal(n)
    gas_rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(2,)))
    core_radius = relations.lognormal_scatter(
        gas_rng, np.full(n, VIKHLININ06.rc), config.core_radius_scatter_dex
    )
    nonthermal_b = relations.lognormal_scatter(
        gas_rng, np.full(n, NELSON14_B), config.nonthermal_b_scatter_dex
    )
    spacing = _spacing_kpc(config, cosmology)
    side = math.ceil(n ** (1.0 / 3.0))
    clusters = []
    for i in range(n):
        halo = ClusterHalo(
            m200c_msun=float(m200[i]),
            concentration=float(conc[i]),
            stellar_mass_msun=float(mstar[i]),
            extent_r200=config.extent_r200,
            gas_amplitude=float(10.0 ** offset[i]),
            gas_shape=replace(VIKHLININ06, rc=float(core_radius[i])),
            nonthermal_b=float(nonthermal_b[i]),
            cosmology=cosmology,
        )
        satellites = [
            _satellite(
                rng,
                halo,
                ratio=10.0 ** rng.uniform(*np.log10(config.satellite_mass_ratio_range)),
                config=config,
                gas=False,
                cosmology=cosmology,
            )
            for _ in range(config.satellites_per_cluster)
        ]
        if rng.uniform() < config.disturbed_fraction:
            ratio = 10.0 ** rng.uniform(*np.log10(config.subcluster_mass_ratio_range))
            satellites.append(
                _satellite(rng, halo, ratio=ratio, config=config, gas=True, cosmology=cosmology)
            )
        q = rng.uniform(*config.axis_ratio_range, 2)
        grid = np.array(np.unravel_index(i, (side, side, side)), dtype=np.float64)
        clusters.append(
            Cluster(
                halo=halo,
                axis_ratios=(float(q[0]), float(q[0] * q[1])),
                rotation=tuple(Rotation.random(random_state=rng).as_quat()),
                satellites=tuple(satellites),
                n_particles=round(
                    config.particles_at_min_mass
                    * (m200[i] / 10.0 ** config.log_m200_range[0]) ** config.particles_mass_slope
                ),
                position_kpc=tuple((grid + 0.5) * spacing),
                log_p500_offset_dex=float(offset[i]),
            )
        )
    return clusters


def _satellite(
    rng: np.random.Generator,
    host: ClusterHalo,
    *,
    ratio: float,
    config: ClustersConfig,
    gas: bool,
    cosmology: CosmologyParams,
) -> Satellite:
    m = ratio * host.m200c_msun
    if gas:
        distance = rng.uniform(*config.subcluster_distance_r200) * host.r200c_kpc
    else:
        # Satellites trace the host's mass inside R200c.
        grid = np.geomspace(1e-3, 1.0, 256) * host.r200c_kpc
        fraction = host.nfw.enclosed_mass_msun(grid) / host.nfw.enclosed_mass_msun(grid[-1:])
        distance = float(np.interp(rng.uniform(fraction[0], 1.0), fraction, grid))
    direction = rng.standard_normal(3)
    direction /= np.linalg.norm(direction)
    v_circ = math.sqrt(
        G_KPC_KMS2_PER_MSUN * float(host.total_mass_msun(np.array([distance]))[0]) / distance
    )
    velocity = rng.standard_normal(3) * v_circ / math.sqrt(3.0)
    halo = ClusterHalo(
        m200c_msun=m,
        concentration=float(median_concentration(m, model="diemer19", cosmology=cosmology)),
        stellar_mass_msun=float(kravtsov18_central_stellar_mass_msun(m)),
        # A subcluster keeps its gas to its R200c; satellites are tidally stripped to half.
        extent_r200=1.0,
        cosmology=cosmology,
    )
    return Satellite(
        halo=halo,
        offset_kpc=tuple(direction * distance),
        velocity_kms=tuple(velocity),
        truncation_r200=1.0 if gas else 0.5,
        has_gas=gas,
    )


def _radii_from_mass(
    rng: np.random.Generator, r_kpc: np.ndarray, mass: np.ndarray, n: int
) -> np.ndarray:
    """Radii of ``n`` particles following the enclosed-mass table ``mass`` at ``r_kpc``."""
    return np.interp(rng.uniform(mass[0], mass[-1], n), mass, r_kpc)


def _directions(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _gas_particles(
    rng: np.random.Generator, gas: ClusterGas, *, r_max_kpc: float, particle_mass_msun: float
) -> dict[str, np.ndarray]:
    r_grid = np.geomspace(1e-4 * gas.r500_kpc, r_max_kpc, 2048)
    m_grid = gas.gas_mass_msun(r_grid)
    n = max(round(float(m_grid[-1]) / particle_mass_msun), 1)
    r = _radii_from_mass(rng, r_grid, m_grid, n)
    rho = gas.gas_density_msun_per_kpc3(r)
    # Non-thermal pressure is random bulk motion: sigma_1D^2 = P_nt / rho.
    p_nt = gas.nonthermal_fraction(r) * gas.total_pressure_kev_cm3(r) * _KEV_CM3_INTERNAL
    sigma = np.sqrt(p_nt / rho)
    return {
        "position_kpc": r[:, None] * _directions(rng, n),
        "velocity_kms": rng.standard_normal((n, 3)) * sigma[:, None],
        "mass_msun": np.full(n, float(m_grid[-1]) / n),
        "density_msun_per_kpc3": rho,
        "temperature_k": gas.temperature_k(r),
    }


def _stars(
    rng: np.random.Generator,
    galaxy: HernquistSphere,
    components: list[Any],
    n: int,
    r_max_kpc: float,
) -> dict[str, np.ndarray]:
    position = galaxy.sample_positions_kpc(rng, n)
    velocity = sample_isotropic_velocities_kms(
        rng, positions_kpc=position, tracer=galaxy, components=components, r_max_kpc=r_max_kpc
    )
    return {
        "position_kpc": position,
        "velocity_kms": velocity,
        "mass_msun": np.full(n, galaxy.total_mass_msun / n),
    }


def generate_cluster(
    cluster: Cluster, *, index: int, config: ClustersConfig
) -> list[dict[int, dict[str, np.ndarray]]]:
    """Particles of one cluster, centred on it, per subhalo (the cluster first) and type."""
    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(1, index)))
    halo = cluster.halo
    r_max = config.extent_r200 * halo.nfw_r200c_kpc
    gas = halo.gas()
    n_gas = round(config.gas_particle_fraction * cluster.n_particles)
    m_gas = float(gas.gas_mass_msun(np.array([r_max]))[0]) / n_gas
    host: dict[int, dict[str, np.ndarray]] = {
        GAS: _gas_particles(rng, gas, r_max_kpc=r_max, particle_mass_msun=m_gas)
    }
    # Dark matter is the NFW mass the gas does not hold.
    r_grid = np.geomspace(1e-4 * halo.nfw_r200c_kpc, r_max, 2048)
    m_dm = np.maximum.accumulate(
        np.maximum(halo.nfw.enclosed_mass_msun(r_grid) - gas.gas_mass_msun(r_grid), 0.0)
    )
    n_dm = cluster.n_particles - n_gas
    m_dm_particle = float(m_dm[-1]) / n_dm
    r = _radii_from_mass(rng, r_grid, m_dm, n_dm)
    spherical = r[:, None] * _directions(rng, n_dm)
    velocity = sample_isotropic_velocities_kms(
        rng,
        positions_kpc=spherical,
        tracer=halo.nfw,
        components=[halo.nfw, halo.central],
        r_max_kpc=r_max,
    )
    # Triaxial: stretch the axes at fixed volume, then orient at random.
    q1, q2 = cluster.axis_ratios
    a = (q1 * q2) ** (-1.0 / 3.0)
    rotation = Rotation.from_quat(cluster.rotation)
    host[LOWRES_DM] = {
        "position_kpc": rotation.apply(spherical * np.array([a, q1 * a, q2 * a])),
        "velocity_kms": rotation.apply(velocity),
        "mass_msun": np.full(n_dm, m_dm_particle),
    }
    host[STARS] = _stars(
        rng,
        halo.central,
        [halo.nfw, halo.central],
        config.central_star_particles,
        halo.nfw_r200c_kpc,
    )
    subhalos = [host]
    for satellite in cluster.satellites:
        sub = satellite.halo
        r_t = satellite.truncation_r200 * sub.nfw_r200c_kpc
        dm = DoublePowerLawHalo.from_mass(
            mass_msun=sub.m200c_msun,
            radius_kpc=sub.nfw_r200c_kpc,
            concentration=sub.concentration,
            alpha=1.0,
            beta=3.0,
            gamma=1.0,
            truncation_radius_kpc=r_t,
        )
        parts: dict[int, dict[str, np.ndarray]] = {}
        if satellite.has_gas:
            sub_gas = sub.gas()
            parts[GAS] = _gas_particles(rng, sub_gas, r_max_kpc=r_t, particle_mass_msun=m_gas)
            dm_mass = dm.total_mass_msun - float(sub_gas.gas_mass_msun(np.array([r_t]))[0])
        else:
            dm_mass = dm.total_mass_msun
        n_sub = max(round(dm_mass / m_dm_particle), 10)
        position = dm.sample_positions_kpc(rng, n_sub)
        parts[LOWRES_DM] = {
            "position_kpc": position,
            "velocity_kms": sample_isotropic_velocities_kms(
                rng, positions_kpc=position, tracer=dm, components=[dm, sub.central], r_max_kpc=r_t
            ),
            "mass_msun": np.full(n_sub, dm_mass / n_sub),
        }
        galaxy = HernquistSphere(
            mass_msun=sub.stellar_mass_msun,
            scale_radius_kpc=sub.central.scale_radius_kpc,
            truncation_radius_kpc=r_t,
        )
        parts[STARS] = _stars(
            rng, galaxy, [dm, galaxy], max(config.central_star_particles // 10, 10), r_t
        )
        for fields in parts.values():
            fields["position_kpc"] = fields["position_kpc"] + np.asarray(satellite.offset_kpc)
            fields["velocity_kms"] = fields["velocity_kms"] + np.asarray(satellite.velocity_kms)
        subhalos.append(parts)
    return subhalos


_FRAGMENTS = ".darkstack-fragments"
_GAS_FIELDS = (
    "CenterOfMass",
    "Coordinates",
    "Density",
    "ElectronAbundance",
    "GFM_Metallicity",
    "InternalEnergy",
    "Masses",
    "NeutralHydrogenAbundance",
    "StarFormationRate",
    "Velocities",
)


def _tng_fields(
    ptype: int,
    fields: dict[str, np.ndarray],
    units: CodeUnits,
    *,
    centre_kpc: np.ndarray,
    metallicity: float,
) -> dict[str, np.ndarray]:
    n = len(fields["mass_msun"])
    coordinates = units.kpc_to_length(fields["position_kpc"] + centre_kpc)
    tng = {
        "Coordinates": coordinates,
        "Velocities": units.kms_to_particle_velocity(fields["velocity_kms"]),
        "Masses": units.msun_to_mass(fields["mass_msun"]),
    }
    if ptype == GAS:
        x_e = np.full(n, FULLY_IONISED_ELECTRON_ABUNDANCE)
        tng |= {
            "CenterOfMass": coordinates,
            "Density": units.msun_per_kpc3_to_density(fields["density_msun_per_kpc3"]),
            "ElectronAbundance": x_e,
            "GFM_Metallicity": np.full(n, metallicity),
            "InternalEnergy": internal_energy_kms2(fields["temperature_k"], x_e),
            "NeutralHydrogenAbundance": np.zeros(n),
            "StarFormationRate": np.zeros(n),
        }
    elif ptype == STARS:
        tng |= {
            "GFM_InitialMass": tng["Masses"],
            # Old, metal-rich populations, as in cluster galaxies.
            "GFM_StellarFormationTime": np.full(n, 0.25),
            "GFM_Metallicity": np.full(n, Z_SUN),
        }
    return tng


def _generate_task(
    item: tuple[int, Cluster], *, config: ClustersConfig, units: CodeUnits, fragments: Path
) -> dict[str, Any]:
    index, cluster = item
    subhalos = generate_cluster(cluster, index=index, config=config)
    centre = np.asarray(cluster.position_kpc)
    for ptype in CLUSTER_TYPES:
        parts = [sub[ptype] for sub in subhalos if ptype in sub]
        joined = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
        tng = _tng_fields(
            ptype, joined, units, centre_kpc=centre, metallicity=config.metallicity_zsun * Z_SUN
        )
        for name, values in tng.items():
            np.save(
                fragment_path(fragments, kind="cluster", index=index, ptype=ptype, name=name),
                values,
            )
    len_type = [[len(sub[p]["mass_msun"]) if p in sub else 0 for p in range(6)] for sub in subhalos]
    mass_type = [
        [float(sub[p]["mass_msun"].sum()) if p in sub else 0.0 for p in range(6)]
        for sub in subhalos
    ]
    star_r = np.linalg.norm(subhalos[0][STARS]["position_kpc"], axis=1)
    return {
        "len_type": len_type,
        "mass_type_msun": mass_type,
        "central_half_mass_radius_kpc": float(np.median(star_r)),
        "gas_particle_mass_msun": float(subhalos[0][GAS]["mass_msun"][0]),
        "dm_particle_mass_msun": float(subhalos[0][LOWRES_DM]["mass_msun"][0]),
    }


def build_clusters(
    config: ClustersConfig,
    out: str | Path,
    *,
    client: Client | None = None,
    overwrite: bool = False,
    progress: bool = True,
    cosmology: CosmologyParams = TNG_COSMOLOGY,
) -> list[Cluster]:
    """Write the clusters in TNG's layout, ``catalogs/clusters.parquet`` and ``universe.yaml``.

    Parameters
    ----------
    config : ClustersConfig
        What to draw.
    out : str or Path
        Simulation root; illustris_python's basePath is ``out/output``.
    client : distributed.Client, optional
        Runs one task per cluster (and per chunk file) on it; ``None`` runs here.
    overwrite : bool
        Replace an existing output.
    progress : bool
        Show progress bars.
    cosmology : CosmologyParams
        TNG's by default.

    Returns
    -------
    list of Cluster
        The drawn clusters, in group order.
    """
    root = Path(out)
    if root.exists() and any(root.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{root} is not empty; pass overwrite=True to replace it")
        shutil.rmtree(root)
    fragments = root / _FRAGMENTS
    fragments.mkdir(parents=True, exist_ok=True)
    clusters = draw_clusters(config, cosmology)
    units = CodeUnits(hubble_param=cosmology.hubble_param, scale_factor=1.0)
    rows = map_tasks(
        _generate_task,
        list(enumerate(clusters)),
        client=client,
        description="generate clusters",
        progress=progress,
        config=config,
        units=units,
        fragments=fragments,
    )
    counts = {p: [sum(sub[p] for sub in row["len_type"]) for row in rows] for p in CLUSTER_TYPES}
    side = math.ceil(config.n_clusters ** (1.0 / 3.0))
    header = SnapshotHeader(
        box_size=float(units.kpc_to_length(side * _spacing_kpc(config, cosmology))),
        hubble_param=cosmology.hubble_param,
        omega_m=cosmology.omega_m,
        omega_lambda=cosmology.omega_lambda,
        omega_b=cosmology.omega_b,
        redshift=0.0,
        scale_factor=1.0,
        mass_table=(0.0,) * 6,
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
        kind="cluster",
        ptypes=CLUSTER_TYPES,
    )
    _write_group_catalog(root, clusters, rows, config=config, header=header, units=units)
    _write_cluster_catalog(root, clusters, rows)
    dump_config(config, root / "universe.yaml")
    shutil.rmtree(fragments)
    return clusters


def _write_group_catalog(
    root: Path,
    clusters: list[Cluster],
    rows: list[dict[str, Any]],
    *,
    config: ClustersConfig,
    header: SnapshotHeader,
    units: CodeUnits,
) -> None:
    n_groups = len(clusters)
    sub_len = np.array([sub for row in rows for sub in row["len_type"]], dtype=np.int64)
    sub_mass = np.array([sub for row in rows for sub in row["mass_type_msun"]])
    n_subs = np.array([len(row["len_type"]) for row in rows], dtype=np.int64)
    group_of_sub = np.repeat(np.arange(n_groups), n_subs)
    first_sub = np.concatenate([[0], np.cumsum(n_subs)[:-1]])
    centre = np.array([c.position_kpc for c in clusters])
    sub_pos = np.concatenate(
        [
            [c.position_kpc, *(np.add(c.position_kpc, s.offset_kpc) for s in c.satellites)]
            for c in clusters
        ]
    )
    sub_vel = np.concatenate(
        [[(0.0, 0.0, 0.0), *(s.velocity_kms for s in c.satellites)] for c in clusters]
    )
    group_len = np.add.reduceat(sub_len, first_sub, axis=0)
    group_mass = np.add.reduceat(sub_mass, first_sub, axis=0)
    half_mass = np.zeros_like(sub_mass)
    half_mass[first_sub, STARS] = [row["central_half_mass_radius_kpc"] for row in rows]
    parent = np.concatenate([[0] * int(k) for k in n_subs])
    vmax = np.array(
        [
            v
            for c in clusters
            for v in [_vmax(c.halo, 1.0), *(_vmax(s.halo, s.truncation_r200) for s in c.satellites)]
        ]
    )
    groups = {
        "GroupFirstSub": first_sub,
        "GroupLen": group_len.sum(axis=1),
        "GroupLenType": group_len,
        "GroupMass": units.msun_to_mass(group_mass.sum(axis=1)),
        "GroupMassType": units.msun_to_mass(group_mass),
        "GroupNsubs": n_subs,
        "GroupPos": units.kpc_to_length(centre),
        "GroupVel": np.zeros((n_groups, 3)),
        "Group_M_Crit200": units.msun_to_mass([c.halo.true_m200c_msun for c in clusters]),
        "Group_R_Crit200": units.kpc_to_length([c.halo.r200c_kpc for c in clusters]),
    }
    subhalos = {
        "SubhaloCM": units.kpc_to_length(sub_pos),
        "SubhaloFlag": np.ones(len(sub_len), dtype=np.uint8),
        "SubhaloGrNr": group_of_sub,
        "SubhaloHalfmassRadType": units.kpc_to_length(half_mass),
        "SubhaloLen": sub_len.sum(axis=1),
        "SubhaloLenType": sub_len,
        "SubhaloMass": units.msun_to_mass(sub_mass.sum(axis=1)),
        "SubhaloMassType": units.msun_to_mass(sub_mass),
        "SubhaloParent": parent,
        "SubhaloPos": units.kpc_to_length(sub_pos),
        "SubhaloSFR": np.zeros(len(sub_len)),
        "SubhaloVel": sub_vel,
        "SubhaloVmax": vmax[:, 0],
        "SubhaloVmaxRad": units.kpc_to_length(vmax[:, 1]),
    }
    tng_format.write_catalogs(
        root,
        snap=config.snapshot,
        header=header,
        groups=groups,
        subhalos=subhalos,
        num_files=config.groupcat_files,
    )


def _vmax(halo: ClusterHalo, truncation_r200: float) -> tuple[float, float]:
    """Peak circular velocity (km/s) of the NFW plus central galaxy inside the truncation, and
    its radius (kpc)."""
    r = np.geomspace(1e-3, truncation_r200, 512) * halo.nfw_r200c_kpc
    v = circular_velocity_kms([halo.nfw, halo.central], r)
    return float(v.max()), float(r[np.argmax(v)])


#: Units of catalogs/clusters.parquet's columns.
CLUSTER_CATALOG_UNITS = {
    "group_id": "",
    "m200c_msun": "Msun",
    "r200c_kpc": "kpc",
    "m500c_msun": "Msun",
    "r500c_kpc": "kpc",
    "centre_x_kpc": "kpc",
    "centre_y_kpc": "kpc",
    "centre_z_kpc": "kpc",
    "concentration": "",
    "central_stellar_mass_msun": "Msun",
    "log_p500_offset_dex": "dex",
    "gas_core_radius_r500": "",
    "nonthermal_b_r200m": "",
    "hse_bias_r500": "",
    "gas_fraction_r500": "",
    "subcluster_m200c_msun": "Msun",
    "gas_particle_mass_msun": "Msun",
    "dm_particle_mass_msun": "Msun",
}


def _write_cluster_catalog(root: Path, clusters: list[Cluster], rows: list[dict[str, Any]]) -> None:
    """``catalogs/clusters.parquet``: each cluster's true masses, radii and centre (physical)."""
    gases = [c.halo.gas() for c in clusters]
    centre = np.array([c.position_kpc for c in clusters])
    columns = {
        "group_id": np.arange(len(clusters), dtype=np.int64),
        "m200c_msun": [c.halo.true_m200c_msun for c in clusters],
        "r200c_kpc": [c.halo.r200c_kpc for c in clusters],
        "m500c_msun": [c.halo.m500c_msun for c in clusters],
        "r500c_kpc": [c.halo.r500c_kpc for c in clusters],
        "centre_x_kpc": centre[:, 0],
        "centre_y_kpc": centre[:, 1],
        "centre_z_kpc": centre[:, 2],
        "concentration": [c.halo.concentration for c in clusters],
        "central_stellar_mass_msun": [c.halo.stellar_mass_msun for c in clusters],
        "log_p500_offset_dex": [c.log_p500_offset_dex for c in clusters],
        "gas_core_radius_r500": [c.halo.gas_shape.rc for c in clusters],
        "nonthermal_b_r200m": [c.halo.nonthermal_b for c in clusters],
        "hse_bias_r500": [g.hse_bias() for g in gases],
        "gas_fraction_r500": [
            float(g.gas_mass_msun(np.array([g.r500_kpc]))[0]) / g.m500_msun for g in gases
        ],
        "subcluster_m200c_msun": [
            next((s.halo.m200c_msun for s in c.satellites if s.has_gas), 0.0) for c in clusters
        ],
        "gas_particle_mass_msun": [row["gas_particle_mass_msun"] for row in rows],
        "dm_particle_mass_msun": [row["dm_particle_mass_msun"] for row in rows],
    }
    path = root / "catalogs" / "clusters.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_table_atomic(table_with_units(columns, units=CLUSTER_CATALOG_UNITS), path)


__all__ = [
    "CLUSTER_PRESETS",
    "Cluster",
    "ClustersConfig",
    "build_clusters",
    "draw_clusters",
    "generate_cluster",
]
