"""``darkstack ingest`` from the TNG web API, for users without a local TNG mirror.

The same selection, cutouts and targets as :func:`darkstack.ingest.build.run_ingest`, with
everything read through :class:`~darkstack.ingest.tng_api.TNGWebAPI` (key from a file or the
environment, on-disk cache, retries), so a rerun or an interrupted run makes no request twice:

1. the group-catalog columns ingest needs come from one ``groupcat_subset`` download, as the
   dict of arrays illustris_python returns, so :func:`select_subhalos` and the catalog columns
   are the local path's;
2. the API has no "particles in a sphere" query, so each galaxy's sphere is assembled from the
   **halo** cutouts of every FoF group that may reach it (its centre closer than the sphere
   radius plus :data:`GROUP_EXTENT_PER_RADIUS` times the larger of Group_R_Crit200 and the
   radius where GroupMass encloses 200 times the mean density, which is what a group without
   Group_R_Crit200 still has), and the galaxy's own particles are told by the ParticleIDs of
   its subhalo cutout;
3. cutouts are converted by :func:`~darkstack.ingest.cutouts.to_canonical`, written by
   :func:`~darkstack.ingest.cutouts.write_cutout` and profiled as the local path does.

Differences from the local path: particles in no FoF group (TNG's *outer fuzz*) cannot be
fetched and are missing from the cutouts, so cutouts and targets differ wherever outer fuzz
lies inside a sphere; a group reaching further from its centre than the extent above would be
missed in the same way. The scale factor comes from the
``Header/Time`` of the group-catalog subset file (the client exposes no snapshot endpoint);
the catalog's ``simulation`` metadata is the API URL of the simulation, never the key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from darkstack.constants import RHO_CRIT0_H2_MSUN_PER_KPC3
from darkstack.cosmology import CosmologyParams
from darkstack.ingest.build import (
    CATALOG_GROUP_FIELDS,
    CATALOG_SUBHALO_FIELDS,
    IngestSummary,
    cutout_attributes,
    profile_galaxy,
    write_galaxy_catalog,
)
from darkstack.ingest.config import ApiConfig, IngestConfig
from darkstack.ingest.cutouts import (
    KINDS,
    RAW_FIELDS,
    particles_in_spheres,
    to_canonical,
)
from darkstack.ingest.selection import select_subhalos
from darkstack.ingest.tng_api import TNGAPIError, TNGAuthError, TNGWebAPI, resolve_api_key
from darkstack.store import StoreLayout
from darkstack.tasks import map_tasks
from darkstack.units import MASS_UNIT_MSUN_PER_H, CodeUnits

#: A FoF group is searched for particles out to this many times its radius (see the module).
GROUP_EXTENT_PER_RADIUS = 3.0
#: Group-catalog fields the neighbour search adds to the catalog's.
NEIGHBOUR_GROUP_FIELDS = ("GroupPos", "GroupMass", "Group_R_Crit200")
#: Every field to_canonical reads, per particle type, for the halo cutouts.
_HALO_CUTOUT_FIELDS = {kind: RAW_FIELDS[kind] for kind in KINDS}
#: Only the IDs of the galaxy's own particles are needed to tell them apart.
_OWN_CUTOUT_FIELDS = {kind: ("ParticleIDs",) for kind in KINDS}
_VECTOR_FIELDS = {"Coordinates", "Velocities"}


@dataclass(frozen=True)
class ApiSimulation:
    """What :func:`to_canonical` and the catalog read of a simulation, taken from the API.

    A stand-in for :class:`~darkstack.ingest.tng_local.SimulationFiles`, which describes files.
    """

    base_path: str  # the simulation's API URL, recorded as the provenance of the outputs
    snapshot: int
    box_size: float  # ckpc/h
    units: CodeUnits
    mass_table: tuple[float, ...]  # 1e10 Msun/h; only dark matter has a fixed mass in TNG


@dataclass(frozen=True)
class ApiGalaxy:
    """One selected galaxy and the FoF groups that may reach its sphere."""

    subhalo_id: int
    centre: tuple[float, float, float]  # SubhaloPos, code units
    velocity_kms: tuple[float, float, float]  # SubhaloVel, peculiar km/s
    groups: tuple[int, ...]


def client_from_config(api: ApiConfig) -> TNGWebAPI:
    """The web-API client ``api`` describes, its key read from the key file or the environment.

    Parameters
    ----------
    api : ApiConfig
        Simulation, API root, key file, cache folder and retries.

    Raises
    ------
    MissingAPIKeyError
        Neither the key file nor ``TNG_API_KEY`` holds a key.
    """
    key_file = None if api.key_file is None else Path(api.key_file).expanduser()
    return TNGWebAPI(
        simulation=api.simulation,
        base_url=api.base_url,
        api_key=resolve_api_key(key_file=key_file),
        cache_dir=Path(api.cache_dir).expanduser(),
        max_retries=api.max_retries,
    )


def run_api_ingest(
    config: IngestConfig, *, client_api: TNGWebAPI, store: Path, progress: bool = True
) -> IngestSummary:
    """Select galaxies from the TNG web API and write their catalog and cutouts into ``store``.

    Parameters
    ----------
    config : IngestConfig
        Selection, cutout and target settings; ``source`` must be ``"api"``.
    client_api : TNGWebAPI
        The API client (see :func:`client_from_config`).
    store : Path
        The store to write (created if needed); galaxies whose cutout exists are not fetched.
    progress : bool
        Show a progress bar.

    Returns
    -------
    IngestSummary
        What was written, as the local path reports it.
    """
    if config.source != "api":
        raise ValueError(f"run_api_ingest needs config.source = 'api', got {config.source!r}")
    store = Path(store)
    info = client_api.simulation_info()
    subhalos, groups, header = _load_catalog(client_api, config.snapshot)
    if "Time" not in header:
        raise TNGAPIError(
            f"the group-catalog subset of snapshot {config.snapshot} has no Header/Time; the "
            "scale factor of the snapshot cannot be known"
        )
    files = ApiSimulation(
        base_path=f"{client_api.base_url}{client_api.simulation}",
        snapshot=config.snapshot,
        box_size=float(info["boxsize"]),
        units=CodeUnits(hubble_param=float(info["hubble"]), scale_factor=float(header["Time"])),
        mass_table=(0.0, float(info["mass_dm"]), 0.0, 0.0, 0.0, 0.0),
    )
    cosmology = CosmologyParams(
        hubble_param=files.units.hubble_param,
        omega_m=float(info["omega_0"]),
        omega_b=float(info["omega_B"]),
    )
    selected = select_subhalos(
        subhalos, groups, hubble_param=files.units.hubble_param, config=config.selection
    )
    radius = float(files.units.kpc_to_length(config.cutout.radius_kpc))
    centres = np.asarray(subhalos["SubhaloPos"], dtype=np.float64)[selected].reshape(-1, 3)
    velocities = np.asarray(subhalos["SubhaloVel"], dtype=np.float64)[selected].reshape(-1, 3)
    nearby = groups_near_spheres(
        centres,
        positions=np.asarray(groups["GroupPos"], dtype=np.float64),
        extents=group_extent(groups, omega_m=cosmology.omega_m),
        radius=radius,
        box_size=files.box_size,
    )
    galaxies = [
        ApiGalaxy(
            subhalo_id=int(subhalo),
            centre=(float(centre[0]), float(centre[1]), float(centre[2])),
            velocity_kms=(float(velocity[0]), float(velocity[1]), float(velocity[2])),
            groups=near,
        )
        for subhalo, centre, velocity, near in zip(
            selected, centres, velocities, nearby, strict=True
        )
    ]
    rows = map_tasks(
        _galaxy_row,
        galaxies,
        description="fetch galaxies",
        progress=progress,
        client_api=client_api,
        files=files,
        cosmology=cosmology,
        store=store,
        config=config,
        radius=radius,
    )
    return write_galaxy_catalog(
        store=store,
        units=files.units,
        subhalos=subhalos,
        groups=groups,
        selected=selected,
        config=config,
        rows=rows,
        simulation=files.base_path,
    )


def group_extent(groups: Mapping[str, Any], *, omega_m: float) -> NDArray[np.float64]:
    """How far from GroupPos a FoF group's particles are searched, in ckpc/h.

    :data:`GROUP_EXTENT_PER_RADIUS` times the larger of Group_R_Crit200 and the radius inside
    which GroupMass has 200 times the mean matter density; the latter is what small groups,
    whose Group_R_Crit200 is 0, still have.

    Parameters
    ----------
    groups : mapping
        Group-catalog columns with ``GroupMass`` and ``Group_R_Crit200`` (code units).
    omega_m : float
        Matter density parameter.
    """
    # Comoving mean matter density in (1e10 Msun/h) / (ckpc/h)^3: the h factors cancel.
    rho_mean = RHO_CRIT0_H2_MSUN_PER_KPC3 * omega_m / MASS_UNIT_MSUN_PER_H
    mass = np.asarray(groups["GroupMass"], dtype=np.float64)
    r200m = np.cbrt(3.0 * mass / (4.0 * np.pi * 200.0 * rho_mean))
    r200c = np.asarray(groups["Group_R_Crit200"], dtype=np.float64)
    return GROUP_EXTENT_PER_RADIUS * np.maximum(r200c, r200m)


def groups_near_spheres(
    centres: NDArray[np.float64],
    *,
    positions: NDArray[np.float64],
    extents: NDArray[np.float64],
    radius: float,
    box_size: float,
) -> list[tuple[int, ...]]:
    """For each sphere, the groups closer than ``radius`` plus their extent, periodic.

    Parameters
    ----------
    centres : ndarray, shape (m, 3)
        Sphere centres.
    positions : ndarray, shape (n, 3)
        Group centres (GroupPos).
    extents : ndarray, shape (n,)
        How far each group's particles may lie from its centre.
    radius : float
        Sphere radius, same units.
    box_size : float
        Side of the periodic box.

    Returns
    -------
    list of tuple of int
        Per sphere, group indices in increasing order.
    """
    near: list[list[int]] = [[] for _ in range(len(centres))]
    if len(centres) == 0 or len(positions) == 0:
        return [tuple(groups) for groups in near]
    # A tree over the few spheres, queried by every group with its own reach: counting first
    # keeps the lists (one per group, of a TNG catalog's millions) to the groups that touch.
    tree = cKDTree(np.mod(centres, box_size), boxsize=box_size)
    points = np.mod(positions, box_size)
    reach = radius + extents
    touching = np.flatnonzero(tree.query_ball_point(points, r=reach, return_length=True))
    hits = tree.query_ball_point(points[touching], r=reach[touching])
    for group, spheres in zip(touching, hits, strict=True):
        for sphere in spheres:
            near[sphere].append(int(group))
    return [tuple(groups) for groups in near]


def _load_catalog(
    client_api: TNGWebAPI, snapshot: int
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, Any]]:
    """Subhalo and group columns, as illustris_python's loaders return them, and the Header."""
    group_fields = tuple(dict.fromkeys((*CATALOG_GROUP_FIELDS, *NEIGHBOUR_GROUP_FIELDS)))
    path = client_api.groupcat_subset(
        snapshot, subhalo_fields=CATALOG_SUBHALO_FIELDS, group_fields=group_fields
    )
    with h5py.File(path, "r") as subset:
        columns = {
            kind: {name: _dataset(subset, f"{kind}/{name}", snapshot=snapshot) for name in names}
            for kind, names in (("Subhalo", CATALOG_SUBHALO_FIELDS), ("Group", group_fields))
        }
        header = dict(subset["Header"].attrs) if "Header" in subset else {}
    return columns["Subhalo"], columns["Group"], header


