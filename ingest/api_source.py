"""The ``api`` ingest source: the TNG web API, for users without a local TNG mirror.

Everything is read through :class:`~darkstack.ingest.tng_api.TNGWebAPI` (key from a file or the
environment, on-disk cache, retries), so a rerun or an interrupted run makes no request twice:

1. the group-catalog columns ingest needs come from one ``groupcat_subset`` download, as the
   dict of arrays illustris_python returns, so the selection and the catalog columns are the
   local source's; its ``Header/Time`` is the snapshot's scale factor (the client exposes no
   snapshot endpoint), and cosmology, box and the DM particle mass come from the simulation's
   metadata;
2. the API has no "particles in a sphere" query, so each galaxy's sphere is assembled from the
   **halo** cutouts of every FoF group that may reach it (its centre closer than the sphere
   radius plus :data:`GROUP_EXTENT_PER_RADIUS` times the larger of Group_R_Crit200 and the
   radius where GroupMass encloses 200 times the mean density, which is what a group without
   Group_R_Crit200 still has), and the galaxy's own particles are told by the ParticleIDs of
   its subhalo cutout.

Differences from the local source: particles in no FoF group (TNG's *outer fuzz*) cannot be
fetched and are missing from the cutouts, so cutouts and targets differ wherever outer fuzz
lies inside a sphere; a group reaching further from its centre than the extent above would be
missed in the same way. The catalog's ``simulation`` metadata is the API URL of the simulation,
never the key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import h5py
import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from darkstack.constants import RHO_CRIT0_H2_MSUN_PER_KPC3
from darkstack.cosmology import CosmologyParams
from darkstack.ingest.config import ApiConfig
from darkstack.ingest.cutouts import particles_in_spheres
from darkstack.ingest.sources import (
    CATALOG_GROUP_FIELDS,
    CATALOG_SUBHALO_FIELDS,
    KINDS,
    RAW_FIELDS,
    VECTOR_FIELDS,
    Catalog,
    Galaxy,
    RawParticles,
    SimulationInfo,
    Source,
)
from darkstack.ingest.tng_api import TNGAPIError, TNGAuthError, TNGWebAPI, resolve_api_key
from darkstack.tng_layout import DM, NUM_PART_TYPES, part_type_group, scale_factor_of
from darkstack.units import MASS_UNIT_MSUN_PER_H, CodeUnits

if TYPE_CHECKING:
    from distributed import Client

    from darkstack.ingest.config import IngestConfig

#: A FoF group is searched for particles out to this many times its radius (see the module).
GROUP_EXTENT_PER_RADIUS = 3.0
#: Group-catalog fields the neighbour search adds to the catalog's.
NEIGHBOUR_GROUP_FIELDS = ("GroupPos", "GroupMass", "Group_R_Crit200")
#: Every field to_canonical reads, per particle type, for the halo cutouts.
_HALO_CUTOUT_FIELDS = {kind: RAW_FIELDS[kind] for kind in KINDS}
#: Only the IDs of the galaxy's own particles are needed to tell them apart.
_OWN_CUTOUT_FIELDS = {kind: ("ParticleIDs",) for kind in KINDS}


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


@dataclass(frozen=True)
class ApiSource(Source):
    """One snapshot of a simulation of the TNG web API."""

    name: ClassVar[str] = "api"
    extra_group_fields: ClassVar[tuple[str, ...]] = NEIGHBOUR_GROUP_FIELDS
    fatal_errors: ClassVar[tuple[type[BaseException], ...]] = (TNGAuthError,)

    client_api: TNGWebAPI
    snapshot: int

    @classmethod
    def open(cls, config: IngestConfig, *, sim: str | Path | None) -> ApiSource:
        """The API of ``config.api``; ``sim`` is not used (the API names the simulation)."""
        del sim
        return cls(client_from_config(config.api), config.snapshot)

    def describe(self) -> SimulationInfo:
        info = self.client_api.simulation_info()
        try:
            scale_factor = scale_factor_of(
                self._catalog_header(),
                source=f"the group-catalog subset of snapshot {self.snapshot}",
            )
        except ValueError as error:
            raise TNGAPIError(str(error)) from None
        mass_table = [0.0] * NUM_PART_TYPES
        mass_table[DM] = float(info["mass_dm"])
        return SimulationInfo(
            simulation=f"{self.client_api.base_url}{self.client_api.simulation}",
            snapshot=self.snapshot,
            box_size=float(info["boxsize"]),
            units=CodeUnits(hubble_param=float(info["hubble"]), scale_factor=scale_factor),
            mass_table=tuple(mass_table),
            cosmology=CosmologyParams(
                hubble_param=float(info["hubble"]),
                omega_m=float(info["omega_0"]),
                omega_b=float(info["omega_B"]),
            ),
        )

    def load_catalog(
        self, *, subhalo_fields: Sequence[str], group_fields: Sequence[str]
    ) -> tuple[Catalog, Catalog]:
        path = self._catalog_file(subhalo_fields=subhalo_fields, group_fields=group_fields)
        with h5py.File(path, "r") as subset:
            subhalos = {name: self._dataset(subset, f"Subhalo/{name}") for name in subhalo_fields}
            groups = {name: self._dataset(subset, f"Group/{name}") for name in group_fields}
        return subhalos, groups

    def particle_reader(
        self,
        galaxies: Sequence[Galaxy],
        *,
        info: SimulationInfo,
        subhalos: Catalog,
        groups: Catalog,
        radius: float,
        work_dir: Path,
        client: Client | None,
        progress: bool,
    ) -> HaloCutouts:
        """The groups that may reach each galaxy's sphere; no download yet."""
        nearby = groups_near_spheres(
            np.array([galaxy.centre for galaxy in galaxies]).reshape(-1, 3),
            positions=np.asarray(groups["GroupPos"], dtype=np.float64),
            extents=group_extent(groups, omega_m=info.cosmology.omega_m),
            radius=radius,
            box_size=info.box_size,
        )
        return HaloCutouts(
            client_api=self.client_api,
            snapshot=self.snapshot,
            radius=radius,
            box_size=info.box_size,
            groups=tuple(nearby),
        )

    def _catalog_file(
        self,
        *,
        subhalo_fields: Sequence[str] = CATALOG_SUBHALO_FIELDS,
        group_fields: Sequence[str] = (*CATALOG_GROUP_FIELDS, *NEIGHBOUR_GROUP_FIELDS),
    ) -> Path:
        # The driver asks for these same columns, so describe() and load_catalog() share one
        # download (the second is served from the cache).
        return self.client_api.groupcat_subset(
            self.snapshot,
            subhalo_fields=tuple(dict.fromkeys(subhalo_fields)),
            group_fields=tuple(dict.fromkeys(group_fields)),
        )

    def _catalog_header(self) -> dict[str, Any]:
        with h5py.File(self._catalog_file(), "r") as subset:
            return dict(subset["Header"].attrs) if "Header" in subset else {}

    def _dataset(self, file: h5py.File, name: str) -> np.ndarray:
        if name not in file:
            raise TNGAPIError(f"the group-catalog subset of snapshot {self.snapshot} lacks {name}")
        return np.asarray(file[name][()])


