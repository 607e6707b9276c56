"""``darkstack evaluate --task cluster_mass`` end to end on clusters-quick (tiny maps, 1 epoch)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from darkstack.cli import cli
from darkstack.evaluate.cluster_mass.report import comparable_runs, comparison_pairs
from darkstack.store import StoreLayout
from darkstack.universe.clusters.preset import ClustersConfig, build_clusters

#: Two test clusters of six, 32 px maps from 64, two lines of sight, 4-channel U-Nets.
TRAIN = (
    "--preset",
    "quick",
    "--no-ray",
    "--set",
    "model.channels=4",
    "--set",
    "optim.max_epochs=1",
    "--set",
    "torch_threads=1",
    "--set",
    "data.split_fractions=[0.34,0.33,0.33]",
)
MULTI = "unet_tsz_y+xray_bol+stellar_mass_early_c4p3_s0"
SINGLE = "unet_tsz_y_c4p3_s0"


def _run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), obj={})
    assert result.exit_code == 0, result.output
    return str(result.output)


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cluster_eval")
    build_clusters(ClustersConfig(), root / "sim", progress=False)
    store = root / "store"
    _run(
        "ingest",
        "--task",
        "cluster_mass",
        "--sim",
        str(root / "sim" / "output"),
        "--store",
        str(store),
    )
    _run(
        "observe", "--kind", "cluster_maps", "--store", str(store),
        "--set", "n_lines_of_sight=2", "--set", "oversample=2", "--set", "n_pixels=32",
    )  # fmt: skip
    for views in ("[tsz_y]", "[tsz_y,xray_bol,stellar_mass]"):
        _run(
            "train",
            "--task",
            "cluster_mass",
            "--store",
            str(store),
            *TRAIN,
            "--set",
            f"views={views}",
        )
    output = _run("evaluate", "--store", str(store), "--run", MULTI, "--set", "n_bootstrap=20")
    assert "summary.md" in output
    return store


def test_report_compares_the_run_its_sibling_and_the_baseline(evaluated: Path) -> None:
    report = StoreLayout(evaluated).run(MULTI).report
    for name in ("summary.md", "metrics.json", "panels.png", "profiles.png", "power.png"):
        assert (report / name).is_file(), name
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["compared_runs"] == [SINGLE]
    assert metrics["test"]["n_clusters"] == 2 and metrics["test"]["n_maps"] == 4
    assert set(metrics["models"]) == {MULTI, SINGLE, "baseline"}
    keys = {
        "pixel_bias_dex",
        "pixel_scatter_dex",
        "mass_scatter_dex_0.5r200",
        "small_scale_power_ratio",
        "substructure_power_ratio",
    }
    for model in metrics["models"].values():
        for key in keys:
            assert np.isfinite(model[key]["value"]) and np.all(np.isfinite(model[key]["interval"]))
    pairs = {(d["a"], d["b"]) for d in metrics["differences"]}
    assert pairs == {(MULTI, SINGLE), (MULTI, "baseline"), (SINGLE, "baseline")}
    for difference in metrics["differences"]:
        assert isinstance(difference["mass_scatter_dex_0.5r200"]["excludes_0"], bool)
        assert np.isfinite(difference["substructure_power_ratio"]["value"])
    assert set(metrics["power"]["substructure_ratio"]) == {MULTI, SINGLE, "baseline"}
    assert "excludes 0" in (report / "summary.md").read_text()
    # Two test clusters are too few to flag a difference (min_clusters_for_flag = 10).
    assert not any(
        d[k]["excludes_0"]
        for d in metrics["differences"]
        for k in d
        if k not in ("a", "b", "label")
    )


def test_pairs_put_each_multi_view_against_each_single_view_and_stars_against_gas() -> None:
    views = {
        "late": ("tsz_y", "xray_bol", "stellar_mass"),
        "stars": ("stellar_mass",),
        "sz": ("tsz_y",),
        "xray": ("xray_bol",),
    }
    pairs = comparison_pairs(views)
    assert pairs[:3] == [("late", "sz"), ("late", "xray"), ("late", "stars")]
    # Single views in channel order, each minus the earlier ones: stars - SZ, stars - X-ray.
    assert pairs[3:6] == [("xray", "sz"), ("stars", "sz"), ("stars", "xray")]
    assert pairs[6:] == [(r, "baseline") for r in views]
    assert comparison_pairs({"sz": ("tsz_y",)}) == [("sz", "baseline")]


def test_baseline_m500_is_close_to_the_true_m500(evaluated: Path) -> None:
    """The Y-M iteration on the mock y maps lands within 0.3 dex of the true M500c (the mock's
    pressure is 0.1-0.27 dex below Arnaud's around R500, docs/cluster_mass.md)."""
    layout = StoreLayout(evaluated)
    metrics = json.loads((layout.run(MULTI).report / "metrics.json").read_text())
    catalog = pd.read_parquet(layout.catalog("clusters")).set_index("group_id")
    true = catalog.loc[metrics["test"]["group_id"], "true_m500c_msun"].to_numpy()
    measured = np.asarray(metrics["baseline"]["m500c_msun"]).reshape(true.size, -1)
    assert np.all(np.abs(np.log10(measured / true[:, None])) < 0.3)


def test_runs_with_another_test_split_are_not_compared(evaluated: Path) -> None:
    layout = StoreLayout(evaluated)
    other = layout.runs / "other_split"
    shutil.copytree(layout.run(SINGLE).root, other, ignore=shutil.ignore_patterns("report"))
    split = json.loads((other / "split.json").read_text())
    split["test"]["samples"] = split["test"]["samples"][:-1]
    (other / "split.json").write_text(json.dumps(split))
    assert comparable_runs(evaluated, MULTI) == [MULTI, SINGLE]


def test_an_unknown_compared_run_is_a_one_line_error(evaluated: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["evaluate", "--store", str(evaluated), "--run", MULTI, "--set", "compare=[nosuchrun]"],
        obj={},
    )
    assert result.exit_code != 0
    assert "no run 'nosuchrun'" in result.output and result.output.strip().count("\n") == 0
