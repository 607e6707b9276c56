"""``darkstack query``: read-only SQL over the store's parquet catalogs."""

from __future__ import annotations

import csv
import datetime
import decimal
import io
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    import pyarrow as pa

# Wider cells are cut: one long list column must not push every other column off screen.
MAX_CELL_WIDTH = 40


@click.command()
@click.option(
    "--store",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Store folder STORE; every catalog, STORE/catalogs/<name>.parquet or a partitioned "
    "STORE/catalogs/<name>/, is the table <name>.",
)
@click.argument("sql")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "csv", "json", "parquet"]),
    default="table",
    show_default=True,
    help="table: aligned text for reading; csv/json: every row; parquet needs --output.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the result to this file instead of standard output (never inside the store).",
)
@click.option("--force", is_flag=True, help="Replace an existing --output file.")
@click.option(
    "--limit-rows",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Rows shown by --format table; other formats write every row.",
)
def query(
    store: Path,
    sql: str,
    output_format: str,
    output: Path | None,
    force: bool,
    limit_rows: int,
) -> None:
    """Read-only SQL (one DuckDB SELECT) over the store's catalogs.

    Tables are named by file stem, e.g.

        darkstack query --store STORE "SELECT count(*) FROM galaxies"

    Statements that write (INSERT, CREATE, COPY, ATTACH, SET, ...) are refused.
    """
    from darkstack.catalogs.query import query_store
    from darkstack.errors import InputError
    from darkstack.store import write_table_atomic

    if output_format == "parquet" and output is None:
        raise click.UsageError("--format parquet writes binary data: give --output FILE")
    if not store.is_dir():
        raise InputError(f"--store {store} does not exist; expected a store folder")
    if output is not None:
        check_output(output, store=store, force=force)
    try:
        result = query_store(store, sql)
    except FileNotFoundError as error:
        raise InputError(str(error)) from error

    if output_format in ("json", "parquet"):
        duplicates = sorted({n for n in result.column_names if result.column_names.count(n) > 1})
        if duplicates:
            raise InputError(
                f"--format {output_format} needs distinct column names, {duplicates} repeat: "
                "alias them (SELECT g.galaxy_id AS g_id, ...) or select fewer columns"
            )
    if output_format == "parquet":
        assert output is not None  # refused above; narrows the type
        write_table_atomic(result, output)
    else:
        if output_format == "table":
            text = render_table(result, limit_rows=limit_rows)
        elif output_format == "csv":
            text = render_csv(result)
        else:
            text = render_json(result)
        if output is None:
            click.echo(text, nl=False)
            return
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8", newline="")
    click.echo(f"wrote {_rows(result.num_rows)} to {output}")


def check_output(output: Path, *, store: Path, force: bool) -> None:
    """Refuse an ``--output`` inside the store, or an existing file unless ``force``.

    Query never writes the store: a file there could replace a catalog, a dataset's metadata
    (``observations.zarr/zarr.json``) or a run's checkpoint. Symbolic links are resolved, so
    neither a link into the store nor one out of it fools the check.

    Raises
    ------
    darkstack.errors.InputError
        Naming the path and why it is refused.
    """
    from darkstack.errors import InputError

    if output.resolve().is_relative_to(store.resolve()):
        raise InputError(
            f"--output {output} is inside the store {store}: query never writes the store"
        )
    if output.exists() and not force:
        raise InputError(f"--output {output} exists; give --force to replace it")


def render_table(
    table: pa.Table, *, limit_rows: int, max_cell_width: int | None = MAX_CELL_WIDTH
) -> str:
    """``table`` as aligned text with a header rule and a row-count footer.

    Parameters
    ----------
    table : pyarrow.Table
        The result to show.
    limit_rows : int
        Show at most this many rows; the footer says when rows were left out.
    max_cell_width : int or None
        Cells longer than this are cut (ending in an ellipsis); None shows them whole.
    """
    import pyarrow as pa

    shown = table.slice(0, limit_rows)
    names = [_clip(name, max_cell_width) for name in table.column_names]
    columns = [
        [_clip(_cell(value), max_cell_width) for value in column.to_pylist()]
        for column in shown.columns
    ]
    widths = [
        max([len(name), *(len(cell) for cell in cells)])
        for name, cells in zip(names, columns, strict=True)
    ]
    numeric = [
        pa.types.is_integer(field.type)
        or pa.types.is_floating(field.type)
        or pa.types.is_decimal(field.type)
        for field in table.schema
    ]

    def line(cells: list[str]) -> str:
        parts = (
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, right in zip(cells, widths, numeric, strict=True)
        )
        return "  ".join(parts).rstrip()

    lines = [line(names), line(["-" * width for width in widths])]
    lines += [line(list(row)) for row in zip(*columns, strict=True)]
    if table.num_rows > shown.num_rows:
        lines.append(
            f"({shown.num_rows} of {_rows(table.num_rows)} shown; raise --limit-rows, "
            "or use --format csv for all)"
        )
    else:
        lines.append(f"({_rows(table.num_rows)})")
    return "\n".join(lines) + "\n"


def render_csv(table: pa.Table) -> str:
    """``table`` as CSV with a header; list and struct cells are JSON text, nulls are empty."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.column_names)
    for row in _rows_of(table):
        writer.writerow(_csv_cell(value) for value in row)
    return buffer.getvalue()


def render_json(table: pa.Table) -> str:
    """``table`` as a JSON array of objects, one row per line.

    NaN and infinities become ``null``: strict JSON has no spelling for them and tools such
    as ``jq`` reject Python's ``NaN``.
    """
    names = table.column_names
    records = [
        json.dumps(dict(zip(names, map(_jsonable, row), strict=True)), allow_nan=False)
        for row in _rows_of(table)
    ]
    return "[\n" + ",\n".join(records) + "\n]\n" if records else "[]\n"


def _rows_of(table: pa.Table) -> Iterator[tuple[Any, ...]]:
    """Rows as tuples, by position: repeated column names must not collapse, as dicts would."""
    return zip(*(column.to_pylist() for column in table.columns), strict=True)


def _cell(value: Any) -> str:
    """A value as short readable text for the table format."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        return "[" + ", ".join(_cell(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {_cell(item)}" for key, item in value.items()) + "}"
    if isinstance(value, bytes):
        return value.hex()
    return str(value).replace("\n", "\\n")


def _clip(text: str, width: int | None) -> str:
    return text if width is None or len(text) <= width else text[: width - 1] + "…"


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | dict):
        return json.dumps(_jsonable(value), allow_nan=False)
    if isinstance(value, bytes):
        return value.hex()
    return value


def _jsonable(value: Any) -> Any:
    """``value`` with every part JSON can spell: dates as ISO text, decimals as numbers.

    Decimals become floats, as DuckDB's own ``to_json`` writes them, so that readers get
    numbers; digits beyond double precision are lost.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def _rows(n: int) -> str:
    return f"{n:,} row" + ("" if n == 1 else "s")
