"""``darkstack query`` and `query_store`: read-only SQL over a store's parquet catalogs."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from darkstack.catalogs.query import QueryError, catalog_tables, query_store
from darkstack.cli import cli
from darkstack.store import (
    PREDICTIONS_CATALOG,
    StoreLayout,
    table_with_units,
    write_catalog,
    write_table_atomic,
)

GALAXIES = {
    "galaxy_id": [1, 2, 3],
    "stellar_mass": [1.5e10, 3.0e9, 7.25e10],
    "radii_kpc": [[1.0, 2.5], [0.5], [3.0, 4.0, 5.5]],
}
OBSERVATIONS = {
    "galaxy_id": [1, 1, 3, 4],
    "band": ["g", "r", "r", "i"],
    "magnitude": [18.25, 17.5, 16.0, 19.75],
}
JOIN = (
    "SELECT g.galaxy_id, o.band, o.magnitude, g.radii_kpc "
    "FROM galaxies g JOIN observations o USING (galaxy_id) ORDER BY o.magnitude"
)
# (galaxy_id, band, magnitude, radii_kpc) of JOIN: galaxy 4 has no galaxy, 2 no observation.
JOIN_ROWS = [
    (3, "r", 16.0, [3.0, 4.0, 5.5]),
    (1, "r", 17.5, [1.0, 2.5]),
    (1, "g", 18.25, [1.0, 2.5]),
]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    root = tmp_path / "STORE"
    galaxies = table_with_units(
        GALAXIES, units={"galaxy_id": "", "stellar_mass": "Msun", "radii_kpc": "kpc"}
    )
    observations = table_with_units(
        OBSERVATIONS, units={"galaxy_id": "", "band": "", "magnitude": "mag"}
    )
    write_table_atomic(galaxies, StoreLayout(root).catalog("galaxies"))
    write_table_atomic(observations, StoreLayout(root).catalog("observations"))
    return root


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["query", *args], obj={})
    return result.exit_code, result.stdout, result.stderr


def test_tables_are_named_by_file_stem(store: Path) -> None:
    tables = catalog_tables(store)
    assert list(tables) == ["galaxies", "observations"]
    assert tables["galaxies"].files == (StoreLayout(store).catalog("galaxies").resolve(),)
    assert not tables["galaxies"].partitioned


def test_join_across_catalogs(store: Path) -> None:
    result = query_store(store, JOIN)
    assert result.column_names == ["galaxy_id", "band", "magnitude", "radii_kpc"]
    assert list(zip(*result.to_pydict().values(), strict=True)) == JOIN_ROWS


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("INSERT INTO galaxies VALUES (9, 1.0, [1.0])", "INSERT"),
        ("UPDATE galaxies SET stellar_mass = 0", "UPDATE"),
        ("DELETE FROM observations", "DELETE"),
        ("CREATE TABLE copy AS SELECT * FROM galaxies", "CREATE"),
        ("DROP VIEW galaxies", "DROP"),
        ("COPY galaxies TO '{catalogs}/galaxies.parquet' (FORMAT parquet)", "COPY"),
        ("COPY (SELECT 1 AS a) TO '{catalogs}/evil.csv'", "COPY"),
        # DuckDB's sandbox allows this write (the file is in allowed_paths): the parser must not.
        (
            "COPY (SELECT 42 AS galaxy_id) TO '{catalogs}/galaxies.parquet' "
            "(FORMAT parquet, USE_TMP_FILE false)",
            "COPY",
        ),
        ("ATTACH '{catalogs}/evil.duckdb' AS evil", "ATTACH"),
        ("PRAGMA enable_profiling", "PRAGMA"),
        ("SET enable_external_access = true", "SET"),
        ("INSTALL httpfs", "LOAD"),
        ("LOAD httpfs", "LOAD"),
        ("EXPORT DATABASE '{catalogs}/dump'", "EXPORT"),
    ],
)
def test_writing_statements_are_refused(store: Path, sql: str, kind: str) -> None:
    catalogs = StoreLayout(store).catalogs
    before = _snapshot(catalogs)
    with pytest.raises(QueryError, match=rf"^{kind} statements are refused: .*read-only"):
        query_store(store, sql.format(catalogs=catalogs))
    assert _snapshot(catalogs) == before


def test_multiple_statements_are_refused(store: Path) -> None:
    catalogs = StoreLayout(store).catalogs
    before = _snapshot(catalogs)
    sql = f"SELECT 1; COPY galaxies TO '{catalogs}/galaxies.parquet' (FORMAT parquet)"
    with pytest.raises(QueryError, match=r"one statement at a time: got 2 \(SELECT, COPY\)"):
        query_store(store, sql)
    assert _snapshot(catalogs) == before


def test_reading_outside_the_store_is_refused(store: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret.csv"
    outside.write_text("a\n1\n")
    for sql in (
        f"SELECT * FROM read_csv('{outside}')",
        f"SELECT * FROM glob('{tmp_path}/*')",
        # sniff_csv bypassed the sandbox in older DuckDB releases (a published advisory).
        f"SELECT * FROM sniff_csv('{outside}')",
        "SELECT * FROM read_parquet('https://example.org/x.parquet')",
    ):
        with pytest.raises(QueryError, match="disabled by configuration"):
            query_store(store, sql)
    # The sandbox still lets a SELECT name a catalog file directly.
    galaxies = StoreLayout(store).catalog("galaxies")
    direct = f"SELECT count(*) AS n FROM read_parquet('{galaxies}')"
    assert query_store(store, direct).column("n").to_pylist() == [3]


def test_unknown_table_names_the_catalogs(store: Path) -> None:
    with pytest.raises(QueryError) as caught:
        query_store(store, "SELECT * FROM halos")
    message = str(caught.value)
    assert message.startswith("query failed (tables: galaxies, observations): Catalog Error")
    assert "halos" in message
    assert "\n" not in message


def test_bad_stem_is_refused(store: Path) -> None:
    table = table_with_units({"a": [1]}, units={"a": ""})
    write_table_atomic(table, StoreLayout(store).catalogs / "order.parquet")
    with pytest.raises(QueryError, match=r"order\.parquet cannot be queried"):
        catalog_tables(store)


def test_missing_or_empty_store(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        catalog_tables(tmp_path / "nowhere")
    StoreLayout(tmp_path / "empty").catalogs.mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"holds no \.parquet file"):
        catalog_tables(tmp_path / "empty")


def test_cli_table(store: Path) -> None:
    code, out, _ = _invoke("--store", str(store), JOIN)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["galaxy_id", "band", "magnitude", "radii_kpc"]
    assert set(lines[1]) == {"-", " "}
    assert lines[2].split(maxsplit=3) == ["3", "r", "16", "[3, 4, 5.5]"]
    # Numbers are right-aligned under their header.
    assert len(lines[2].split("  r")[0]) == len(lines[0].split("  band")[0])
    assert lines[-1] == "(3 rows)"


def test_cli_table_is_truncated(store: Path) -> None:
    code, out, _ = _invoke("--store", str(store), "--limit-rows", "2", JOIN)
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 2 + 2 + 1
    assert lines[-1].startswith("(2 of 3 rows shown")


def test_cli_csv(store: Path, tmp_path: Path) -> None:
    code, out, _ = _invoke("--store", str(store), "--format", "csv", JOIN)
    assert code == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["galaxy_id", "band", "magnitude", "radii_kpc"]
    parsed = [(int(i), b, float(m), json.loads(r)) for i, b, m, r in rows[1:]]
    assert parsed == JOIN_ROWS

    target = tmp_path / "out.csv"
    code, out, _ = _invoke("--store", str(store), "--format", "csv", "--output", str(target), JOIN)
    assert code == 0
    assert out == f"wrote 3 rows to {target}\n"
    assert list(csv.reader(io.StringIO(target.read_text()))) == rows


def test_cli_json(store: Path) -> None:
    code, out, _ = _invoke("--store", str(store), "--format", "json", JOIN)
    assert code == 0
    records = json.loads(out)
    assert [tuple(r.values()) for r in records] == JOIN_ROWS
    assert list(records[0]) == ["galaxy_id", "band", "magnitude", "radii_kpc"]


def test_cli_json_refuses_repeated_names(store: Path) -> None:
    sql = "SELECT * FROM galaxies g JOIN observations o ON g.galaxy_id = o.galaxy_id"
    code, _, err = _invoke("--store", str(store), "--format", "json", sql)
    assert code == 2
    assert "['galaxy_id'] repeat" in err


def test_cli_parquet(store: Path, tmp_path: Path) -> None:
    code, _, err = _invoke("--store", str(store), "--format", "parquet", JOIN)
    assert code == 2
    assert "give --output FILE" in err

    target = tmp_path / "result.parquet"
    code, _, _ = _invoke(
        "--store", str(store), "--format", "parquet", "--output", str(target), JOIN
    )
    assert code == 0
    assert list(zip(*pq.read_table(target).to_pydict().values(), strict=True)) == JOIN_ROWS


def test_cli_refuses_output_into_the_store(store: Path) -> None:
    catalogs = StoreLayout(store).catalogs
    before = _snapshot(catalogs)
    target = StoreLayout(store).catalog("galaxies")
    args = ("--store", str(store), "--format", "parquet", "--output", str(target))
    code, _, err = _invoke(*args, "SELECT 1 AS a")
    assert code == 2
    assert "query never writes the store" in err
    assert _snapshot(catalogs) == before
    # Anywhere in the store, not only its catalogs (the zarr.json), and through a link.
    metadata = store / "observations.zarr" / "zarr.json"
    metadata.parent.mkdir()
    metadata.write_text("{}")
    link = store.parent / "link.json"
    link.symlink_to(metadata)
    for target in (metadata, link):
        code, _, err = _invoke(
            "--store", str(store), "--output", str(target), "--force", "SELECT 1"
        )
        assert code == 2
        assert err.splitlines() == [
            f"darkstack: error: --output {target} is inside the store {store}: query never "
            "writes the store"
        ]
    assert metadata.read_text() == "{}"


def test_cli_replaces_an_existing_output_only_with_force(store: Path, tmp_path: Path) -> None:
    target = tmp_path / "result.csv"
    target.write_text("keep me")
    args = ("--store", str(store), "--format", "csv", "--output", str(target))
    code, _, err = _invoke(*args, "SELECT 1 AS a")
    assert code == 2
    assert err.splitlines() == [
        f"darkstack: error: --output {target} exists; give --force to replace it"
    ]
    assert target.read_text() == "keep me"
    code, _, _ = _invoke(*args, "--force", "SELECT 1 AS a")
    assert code == 0
    assert target.read_text() == "a\n1\n"


def test_cli_help() -> None:
    code, out, _ = _invoke("--help")
    assert code == 0
    for option in ("--store", "--format", "--output", "--limit-rows", "SQL"):
        assert option in out


def test_cli_missing_store(tmp_path: Path) -> None:
    missing = tmp_path / "no-store"
    code, out, err = _invoke("--store", str(missing), "SELECT 1")
    assert code == 2
    assert out == ""
    assert err.splitlines() == [
        f"darkstack: error: --store {missing} does not exist; expected a store folder"
    ]
    missing.mkdir()
    code, out, err = _invoke("--store", str(missing), "SELECT 1")
    catalogs = StoreLayout(missing).catalogs
    assert (code, out) == (2, "")
    assert err.splitlines() == [f"darkstack: error: no catalogs folder: {catalogs} does not exist"]


def test_cli_unknown_table_lists_catalogs(store: Path) -> None:
    code, _, err = _invoke("--store", str(store), "SELECT * FROM halos")
    assert code == 2
    assert len(err.splitlines()) == 1
    assert err.startswith("darkstack: error: query failed (tables: galaxies, observations): ")


def test_cli_refuses_writes_in_one_line(store: Path) -> None:
    code, _, err = _invoke("--store", str(store), "DROP VIEW galaxies")
    assert code == 2
    assert err.splitlines() == [
        "darkstack: error: DROP statements are refused: the store is read-only, only a SELECT "
        "can run"
    ]


def test_pivot_without_values_gets_a_hint(store: Path) -> None:
    with pytest.raises(QueryError, match=r"^MULTI statements are refused: .*PIVOT t ON col IN"):
        query_store(store, "PIVOT observations ON band USING avg(magnitude)")
    listed = "PIVOT observations ON band IN ('g', 'r') USING avg(magnitude) ORDER BY galaxy_id"
    assert query_store(store, listed).column("r").to_pylist() == [17.5, 16.0, None]


def test_cli_json_nan_is_null_and_empty_is_a_list(store: Path) -> None:
    # 1.5 is a DECIMAL literal in DuckDB: it must come out as a number, not text.
    sql = "SELECT 'nan'::DOUBLE AS x, 'inf'::DOUBLE AS y, 1.5 AS z"
    code, out, _ = _invoke("--store", str(store), "--format", "json", sql)
    assert code == 0
    assert json.loads(out) == [{"x": None, "y": None, "z": 1.5}]
    code, out, _ = _invoke("--store", str(store), "--format", "json", "FROM galaxies LIMIT 0")
    assert (code, out) == (0, "[]\n")


def _write_predictions(store: Path, run: str, medians: list[float]) -> Path:
    """One write of the predictions catalog, as `darkstack evaluate` makes it."""
    n = len(medians)
    columns = {
        "run": [run] * n,
        "split": ["test"] * n,
        "sample": list(range(n)),
        "subhalo_id": list(range(n)),
        **{name: [[m] for m in medians] for name in PREDICTED},
        "radii_kpc": [[1.0]] * n,
    }
    return write_catalog(store, PREDICTIONS_CATALOG, columns)


PREDICTED = [column.name for column in PREDICTIONS_CATALOG.columns if column.unit == "log10 Msun"]


def test_a_partitioned_catalog_is_one_table_of_each_runs_newest_write(store: Path) -> None:
    _write_predictions(store, "a", [10.0, 10.5])
    _write_predictions(store, "b", [11.0])
    _write_predictions(store, "a", [12.0, 12.5, 13.0])  # a re-evaluation supersedes
    assert list(catalog_tables(store)) == ["galaxies", "observations", "predictions"]
    sql = "SELECT run, count(*) AS n, max(log10_mdm_median[1]) AS top FROM predictions "
    result = query_store(store, sql + "GROUP BY run ORDER BY run")
    assert result.to_pydict() == {"run": ["a", "b"], "n": [3, 1], "top": [13.0, 11.0]}
    assert query_store(store, "SELECT * FROM predictions LIMIT 1").column_names[:2] == [
        "run",
        "split",
    ]


def test_a_partitioned_catalog_stays_read_only(store: Path) -> None:
    written = _write_predictions(store, "a", [10.0])
    catalogs = StoreLayout(store).catalogs
    before = sorted(p.relative_to(catalogs) for p in catalogs.rglob("*"))
    target = written.parent / "20990101T000000000000Z-forged.parquet"
    with pytest.raises(QueryError, match=r"^COPY statements are refused"):
        query_store(store, f"COPY (SELECT * FROM predictions) TO '{target}' (FORMAT parquet)")
    code, _, err = _invoke(
        "--store", str(store), "--format", "csv", "--output", str(target), "SELECT 1"
    )
    assert code == 2 and "query never writes the store" in err
    assert sorted(p.relative_to(catalogs) for p in catalogs.rglob("*")) == before


def test_a_stray_folder_in_a_partitioned_catalog_is_named(store: Path) -> None:
    written = _write_predictions(store, "a", [10.0])
    stray = written.parent.parent / "misc"
    stray.mkdir()
    (stray / "x.parquet").write_bytes(written.read_bytes())
    with pytest.raises(QueryError, match=r"misc: not a partition of catalog predictions"):
        query_store(store, "SELECT 1")
