"""`darkstack train` and `darkstack evaluate` end to end on a synthetic store."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from darkstack.cli import cli
from darkstack.evaluate.metrics import coverage, delta_mae, delta_mse
from darkstack.evaluate.profiles.baseline import (
    LeastSquaresBaseline,
    photometric_design,
    stellar_mass_design,
)

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
    run = store / "runs" / "tiny"
    assert (run / "model.pt").exists() and (run / "config.yaml").exists()
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2
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
    assert wrong.exit_code == 1
    assert "run tiny was trained for the task 'profiles'" in wrong.output
    # Another run's rows, written before the photometric baseline existed.
    predictions_path = store / "catalogs" / "predictions.parquet"
    older = pd.read_parquet(predictions_path).drop(columns="baseline_photometric")
    pd.concat([older, older.assign(run="older")]).to_parquet(predictions_path)
    result = runner.invoke(cli, evaluate)  # re-evaluating replaces the run's rows
    assert result.exit_code == 0, result.output
    report = run / "report"
    for name in (
        "summary.md",
        "metrics.json",
        "accuracy.png",
        "coverage.png",
        "profiles.png",
        "sensitivity.png",
        "tully_fisher.png",
    ):
        assert (report / name).stat().st_size > 0, name
    metrics = json.loads((report / "metrics.json").read_text())
    test_samples = json.loads((run / "split.json").read_text())["test"]["samples"]
    assert metrics["n_samples"] == len(test_samples)
    assert len(metrics["metrics"]["delta_mse_baseline"]) == 20
    assert len(metrics["metrics"]["delta_mse_photometric"]) == 20
    every_run = pd.read_parquet(predictions_path)
    assert every_run.loc[every_run["run"] == "older", "baseline_photometric"].isna().all()
    predictions = every_run[every_run["run"] == "tiny"]
    assert sorted(predictions["sample"]) == sorted(test_samples)
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
    assert result.exit_code == 1
    assert "set model.image_size=96" in result.output


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
    report = store / "runs" / "study-inputs" / "report"
    metrics = json.loads((report / "metrics.json").read_text())
    assert list(metrics) == ["urz+hi", "hi", "i+hi_mom1", "i", "urz"]
    assert (report / "comparison.png").stat().st_size > 0
    summary = (report / "summary.md").read_text()
    assert summary.count("\n| ") == 21  # header + 20 radii
    # Variants share the split, so they share the baseline.
    for baseline in ("baseline", "photometric"):
        values = {tuple(m["metrics"][f"delta_mse_{baseline}"]) for m in metrics.values()}
        assert len(values) == 1, baseline
