"""Where ingest reads a simulation from: the :class:`Source` contract and its registry.

``darkstack ingest`` has one driver (:func:`darkstack.ingest.build.run_ingest`): it selects
galaxies, batches them, writes their cutouts, computes targets and writes the catalog and the
summary. What differs between simulations is only how a snapshot is read, and that is a
:class:`Source`. A source

1. describes the snapshot (:meth:`Source.describe`: box, code units and scale factor, particle
   masses, cosmology, provenance), as a :class:`SimulationInfo`;
2. loads the group-catalog columns ingest needs (:meth:`Source.load_catalog`), in TNG code units
   and as ``illustris_python.groupcat.loadSubhalos`` / ``loadHalos`` return them;
3. gives a :class:`ParticleReader` (:meth:`Source.particle_reader`) that returns each selected
   galaxy's particles in its sphere: the raw TNG fields of :data:`RAW_FIELDS` in the code units
   of :attr:`SimulationInfo.units`, and which of them are bound to the galaxy's own subhalo.
   The driver converts them (:func:`darkstack.ingest.cutouts.to_canonical`) and writes them.

Sources are registered by name, like xarray's backend entrypoints: the built-in ``local`` (a
TNG basePath on disk, :mod:`darkstack.ingest.local_source`) and ``api`` (the TNG web API,
:mod:`darkstack.ingest.api_source`) are imported only when opened, and
:func:`register_source` adds another (``IngestConfig.source`` names it). A new snapshot layout
needs a reader only: a :class:`Source` subclass; docs/ingest.md shows how.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np
from numpy.typing import NDArray

from darkstack.cosmology import CosmologyParams
from darkstack.ingest.selection import GROUP_FIELDS, SUBHALO_FIELDS
from darkstack.registry import Registry
from darkstack.tng_layout import DM, GAS, STARS
from darkstack.units import CodeUnits

if TYPE_CHECKING:
    from distributed import Client

    from darkstack.ingest.config import IngestConfig

#: Particle kinds of a cutout and their TNG types.
KINDS: Mapping[str, int] = {"gas": GAS, "dm": DM, "stars": STARS}
#: Snapshot fields a particle reader returns per kind, in TNG code units.
RAW_FIELDS: Mapping[str, tuple[str, ...]] = {
    "gas": (
        "Coordinates",
        "Velocities",
        "Masses",
        "Density",
        "InternalEnergy",
        "ElectronAbundance",
        "NeutralHydrogenAbundance",
        "StarFormationRate",
        "GFM_Metallicity",
        "ParticleIDs",
    ),
    "dm": ("Coordinates", "Velocities", "ParticleIDs"),
    "stars": (
        "Coordinates",
        "Velocities",
        "Masses",
        "GFM_InitialMass",
        "GFM_StellarFormationTime",
        "GFM_Metallicity",
        "ParticleIDs",
    ),
}
#: Raw fields with three components per particle.
VECTOR_FIELDS = frozenset({"Coordinates", "Velocities"})
#: Group-catalog columns every source loads: the selection's and those the catalog copies.
CATALOG_SUBHALO_FIELDS: tuple[str, ...] = (
    *SUBHALO_FIELDS,
    "SubhaloPos",
    "SubhaloVel",
    "SubhaloHalfmassRadType",
    "SubhaloVmax",
    "SubhaloVmaxRad",
    "SubhaloLenType",
)
CATALOG_GROUP_FIELDS: tuple[str, ...] = (*GROUP_FIELDS, "Group_M_Crit200", "Group_R_Crit200")

Catalog = dict[str, NDArray[Any]]


@dataclass(frozen=True, kw_only=True)
class SimulationInfo:
    """What ingest needs to know of one snapshot, whatever its source.

    Parameters
    ----------
    simulation : str
        Provenance recorded in the outputs: a resolved path or an URL, never a secret.
    snapshot : int
        Snapshot number.
    box_size : float
        Side of the periodic box in ckpc/h.
    units : CodeUnits
        h and the snapshot's scale factor: the conversions of every raw field.
    mass_table : tuple of float
        Particle mass of each type without per-particle masses (DM), 1e10 Msun/h.
    cosmology : CosmologyParams
        For stellar ages.
    """

    simulation: str
    snapshot: int
    box_size: float
    units: CodeUnits
    mass_table: tuple[float, ...]
    cosmology: CosmologyParams


@dataclass(frozen=True)
class Galaxy:
    """One selected galaxy, as the driver hands it to a particle reader."""

    subhalo_id: int
    row: int  # position in the selection
    centre: tuple[float, float, float]  # SubhaloPos, ckpc/h
    velocity_kms: tuple[float, float, float]  # SubhaloVel, peculiar km/s


@dataclass(frozen=True)
class RawParticles:
    """One kind of a galaxy's particles, as a reader returns them."""

    fields: dict[str, NDArray[Any]]  # RAW_FIELDS of the kind, TNG code units, any order
    in_subhalo: NDArray[np.bool_]  # bound to the galaxy's own subhalo


