"""Every dataset's schema: small declarative specs that writers build from and readers check.

A :class:`ZarrSpec` lists a zarr dataset's coordinates and variables (dims, dtype, units), the
attributes it fixes and those its writer must give, and its format version. A
:class:`CatalogSpec` lists a parquet catalog's columns with their units, which of them every
file holds, and (for a catalog that grows by appends) its partition columns. A new dataset is
one more spec here, not code: :meth:`ZarrSpec.build` makes any of them into an xarray Dataset
and :meth:`ZarrSpec.check` validates any of them on disk.

Format versions count changes that old readers cannot follow. Datasets written before versions
existed carry no version attribute; their layout is format 1 (:data:`UNVERSIONED`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from darkstack.errors import InputError
from darkstack.store.layout import PARTITIONED_CATALOGS

if TYPE_CHECKING:
    import xarray as xr

#: Attribute (zarr) or metadata key (parquet) holding a dataset's format version.
VERSION_KEY = "format_version"
#: The format of datasets written before :data:`VERSION_KEY` existed.
UNVERSIONED = 1
#: ``dtype`` of a variable-length string variable (zarr 3 specifies those, not fixed width).
STRING = "str"


class SchemaError(InputError, ValueError):
    """A dataset on disk that is not what its schema says: wrong version, missing variable."""


# Catalogs ---------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Column:
    """One catalog column: its name, unit (``""`` when dimensionless) and whether every file
    holds it (columns added later are optional, so older files still read)."""

    name: str
    unit: str
    required: bool = True


@dataclass(frozen=True, kw_only=True)
class CatalogSpec:
    """A parquet catalog's columns.

    Parameters
    ----------
    name : str
        The SQL table name, and the catalog's name in :mod:`darkstack.store.layout`.
    version : int
        Format version, written into each file's metadata.
    columns : tuple of Column
        Every column a writer may write.
    written_by : str
        The command that writes it (named in errors).
    partition_by : tuple of str
        For a catalog that grows by appends (``PARTITIONED_CATALOGS`` of the layout): the
        columns whose values name the partition a write goes to and supersedes; each write
        holds one value of each. Empty: every write is kept.
    """

    name: str
    version: int
    columns: tuple[Column, ...]
    written_by: str
    partition_by: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.partition_by and not self.appends:
            raise ValueError(
                f"catalog {self.name} is written whole (it is not in PARTITIONED_CATALOGS of "
                "darkstack/store/layout.py): it cannot be partitioned"
            )
        missing = [key for key in self.partition_by if key not in self.units]
        if missing:
            raise ValueError(f"catalog {self.name}: partition columns {missing} are not columns")

    @property
    def appends(self) -> bool:
        """Whether the catalog is a folder that grows by one file per write."""
        return self.name in PARTITIONED_CATALOGS

    @property
    def units(self) -> dict[str, str]:
        return {column.name: column.unit for column in self.columns}

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns if column.required)

    def check_columns(self, names: list[str], *, source: str | Path) -> None:
        """Refuse columns outside the schema and missing required ones, naming ``source``."""
        unknown = [name for name in names if name not in self.units]
        if unknown:
            raise SchemaError(
                f"{source}: columns {unknown} are not in the {self.name} schema; declare them "
                "with their unit in darkstack/store/schema.py"
            )
        self.require(names, self.required, source=source)

    def require(self, present: list[str], wanted: tuple[str, ...], *, source: str | Path) -> None:
        """Refuse a table that lacks any of ``wanted``."""
        missing = [name for name in wanted if name not in present]
        if missing:
            raise SchemaError(
                f"{source}: no column {missing[0]!r}; expected "
                + ", ".join(f"{name} [{self.units.get(name, '?')}]" for name in missing)
                + f" ({self.name} format {self.version}, written by `{self.written_by}`)"
            )


# Zarr datasets ----------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Variable:
    """A coordinate or data variable of a zarr dataset.

    Parameters
    ----------
    name : str
    dims : tuple of str
    dtype : str
        A numpy dtype name, or :data:`STRING`.
    unit : str
        Written as the variable's ``units`` attribute (``""``: none, e.g. per-channel units).
    labels : tuple of (str, str)
        For a coordinate of named entries (``channel``): each label and the unit of the data
        at that label, in order. Writers must write exactly these labels.
    """

    name: str
    dims: tuple[str, ...]
    dtype: str
    unit: str = ""
    labels: tuple[tuple[str, str], ...] = ()

    def describe(self) -> str:
        unit = f" in {self.unit}" if self.unit else ""
        return f"{self.name}({', '.join(self.dims)}) {self.dtype}{unit}"


@dataclass(frozen=True, kw_only=True)
class ZarrSpec:
    """A zarr dataset: its variables, attributes and format version.

    Parameters
    ----------
    name : str
        The dataset's name in :mod:`darkstack.store.layout` (``STORE/<name>.zarr``).
    version : int
        Format version, written as the ``format_version`` attribute.
    coords, data_vars : tuple of Variable
    fixed_attrs : tuple of (str, str)
        Attributes the schema fixes (conventions), written by :meth:`build`.
    writer_attrs : tuple of str
        Attributes each writer must give (provenance: the config, the darkstack version).
    written_by : str
        The command that writes it (named in errors).
    rebuilt_by : str
        The command that replaces a dataset of another format in place, ``{store}`` standing
        for the store (named in the format-version error); empty: write a new store.
    """

    name: str
    version: int
    coords: tuple[Variable, ...]
    data_vars: tuple[Variable, ...]
    fixed_attrs: tuple[tuple[str, str], ...] = ()
    writer_attrs: tuple[str, ...] = ()
    written_by: str
    rebuilt_by: str = ""

    @property
    def variables(self) -> tuple[Variable, ...]:
        return (*self.coords, *self.data_vars)

    def variable(self, name: str) -> Variable:
        for variable in self.variables:
            if variable.name == name:
                return variable
        raise KeyError(f"{self.name}.zarr has no variable {name!r}")

    def labels(self, coord: str) -> tuple[str, ...]:
        """The labels of a named-entries coordinate, in order."""
        return tuple(label for label, _ in self.variable(coord).labels)

    def label_units(self, coord: str) -> dict[str, str]:
        """Label -> unit of the data at that label."""
        return dict(self.variable(coord).labels)

    def build(
        self,
        *,
        coords: Mapping[str, Any],
        data_vars: Mapping[str, Any],
        attrs: Mapping[str, Any],
    ) -> xr.Dataset:
        """The dataset as an xarray Dataset, ready for ``to_zarr``.

        Every variable of the spec must be given (numpy or dask arrays; dask stays lazy) and
        nothing else; values are cast to the declared dtype, units and the format version are
        attached, and label coordinates must hold exactly the declared labels.
        """
        import xarray as xr

        source = f"{self.name}.zarr writer"
        _same_names(coords, self.coords, what="coordinates", source=source)
        _same_names(data_vars, self.data_vars, what="variables", source=source)
        missing = [name for name in self.writer_attrs if name not in attrs]
        if missing:
            raise SchemaError(f"{source}: attributes {missing} are required")
        dataset_attrs: dict[str, Any] = {**dict(self.fixed_attrs), **attrs}
        for variable in self.coords:
            if variable.labels:
                given = [str(value) for value in np.asarray(coords[variable.name])]
                expected = list(self.labels(variable.name))
                if given != expected:
                    raise SchemaError(f"{source}: {variable.name} {given}; expected {expected}")
                dataset_attrs[f"{variable.name}_units"] = json.dumps(
                    self.label_units(variable.name)
                )
        dataset_attrs[VERSION_KEY] = self.version

        def as_variable(variable: Variable, values: Any) -> xr.Variable:
            attrs = {"units": variable.unit} if variable.unit else {}
            return xr.Variable(variable.dims, _cast(values, variable.dtype), attrs=attrs)

        return xr.Dataset(
            {v.name: as_variable(v, data_vars[v.name]) for v in self.data_vars},
            coords={v.name: as_variable(v, coords[v.name]) for v in self.coords},
            attrs=dataset_attrs,
        )

    def check(self, path: Path) -> Any:
        """Open ``path`` read-only as a zarr group and refuse it unless it matches the spec.

        Returns
        -------
        zarr.Group

        Raises
        ------
        FileNotFoundError
            When ``path`` does not exist (the message names the command that writes it).
        SchemaError
            For another format version, a missing variable or attribute, a variable with other
            dims or dtype, or other labels; one line naming the file, the variable and what
            was expected.
        """
        import zarr

        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist: run `{self.written_by}` first")
        group = zarr.open_group(path, mode="r")
        self.check_version(path, group.attrs.get(VERSION_KEY, UNVERSIONED))
        context = f"({self.name}.zarr format {self.version})"
        for name in self.writer_attrs:
            if name not in group.attrs:
                raise SchemaError(f"{path}: no attribute {name!r} {context}")
        for variable in self.variables:
            array = group.get(variable.name)
            if not isinstance(array, zarr.Array):
                raise SchemaError(
                    f"{path}: no variable {variable.name!r}; expected {variable.describe()} "
                    f"{context}"
                )
            dims = _dims(array)
            if dims != variable.dims or not _dtype_matches(array.dtype, variable.dtype):
                raise SchemaError(
                    f"{path}: variable {variable.name!r} is ({', '.join(dims)}) {array.dtype}; "
                    f"expected {variable.describe()} {context}"
                )
            if variable.labels:
                found = [str(value) for value in np.asarray(array[:])]
                if found != list(self.labels(variable.name)):
                    raise SchemaError(
                        f"{path}: {variable.name} holds {found}; expected "
                        f"{list(self.labels(variable.name))} {context}"
                    )
        return group

    def check_version(self, path: Path, version: Any) -> None:
        """Refuse a dataset at ``path`` whose format ``version`` is not the spec's.

        Raises
        ------
        SchemaError
            One line naming the file, both versions and the command that rebuilds it.
        """
        if version == self.version:
            return
        # Zarr datasets sit at the store's root (StoreLayout.zarr).
        remedy = (
            f"rebuild it with `{self.rebuilt_by.format(store=path.parent)}`"
            if self.rebuilt_by
            else f"run `{self.written_by}` again into a new store"
        )
        raise SchemaError(
            f"{path}: {self.name}.zarr format version {version}, this darkstack reads format "
            f"{self.version}; {remedy}"
        )


def _same_names(given: Mapping[str, Any], declared: tuple[Variable, ...], **where: str) -> None:
    names = [variable.name for variable in declared]
    missing = [name for name in names if name not in given]
    unknown = [name for name in given if name not in names]
    if missing or unknown:
        raise SchemaError(
            f"{where['source']}: {where['what']} missing {missing}, not in the schema {unknown}"
        )


def _cast(values: Any, dtype: str) -> Any:
    """``values`` as ``dtype``; a dask array stays lazy, strings become Python objects."""
    if dtype == STRING:
        return np.asarray(values, dtype=object)
    if hasattr(values, "dtype") and hasattr(values, "astype"):
        return values if values.dtype == np.dtype(dtype) else values.astype(dtype)
    return np.asarray(values, dtype=dtype)


def _dims(array: Any) -> tuple[str, ...]:
    """Dimension names of a zarr array, as xarray writes them (format 3 metadata or format 2
    attributes)."""
    names = getattr(array.metadata, "dimension_names", None)
    if names is None:
        names = array.attrs.get("_ARRAY_DIMENSIONS", ())
    return tuple(str(name) for name in names)


def _dtype_matches(found: Any, declared: str) -> bool:
    if declared == STRING:
        return np.dtype(found).kind in "OUT"
    return bool(np.dtype(found) == np.dtype(declared))


# The store's datasets ---------------------------------------------------------------------------
_SDSS = "nanomaggies per pixel"

#: Format 2: the HI mask's noise rms is scipy's normal-scaled median absolute deviation (the
#: exact 1 / Phi^-1(3/4) for 1.4826), which can move voxels at the clip from the mask.
OBSERVATIONS_ZARR = ZarrSpec(
    name="observations",
    version=2,
    coords=(
        Variable(name="sample", dims=("sample",), dtype="int64"),
        Variable(
            name="channel",
            dims=("channel",),
            dtype=STRING,
            labels=(
                ("sdss_u", _SDSS),
                ("sdss_g", _SDSS),
                ("sdss_r", _SDSS),
                ("sdss_i", _SDSS),
                ("sdss_z", _SDSS),
                ("hi_mom0", "Jy/beam km/s"),
                ("hi_mom1", "km/s"),
                ("hi_mom2", "km/s"),
            ),
        ),
        Variable(name="radius", dims=("radius",), dtype="float64", unit="kpc"),
        Variable(name="subhalo_id", dims=("sample",), dtype="int64"),
        Variable(name="realisation", dims=("sample",), dtype="int64"),
        Variable(name="distance_mpc", dims=("sample",), dtype="float64", unit="Mpc"),
        Variable(
            name="orientation",
            dims=("sample", "quaternion"),
            dtype="float64",
            unit="scalar-last unit quaternion (scipy), galaxy -> observer frame",
        ),
    ),
    data_vars=(
        # Units differ per channel: the channel_units attribute.
        Variable(name="images", dims=("sample", "channel", "y", "x"), dtype="float32"),
        Variable(name="targets", dims=("sample", "radius"), dtype="float32", unit="log10 Msun"),
    ),
    fixed_attrs=(
        ("targets", "log10 of the dark-matter mass enclosed within radius (log10 Msun)"),
        ("radius_units", "kpc"),
        ("pixel_convention", "images[..., y, x]: rows increase with sky +y, columns with +x"),
    ),
    writer_attrs=("config", "darkstack_version"),
    written_by="darkstack observe",
    rebuilt_by="darkstack observe --store {store} --rebuild",
)

GALAXIES_CATALOG = CatalogSpec(
    name="galaxies",
    version=1,
    written_by="darkstack ingest",
    columns=(
        Column(name="subhalo_id", unit=""),
        Column(name="group_id", unit=""),
        Column(name="snap", unit=""),
        Column(name="stellar_mass_msun", unit="Msun"),
        Column(name="sfr_msun_yr", unit="Msun/yr"),
        Column(name="m200c_msun", unit="Msun"),
        Column(name="r200c_kpc", unit="kpc"),
        Column(name="r_half_star_kpc", unit="kpc"),
        Column(name="r_half_gas_kpc", unit="kpc", required=False),
        Column(name="r_half_dm_kpc", unit="kpc", required=False),
        Column(name="gas_mass_msun", unit="Msun", required=False),
        Column(name="dm_mass_msun", unit="Msun", required=False),
        Column(name="vmax_kms", unit="km/s", required=False),
        Column(name="vmax_radius_kpc", unit="kpc", required=False),
        Column(name="n_gas", unit="", required=False),
        Column(name="n_dm", unit="", required=False),
        Column(name="n_stars", unit="", required=False),
        Column(name="position_kpc", unit="kpc (box, physical)", required=False),
        Column(name="velocity_kms", unit="km/s", required=False),
        Column(name="radii_kpc", unit="kpc"),
        Column(name="log10_mdm_enclosed", unit="log10 Msun"),
        Column(name="log10_mdm_enclosed_subhalo", unit="log10 Msun", required=False),
        Column(name="mstar_enclosed_msun", unit="Msun", required=False),
        Column(name="mgas_enclosed_msun", unit="Msun", required=False),
        Column(name="mhi_enclosed_msun", unit="Msun", required=False),
        Column(name="v_circ_kms", unit="km/s", required=False),
        Column(name="r_half_star_cutout_kpc", unit="kpc", required=False),
        Column(name="v_rot_2rhalf_kms", unit="km/s", required=False),
        Column(name="hi_mass_msun", unit="Msun", required=False),
        Column(name="cutout_n_gas", unit="", required=False),
        Column(name="cutout_n_dm", unit="", required=False),
        Column(name="cutout_n_stars", unit="", required=False),
        Column(name="cutout_radius_kpc", unit="kpc", required=False),
        Column(name="cutout_file", unit="path relative to the store", required=False),
        Column(name="status", unit=""),
    ),
)

OBSERVATIONS_CATALOG = CatalogSpec(
    name="observations",
    version=1,
    written_by="darkstack observe",
    columns=(
        Column(name="sample", unit=""),
        Column(name="subhalo_id", unit=""),
        Column(name="realisation", unit=""),
        Column(name="distance_mpc", unit="Mpc", required=False),
        Column(
            name="orientation_quaternion",
            unit="scalar-last unit quaternion (scipy), galaxy -> observer frame",
            required=False,
        ),
        Column(name="photometry_backend", unit="", required=False),
        Column(name="r_band_flux_nanomaggies", unit="nanomaggies", required=False),
        Column(name="hi_flux_jy_kms", unit="Jy km/s", required=False),
        Column(name="status", unit=""),
    ),
)

#: Units of every dataset of a cutout (``cutouts/subhalo_NNNNNNNN.hdf5``, groups ``gas``, ``dm``,
#: ``stars``), by canonical name; written as JSON into the file's ``units`` attribute.
CUTOUT_UNITS: dict[str, str] = {
    "position_kpc": "kpc",
    "velocity_kms": "km/s",
    "mass_msun": "Msun",
    "initial_mass_msun": "Msun",
    "hi_mass_msun": "Msun",
    "density_msun_per_kpc3": "Msun/kpc^3",
    "temperature_k": "K",
    "cell_radius_kpc": "kpc",
    "smoothing_length_kpc": "kpc",
    "sfr_msun_yr": "Msun/yr",
    "metallicity": "mass fraction",
    "neutral_hydrogen_fraction": "",
    "electron_abundance": "electrons per H",
    "age_gyr": "Gyr",
    "formation_scale_factor": "",
    "particle_id": "",
    "in_subhalo": "",
}

_LOG_MASS = "log10 Msun"
PREDICTIONS_CATALOG = CatalogSpec(
    name="predictions",
    version=1,
    written_by="darkstack evaluate",
    partition_by=("run",),
    columns=(
        Column(name="run", unit=""),
        Column(name="split", unit=""),
        Column(name="sample", unit=""),
        Column(name="subhalo_id", unit=""),
        Column(name="log10_mdm_true", unit=_LOG_MASS),
        Column(name="log10_mdm_median", unit=_LOG_MASS),
        Column(name="log10_mdm_p16", unit=_LOG_MASS),
        Column(name="log10_mdm_p84", unit=_LOG_MASS),
        Column(name="mc_dropout_median", unit=_LOG_MASS),
        Column(name="mc_dropout_p16", unit=_LOG_MASS),
        Column(name="mc_dropout_p84", unit=_LOG_MASS),
        Column(name="baseline_mstar_only", unit=_LOG_MASS),
        # Added after the first evaluations: their rows read as nulls.
        Column(name="baseline_photometric", unit=_LOG_MASS, required=False),
        Column(name="radii_kpc", unit="kpc"),
        # Added with the calibrated predictive (train.calibration): the ensemble's 95% interval
        # and standard deviation; earlier rows read as nulls.
        Column(name="log10_mdm_p2_5", unit=_LOG_MASS, required=False),
        Column(name="log10_mdm_p97_5", unit=_LOG_MASS, required=False),
        Column(name="log10_mdm_std", unit=_LOG_MASS, required=False),
    ),
)


#: ``darkstack spectra``: one row per measured statistic; every run is kept (no partition).
#: ``bins`` and ``values`` change unit with the statistic: each row names them.
SPECTRA_CATALOG = CatalogSpec(
    name="spectra",
    version=1,
    written_by="darkstack spectra",
    columns=(
        Column(name="field", unit=""),
        Column(name="cross", unit=""),
        Column(name="region", unit="voxel index ranges x0:x1,y0:y1,z0:z1 (half-open)"),
        Column(name="statistic", unit=""),
        Column(name="bins", unit="see bins_unit"),
        Column(name="values", unit="see values_unit"),
        Column(name="counts", unit="modes, triangles or voxels per bin"),
        Column(name="bins_unit", unit=""),
        Column(name="values_unit", unit=""),
        Column(name="k1_h_mpc", unit="h/Mpc"),
        Column(name="k2_h_mpc", unit="h/Mpc"),
        Column(name="box_mpc_h", unit="Mpc/h"),
        Column(name="grid", unit="voxels per side"),
        Column(name="shot_noise", unit="(Mpc/h)^3"),
        Column(name="config", unit="JSON"),
    ),
)

DWARFS_CATALOG = CatalogSpec(
    name="dwarfs",
    version=1,
    written_by="darkstack ingest --task cusp_core",
    columns=(
        Column(name="subhalo_id", unit=""),
        Column(name="m200c_msun", unit="Msun"),
        Column(name="stellar_mass_msun", unit="Msun"),
        Column(name="r_half_kpc", unit="kpc"),
        Column(name="n_stars", unit=""),
        Column(name="n_dm_fit_window", unit="DM particles in the fitted shells"),
        Column(name="dm_log_slope_150pc", unit="d ln rho / d ln r"),
        Column(name="dm_log_slope_150pc_error", unit="d ln rho / d ln r"),
        Column(name="anisotropy_radius_kpc", unit="kpc"),
        Column(name="status", unit=""),
    ),
)

PHASE_SPACE_ZARR = ZarrSpec(
    name="phase_space",
    version=2,
    coords=(
        Variable(name="sample", dims=("sample",), dtype="int64"),
        Variable(
            name="channel",
            dims=("channel",),
            dtype=STRING,
            labels=(("xy", "probability per pixel"), ("rv", "probability per pixel")),
        ),
        Variable(
            name="scalar",
            dims=("scalar",),
            dtype=STRING,
            labels=(
                ("log_v_scale_kms", "log10 km/s: P98(|v_los|), the rv map's velocity unit"),
                ("log_r_half_kpc", "log10 kpc: R_hlr, the rv map's radius unit"),
                ("log_stellar_mass_msun", "log10 Msun: the dwarf's M* (catalogs/dwarfs)"),
            ),
        ),
        Variable(name="subhalo_id", dims=("sample",), dtype="int64"),
        Variable(name="line_of_sight", dims=("sample",), dtype="int64"),
    ),
    data_vars=(
        Variable(name="images", dims=("sample", "channel", "y", "x"), dtype="float32"),
        Variable(name="scalars", dims=("sample", "scalar"), dtype="float32"),
        Variable(name="targets", dims=("sample",), dtype="float32", unit="d ln rho / d ln r"),
    ),
    fixed_attrs=(
        ("targets", "dm_log_slope_150pc of catalogs/dwarfs.parquet (the slope radius: config)"),
        (
            "pixel_convention",
            "xy: rows y, columns x in [-extent, extent] kpc; rv: rows v/P98(|v|) in [-1, 1], "
            "columns R/R_hlr in [0, rv_max_radius_hlr] (config; 3 by default, 1 in the paper)",
        ),
    ),
    writer_attrs=("config", "darkstack_version"),
    written_by="darkstack observe --kind phase_space",
    rebuilt_by="darkstack observe --kind phase_space --store {store}",
)

CLUSTERS_CATALOG = CatalogSpec(
    name="clusters",
    version=1,
    written_by="darkstack ingest --task cluster_mass",
    columns=(
        Column(name="group_id", unit=""),
        Column(name="m200c_msun", unit="Msun"),
        Column(name="r200c_kpc", unit="kpc"),
        Column(name="m500c_msun", unit="Msun"),
        Column(name="r500c_kpc", unit="kpc"),
        Column(name="centre_x_kpc", unit="kpc"),
        Column(name="centre_y_kpc", unit="kpc"),
        Column(name="centre_z_kpc", unit="kpc"),
        Column(name="bcg_offset_x_kpc", unit="kpc"),
        Column(name="bcg_offset_y_kpc", unit="kpc"),
        Column(name="bcg_offset_z_kpc", unit="kpc"),
        Column(name="n_gas", unit=""),
        Column(name="n_dm", unit=""),
        Column(name="n_stars", unit=""),
        # Truth of a mock universe (SIM/../catalogs/clusters.parquet); NaN for a real run.
        Column(name="true_m500c_msun", unit="Msun", required=False),
        Column(name="true_r500c_kpc", unit="kpc", required=False),
        Column(name="subcluster_m200c_msun", unit="Msun", required=False),
        Column(name="status", unit=""),
    ),
)

CLUSTER_OBSERVABLES_CATALOG = CatalogSpec(
    name="cluster_observables",
    version=1,
    written_by="darkstack observe --kind cluster_maps",
    columns=(
        Column(name="sample", unit=""),
        Column(name="group_id", unit=""),
        Column(name="line_of_sight", unit=""),
        Column(name="framing", unit=""),
        Column(name="aperture_kpc", unit="kpc"),
        Column(name="y500_cyl_mpc2", unit="Mpc^2"),
        Column(name="lx500_cyl_erg_s", unit="erg/s"),
        Column(name="mass500_cyl_msun", unit="Msun"),
    ),
)

_CLUSTER_MAP_UNITS = (
    ("tsz_y", ""),
    ("xray_bol", "erg s^-1 kpc^-2"),
    ("stellar_mass", "Msun kpc^-2"),
)
CLUSTER_MAPS_ZARR = ZarrSpec(
    name="cluster_maps",
    version=1,
    coords=(
        Variable(name="sample", dims=("sample",), dtype="int64"),
        Variable(name="channel", dims=("channel",), dtype=STRING, labels=_CLUSTER_MAP_UNITS),
        Variable(name="group_id", dims=("sample",), dtype="int64"),
        Variable(name="line_of_sight", dims=("sample",), dtype="int64"),
        Variable(name="pixel_kpc", dims=("sample",), dtype="float64", unit="kpc"),
    ),
    data_vars=(
        # float64: central S_X reaches ~1e40 erg s^-1 kpc^-2, beyond float32's 3.4e38.
        Variable(name="images", dims=("sample", "channel", "y", "x"), dtype="float64"),
        Variable(name="targets", dims=("sample", "y", "x"), dtype="float64", unit="Msun kpc^-2"),
    ),
    fixed_attrs=(
        ("targets", "projected total mass (dark matter + gas + stars) through +-depth_r200 R200c"),
        (
            "pixel_convention",
            "rows y, columns x of the rotated frame (line of sight along its z), centred on the "
            "framing's centre; pixel_kpc per sample",
        ),
    ),
    writer_attrs=("config", "darkstack_version", "framing"),
    written_by="darkstack observe --kind cluster_maps",
)