def _dataset(file: h5py.File, name: str, *, snapshot: int) -> np.ndarray:
    if name not in file:
        raise TNGAPIError(f"the group-catalog subset of snapshot {snapshot} lacks {name}")
    return np.asarray(file[name][()])


def _galaxy_row(
    galaxy: ApiGalaxy,
    *,
    client_api: TNGWebAPI,
    files: ApiSimulation,
    cosmology: CosmologyParams,
    store: Path,
    config: IngestConfig,
    radius: float,
) -> dict[str, Any]:
    """Fetch a galaxy's cutout unless stored, then profile it from the stored file."""
    return profile_galaxy(
        StoreLayout(store).cutout(galaxy.subhalo_id),
        assemble=partial(
            fetch_galaxy,
            galaxy,
            client_api=client_api,
            files=files,
            cosmology=cosmology,
            radius=radius,
        ),
        attributes=cutout_attributes(
            subhalo_id=galaxy.subhalo_id,
            centre=galaxy.centre,
            velocity_kms=galaxy.velocity_kms,
            snapshot=files.snapshot,
            simulation=files.base_path,
            config=config,
        ),
        store=store,
        radii_kpc=config.targets.radii_kpc,
        fatal=(TNGAuthError,),
    )


def fetch_galaxy(
    galaxy: ApiGalaxy,
    *,
    client_api: TNGWebAPI,
    files: ApiSimulation,
    cosmology: CosmologyParams,
    radius: float,
) -> dict[str, dict[str, np.ndarray]]:
    """A galaxy's particles in its sphere from the halo cutouts of its groups, canonical units.

    Parameters
    ----------
    galaxy : ApiGalaxy
        The galaxy and the groups that may reach its sphere.
    client_api : TNGWebAPI
        The API client; every download is cached.
    files : ApiSimulation
        Box size, units and dark-matter particle mass.
    cosmology : CosmologyParams
        For stellar ages.
    radius : float
        Sphere radius in ckpc/h.

    Returns
    -------
    dict
        ``{"gas": ..., "dm": ..., "stars": ...}`` as :func:`to_canonical` gives them.
    """
    halos = [
        client_api.halo_cutout(files.snapshot, group, fields=_HALO_CUTOUT_FIELDS)
        for group in galaxy.groups
    ]
    own_ids = _own_particle_ids(
        client_api.subhalo_cutout(files.snapshot, galaxy.subhalo_id, fields=_OWN_CUTOUT_FIELDS)
    )
    particles = {}
    for kind, ptype in KINDS.items():
        raw = _in_sphere(
            halos,
            ptype=ptype,
            fields=RAW_FIELDS[kind],
            centre=galaxy.centre,
            radius=radius,
            box_size=files.box_size,
        )
        particles[kind] = to_canonical(
            kind,
            raw,
            in_subhalo=np.isin(raw["ParticleIDs"], own_ids[ptype]),
            centre=galaxy.centre,
            velocity_kms=galaxy.velocity_kms,
            files=files,
            cosmology=cosmology,
        )
    return particles


