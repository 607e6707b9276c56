"""Ingest recovers from environmental failures and keeps its provenance true."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Any

import h5py
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from darkstack.cli import cli
from darkstack.ingest import build
from darkstack.ingest.build import run_ingest
from darkstack.ingest.config import CutoutConfig, IngestConfig, TargetConfig
from darkstack.ingest.selection import SelectionConfig
from darkstack.provenance import ProvenanceError
from darkstack.store import StoreLayout

# The selection of the ``tiny_ingested_store`` fixture.
CONFIG = IngestConfig(selection=SelectionConfig(stellar_mass_min_msun=3e9))


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_a_full_disk_fails_the_build_and_the_next_run_completes_it(
    tiny_sim: Path, tiny_ingested_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "store"
    written = []

    def full_disk(path: Path, *args: Any, **kwargs: Any) -> None:
        written.append(path)
        if len(written) % 2 == 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        original(path, *args, **kwargs)

    original = build.write_cutout
    monkeypatch.setattr(build, "write_cutout", full_disk)
    first = run_ingest(CONFIG, sim=tiny_sim, store=store, progress=False)
    n_full = len(written) // 2
    assert first.report.retry == {"OSError: No space left on device": n_full}, first.report
    assert not first.report.complete
    table = pd.read_parquet(StoreLayout(store).catalog("galaxies"))
    assert table.status.str.startswith("retry: OSError: No space left on device -- ").sum() == (
        n_full
    )

    monkeypatch.undo()
    second = run_ingest(CONFIG, sim=tiny_sim, store=store, progress=False)
    assert second.report.complete and not second.report.retry, second.report
    assert _tree(store) == _tree(tiny_ingested_store)


def test_a_changed_cutout_radius_is_refused_then_rebuilt(
    tiny_sim: Path, tiny_ingested_store: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    shutil.copytree(tiny_ingested_store, store)
    before = _tree(store)
    wider = IngestConfig(selection=CONFIG.selection, cutout=CutoutConfig(min_radius_kpc=150.0))
    with pytest.raises(ProvenanceError) as refused:
        run_ingest(wider, sim=tiny_sim, store=store, progress=False)
    message = str(refused.value)
    assert "\n" not in message
    assert "cutout.min_radius_kpc: 100.0 -> 150.0" in message
    assert "radius_kpc: 100.0 -> 150.0" in message and "pass --rebuild" in message
    assert _tree(store) == before  # nothing written

    run_ingest(wider, sim=tiny_sim, store=store, progress=False, rebuild=True)
    layout = StoreLayout(store)
    table = pd.read_parquet(layout.catalog("galaxies"))
    assert (table.cutout_radius_kpc == 150.0).all()
    for name in table.cutout_file:
        with h5py.File(store / name, "r") as file:
            assert file.attrs["radius_kpc"] == 150.0
    saved = yaml.safe_load(layout.ingest_config.read_text())
    assert saved["cutout"]["min_radius_kpc"] == 150.0


def test_changed_target_radii_are_rebuilt_without_asking(
    tiny_sim: Path, tiny_ingested_store: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    shutil.copytree(tiny_ingested_store, store)
    cutouts = {p.name: p.read_bytes() for p in StoreLayout(store).cutouts.glob("*.hdf5")}
    inner = IngestConfig(selection=CONFIG.selection, targets=TargetConfig(r_max_kpc=50.0))
    run_ingest(inner, sim=tiny_sim, store=store, progress=False)
    table = pd.read_parquet(StoreLayout(store).catalog("galaxies"))
    assert max(table.radii_kpc.iloc[0]) == pytest.approx(50.0)
    assert {p.name: p.read_bytes() for p in StoreLayout(store).cutouts.glob("*.hdf5")} == cutouts


def test_cli_exit_codes_and_last_line(tiny_sim: Path, tiny_ingested_store: Path, tmp_path: Path):
    store = tmp_path / "store"
    shutil.copytree(tiny_ingested_store, store)
    runner = CliRunner()
    arguments = ["ingest", "--sim", str(tiny_sim), "--store", str(store)]
    arguments += ["--set", "selection.stellar_mass_min_msun=3e9"]
    result = runner.invoke(cli, arguments)
    assert result.exit_code == 0, result.output
    n = len(pd.read_parquet(StoreLayout(store).catalog("galaxies")))
    assert (
        result.output.strip().splitlines()[-1].startswith("ingest: ")
        and f"of {n} galaxies ok" in result.output
    )
    refused = runner.invoke(cli, [*arguments, "--set", "cutout.min_radius_kpc=150"])
    assert refused.exit_code == 2
    assert "cutout.min_radius_kpc: 100.0 -> 150.0" in refused.output
    assert "Traceback" not in refused.output
    nothing = runner.invoke(
        cli,
        [
            *arguments,
            "--set",
            "selection.stellar_mass_min_msun=9e11",
            "--store",
            str(tmp_path / "empty"),
        ],
    )
    assert nothing.exit_code == 1, nothing.output
    assert nothing.output.strip().splitlines()[-1] == (
        "darkstack: error: ingest: 0 of 0 galaxies ok; nothing to build"
    )
