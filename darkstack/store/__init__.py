"""The store: its layout and every dataset's schema, in one place.

Writers, readers and test fixtures all go through this package, so a store path or a schema is
spelled once:

- :mod:`~darkstack.store.layout`: where everything lives (:class:`StoreLayout`,
  :class:`RunPaths`);
- :mod:`~darkstack.store.schema`: the declarative specs of the zarr datasets and parquet
  catalogs (dims, coordinates, dtypes, units, attributes, format version);
- :mod:`~darkstack.store.datasets`: zarr datasets opened after their schema check;
- :mod:`~darkstack.store.catalogs`: catalogs written from their schema and read back checked,
  including partitioned catalogs that grow by appends (one file per write);
- :mod:`~darkstack.store.parquet`: parquet files with units and provenance, written atomically.
"""

from darkstack.store.catalogs import (
    CatalogSource,
    catalog_sources,
    read_catalog,
    sql_string,
    write_catalog,
)
from darkstack.store.datasets import open_dataset, open_group
from darkstack.store.layout import (
    CATALOGS,
    PARTITIONED_CATALOGS,
    ZARR_DATASETS,
    RunPaths,
    StoreLayout,
    check_run_name,
)
from darkstack.store.parquet import (
    column_units,
    read_metadata,
    table_with_units,
    write_table_atomic,
)
from darkstack.store.schema import (
    CLUSTER_MAPS_ZARR,
    CLUSTER_OBSERVABLES_CATALOG,
    CLUSTERS_CATALOG,
    CUTOUT_UNITS,
    DWARFS_CATALOG,
    GALAXIES_CATALOG,
    OBSERVATIONS_CATALOG,
    OBSERVATIONS_ZARR,
    PHASE_SPACE_ZARR,
    PREDICTIONS_CATALOG,
    SPECTRA_CATALOG,
    CatalogSpec,
    Column,
    SchemaError,
    Variable,
    ZarrSpec,
)

__all__ = [
    "CATALOGS",
    "CLUSTERS_CATALOG",
    "CLUSTER_MAPS_ZARR",
    "CLUSTER_OBSERVABLES_CATALOG",
    "CUTOUT_UNITS",
    "DWARFS_CATALOG",
    "GALAXIES_CATALOG",
    "OBSERVATIONS_CATALOG",
    "OBSERVATIONS_ZARR",
    "PARTITIONED_CATALOGS",
    "PHASE_SPACE_ZARR",
    "PREDICTIONS_CATALOG",
    "SPECTRA_CATALOG",
    "ZARR_DATASETS",
    "CatalogSource",
    "CatalogSpec",
    "Column",
    "RunPaths",
    "SchemaError",
    "StoreLayout",
    "Variable",
    "ZarrSpec",
    "catalog_sources",
    "check_run_name",
    "column_units",
    "open_dataset",
    "open_group",
    "read_catalog",
    "read_metadata",
    "sql_string",
    "table_with_units",
    "write_catalog",
    "write_table_atomic",
]
