"""Read-only SQL over the store's parquet catalogs, through an in-memory DuckDB.

Every catalog of the store is exposed as a view named after it: ``STORE/catalogs/<stem>.parquet``
as ``<stem>``, and a partitioned catalog ``STORE/catalogs/<name>/`` as ``<name>``, one table
of the newest write of each partition (the rule of :mod:`darkstack.store.catalogs`). So
``SELECT * FROM galaxies JOIN observations USING (galaxy_id)`` works without loading or copying
anything. Nothing is written: the database lives in memory and only a single SELECT runs.

Read-only is enforced twice:

1. DuckDB's own parser (``duckdb.extract_statements``) classifies the SQL; anything but one
   SELECT statement is refused before it reaches the database. This is the layer that protects
   the catalog files themselves (see 2.).
2. The connection is sandboxed: ``allowed_paths`` lists exactly the catalog files, then
   ``enable_external_access = false`` and ``lock_configuration = true``. DuckDB then refuses any
   other file or URL (``read_csv('/etc/passwd')``, ``COPY ... TO``, ``ATTACH``, ``INSTALL``),
   and the SQL can no longer loosen the settings. Settings cannot be given to ``connect``
   instead: DuckDB applies ``enable_external_access`` first and then rejects ``allowed_paths``.
   ``allowed_paths`` grants writes as well as reads, so this layer alone would let
   ``COPY ... TO 'STORE/catalogs/galaxies.parquet'`` overwrite a catalog; the parser check is
   what stops it.
"""

from __future__ import annotations

import functools
import os
import re
import tempfile

import duckdb
import pyarrow as pa

from darkstack.errors import InputError
from darkstack.store import CatalogSource, StoreLayout, catalog_sources, sql_string

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class QueryError(InputError, ValueError):
    """SQL that the store refuses (it writes, or is not one statement) or that DuckDB rejects."""


def catalog_tables(store: str | os.PathLike[str]) -> dict[str, CatalogSource]:
    """The store's catalogs as table name -> where its rows are, sorted by name.

    Parameters
    ----------
    store : path-like
        The store folder; catalogs are ``store/catalogs/*.parquet`` and partitioned folders
        ``store/catalogs/<name>/``.

    Returns
    -------
    dict of str to CatalogSource
        Catalog (SQL table) name -> its files.

    Raises
    ------
    FileNotFoundError
        If ``store/catalogs`` does not exist or holds no parquet file.
    QueryError
        If a catalog's name cannot be a plain SQL table name, two names differ only by case
        (SQL names are case-insensitive, so they would be the same table), or a partitioned
        catalog's folders are not ``key=value``.
    """
    try:
        sources = catalog_sources(store)
    except ValueError as error:
        raise QueryError(str(error)) from error
    seen: dict[str, str] = {}
    for name, source in sources.items():
        shown = source.paths[0].name if not source.partitioned else f"{name}/"
        if not _IDENTIFIER.fullmatch(name) or name.lower() in _reserved_keywords():
            raise QueryError(
                f"catalog {shown} cannot be queried: {name!r} is not a valid SQL table name "
                "(use letters, digits and underscores, not starting with a digit, and no "
                "reserved word such as 'select' or 'order'); rename it"
            )
        if name.lower() in seen:
            raise QueryError(
                f"catalogs {seen[name.lower()]} and {shown} in {StoreLayout(store).catalogs} would "
                "be the same SQL table (names are case-insensitive); rename one of them"
            )
        seen[name.lower()] = shown
    return sources


def query_store(store: str | os.PathLike[str], sql: str) -> pa.Table:
    """Run one read-only SELECT over every catalog of ``store`` and return the result.

    Parameters
    ----------
    store : path-like
        The store folder; each catalog is the table of its name (see `catalog_tables`).
    sql : str
        A single SELECT statement (DuckDB dialect; ``WITH``, ``DESCRIBE``, ``SUMMARIZE`` and
        ``SHOW`` are SELECTs too). It may only read the store's catalogs.

    Returns
    -------
    pyarrow.Table
        The whole result, in memory.

    Raises
    ------
    FileNotFoundError
        If the store has no catalogs (see `catalog_tables`).
    QueryError
        If the SQL is not exactly one SELECT, touches a file outside the store, or DuckDB
        rejects it; the message is one line and names the available tables.
    """
    tables = catalog_tables(store)
    available = ", ".join(tables)
    statement = _single_select(sql, available=available)
    # Spilled intermediates go to a private folder removed afterwards, not DuckDB's default
    # `.tmp/` in the caller's working directory.
    with tempfile.TemporaryDirectory(prefix="darkstack-query-") as spill:
        connection = duckdb.connect(":memory:")
        try:
            _sandbox(connection, tables, spill=spill)
            try:
                return connection.sql(statement).to_arrow_table()
            except duckdb.Error as error:
                raise QueryError(
                    f"query failed (tables: {available}): {_one_line(error)}"
                ) from error
        finally:
            connection.close()


def _single_select(sql: str, *, available: str) -> duckdb.Statement:
    """The one SELECT statement in ``sql``, or a `QueryError` saying why not."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as error:
        raise QueryError(f"query failed (tables: {available}): {_one_line(error)}") from error
    if not statements:
        raise QueryError("no SQL statement given")
    if len(statements) > 1:
        kinds = ", ".join(s.type.name for s in statements)
        raise QueryError(
            f"one statement at a time: got {len(statements)} ({kinds}); "
            "the store is read-only and runs a single SELECT"
        )
    statement = statements[0]
    if statement.type != duckdb.StatementType.SELECT:
        # DuckDB expands a PIVOT without an IN list into a CREATE TYPE plus a SELECT.
        hint = (
            "; a PIVOT needs its values listed: PIVOT t ON col IN ('a', 'b') USING ..."
            if statement.type == duckdb.StatementType.MULTI
            else ""
        )
        raise QueryError(
            f"{statement.type.name} statements are refused: the store is read-only, "
            f"only a SELECT can run{hint}"
        )
    return statement


def _sandbox(
    connection: duckdb.DuckDBPyConnection, tables: dict[str, CatalogSource], *, spill: str
) -> None:
    """Create one view per catalog, then lock the connection to reading exactly those files.

    The order matters: ``allowed_paths`` can only be set while external access is still on,
    and once ``lock_configuration`` is set nothing can be changed back.
    """
    paths = ", ".join(sql_string(str(path)) for source in tables.values() for path in source.paths)
    connection.execute(f"SET temp_directory = {sql_string(spill)}")
    connection.execute(f"SET allowed_paths = [{paths}]")
    for name, source in tables.items():
        connection.execute(f'CREATE VIEW "{name}" AS {source.select_sql()}')
    connection.execute("SET enable_external_access = false")
    connection.execute("SET lock_configuration = true")


def _one_line(error: Exception) -> str:
    """DuckDB's message without the ``LINE 1: ... ^`` pointer, joined onto one line."""
    message = str(error).split("\nLINE ", 1)[0]
    return " ".join(message.split())


@functools.cache
def _reserved_keywords() -> frozenset[str]:
    """The words DuckDB refuses as unquoted table names, from DuckDB itself."""
    with duckdb.connect(":memory:") as connection:
        rows = connection.execute(
            "SELECT keyword_name FROM duckdb_keywords() WHERE keyword_category = 'reserved'"
        ).fetchall()
    return frozenset(row[0].lower() for row in rows)