class ParticleReader(Protocol):
    """Returns a galaxy's particles; pickled to the workers, so keep it small."""

    def particles(self, galaxy: Galaxy) -> Mapping[str, RawParticles]:
        """Per kind of :data:`KINDS`, the particles within the cutout radius of the galaxy."""
        ...


class Source(ABC):
    """A simulation snapshot ingest can read (see the module for the contract).

    Subclasses set :attr:`name` and implement the four methods; the driver calls
    :meth:`open`, then :meth:`describe`, :meth:`load_catalog` and, when cutouts are missing,
    :meth:`particle_reader`, in this order, in the driver's process.
    """

    #: Registry name, the value of ``IngestConfig.source``.
    name: ClassVar[str]
    #: Catalog columns the particle reader needs beyond :data:`CATALOG_SUBHALO_FIELDS` and
    #: :data:`CATALOG_GROUP_FIELDS`.
    extra_subhalo_fields: ClassVar[tuple[str, ...]] = ()
    extra_group_fields: ClassVar[tuple[str, ...]] = ()
    #: Errors that would fail every galaxy alike (a rejected key): they stop the build instead
    #: of being recorded per galaxy.
    fatal_errors: ClassVar[tuple[type[BaseException], ...]] = ()

    @classmethod
    @abstractmethod
    def open(cls, config: IngestConfig, *, sim: str | Path | None) -> Source:
        """The source of ``config.snapshot``; ``sim`` is the ``--sim`` location, if any."""

    @abstractmethod
    def describe(self) -> SimulationInfo:
        """Box, units, particle masses, cosmology and provenance of the snapshot."""

    @abstractmethod
    def load_catalog(
        self, *, subhalo_fields: Sequence[str], group_fields: Sequence[str]
    ) -> tuple[Catalog, Catalog]:
        """Whole-catalog subhalo and group columns, TNG code units, one row per object."""

    @abstractmethod
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
    ) -> ParticleReader:
        """Prepare to return the particles within ``radius`` (ckpc/h) of each galaxy.

        Parameters
        ----------
        galaxies : sequence of Galaxy
            Every selected galaxy (also those whose cutout exists), in selection order.
        info : SimulationInfo
            What :meth:`describe` returned.
        subhalos, groups : dict
            The catalog as loaded, with the source's extra fields.
        radius : float
            Cutout radius in ckpc/h.
        work_dir : Path
            A folder for intermediate files, removed after the build; files left there by an
            interrupted build of the same selection may be reused.
        client : distributed.Client or None
            Where a preparatory pass may run (None: in this process).
        progress : bool
            Show progress bars.
        """


#: Sources by name: the built-ins, the entry points of the group ``darkstack.ingest_sources``
#: (``name = "package.module:SourceClass"``, as xarray's backends are found) and
#: :func:`register_source`.
_SOURCES: Registry[type[Source]] = Registry(
    kind="ingest source",
    group="darkstack.ingest_sources",
    builtin={
        "local": "darkstack.ingest.local_source:LocalSource",
        "api": "darkstack.ingest.api_source:ApiSource",
    },
    accepts=lambda entry: isinstance(entry, type) and issubclass(entry, Source),
    expected="a Source subclass",
)


def register_source(name: str, source: str | type[Source]) -> None:
    """Make ``IngestConfig.source = name`` read with ``source``.

    Parameters
    ----------
    name : str
        Registry name; replaces an existing registration of the same name.
    source : Source subclass or str
        The class, or ``"module:attribute"`` naming it (imported only when opened).
    """
    _SOURCES.register(name, source)


def source_names() -> tuple[str, ...]:
    """Names of the registered sources, sorted."""
    return _SOURCES.names()


def source_class(name: str) -> type[Source]:
    """The :class:`Source` registered as ``name``, imported on first use."""
    return _SOURCES.get(name)


def open_source(config: IngestConfig, *, sim: str | Path | None = None) -> Source:
    """Open the source ``config.source`` names, for ``config.snapshot``."""
    return source_class(config.source).open(config, sim=sim)