def _own_particle_ids(path: Path) -> dict[int, np.ndarray]:
    """ParticleIDs per type of a subhalo cutout (a type the subhalo lacks has no group)."""
    with h5py.File(path, "r") as cutout:
        return {
            ptype: np.asarray(cutout[f"PartType{ptype}/ParticleIDs"][()])
            if f"PartType{ptype}" in cutout
            else np.zeros(0, dtype=np.uint64)
            for ptype in KINDS.values()
        }


def _in_sphere(
    paths: Sequence[Path],
    *,
    ptype: int,
    fields: Sequence[str],
    centre: Sequence[float],
    radius: float,
    box_size: float,
) -> dict[str, np.ndarray]:
    """``fields`` of the particles of one type inside a sphere, from several cutout files.

    A cutout has no ``PartTypeN`` group for a type its object holds none of.
    """
    parts: dict[str, list[np.ndarray]] = {field: [] for field in fields}
    for path in paths:
        with h5py.File(path, "r") as cutout:
            group = cutout.get(f"PartType{ptype}")
            if group is None:
                continue
            _, inside = particles_in_spheres(
                np.asarray(group["Coordinates"][()]).reshape(-1, 3),
                np.asarray([centre]),
                radius,
                box_size,
            )
            for field in fields:
                # One field at a time: a cluster's cutout need not be in memory all at once.
                parts[field].append(np.asarray(group[field][()])[inside])
    return {
        field: np.concatenate(values)
        if values
        else np.zeros((0, 3) if field in _VECTOR_FIELDS else (0,))
        for field, values in parts.items()
    }
