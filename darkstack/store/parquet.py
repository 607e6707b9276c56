"""Parquet files as darkstack writes them: units in field metadata, config in file metadata.

Every catalog darkstack writes (the store's, and a simulation's ``truth.parquet``) says what
each column is measured in (``unit`` in the field metadata, as the contract requires) and how
the file was made (the resolved config as JSON in the file metadata under ``darkstack``).
Writes are atomic: a temporary file then a rename, so a killed process never leaves half a
catalog.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from darkstack.atomic import atomic_path

METADATA_KEY = b"darkstack"


def table_with_units(
    columns: Mapping[str, Any],
    *,
    units: Mapping[str, str],
    metadata: Mapping[str, Any] | None = None,
) -> pa.Table:
    """An Arrow table whose fields carry their unit and whose schema carries ``metadata``.

    Parameters
    ----------
    columns : mapping
        Column name -> values (anything ``pyarrow.array`` takes; lists become list columns).
    units : mapping
        Column name -> unit string (``""`` for dimensionless); every column needs one.
    metadata : mapping, optional
        JSON-serialisable provenance stored under the ``darkstack`` key.
    """
    missing = sorted(set(columns) - set(units))
    if missing:
        raise ValueError(f"columns {missing} have no unit; every catalog column declares one")
    fields = []
    arrays = []
    for name, values in columns.items():
        array = pa.array(values)
        fields.append(pa.field(name, array.type, metadata={"unit": units[name]}))
        arrays.append(array)
    schema_metadata = {METADATA_KEY: json.dumps(dict(metadata or {}), sort_keys=True).encode()}
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=schema_metadata))


def write_table_atomic(table: pa.Table, path: str | os.PathLike[str]) -> Path:
    """Write ``table`` to ``path`` through a temporary file and a rename."""
    path = Path(path)
    with atomic_path(path) as temporary:
        pq.write_table(table, temporary, compression="zstd")
    return path


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``darkstack`` provenance stored in a catalog's file metadata."""
    schema = pq.read_schema(path)
    raw = (schema.metadata or {}).get(METADATA_KEY)
    return json.loads(raw) if raw else {}


def column_units(path: str | os.PathLike[str]) -> dict[str, str]:
    """Column name -> unit, from the field metadata of a catalog."""
    schema = pq.read_schema(path)
    return {field.name: (field.metadata or {}).get(b"unit", b"").decode() for field in schema}
