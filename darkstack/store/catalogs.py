"""The store's parquet catalogs: written from their schema, read back checked, appended safely.

A catalog is either one file, ``catalogs/<name>.parquet``, rewritten whole by the build that
owns it (``galaxies``, ``observations``), or a *partitioned* catalog, ``catalogs/<name>/``,
that grows by appends (``predictions``; ``spectra`` to come). A write of a partitioned catalog
is one new file, never a rewrite::

    catalogs/predictions/run=<run>/<UTC time>-<uuid>.parquet

The partition folder is Hive-style (``key=value``, the value percent-encoded), the layout
DuckDB, pyarrow and Spark read as a column; the partition column is therefore not repeated
inside the file (its file metadata names it). The file appears atomically (a hidden temporary
file, then a rename), and its name is fixed before it is written.

**Newest write wins.** The rows of a catalog are, for each partition, those of its newest
write: the file whose name sorts last (UTC time to the microsecond, then a random UUID).
Re-evaluating a run therefore replaces its rows, and older writes stay on disk as history;
deleting them by hand is always safe. A catalog declared without partition columns keeps
every write instead (its files sit directly in its folder): each write is another record,
as each ``darkstack spectra`` run is another measurement.

**Concurrency.** Writers never read, rewrite or delete, so concurrent writers cannot lose
each other's rows: two runs evaluated at once both appear, and two evaluations of the same run
leave the later-named one visible whichever finishes first. Readers see whole files only.

**Older stores.** A single ``catalogs/<name>.parquet`` beside the folder (how predictions were
stored before) is read as the oldest write of every partition it holds: its rows count for
the partitions that have no write in the folder yet. Nothing needs migrating; once every run in
it has been evaluated again it can be deleted.

:func:`catalog_sources` finds every catalog of a store, whatever its name, and
:meth:`CatalogSource.select_sql` is the one SQL that reads a catalog under these rules: both
``darkstack query`` and :func:`read_catalog` use it.
"""

from __future__ import annotations

import datetime
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pyarrow as pa

from darkstack.store.layout import StoreLayout
from darkstack.store.parquet import read_metadata, table_with_units, write_table_atomic
from darkstack.store.schema import UNVERSIONED, VERSION_KEY, CatalogSpec, SchemaError


@dataclass(frozen=True)
class CatalogSource:
    """The files that hold a catalog's current rows.

    Attributes
    ----------
    name : str
        The catalog (SQL table) name.
    files : tuple of Path
        The single file, or the newest write of each partition.
    partitions : tuple of tuple of str
        The partition values of each of ``files`` (empty for an unpartitioned catalog).
    partitioned : bool
        Whether the catalog is a folder of writes.
    partition_keys : tuple of str
        Partition columns, outermost first (Hive ``key=value`` folders).
    legacy : Path or None
        A single file beside the folder, read for the partitions the folder lacks.
    """

    name: str
    files: tuple[Path, ...]
    partitions: tuple[tuple[str, ...], ...]
    partitioned: bool = False
    partition_keys: tuple[str, ...] = ()
    legacy: Path | None = None

    @property
    def paths(self) -> tuple[Path, ...]:
        """Every file the catalog's rows come from."""
        return (*self.files, *((self.legacy,) if self.legacy else ()))

    def select_sql(self) -> str:
        """One DuckDB SELECT of the catalog's current rows, partition columns first.

        Partition values are written into the SQL rather than parsed from paths by DuckDB's
        ``hive_partitioning``, which would also turn any ``key=value`` folder above the store
        into a column.
        """
        parts = []
        for path, values in zip(self.files, self.partitions, strict=True):
            columns = [
                f"{sql_string(value)} AS {_identifier(key)}"
                for key, value in zip(self.partition_keys, values, strict=True)
            ]
            parts.append(f"SELECT {', '.join([*columns, '*'])} FROM {_read(path)}")
        if self.legacy is not None:
            # Its rows of the partitions the folder holds are superseded; without partitions
            # every write counts, the legacy file's too.
            shadowed = " OR ".join(
                "("
                + " AND ".join(
                    f"{_identifier(key)} = {sql_string(value)}"
                    for key, value in zip(self.partition_keys, values, strict=True)
                )
                + ")"
                for values in (self.partitions if self.partition_keys else ())
            )
            where = f" WHERE NOT ({shadowed})" if shadowed else ""
            parts.append(f"SELECT * FROM {_read(self.legacy)}{where}")
        return " UNION ALL BY NAME ".join(parts)


def _read(path: Path) -> str:
    return f"read_parquet({sql_string(str(path))}, hive_partitioning = false)"


def sql_string(text: str) -> str:
    """``text`` as a SQL string literal: quotes doubled, so any path is safe to embed."""
    return "'" + text.replace("'", "''") + "'"


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def catalog_sources(store: str | os.PathLike[str]) -> dict[str, CatalogSource]:
    """Every catalog of ``store``, by name (sorted): files and partitioned folders alike.

    Raises
    ------
    FileNotFoundError
        If ``STORE/catalogs`` does not exist or holds no catalog.
    SchemaError
        If a partitioned catalog holds a folder that is not ``key=value``, or partitions
        with different keys.
    """
    folder = StoreLayout(store).catalogs
    if not folder.is_dir():
        raise FileNotFoundError(f"no catalogs folder: {folder} does not exist")
    sources: dict[str, CatalogSource] = {}
    # Dot files and folders are temporaries of atomic writes, never catalogs.
    entries = sorted(path for path in folder.iterdir() if not path.name.startswith("."))
    for path in entries:
        if path.is_dir():
            source = _partitioned_source(path)
            if source is not None:
                sources[path.name] = source
        elif path.suffix == ".parquet" and not path.with_suffix("").is_dir():
            sources[path.stem] = CatalogSource(
                name=path.stem, files=(path.resolve(),), partitions=((),)
            )
    if not sources:
        raise FileNotFoundError(f"no catalogs: {folder} holds no .parquet file")
    return dict(sorted(sources.items()))


