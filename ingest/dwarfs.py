"""Ingest for the cusp_core task: measure each dwarf's inner dark-matter slope.

Reads a basePath through illustris_python like any run (a zoom's PartType1 and PartType2 both
count as dark matter, PartType2 with its per-particle masses), measures d ln rho / d ln r at
``slope_radius_kpc`` by the log-log shell fit of :func:`darkstack.measure.log_density_slope`,
and writes ``catalogs/dwarfs.parquet``. Star particles are copied, centred, into
``cutouts/``-like arrays the phase-space builder reads (``dwarf_stars.npz`` per dwarf would
duplicate the snapshot, so the builder reads the snapshot again instead).

A failure in one dwarf is recorded in its ``status`` and never stops the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np

from darkstack.config import Checked, Range, config_to_dict
from darkstack.measure import log_density_slope
from darkstack.store import DWARFS_CATALOG, write_catalog
from darkstack.tasks import map_tasks
from darkstack.tng_layout import DM, LOWRES_DM, STARS

if TYPE_CHECKING:
    from distributed import Client
    from numpy.typing import NDArray

#: Column of the target in the catalog; its radius is the config's slope_radius_kpc.
TARGET_COLUMN = "dm_log_slope_150pc"


@dataclass(frozen=True, kw_only=True)
class DwarfIngestConfig(Checked):
    """How dwarfs are measured.

    Parameters
    ----------
    snapshot : int
        Snapshot read.
    slope_radius_kpc : float
        Radius of the slope (150 pc as in the paper; a run whose softening exceeds it, such as
        TNG50, needs a larger one).
    half_width_dex : float
        Half-width of the fitted window in log10 r.
    n_shells : int
        Shells of the fit (>= 3).
    min_stars : int
        Dwarfs with fewer star particles are flagged ``too_few_stars``.
    """

    snapshot: Annotated[int, Range(ge=0, le=999)] = 99
    slope_radius_kpc: Annotated[float, Range(gt=0)] = 0.15
    half_width_dex: Annotated[float, Range(gt=0)] = 0.3
    # Three shells at least: the fit's error needs a residual.
    n_shells: Annotated[int, Range(ge=3)] = 8
    # A dwarf without stars has no phase space to observe.
    min_stars: Annotated[int, Range(ge=1)] = 100

    @property
    def fit_window_kpc(self) -> NDArray[np.float64]:
        """Inner and outer radius of the slope fit's window, kpc."""
        return self.slope_radius_kpc * 10.0 ** (self.half_width_dex * np.array([-1.0, 1.0]))


def load_dwarf(base_path: str | Path, snapshot: int, subhalo_id: int) -> dict[str, Any]:
    """One dwarf's particles in physical kpc, km/s and Msun, centred on its subhalo position.

    Returns
    -------
    dict
        ``dm_distance_kpc``, ``dm_mass_msun``, ``star_position_kpc``, ``star_velocity_kms``,
        ``star_mass_msun`` and ``m200c_msun``.
    """
    import h5py
    import illustris_python as il

    from darkstack.tng_layout import SnapshotHeader, snapshot_path
    from darkstack.units import CodeUnits

    with h5py.File(snapshot_path(base_path, snapshot, 0), "r") as file:
        header = SnapshotHeader.from_attributes(dict(file["Header"].attrs), source=str(file))
    units = CodeUnits(hubble_param=header.hubble_param, scale_factor=header.scale_factor)
    subhalo = il.groupcat.loadSingle(str(base_path), snapshot, subhaloID=subhalo_id)
    group = il.groupcat.loadSingle(str(base_path), snapshot, haloID=int(subhalo["SubhaloGrNr"]))
    centre = units.length_to_kpc(subhalo["SubhaloPos"])
    box_kpc = float(units.length_to_kpc(header.box_size))
    distance, mass = [], []
    for ptype in (DM, LOWRES_DM):
        # Two fields, so illustris_python returns a dict (one field comes back bare).
        fields = ["Coordinates", "Masses" if ptype == LOWRES_DM else "ParticleIDs"]
        data = il.snapshot.loadSubhalo(str(base_path), snapshot, subhalo_id, ptype, fields=fields)
        if not isinstance(data, dict) or data.get("count", 0) == 0:
            continue
        offset = _wrap(units.length_to_kpc(data["Coordinates"]) - centre, box_kpc)
        distance.append(np.linalg.norm(offset, axis=1))
        particle_mass = (
            units.mass_to_msun(data["Masses"])
            if ptype == LOWRES_DM
            else np.full(len(offset), float(units.mass_to_msun(header.mass_table[DM])))
        )
        mass.append(particle_mass)
    stars = il.snapshot.loadSubhalo(
        str(base_path), snapshot, subhalo_id, STARS, fields=["Coordinates", "Velocities", "Masses"]
    )
    if isinstance(stars, dict) and stars.get("count", 0) > 0:
        position = _wrap(units.length_to_kpc(stars["Coordinates"]) - centre, box_kpc)
        velocity = units.particle_velocity_to_kms(stars["Velocities"])
        star_mass = units.mass_to_msun(stars["Masses"])
        velocity = velocity - np.average(velocity, axis=0, weights=star_mass)
    else:
        position = velocity = np.zeros((0, 3))
        star_mass = np.zeros(0)
    return {
        "dm_distance_kpc": np.concatenate(distance) if distance else np.zeros(0),
        "dm_mass_msun": np.concatenate(mass) if mass else np.zeros(0),
        "star_position_kpc": position,
        "star_velocity_kms": velocity,
        "star_mass_msun": star_mass,
        "m200c_msun": float(units.mass_to_msun(group["Group_M_Crit200"])),
    }


