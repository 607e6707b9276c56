"""What the voxel fields are: the variables of ``fields.zarr``, their units and conventions.

Where they live (``StoreLayout.zarr("fields")``, ``.work("fields")``) and the spectra
catalog's columns (``SPECTRA_CATALOG``) are :mod:`darkstack.store`'s; the variables below are to
become its ``ZarrSpec`` of ``fields``. ``FORMAT_VERSION`` changes whenever a reader of an older
``fields.zarr`` would misread it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: Layout version of ``fields.zarr`` and of the spectra catalog, saved in both.
FORMAT_VERSION = 1

#: Grid axes of every field, in array order (``field[x, y, z]``).
DIMS = ("x", "y", "z")
#: Unit of every field's voxels.
FIELD_UNITS = "Msun"
#: Unit of the grid coordinates (comoving, which at z = 0 is physical).
COORDINATE_UNITS = "Mpc"
#: Where a voxel's coordinate sits, as Pylians' MAS_library places its grid points.
GRID_CONVENTION = "voxel i is the grid point at i * box / grid (Pylians' MAS_library)"


@dataclass(frozen=True)
class FieldSpec:
    """One voxel field: which run, which objects, which mass.

    Attributes
    ----------
    name : str
        Variable name in ``fields.zarr``.
    run : {"hydro", "dark"}
        The hydro run (``--sim``) or its gravity-only twin (``--dark``).
    kind : {"particles", "subhalos"}
        Snapshot particles of ``part_type``, or group-catalog subhalos at ``SubhaloPos``.
    part_type : int
        Particle type (1 dark matter, 4 stars) for ``particles``.
    mass_dataset : str
        Subhalo mass dataset (``SubhaloMass`` or ``SubhaloMassType``) for ``subhalos``.
    mass_column : int or None
        Column of a per-type mass dataset (4: stars), None for a scalar one.
    description : str
        What the variable holds, saved in its attributes.
    """

    name: str
    run: Literal["hydro", "dark"]
    kind: Literal["particles", "subhalos"]
    part_type: int = -1
    mass_dataset: str = ""
    mass_column: int | None = None
    description: str = ""


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec(
        name="dark_dm_mass",
        run="dark",
        kind="particles",
        part_type=1,
        description="dark-matter particle mass of the gravity-only run",
    ),
    FieldSpec(
        name="dark_subhalo_mass",
        run="dark",
        kind="subhalos",
        mass_dataset="SubhaloMass",
        description="SubhaloMass of the gravity-only run's subhalos at SubhaloPos",
    ),
    FieldSpec(
        name="hydro_dm_mass",
        run="hydro",
        kind="particles",
        part_type=1,
        description="dark-matter particle mass of the hydro run",
    ),
    FieldSpec(
        name="hydro_stellar_mass",
        run="hydro",
        kind="particles",
        part_type=4,
        description="star particle mass of the hydro run (wind particles excluded)",
    ),
    FieldSpec(
        name="hydro_stellar_mass_subhalo",
        run="hydro",
        kind="subhalos",
        mass_dataset="SubhaloMassType",
        mass_column=4,
        description="SubhaloMassType[4] (stellar mass) of the hydro run's subhalos at SubhaloPos",
    ),
)
FIELDS_BY_NAME = {spec.name: spec for spec in FIELDS}