def _partitioned_source(folder: Path) -> CatalogSource | None:
    """The current writes of ``folder`` and its legacy file, if any.

    Every file directly in ``folder`` counts (a catalog without partitions keeps every write);
    in ``key=value`` folders, the newest file of each.
    """
    writes: dict[Path, list[Path]] = {}
    for path in folder.rglob("*.parquet"):
        if not any(part.startswith(".") for part in path.relative_to(folder).parts):
            writes.setdefault(path.parent, []).append(path)
    legacy = folder.with_name(f"{folder.name}.parquet")
    if not writes and not legacy.is_file():
        return None
    keys: tuple[str, ...] | None = None
    files, partitions = [], []
    for partition in sorted(writes):
        pairs = [part.split("=", 1) for part in partition.relative_to(folder).parts]
        if any(len(pair) != 2 for pair in pairs):
            raise SchemaError(
                f"{partition}: not a partition of catalog {folder.name}; expected folders "
                "named key=value"
            )
        found = tuple(key for key, _ in pairs)
        if keys is not None and found != keys:
            raise SchemaError(
                f"{partition}: partitioned by {list(found)}, other partitions of "
                f"{folder.name} by {list(keys)}"
            )
        keys = found
        current = sorted(writes[partition], key=lambda path: path.name)
        for path in current[-1:] if keys else current:
            files.append(path.resolve())
            partitions.append(tuple(unquote(value) for _, value in pairs))
    return CatalogSource(
        name=folder.name,
        files=tuple(files),
        partitions=tuple(partitions),
        partitioned=True,
        partition_keys=keys or (),
        legacy=legacy.resolve() if legacy.is_file() else None,
    )


def write_catalog(
    store: str | os.PathLike[str],
    spec: CatalogSpec,
    columns: Mapping[str, Any],
    *,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write a catalog (or, for a partitioned one, one more write of a partition).

    Parameters
    ----------
    store : path-like
        The store.
    spec : CatalogSpec
        The catalog's schema: every column needs to be in it, and its required ones present.
    columns : mapping
        Column name -> values. A partitioned catalog's partition columns hold one value.
    metadata : mapping, optional
        Provenance kept in the file metadata, beside the format version.

    Returns
    -------
    Path
        The file written.
    """
    spec.check_columns(list(columns), source=f"{spec.name} writer")
    provenance = {**(metadata or {}), VERSION_KEY: spec.version}
    target = StoreLayout(store).catalog(spec.name)
    if not spec.appends:
        return write_table_atomic(
            table_with_units(columns, units=spec.units, metadata=provenance), target
        )
    partition = {key: _one_value(columns[key], key=key, spec=spec) for key in spec.partition_by}
    table = table_with_units(
        {name: values for name, values in columns.items() if name not in partition},
        units=spec.units,
        metadata={**provenance, "partition": partition},
    )
    for key, value in partition.items():
        target = target / f"{key}={quote(value, safe='')}"
    now = datetime.datetime.now(datetime.UTC)
    return write_table_atomic(table, target / f"{now:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex}.parquet")


def _one_value(values: Sequence[Any], *, key: str, spec: CatalogSpec) -> str:
    distinct = sorted({str(value) for value in values})
    if len(distinct) != 1:
        raise SchemaError(
            f"a write of catalog {spec.name} holds one {key}; got {distinct[:5]} "
            f"({len(distinct)} values)"
        )
    return distinct[0]


def read_catalog(
    store: str | os.PathLike[str],
    spec: CatalogSpec,
    *,
    columns: Sequence[str] | None = None,
) -> pa.Table:
    """A catalog's current rows, checked against its schema.

    Parameters
    ----------
    store : path-like
        The store.
    spec : CatalogSpec
        The catalog's schema.
    columns : sequence of str, optional
        Columns to return (default: all); each must exist.

    Raises
    ------
    FileNotFoundError
        When the store has no such catalog (the message names the command that writes it).
    SchemaError
        For a file of another format version, or a missing column; one line naming the
        file, the column and what was expected.
    """
    path = StoreLayout(store).catalog(spec.name)
    source = None
    if spec.appends:
        source = _partitioned_source(path)
    elif path.is_file():
        source = CatalogSource(name=spec.name, files=(path,), partitions=((),))
    if source is None:
        raise FileNotFoundError(f"{path} does not exist: run `{spec.written_by}` first")
    for file in source.paths:
        version = read_metadata(file).get(VERSION_KEY, UNVERSIONED)
        if version != spec.version:
            raise SchemaError(
                f"{file}: {spec.name} format version {version}, expected {spec.version}; "
                f"it was written by another darkstack: run `{spec.written_by}` again"
            )
    wanted = tuple(columns) if columns is not None else spec.required
    if not source.partitioned:
        import pyarrow.parquet as pq

        spec.require(pq.read_schema(path).names, wanted, source=path)
        return pq.read_table(path, columns=list(columns) if columns is not None else None)
    import duckdb

    with duckdb.connect(":memory:") as connection:
        table = connection.sql(source.select_sql()).to_arrow_table()
    spec.require(table.column_names, wanted, source=path)
    return table.select(list(columns)) if columns is not None else table