def _wrap(offset_kpc: np.ndarray, box_kpc: float) -> np.ndarray:
    return (offset_kpc + 0.5 * box_kpc) % box_kpc - 0.5 * box_kpc


def measure_dwarf(subhalo_id: int, *, base_path: str, config: DwarfIngestConfig) -> dict[str, Any]:
    """One catalog row (a failure becomes its ``status``)."""
    row: dict[str, Any] = {
        "subhalo_id": subhalo_id,
        "m200c_msun": np.nan,
        "stellar_mass_msun": np.nan,
        "r_half_kpc": np.nan,
        "n_stars": 0,
        "n_dm_fit_window": 0,
        TARGET_COLUMN: np.nan,
        f"{TARGET_COLUMN}_error": np.nan,
        "status": "ok",
    }
    try:
        dwarf = load_dwarf(base_path, config.snapshot, subhalo_id)
    except (OSError, KeyError, ValueError) as error:
        row["status"] = f"unreadable: {error}"
        return row
    position = dwarf["star_position_kpc"]
    window = config.fit_window_kpc
    inside = (dwarf["dm_distance_kpc"] >= window[0]) & (dwarf["dm_distance_kpc"] < window[1])
    fit = log_density_slope(
        distance_kpc=dwarf["dm_distance_kpc"],
        mass_msun=dwarf["dm_mass_msun"],
        r_kpc=config.slope_radius_kpc,
        half_width_dex=config.half_width_dex,
        n_shells=config.n_shells,
    )
    row |= {
        "m200c_msun": dwarf["m200c_msun"],
        "stellar_mass_msun": float(dwarf["star_mass_msun"].sum()),
        # Projected (x-y) half-mass radius of equal-mass stars: the median projected radius.
        "r_half_kpc": float(np.median(np.hypot(position[:, 0], position[:, 1])))
        if len(position)
        else np.nan,
        "n_stars": len(position),
        "n_dm_fit_window": int(inside.sum()),
        TARGET_COLUMN: fit.slope,
        f"{TARGET_COLUMN}_error": fit.slope_error,
    }
    if not np.isfinite(fit.slope):
        row["status"] = "empty_fit_shell"
    elif len(position) < config.min_stars:
        row["status"] = "too_few_stars"
    return row


def ingest_dwarfs(
    config: DwarfIngestConfig,
    *,
    sim: str | Path,
    store: str | Path,
    client: Client | None = None,
    progress: bool = True,
) -> Path:
    """Measure every subhalo of ``sim`` and write ``catalogs/dwarfs.parquet``.

    The anisotropy radius is not measurable from one snapshot's particles; for a mock
    universe it is copied from ``truth.parquet`` beside ``sim`` (NaN otherwise).
    """
    import illustris_python as il

    base = str(sim)
    n_subhalos = int(il.groupcat.loadHeader(base, config.snapshot)["Nsubgroups_Total"])
    rows = map_tasks(
        measure_dwarf,
        list(range(n_subhalos)),
        client=client,
        description="measure dwarfs",
        progress=progress,
        base_path=base,
        config=config,
    )
    columns: dict[str, Any] = (
        {name: [row[name] for row in rows] for name in rows[0]} if rows else {}
    )
    truth = Path(sim).parent / "truth.parquet"
    anisotropy = np.full(len(rows), np.nan)
    if truth.is_file():
        import pyarrow.parquet as pq

        table = pq.read_table(truth, columns=["subhalo_id", "anisotropy_radius_kpc"]).to_pydict()
        lookup = dict(zip(table["subhalo_id"], table["anisotropy_radius_kpc"], strict=True))
        anisotropy = np.array([lookup.get(i, np.nan) for i in columns["subhalo_id"]])
    columns["anisotropy_radius_kpc"] = anisotropy
    metadata = {"config": config_to_dict(config), "sim": str(Path(sim).resolve())}
    return write_catalog(store, DWARFS_CATALOG, columns, metadata=metadata)
