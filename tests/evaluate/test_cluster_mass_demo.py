"""``darkstack demo --task cluster_mass`` end to end (70-90 s on the shared machine: slow)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from darkstack.cli import cli
from darkstack.store import StoreLayout


@pytest.mark.slow
def test_cluster_mass_demo_writes_a_report_comparing_four_unets_and_the_baseline(
    tmp_path: Path,
) -> None:
    result = CliRunner().invoke(
        cli, ["demo", "--task", "cluster_mass", "--out", str(tmp_path), "--workers", "1"], obj={}
    )
    assert result.exit_code == 0, result.output
    run = "unet_tsz_y+xray_bol+stellar_mass_early_c8p3_s0"
    report = StoreLayout(tmp_path / "store").run(run).report
    assert f"report: {report / 'summary.md'}" in result.output
    metrics = json.loads((report / "metrics.json").read_text())
    assert len(metrics["models"]) == 5 and metrics["test"]["n_clusters"] == 2
    for model in metrics["models"].values():
        assert np.isfinite(model["mass_scatter_dex_0.5r200"]["value"])