@dataclass(frozen=True)
class HaloCutouts:
    """A galaxy's particles in its sphere, from the halo cutouts of the groups that reach it."""

    client_api: TNGWebAPI
    snapshot: int
    radius: float  # ckpc/h
    box_size: float  # ckpc/h
    groups: tuple[tuple[int, ...], ...]  # per galaxy row: the groups that may reach its sphere

    def particles(self, galaxy: Galaxy) -> dict[str, RawParticles]:
        """Every download is cached, so a rerun makes no request."""
        halos = [
            self.client_api.halo_cutout(self.snapshot, group, fields=_HALO_CUTOUT_FIELDS)
            for group in self.groups[galaxy.row]
        ]
        own_ids = _own_particle_ids(
            self.client_api.subhalo_cutout(
                self.snapshot, galaxy.subhalo_id, fields=_OWN_CUTOUT_FIELDS
            )
        )
        particles = {}
        for kind, ptype in KINDS.items():
            raw = _in_sphere(
                halos,
                ptype=ptype,
                fields=RAW_FIELDS[kind],
                centre=galaxy.centre,
                radius=self.radius,
                box_size=self.box_size,
            )
            particles[kind] = RawParticles(raw, np.isin(raw["ParticleIDs"], own_ids[ptype]))
        return particles


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


def _own_particle_ids(path: Path) -> dict[int, np.ndarray]:
    """ParticleIDs per type of a subhalo cutout (a type the subhalo lacks has no group)."""
    with h5py.File(path, "r") as cutout:
        return {
            ptype: np.asarray(cutout[f"{part_type_group(ptype)}/ParticleIDs"][()])
            if part_type_group(ptype) in cutout
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
            group = cutout.get(part_type_group(ptype))
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
        else np.zeros((0, 3) if field in VECTOR_FIELDS else (0,))
        for field, values in parts.items()
    }
