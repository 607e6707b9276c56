"""`darkstack train` and `darkstack evaluate` end to end on a synthetic store."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from darkstack.catalogs.query import query_store
from darkstack.cli import cli
from darkstack.evaluate.metrics import coverage, delta_mae, delta_mse
from darkstack.evaluate.profiles.baseline import (
    LeastSquaresBaseline,
    photometric_design,
    stellar_mass_design,
)
from darkstack.evaluate.profiles.report import Evaluation, append_predictions
from darkstack.store import PREDICTIONS_CATALOG, StoreLayout, read_catalog
from darkstack.train.predict import Interval

TRAIN_ARGS = [
    "--set",
    "run=tiny",
    "--set",
    "n_members=3",
    "--set",
    "mc_dropout_passes=4",
    "--set",
    "data.channels=[sdss_g, hi_mom1]",
    "--set",
    "model.image_size=96",
    "--set",
    "optim.max_epochs=2",
]


def test_metrics_follow_the_papers_equations() -> None:
    true = np.array([[10.0, 11.0], [10.0, 11.0]])
    predicted = np.array([[10.3, 11.0], [9.9, 10.6]])
    assert delta_mse(predicted, true) == pytest.approx([np.sqrt((0.09 + 0.01) / 2), np.sqrt(0.08)])
    assert delta_mae(predicted, true) == pytest.approx([0.2, 0.2])
    assert coverage(true - 0.1, true + 0.1, predicted).tolist() == [0.5, 0.5]
    with pytest.raises(ValueError, match="n_samples, n_outputs"):
        delta_mse(predicted[0], true[0])


def test_stellar_mass_baseline_recovers_a_polynomial_relation() -> None:
    x = np.linspace(10, 11.5, 30)
    y = np.stack([0.5 * x**2 - 9 * x + 50, 1.2 * x - 2], axis=1)
    baseline = LeastSquaresBaseline.fit(design=stellar_mass_design(x, degree=2), log10_mdm=y)
    assert np.allclose(baseline.predict(stellar_mass_design(x, degree=2)), y, atol=1e-8)


def test_photometric_baseline_recovers_mass_from_luminosity_distance_and_colour() -> None:
    rng = np.random.default_rng(3)
    n = 40
    distance = rng.uniform(10, 20, n)
    flux_r = 10 ** rng.uniform(2, 4, n)
    g_minus_r = rng.uniform(0.2, 0.8, n)
    flux_g = flux_r * 10 ** (-0.4 * g_minus_r)
    # A colour mass-to-light ratio: log M* = log L_r + 1.1 (g-r) + const.
    log_mstar = np.log10(flux_r * distance**2) + 1.1 * g_minus_r + 5.0
    truth = np.stack([0.8 * log_mstar + 2.0, 0.4 * log_mstar + 6.0], axis=1)
    design = photometric_design(
        flux_g_nanomaggies=flux_g, flux_r_nanomaggies=flux_r, distance_mpc=distance, degree=1
    )
    assert design.shape == (n, 3)
    baseline = LeastSquaresBaseline.fit(design=design, log10_mdm=truth)
    assert np.allclose(baseline.predict(design), truth, atol=1e-8)
    # Without the distance the same fluxes no longer determine the mass.
    blind = photometric_design(
        flux_g_nanomaggies=flux_g, flux_r_nanomaggies=flux_r, distance_mpc=np.ones(n), degree=1
    )
    residual = LeastSquaresBaseline.fit(design=blind, log10_mdm=truth).predict(blind) - truth
    assert np.sqrt(np.mean(residual**2)) > 0.05


def test_baselines_reject_bad_input() -> None:
    ones = np.ones(5)
    with pytest.raises(ValueError, match=r"flux_g_nanomaggies .* sample 12 has -1.0"):
        photometric_design(
            flux_g_nanomaggies=np.array([1.0, -1.0, 1.0, 1.0, 1.0]),
            flux_r_nanomaggies=ones,
            distance_mpc=ones,
            degree=1,
            sample_ids=np.arange(11, 16),
        )
    with pytest.raises(ValueError, match=r"distance_mpc .* row 0 has nan"):
        photometric_design(
            flux_g_nanomaggies=ones,
            flux_r_nanomaggies=ones,
            distance_mpc=np.array([np.nan, 1, 1, 1, 1]),
            degree=1,
        )
    with pytest.raises(ValueError, match="3 samples cannot fit 3 coefficients"):
        LeastSquaresBaseline.fit(design=np.ones((3, 3)), log10_mdm=np.ones((3, 2)))
    with pytest.raises(ValueError, match="expected"):
        LeastSquaresBaseline.fit(design=np.ones((5, 2)), log10_mdm=np.ones((4, 2)))


def test_train_then_evaluate_writes_report_and_predictions(
    synthetic_store: Callable[..., Path],
) -> None:
    store = synthetic_store(n_galaxies=15, image_size=96)
    runner = CliRunner()
    command = ["train", "--store", str(store), "--task", "profiles", "--no-ray", *TRAIN_ARGS]
    result = runner.invoke(cli, command)
    assert result.exit_code == 0, result.output
    run = StoreLayout(store).run("tiny")
    assert run.model.exists() and run.config.exists()
    assert len(run.metrics.read_text().splitlines()) == 2
    again = runner.invoke(cli, ["train", "--store", str(store), "--no-ray", *TRAIN_ARGS])
    assert "already trained" in again.output

    evaluate = [
        "evaluate",
        "--store",
        str(store),
        "--run",
        "tiny",
        "--set",
        "rotation_curve_galaxies=0",
        "--set",
        "smoothgrad_samples=2",
        "--set",
        "sensitivity_samples=1",
    ]
    result = runner.invoke(cli, evaluate)
    assert result.exit_code == 0, result.output
    wrong = runner.invoke(cli, [*evaluate, "--task", "cluster_mass"])
    assert wrong.exit_code == 2
    assert "run tiny was trained for the task 'profiles'" in wrong.output
    # The single file of a store from before partitioned predictions, written before the
    # photometric baseline existed: this run's rows and another run's.
    first = read_catalog(store, PREDICTIONS_CATALOG).to_pandas()
    older = first.drop(columns="baseline_photometric")
    legacy = StoreLayout(store).legacy_catalog("predictions")
    pd.concat([older, older.assign(run="older")]).to_parquet(legacy)
    result = runner.invoke(cli, evaluate)  # re-evaluating supersedes the run's rows
    assert result.exit_code == 0, result.output
    assert len(list(StoreLayout(store).catalog("predictions").rglob("*.parquet"))) == 2
    report = run.report
    for name in (
        "summary.md",
        "metrics.json",
        "accuracy.png",
        "coverage.png",
        "profiles.png",
        "sensitivity.png",
        "tully_fisher.png",
        "pit.png",
        "reliability.png",
    ):
        assert (report / name).stat().st_size > 0, name
    metrics = json.loads((report / "metrics.json").read_text())
    test_samples = json.loads(run.split.read_text())["test"]["samples"]
    assert metrics["n_samples"] == len(test_samples)
    assert len(metrics["metrics"]["delta_mse_baseline"]) == 20
    assert len(metrics["metrics"]["delta_mse_photometric"]) == 20
    scores = metrics["metrics"]
    for model in ("cnn", "mc_dropout", "baseline", "photometric"):
        # CRPS is non-negative; its closed forms vanish only for a perfect point forecast.
        assert np.all(np.asarray(scores[f"crps_{model}"]) > 0), model
    for key in ("coverage95_bootstrap", "coverage95_baseline", "coverage68_photometric"):
        assert np.all((np.asarray(scores[key]) >= 0) & (np.asarray(scores[key]) <= 1)), key
    # A Gaussian covers more at 95% than at 68% on the same samples.
    assert np.all(np.asarray(scores["coverage95_photometric"]) >= scores["coverage68_photometric"])
    assert "CRPS" in (report / "summary.md").read_text()
    # The paired comparison's point values are the per-radius scores' differences, averaged.
    cnn = "crps_cnn_calibrated" if "crps_cnn_calibrated" in scores else "crps_cnn"
    for key, ours, theirs in (
        ("paired_crps_minus_photometric", cnn, "crps_photometric"),
        ("paired_delta_mse_minus_photometric", "delta_mse_ensemble", "delta_mse_photometric"),
    ):
        point, lower, upper = scores[key]
        assert point == pytest.approx(np.mean(np.subtract(scores[ours], scores[theirs])))
        assert lower < upper, key
    every_run = read_catalog(store, PREDICTIONS_CATALOG).to_pandas()
    assert every_run.loc[every_run["run"] == "older", "baseline_photometric"].isna().all()
    assert (every_run["run"] == "older").sum() == len(test_samples)
    predictions = every_run[every_run["run"] == "tiny"]
    # Three writes hold the run's rows (two evaluations and the old file); one is shown.
    assert sorted(predictions["sample"]) == sorted(test_samples)
    counts = query_store(store, "SELECT run, count(*) AS n FROM predictions GROUP BY run")
    assert dict(zip(*counts.to_pydict().values(), strict=True)) == {
        "older": len(test_samples),
        "tiny": len(test_samples),
    }
    assert predictions["baseline_photometric"].notna().all()
    row = predictions.iloc[0]
    assert np.all(np.asarray(row["log10_mdm_p16"]) <= np.asarray(row["log10_mdm_median"]))
    assert np.all(np.asarray(row["log10_mdm_median"]) <= np.asarray(row["log10_mdm_p84"]))
    assert "Tully-Fisher" in (report / "summary.md").read_text()


def test_a_model_size_that_does_not_match_the_store_is_a_clear_error(
    synthetic_store: Callable[..., Path],
) -> None:
    store = synthetic_store(n_galaxies=6, image_size=96)
    result = CliRunner().invoke(
        cli, ["train", "--store", str(store), "--no-ray", "--set", "model.image_size=128"]
    )
    assert result.exit_code == 2
    assert "set model.image_size=96" in result.output


# Trains every variant of a study: minutes; `make test-all` runs it.
@pytest.mark.slow
def test_a_study_trains_every_variant_and_compares_them(
    synthetic_store: Callable[..., Path],
) -> None:
    store = synthetic_store(n_galaxies=10, image_size=128)
    result = CliRunner().invoke(
        cli,
        [
            "study",
            "--store",
            str(store),
            "--study",
            "inputs",
            "--no-ray",
            "--set",
            "optim.max_epochs=1",
            "--set",
            "mc_dropout_passes=2",
        ],
    )
    assert result.exit_code == 0, result.output
    report = StoreLayout(store).run("study-inputs").report
    metrics = json.loads((report / "metrics.json").read_text())
    assert list(metrics) == ["urz+hi", "hi", "i+hi_mom1", "i", "urz"]
    assert (report / "comparison.png").stat().st_size > 0
    summary = (report / "summary.md").read_text()
    assert summary.count("\n| ") == 21  # header + 20 radii
    # Variants share the split, so they share the baseline.
    for baseline in ("baseline", "photometric"):
        values = {tuple(m["metrics"][f"delta_mse_{baseline}"]) for m in metrics.values()}
        assert len(values) == 1, baseline


def _evaluation(run: str, *, log10_mdm: float = 11.0, n: int = 3) -> Evaluation:
    """An evaluation of ``n`` test samples whose every prediction is ``log10_mdm``."""
    radii = np.geomspace(1.0, 100.0, 4)
    values = np.full((n, radii.size), log10_mdm)
    interval = Interval(
        median=values,
        p16=values - 0.1,
        p84=values + 0.1,
        p2_5=values - 0.2,
        p97_5=values + 0.2,
        std=np.full_like(values, 0.1),
    )
    return Evaluation(
        run=run,
        channels=("sdss_g",),
        images=np.zeros((n, 1, 2, 2), dtype=np.float32),
        radii_kpc=radii,
        samples=np.arange(n),
        subhalo_id=7 * np.arange(n),
        true=values,
        members=values[:, None, :],
        ensemble=interval,
        mc_dropout=interval,
        baseline=values,
        photometric_baseline=values,
        metrics={},
    )


def _at_the_same_moment(monkeypatch: pytest.MonkeyPatch, *calls: Callable[[], Any]) -> list[Any]:
    """Run ``calls`` in threads whose parquet writes all wait for each other.

    Every writer has read whatever it reads and built its table before any of them writes:
    the overlap of evaluations that finish together, forced rather than hoped for.
    """
    barrier = threading.Barrier(len(calls), timeout=30)
    write_table = pq.write_table

    def write_when_all_are_ready(*args: Any, **kwargs: Any) -> None:
        barrier.wait()
        write_table(*args, **kwargs)

    monkeypatch.setattr(pq, "write_table", write_when_all_are_ready)
    with ThreadPoolExecutor(len(calls)) as pool:
        return [future.result() for future in [pool.submit(call) for call in calls]]


def test_two_evaluations_writing_at_the_same_moment_both_appear(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "store"
    append_predictions(store, _evaluation("earlier"), split="test")
    _at_the_same_moment(
        monkeypatch,
        lambda: append_predictions(store, _evaluation("a"), split="test"),
        lambda: append_predictions(store, _evaluation("b"), split="test"),
    )
    runs = read_catalog(store, PREDICTIONS_CATALOG, columns=["run"]).column("run").to_pylist()
    assert sorted(runs) == ["a"] * 3 + ["b"] * 3 + ["earlier"] * 3


def test_two_evaluations_of_one_run_at_the_same_moment_leave_the_newest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "store"
    written = _at_the_same_moment(
        monkeypatch,
        lambda: append_predictions(store, _evaluation("a", log10_mdm=11.0), split="test"),
        lambda: append_predictions(store, _evaluation("a", log10_mdm=12.0), split="test"),
    )
    newest = 11.0 if written[0].name > written[1].name else 12.0
    table = read_catalog(store, PREDICTIONS_CATALOG).to_pandas()
    assert table["sample"].tolist() == [0, 1, 2]
    assert np.stack(table["log10_mdm_median"].to_numpy()).tolist() == [[newest] * 4] * 3
    # Both writes are kept: the older is history, not shown.
    assert sorted(path.name for path in StoreLayout(store).catalog("predictions").rglob("*")) == (
        sorted(["run=a", *(path.name for path in written)])
    )
