"""Ingest for the cluster_mass task: each cluster's particles within a few R200c.

Reads a basePath through illustris_python like any run. A cluster is a FoF group with
``Group_M_Crit200`` above ``min_m200c_msun``; its cutout (``STORE/cutouts/group_NNNNNNNN.hdf5``)
holds groups ``gas``, ``dm`` and ``stars`` in physical units centred on ``GroupPos``, within
``extent_r200`` R200c (3 by default: the maps project through +-3 R200c):

- gas: what the Compton-y and X-ray maps need (mass, density, temperature from InternalEnergy
  and ElectronAbundance, electron abundance, metallicity, star-formation rate);
- dm: PartType1 (one MassTable mass) and PartType2 (per-particle masses, as zooms and the
  ``clusters`` preset write it);
- stars: positions and masses.

Particles are read per group (``loadHalo``): on a periodic box run a cluster's non-FoF
neighbours within 3 R200c are missing (the ``clusters`` preset puts every particle of a cluster
in its group). M500c and R500c are measured from the cutout (spherical overdensity of all
species); a mock universe's truth (``catalogs/clusters.parquet`` beside the basePath) is copied
into ``true_*`` columns. A failure in one cluster is recorded in its ``status`` and never stops
the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np

from darkstack.config import Checked, Range, config_to_dict
from darkstack.cosmology import TNG_COSMOLOGY, critical_density_msun_per_kpc3
from darkstack.hdf5 import atomic_hdf5
from darkstack.measure import spherical_overdensity
from darkstack.store import CLUSTERS_CATALOG, CUTOUT_UNITS, StoreLayout, write_catalog
from darkstack.tasks import map_tasks
from darkstack.tng_layout import DM, GAS, LOWRES_DM, STARS, SnapshotHeader, snapshot_path
from darkstack.units import CodeUnits, temperature_k

if TYPE_CHECKING:
    from distributed import Client

#: Cutout groups and the datasets each holds (names and units from CUTOUT_UNITS).
CUTOUT_FIELDS = {
    "gas": (
        "position_kpc",
        "mass_msun",
        "density_msun_per_kpc3",
        "temperature_k",
        "electron_abundance",
        "metallicity",
        "sfr_msun_yr",
    ),
    "dm": ("position_kpc", "mass_msun"),
    "stars": ("position_kpc", "mass_msun"),
}
_GAS_FIELDS = [
    "Coordinates",
    "Masses",
    "Density",
    "InternalEnergy",
    "ElectronAbundance",
    "GFM_Metallicity",
    "StarFormationRate",
]


@dataclass(frozen=True, kw_only=True)
class ClusterIngestConfig(Checked):
    """Which clusters are cut out, and how far.

    Parameters
    ----------
    snapshot : int
        Snapshot read.
    min_m200c_msun : float
        Groups with a smaller Group_M_Crit200 are not clusters.
    extent_r200 : float
        Cutout radius in R200c (the maps project through +-3 R200c).
    """

    snapshot: Annotated[int, Range(ge=0, le=999)] = 99
    min_m200c_msun: Annotated[float, Range(gt=0)] = 1.0e13
    # The paper's framing alone needs 2 R200c across, so less than one R200c cannot frame it.
    extent_r200: Annotated[float, Range(ge=1)] = 3.0


def _header(base_path: str, snapshot: int) -> SnapshotHeader:
    import h5py

    with h5py.File(snapshot_path(base_path, snapshot, 0), "r") as file:
        return SnapshotHeader.from_attributes(dict(file["Header"].attrs), source=str(file))


def load_cluster(
    base_path: str | Path, snapshot: int, group_id: int, *, extent_r200: float
) -> dict[str, Any]:
    """One cluster's particles in physical kpc and Msun, centred on its GroupPos.

    Returns
    -------
    dict
        ``gas``, ``dm``, ``stars`` (dicts of the :data:`CUTOUT_FIELDS` arrays), ``m200c_msun``,
        ``r200c_kpc``, ``centre_kpc``, ``bcg_offset_kpc`` (the group's first subhalo) and
        ``redshift``.
    """
    import illustris_python as il

    base = str(base_path)
    header = _header(base, snapshot)
    units = CodeUnits(hubble_param=header.hubble_param, scale_factor=header.scale_factor)
    box_kpc = float(units.length_to_kpc(header.box_size))
    group = il.groupcat.loadSingle(base, snapshot, haloID=group_id)
    centre = units.length_to_kpc(group["GroupPos"])
    r200 = float(units.length_to_kpc(group["Group_R_Crit200"]))
    if not r200 > 0:
        raise ValueError(f"group {group_id}: Group_R_Crit200 = {r200} kpc; expected > 0")
    radius = extent_r200 * r200

    def read(ptype: int, fields: list[str]) -> dict[str, Any] | None:
        data = il.snapshot.loadHalo(base, snapshot, group_id, ptype, fields=fields)
        if not isinstance(data, dict) or data.get("count", 0) == 0:
            return None
        offset = _wrap(units.length_to_kpc(data["Coordinates"]) - centre, box_kpc)
        keep = np.linalg.norm(offset, axis=1) <= radius
        return {
            "position_kpc": offset[keep],
            **{k: v[keep] for k, v in data.items() if k not in ("count", "Coordinates")},
        }

    gas: dict[str, Any] = {
        name: np.zeros((0, 3) if name == "position_kpc" else 0) for name in CUTOUT_FIELDS["gas"]
    }
    raw = read(GAS, _GAS_FIELDS)
    if raw is not None:
        gas = {
            "position_kpc": raw["position_kpc"],
            "mass_msun": units.mass_to_msun(raw["Masses"]),
            "density_msun_per_kpc3": units.density_to_msun_per_kpc3(raw["Density"]),
            "temperature_k": temperature_k(raw["InternalEnergy"], raw["ElectronAbundance"]),
            "electron_abundance": np.asarray(raw["ElectronAbundance"], dtype=np.float64),
            "metallicity": np.asarray(raw["GFM_Metallicity"], dtype=np.float64),
            "sfr_msun_yr": np.asarray(raw["StarFormationRate"], dtype=np.float64),
        }
    dm_position, dm_mass = [np.zeros((0, 3))], [np.zeros(0)]
    for ptype in (DM, LOWRES_DM):
        raw = read(ptype, ["Coordinates", "Masses" if ptype == LOWRES_DM else "ParticleIDs"])
        if raw is None:
            continue
        dm_position.append(raw["position_kpc"])
        dm_mass.append(
            units.mass_to_msun(raw["Masses"])
            if ptype == LOWRES_DM
            else np.full(len(raw["position_kpc"]), float(units.mass_to_msun(header.mass_table[DM])))
        )
    raw = read(STARS, ["Coordinates", "Masses"])
    stars = (
        {"position_kpc": raw["position_kpc"], "mass_msun": units.mass_to_msun(raw["Masses"])}
        if raw is not None
        else {"position_kpc": np.zeros((0, 3)), "mass_msun": np.zeros(0)}
    )
    first_sub = int(group["GroupFirstSub"])
    bcg = np.zeros(3)
    if first_sub >= 0:
        sub = il.groupcat.loadSingle(base, snapshot, subhaloID=first_sub)
        bcg = _wrap(units.length_to_kpc(sub["SubhaloPos"]) - centre, box_kpc)
    return {
        "gas": gas,
        "dm": {"position_kpc": np.concatenate(dm_position), "mass_msun": np.concatenate(dm_mass)},
        "stars": stars,
        "m200c_msun": float(units.mass_to_msun(group["Group_M_Crit200"])),
        "r200c_kpc": r200,
        "centre_kpc": centre,
        "bcg_offset_kpc": bcg,
        "redshift": float(header.redshift),
    }


def _wrap(offset_kpc: np.ndarray, box_kpc: float) -> np.ndarray:
    return (offset_kpc + 0.5 * box_kpc) % box_kpc - 0.5 * box_kpc


def write_cluster_cutout(path: Path, cluster: dict[str, Any]) -> None:
    """Write the ``gas``, ``dm`` and ``stars`` groups of ``cluster`` (units as attributes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_hdf5(path) as file:
        for kind, names in CUTOUT_FIELDS.items():
            group = file.create_group(kind)
            for name in names:
                data = group.create_dataset(name, data=np.asarray(cluster[kind][name]))
                data.attrs["units"] = CUTOUT_UNITS[name]
        for key in ("m200c_msun", "r200c_kpc", "redshift"):
            file.attrs[key] = cluster[key]


def read_cluster_cutout(path: Path) -> dict[str, dict[str, np.ndarray]]:
    """The ``gas``, ``dm`` and ``stars`` arrays of a cutout written by this module."""
    import h5py

    with h5py.File(path, "r") as file:
        return {
            kind: {name: file[kind][name][()] for name in names}
            for kind, names in CUTOUT_FIELDS.items()
        }


def ingest_cluster(
    group_id: int, *, base_path: str, store: str, config: ClusterIngestConfig
) -> dict[str, Any]:
    """Cut one cluster out into the store; its catalog row (a failure becomes its ``status``)."""
    row: dict[str, Any] = {
        "group_id": group_id,
        **{name: np.nan for name in ("m200c_msun", "r200c_kpc", "m500c_msun", "r500c_kpc")},
        **{f"centre_{axis}_kpc": np.nan for axis in "xyz"},
        **{f"bcg_offset_{axis}_kpc": np.nan for axis in "xyz"},
        "n_gas": 0,
        "n_dm": 0,
        "n_stars": 0,
        "status": "ok",
    }
    try:
        cluster = load_cluster(base_path, config.snapshot, group_id, extent_r200=config.extent_r200)
    except (OSError, KeyError, IndexError, ValueError) as error:
        row["status"] = f"unreadable: {type(error).__name__}: {error}"
        return row
    kinds = ("gas", "dm", "stars")
    distance = np.concatenate([np.linalg.norm(cluster[k]["position_kpc"], axis=1) for k in kinds])
    mass = np.concatenate([cluster[k]["mass_msun"] for k in kinds])
    # The cosmology's Omega_m sets rho_crit(z); TNG's, as the snapshot headers of every run read.
    rho = critical_density_msun_per_kpc3(cluster["redshift"], TNG_COSMOLOGY)
    so500 = spherical_overdensity(
        distance_kpc=distance, mass_msun=mass, density_msun_per_kpc3=500.0 * rho
    )
    row |= {
        "m200c_msun": cluster["m200c_msun"],
        "r200c_kpc": cluster["r200c_kpc"],
        "m500c_msun": so500.mass_msun,
        "r500c_kpc": so500.r_kpc,
        **{f"centre_{a}_kpc": float(c) for a, c in zip("xyz", cluster["centre_kpc"], strict=True)},
        **{
            f"bcg_offset_{a}_kpc": float(c)
            for a, c in zip("xyz", cluster["bcg_offset_kpc"], strict=True)
        },
        "n_gas": len(cluster["gas"]["mass_msun"]),
        "n_dm": len(cluster["dm"]["mass_msun"]),
        "n_stars": len(cluster["stars"]["mass_msun"]),
    }
    if not np.isfinite(so500.r_kpc):
        row["status"] = "no_r500"
        return row
    try:
        write_cluster_cutout(StoreLayout(store).cluster_cutout(group_id), cluster)
    except OSError as error:
        row["status"] = f"unwritable: {error}"
    return row


def ingest_clusters(
    config: ClusterIngestConfig,
    *,
    sim: str | Path,
    store: str | Path,
    client: Client | None = None,
    progress: bool = True,
) -> Path:
    """Cut out every cluster of ``sim`` and write ``catalogs/clusters.parquet`` into ``store``."""
    import illustris_python as il

    base = str(sim)
    header = _header(base, config.snapshot)
    units = CodeUnits(hubble_param=header.hubble_param, scale_factor=header.scale_factor)
    m200 = units.mass_to_msun(
        np.atleast_1d(il.groupcat.loadHalos(base, config.snapshot, fields=["Group_M_Crit200"]))
    )
    groups = [int(i) for i in np.flatnonzero(m200 >= config.min_m200c_msun)]
    if not groups:
        raise ValueError(
            f"{sim}: no group of snapshot {config.snapshot} has Group_M_Crit200 >= "
            f"{config.min_m200c_msun:.3g} Msun (min_m200c_msun)"
        )
    rows = map_tasks(
        ingest_cluster,
        groups,
        client=client,
        description="cut out clusters",
        progress=progress,
        base_path=base,
        store=str(store),
        config=config,
    )
    columns: dict[str, Any] = {name: [row[name] for row in rows] for name in rows[0]}
    truth = Path(sim).parent / "catalogs" / "clusters.parquet"
    if truth.is_file():
        import pyarrow.parquet as pq

        table = pq.read_table(truth).to_pydict()
        index = {g: i for i, g in enumerate(table["group_id"])}
        for ours, theirs in (
            ("true_m500c_msun", "m500c_msun"),
            ("true_r500c_kpc", "r500c_kpc"),
            ("subcluster_m200c_msun", "subcluster_m200c_msun"),
        ):
            columns[ours] = [
                table[theirs][index[g]] if g in index else np.nan for g in columns["group_id"]
            ]
    metadata = {"config": config_to_dict(config), "sim": str(Path(sim).resolve())}
    return write_catalog(store, CLUSTERS_CATALOG, columns, metadata=metadata)


__all__ = [
    "CUTOUT_FIELDS",
    "ClusterIngestConfig",
    "ingest_cluster",
    "ingest_clusters",
    "load_cluster",
    "read_cluster_cutout",
    "write_cluster_cutout",
]
