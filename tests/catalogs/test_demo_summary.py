"""The demo's summary table: whole status strings, no mean of -inf."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from darkstack.catalogs.query import query_store
from darkstack.cli.demo import SUMMARY_SQL
from darkstack.cli.query import MAX_CELL_WIDTH, render_table
from darkstack.store import StoreLayout

UNRESOLVED = "failed: no dark-matter particle within 1 kpc (unresolved)"


def test_the_demo_summary_shows_whole_statuses_and_no_infinite_means(
    tiny_ingested_store: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    shutil.copytree(tiny_ingested_store, store)
    # One unresolved galaxy, as ingest records it: log10 of no mass inside 1 kpc is -inf.
    path = StoreLayout(store).catalog("galaxies")
    galaxies = pq.read_table(path).to_pandas()
    galaxies.loc[0, "status"] = UNRESOLVED
    galaxies.at[0, "log10_mdm_enclosed"] = np.r_[-np.inf, galaxies.log10_mdm_enclosed[0][1:]]
    pq.write_table(pa.Table.from_pandas(galaxies, preserve_index=False), path)

    table = query_store(store, SUMMARY_SQL)
    statuses = table.column("status").to_pylist()
    assert UNRESOLVED in statuses and len(UNRESOLVED) > MAX_CELL_WIDTH
    for name in table.column_names[2:]:
        values = [v for v in table.column(name).to_pylist() if v is not None]
        assert np.isfinite(values).all(), name
    text = render_table(table, limit_rows=20, max_cell_width=None)
    for status in statuses:
        assert status in text
    assert "inf" not in text
