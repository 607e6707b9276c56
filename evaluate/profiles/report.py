"""``darkstack evaluate``: the paper's evaluation of one run, written to ``report/``.

For the test split (galaxies the run never saw): the bootstrap ensemble's median and 68%
interval per radius and MC-dropout's for member 0; Δ_MSE and Δ_MAE per radius (equations 2-3)
against the stellar-mass-only and photometric baselines fitted on the same training galaxies
(``baseline.py``); the coverage of
both intervals; example profiles (Fig 6); SmoothGrad maps (Fig 7); the Tully-Fisher comparison
(§5.5, Fig 8); the rotation-curve fit on a few galaxies (§5.6, Fig 9). Figures, ``metrics.json``
and ``summary.md`` go to ``STORE/runs/<run>/report/``; one row per test sample is appended to
the ``predictions`` catalog as one new write, which supersedes the run's earlier ones (see
:mod:`darkstack.store.catalogs`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from darkstack.config import Checked, Range, config_to_dict
from darkstack.evaluate.metrics import (
    COVERAGE_SIGMAS,
    NOMINAL_COVERAGE,
    coverage,
    coverage_sigma,
    delta_mae,
    delta_mse,
    group_bootstrap_means,
    miscalibrated,
    paired_interval,
)
from darkstack.evaluate.predictive import (
    central_coverage,
    crps_ensemble,
    crps_gaussian,
    mixture_variance,
    nll_gaussian,
    pit_ensemble,
    pit_gaussian,
)
from darkstack.evaluate.profiles.baseline import (
    LeastSquaresBaseline,
    photometric_design,
    stellar_mass_design,
)
from darkstack.evaluate.profiles.rotation_curve import RotationCurveConfig
from darkstack.store import (
    GALAXIES_CATALOG,
    OBSERVATIONS_ZARR,
    PREDICTIONS_CATALOG,
    StoreLayout,
    open_group,
    read_catalog,
    write_catalog,
)
from darkstack.train.calibration import Calibration
from darkstack.train.predict import Interval, summarise
from darkstack.train.regressor import Regressor
from darkstack.train.tasks import get_task
from darkstack.train.tasks.profiles.data import Observations, open_observations, total_fluxes


@dataclass(frozen=True, kw_only=True)
class EvaluateConfig(Checked):
    """What ``darkstack evaluate`` computes.

    Parameters
    ----------
    split : {"test", "validation"}
        The split evaluated (the test split for results).
    mc_dropout_passes : int
        Stochastic passes of member 0 (0: the run's ``mc_dropout_passes``).
    baseline_degree : int
        Degree of the baselines' polynomials in log10 M* and in log10 L_r.
    n_example_profiles : int
        Test galaxies drawn in the profile figure.
    sensitivity_radii_kpc : tuple of float
        Radii whose SmoothGrad maps are drawn (the nearest output radius is used).
    sensitivity_samples : int
        Test galaxies in the sensitivity figure.
    smoothgrad_samples : int
        Noisy copies per SmoothGrad map.
    rotation_curve_galaxies : int
        Test samples given the rotation-curve fit (slow: MARTINI cube + MCMC each); 0 skips it.
    rotation_curve : RotationCurveConfig
        Settings of that fit.
    device : str
        Torch device of the predictions.
    seed : int
        Seeds MC-dropout, SmoothGrad noise and the choice of examples.
    """

    split: Literal["test", "validation"] = "test"
    mc_dropout_passes: Annotated[int, Range(ge=0)] = 0
    # Degree 0 is a constant: the mean of the training galaxies.
    baseline_degree: Annotated[int, Range(ge=0)] = 2
    n_example_profiles: Annotated[int, Range(ge=1)] = 6
    sensitivity_radii_kpc: Annotated[tuple[float, ...], Range(gt=0)] = (2.0, 10.0, 50.0)
    sensitivity_samples: Annotated[int, Range(ge=1)] = 2
    smoothgrad_samples: Annotated[int, Range(ge=1)] = 32
    rotation_curve_galaxies: Annotated[int, Range(ge=0)] = 3
    rotation_curve: RotationCurveConfig = field(default_factory=RotationCurveConfig)
    device: str = "cpu"
    # numpy's SeedSequence takes no negative entropy.
    seed: Annotated[int, Range(ge=0)] = 0


@dataclass(frozen=True, kw_only=True)
class Evaluation:
    """Per-sample predictions, the normalised inputs they came from, per-radius metrics."""

    run: str
    channels: tuple[str, ...]
    images: NDArray[np.float32]
    radii_kpc: NDArray[np.float64]
    samples: NDArray[np.int64]
    subhalo_id: NDArray[np.int64]
    true: NDArray[np.float64]
    members: NDArray[np.float64]
    ensemble: Interval
    mc_dropout: Interval
    baseline: NDArray[np.float64]
    photometric_baseline: NDArray[np.float64]
    metrics: dict[str, list[float]]
    #: PIT of each test sample under each model's predictive, ``(n_samples, n_radii)``.
    pit: dict[str, NDArray[np.float64]] = field(default_factory=dict)
    #: The ensemble's predictive before calibration (``ensemble`` when the run has none).
    uncalibrated: Interval | None = None


def evaluate_run(
    store: str | Path, run: str, config: EvaluateConfig, *, progress: bool = True
) -> Path:
    """Evaluate a trained run and write its report; returns the report directory.

    ``progress`` shows a bar of its three stages on stderr: predictions (ensemble, MC-dropout,
    baselines), figures (SmoothGrad and the rotation-curve fits take the longest) and report.
    """
    from tqdm.auto import tqdm

    from darkstack.evaluate.profiles.figures import write_figures
    from darkstack.train.worker import load_trained

    store = Path(store)
    paths = StoreLayout(store).run(run)
    # The model loads and the observations are checked before the bar opens: a bad checkpoint
    # or observations of another format are then one line on stderr.
    model = load_trained(paths, task=get_task("profiles"), device=config.device)
    if not isinstance(model, Regressor):
        raise TypeError(f"{paths.model} is not a profiles model (it is a {type(model).__name__})")
    open_group(store, OBSERVATIONS_ZARR)
    stages = tqdm(total=3, desc=f"evaluate {run}", unit="stage", disable=not progress)
    stages.set_postfix_str("predict")
    galaxies = read_catalog(store, GALAXIES_CATALOG).to_pandas()
    evaluation = predict_split(store, run, config, model=model, galaxies=galaxies)
    stages.update()
    stages.set_postfix_str("figures")
    report = paths.report
    report.mkdir(parents=True, exist_ok=True)
    extras = write_figures(store, evaluation, galaxies, model=model, config=config, report=report)
    stages.update()
    stages.set_postfix_str("report")
    metrics = {**evaluation.metrics, **extras}
    (report / "metrics.json").write_text(
        json.dumps(
            {
                "run": run,
                "split": config.split,
                "radii_kpc": evaluation.radii_kpc.tolist(),
                "n_samples": int(evaluation.samples.size),
                "metrics": metrics,
                "evaluate_config": config_to_dict(config),
            },
            indent=1,
        )
    )
    (report / "summary.md").write_text(summary_markdown(evaluation, extras, config=config))
    append_predictions(store, evaluation, split=config.split)
    stages.update()
    stages.close()
    return report


def predict_split(
    store: Path,
    run: str,
    config: EvaluateConfig,
    *,
    model: Regressor,
    galaxies: pd.DataFrame,
) -> Evaluation:
    """Predictions of the ensemble, of MC-dropout and of the baseline on one split.

    ``model`` is the run's trained model (on ``config.device``), ``galaxies`` the store's
    ``galaxies`` catalog.
    """
    from darkstack.train.models import extract_member
    from darkstack.train.predict import predict_mc_dropout, predict_members
    from darkstack.train.run import load_run_config, load_split, load_split_data

    task = get_task("profiles")
    paths = StoreLayout(store).run(run)
    run_config = load_run_config(paths, task=task)
    data = load_split_data(store, paths, config.split)
    # The model, not the config, says whether it carries variances: runs older than the
    # ``head`` setting were all trained with the MSE.
    heteroscedastic = model.heteroscedastic
    draws = predict_members(model, data.inputs, device=config.device).astype(np.float64)
    members = draws[:, :, 0] if heteroscedastic else draws
    single = Regressor(
        extract_member(model.network, 0),
        target_mean=model.target_mean.tolist(),
        target_std=model.target_std.tolist(),
        heteroscedastic=heteroscedastic,
    ).to(config.device)
    passes = config.mc_dropout_passes or run_config.mc_dropout_passes
    mc_draws = predict_mc_dropout(
        single, data.inputs, passes=passes, seed=config.seed, device=config.device
    )
    calibration = Calibration.load(paths.calibration) if paths.calibration.exists() else None
    observations = open_observations(store)
    split = load_split(paths)
    train_split = split["train"]
    validation_samples = np.asarray(split["validation"]["samples"], dtype=np.int64)
    train_galaxies = np.asarray(train_split["subhalo_id"], dtype=np.int64)
    by_subhalo = galaxies.set_index("subhalo_id")
    stellar_mass = LeastSquaresBaseline.fit(
        design=stellar_mass_design(
            np.log10(by_subhalo.loc[train_galaxies, "stellar_mass_msun"].to_numpy()),
            degree=config.baseline_degree,
        ),
        log10_mdm=np.stack(by_subhalo.loc[train_galaxies, "log10_mdm_enclosed"].to_numpy()),
    )

    def stellar_mass_prediction(subhalo_id: NDArray[np.int64]) -> NDArray[np.float64]:
        return stellar_mass.predict(
            stellar_mass_design(
                np.log10(by_subhalo.loc[subhalo_id, "stellar_mass_msun"].to_numpy()),
                degree=config.baseline_degree,
            )
        )

    baseline_prediction = stellar_mass_prediction(data.groups)
    photometric_prediction, photometric_validation = _photometric_baseline(
        observations,
        train_samples=np.asarray(train_split["samples"], dtype=np.int64),
        samples=(data.samples, validation_samples),
        degree=config.baseline_degree,
    )
    # Each baseline's Gaussian predictive: sigma is its RMS residual per radius on the
    # validation samples (bias included), so its CRPS and NLL sit beside the CNN's.
    validation_rows = np.searchsorted(observations.samples, validation_samples)
    validation_targets = observations.targets[validation_rows].astype(np.float64)
    validation_galaxies = observations.groups[validation_rows]
    baseline_sigma = delta_mse(stellar_mass_prediction(validation_galaxies), validation_targets)
    photometric_sigma = delta_mse(photometric_validation, validation_targets)
    true = data.targets.astype(np.float64)
    uncalibrated = summarise(draws, heteroscedastic=heteroscedastic)
    ensemble = (
        uncalibrated
        if calibration is None
        else summarise(draws, heteroscedastic=heteroscedastic, calibration=calibration)
    )
    mc = summarise(mc_draws, heteroscedastic=heteroscedastic)
    metrics = {
        "delta_mse_ensemble": delta_mse(ensemble.median, true).tolist(),
        "delta_mae_ensemble": delta_mae(ensemble.median, true).tolist(),
        "delta_mse_member0": delta_mse(members[:, 0], true).tolist(),
        "delta_mae_member0": delta_mae(members[:, 0], true).tolist(),
        "delta_mse_baseline": delta_mse(baseline_prediction, true).tolist(),
        "delta_mae_baseline": delta_mae(baseline_prediction, true).tolist(),
        "delta_mse_photometric": delta_mse(photometric_prediction, true).tolist(),
        "delta_mae_photometric": delta_mae(photometric_prediction, true).tolist(),
        "coverage68_bootstrap": coverage(uncalibrated.p16, uncalibrated.p84, true).tolist(),
        "coverage68_mc_dropout": coverage(mc.p16, mc.p84, true).tolist(),
    }
    if calibration is not None:
        metrics |= {
            "coverage68_calibrated": coverage(ensemble.p16, ensemble.p84, true).tolist(),
            "coverage95_calibrated": coverage(ensemble.p2_5, ensemble.p97_5, true).tolist(),
            "calibration_scale68": calibration.scale68.tolist(),
            "calibration_scale95": calibration.scale95.tolist(),
        }
    # The CNN's predictives: its members' empirical mixture when they are points (the paper's),
    # the Gaussian of the mixture's mean and variance when they carry a variance.
    empirical: dict[str, NDArray[np.float64]] = {}
    gaussians = {
        "baseline": (baseline_prediction, baseline_sigma),
        "photometric": (photometric_prediction, photometric_sigma),
    }
    if heteroscedastic:
        gaussians["cnn"] = (uncalibrated.median, uncalibrated.std)
        gaussians["mc_dropout"] = (mc.median, mc.std)
    else:
        empirical = {"cnn": members, "mc_dropout": mc_draws.astype(np.float64)}
    if calibration is not None:
        gaussians["cnn_calibrated"] = (ensemble.median, ensemble.std)
    pit = {name: pit_gaussian(mean=m, sigma=sd, true=true) for name, (m, sd) in gaussians.items()}
    pit |= {
        name: pit_ensemble(members=np.moveaxis(values, 1, 0), true=true)
        for name, values in empirical.items()
    }
    pit["bootstrap"] = pit.pop("cnn")
    if "cnn_calibrated" in pit:
        pit["calibrated"] = pit.pop("cnn_calibrated")
    # The 68% coverages from the intervals above (and the calibrated 95% one, whose conformal
    # interval is no Gaussian's) take precedence over those from the PIT.
    scores, crps = _predictive_scores(empirical=empirical, gaussians=gaussians, pit=pit, true=true)
    metrics = scores | metrics
    # The CNN's best predictive: calibrated, else as trained (Gaussian or members' mixture).
    metrics |= _paired_against_photometric(
        groups=data.groups,
        true=true,
        cnn_median=ensemble.median,
        photometric_prediction=photometric_prediction,
        crps_difference=crps.get("cnn_calibrated", crps["cnn"]) - crps["photometric"],
        delta_mse_difference=np.subtract(
            metrics["delta_mse_ensemble"], metrics["delta_mse_photometric"]
        ),
    )
    return Evaluation(
        run=run,
        channels=run_config.data.channels,
        images=data.inputs,
        radii_kpc=observations.radii_kpc,
        samples=data.samples,
        subhalo_id=data.groups,
        true=true,
        members=members,
        ensemble=ensemble,
        mc_dropout=mc,
        baseline=baseline_prediction,
        photometric_baseline=photometric_prediction,
        metrics=metrics,
        pit=pit,
        uncalibrated=uncalibrated,
    )


def _predictive_scores(
    *,
    empirical: dict[str, NDArray[np.float64]],
    gaussians: dict[str, tuple[NDArray[np.float64], NDArray[np.float64]]],
    pit: dict[str, NDArray[np.float64]],
    true: NDArray[np.float64],
) -> tuple[dict[str, list[float]], dict[str, NDArray[np.float64]]]:
    """CRPS, NLL and 68/95% coverage per radius of every model's predictive, and every
    predictive's CRPS per sample (for paired comparisons).

    ``empirical`` maps a predictive to its point draws ``(n, k, n_radii)``: its CRPS and
    coverages are those of the draws' empirical distribution; its NLL (which needs a density)
    is that of the Gaussian with the mixture's mean and variance (left out for a single draw).
    ``gaussians`` maps the others to their (mean, sigma), sigma per radius (a baseline's,
    whose value is recorded) or per sample.
    """
    scores: dict[str, list[float]] = {}
    crps: dict[str, NDArray[np.float64]] = {}
    for name, draws in empirical.items():
        stacked = np.moveaxis(draws, 1, 0)
        sigma = np.sqrt(mixture_variance(means=stacked))
        crps[name] = crps_ensemble(members=stacked, true=true)
        # A single member has no spread, so no density: no NLL (and no NaN in metrics.json).
        if np.all(sigma > 0):
            nll = nll_gaussian(mean=stacked.mean(axis=0), sigma=sigma, true=true)
            scores[f"nll_{name}"] = nll.mean(axis=0).tolist()
    for name, (mean, sigma) in gaussians.items():
        crps[name] = crps_gaussian(mean=mean, sigma=sigma, true=true)
        scores[f"nll_{name}"] = nll_gaussian(mean=mean, sigma=sigma, true=true).mean(0).tolist()
        if np.ndim(sigma) == 1:
            scores[f"sigma_{name}"] = np.asarray(sigma, dtype=np.float64).tolist()
    for name, values in pit.items():
        for level in (68, 95):
            scores[f"coverage{level}_{name}"] = central_coverage(
                pit=values, level=level / 100
            ).tolist()
    scores |= {f"crps_{name}": values.mean(axis=0).tolist() for name, values in crps.items()}
    return scores, crps


def _paired_against_photometric(
    *,
    groups: NDArray[np.int64],
    true: NDArray[np.float64],
    cnn_median: NDArray[np.float64],
    photometric_prediction: NDArray[np.float64],
    crps_difference: NDArray[np.float64],
    delta_mse_difference: NDArray[np.float64],
) -> dict[str, list[float]]:
    """The CNN minus the photometric baseline, averaged over radii: CRPS (from the per-sample
    ``crps_difference``) and Δ_MSE (per radius, ``delta_mse_difference``), each as
    ``[difference, 2.5th, 97.5th percentile]`` over test galaxies resampled together (paired;
    a galaxy's views are not independent)."""
    draws = group_bootstrap_means(
        groups,
        {
            "crps": crps_difference,
            "cnn": (cnn_median - true) ** 2,
            "photometric": (photometric_prediction - true) ** 2,
        },
    )
    return {
        "paired_crps_minus_photometric": paired_interval(
            float(crps_difference.mean()), draws["crps"].mean(axis=1)
        ),
        "paired_delta_mse_minus_photometric": paired_interval(
            float(delta_mse_difference.mean()),
            (np.sqrt(draws["cnn"]) - np.sqrt(draws["photometric"])).mean(axis=1),
        ),
    }


def _photometric_baseline(
    observations: Observations,
    *,
    train_samples: NDArray[np.int64],
    samples: tuple[NDArray[np.int64], ...],
    degree: int,
) -> tuple[NDArray[np.float64], ...]:
    """The photometric baseline fitted on ``train_samples``, predicted for each of ``samples``."""

    def design(selected: NDArray[np.int64]) -> NDArray[np.float64]:
        fluxes = total_fluxes(observations.store, samples=selected, channels=("sdss_g", "sdss_r"))
        return photometric_design(
            flux_g_nanomaggies=fluxes[:, 0],
            flux_r_nanomaggies=fluxes[:, 1],
            distance_mpc=observations.distance_mpc[np.searchsorted(observations.samples, selected)],
            degree=degree,
            sample_ids=selected,
        )

    position = np.searchsorted(observations.samples, train_samples)
    fitted = LeastSquaresBaseline.fit(
        design=design(train_samples), log10_mdm=observations.targets[position]
    )
    return tuple(fitted.predict(design(selected)) for selected in samples)


def summary_markdown(
    evaluation: Evaluation, extras: dict[str, Any], *, config: EvaluateConfig
) -> str:
    """The report's markdown: the per-radius table and the figures."""
    m = evaluation.metrics
    n_members = evaluation.members.shape[1]
    lines = [
        f"# Evaluation of run `{evaluation.run}`",
        "",
        f"{evaluation.samples.size} {config.split} samples "
        f"({np.unique(evaluation.subhalo_id).size} galaxies), {n_members} member(s). "
        "Δ in dex of log10 M_DM(<R); coverage is the fraction of samples whose true value lies "
        "in the 68% interval (0.68 when calibrated).",
        "",
        "| R (kpc) | Δ_MSE CNN | Δ_MSE M*-only | Δ_MSE photometric | Δ_MAE CNN | Δ_MAE M*-only "
        "| Δ_MAE photometric | cov. bootstrap | cov. MC-dropout |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for i, radius in enumerate(evaluation.radii_kpc):
        cells = [
            f"{m[f'delta_{kind}_{model}'][i]:.3f}"
            for kind in ("mse", "mae")
            for model in ("ensemble", "baseline", "photometric")
        ]
        cells += [f"{m[f'coverage68_{name}'][i]:.2f}" for name in ("bootstrap", "mc_dropout")]
        lines.append(f"| {radius:.1f} | " + " | ".join(cells) + " |")
    lines += ["", *_predictive_table(evaluation), "", *_calibration_table(evaluation)]
    lines += ["", *coverage_check(evaluation)]
    cnn = np.array(m["delta_mse_ensemble"])
    lines.append("")
    for model, name in (
        ("baseline", "stellar-mass-only baseline (true M*)"),
        ("photometric", "photometric baseline (L_r and g-r at the exact distance)"),
    ):
        beats = cnn < np.array(m[f"delta_mse_{model}"])
        lines.append(f"The CNN beats the {name} in Δ_MSE at {beats.sum()} of {beats.size} radii.")
    crps, mse = m["paired_crps_minus_photometric"], m["paired_delta_mse_minus_photometric"]
    lines.append(
        "CNN minus the photometric baseline, mean over radii (95% interval resampling the test "
        f"galaxies, paired): CRPS {crps[0]:+.4f} [{crps[1]:+.4f}, {crps[2]:+.4f}] dex, "
        f"Δ_MSE {mse[0]:+.4f} [{mse[1]:+.4f}, {mse[2]:+.4f}] dex."
    )
    lines.append("")
    for key, text in extras.get("summary_lines", {}).items():
        lines += [f"## {key}", "", text, ""]
    for figure in sorted(extras.get("figures", [])):
        lines += [f"![{Path(figure).stem}]({figure})", ""]
    return "\n".join(lines)


def _predictive_table(evaluation: Evaluation) -> list[str]:
    """The per-radius table of proper scores and 68/95% coverages (see docs/train.md)."""
    m = evaluation.metrics
    models = ("cnn", "baseline", "photometric")
    lines = [
        "Predictive scores (lower is better): CRPS in dex, NLL in nats per sample. The CNN's "
        "predictive is its members' empirical mixture (NLL: the Gaussian of the mixture's mean "
        "and variance); each baseline's is a Gaussian with σ its RMS validation residual.",
        "",
        "| R (kpc) | CRPS CNN | CRPS M*-only | CRPS photometric | NLL CNN | NLL M*-only "
        "| NLL photometric | cov68 bootstrap | cov95 bootstrap | cov95 MC-dropout "
        "| cov95 M*-only | cov95 photometric |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for i, radius in enumerate(evaluation.radii_kpc):
        cells = [
            f"{m[key][i]:.3f}" if key in m else "–"
            for key in (f"{score}_{model}" for score in ("crps", "nll") for model in models)
        ]
        cells += [
            f"{m[key][i]:.2f}"
            for key in (
                "coverage68_bootstrap",
                "coverage95_bootstrap",
                "coverage95_mc_dropout",
                "coverage95_baseline",
                "coverage95_photometric",
            )
        ]
        lines.append(f"| {radius:.1f} | " + " | ".join(cells) + " |")
    return lines


def _calibration_table(evaluation: Evaluation) -> list[str]:
    """Coverage and CRPS of the ensemble's predictive before and after its calibration."""
    m = evaluation.metrics
    if "coverage68_calibrated" not in m:
        return ["The run has no calibration (`calibration: none`): its intervals are as trained."]
    lines = [
        "Calibration fitted on the validation split (`calibration.json`): the factor on the "
        "predictive σ, and the test coverage and CRPS before and after it.",
        "",
        "| R (kpc) | factor 68% | factor 95% | cov68 before | cov68 after | cov95 before "
        "| cov95 after | CRPS before | CRPS after |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    keys = (
        "calibration_scale68",
        "calibration_scale95",
        "coverage68_bootstrap",
        "coverage68_calibrated",
        "coverage95_bootstrap",
        "coverage95_calibrated",
        "crps_cnn",
        "crps_cnn_calibrated",
    )
    for i, radius in enumerate(evaluation.radii_kpc):
        lines.append(f"| {radius:.1f} | " + " | ".join(f"{m[k][i]:.3f}" for k in keys) + " |")
    return lines


def coverage_check(evaluation: Evaluation) -> list[str]:
    """Lines of the report saying whether each coverage is within 3 binomial sigmas of 0.68.

    Sigma is that of a binomial fraction over the number of test *galaxies* (the views of one
    galaxy are not independent), which the lines print.
    """
    n = int(np.unique(evaluation.subhalo_id).size)
    sigma = coverage_sigma(nominal=NOMINAL_COVERAGE, n=n)
    lines = [
        f"Coverage check: over {n} test galaxies a calibrated 68% interval covers "
        f"{NOMINAL_COVERAGE:.2f} ± {sigma:.3f} (1 binomial σ); flagged beyond "
        f"{COVERAGE_SIGMAS:g}σ ({NOMINAL_COVERAGE - COVERAGE_SIGMAS * sigma:.2f}-"
        f"{NOMINAL_COVERAGE + COVERAGE_SIGMAS * sigma:.2f})."
    ]
    checked = [("bootstrap", "ensemble"), ("mc_dropout", "MC-dropout")]
    if "coverage68_calibrated" in evaluation.metrics:
        checked.insert(1, ("calibrated", "calibrated ensemble"))
    for key, name in checked:
        measured = np.asarray(evaluation.metrics[f"coverage68_{key}"])
        flagged = miscalibrated(measured, nominal=NOMINAL_COVERAGE, n=n, n_sigma=COVERAGE_SIGMAS)
        if flagged.any():
            where = ", ".join(
                f"{radius:.1f} kpc ({value:.2f})"
                for radius, value in zip(
                    evaluation.radii_kpc[flagged], measured[flagged], strict=True
                )
            )
            lines.append(
                f"\n**Warning: the {name}'s coverage is more than {COVERAGE_SIGMAS:g}σ from "
                f"{NOMINAL_COVERAGE:.2f} at {flagged.sum()} of {flagged.size} radii**: {where}. "
                "Its intervals are mis-calibrated there (too narrow below, too wide above)."
            )
        else:
            lines.append(
                f"\nThe {name}'s coverage is within {COVERAGE_SIGMAS:g}σ of "
                f"{NOMINAL_COVERAGE:.2f} at every radius."
            )
    return lines


def append_predictions(store: Path, evaluation: Evaluation, *, split: str) -> Path:
    """Append this evaluation's rows to the ``predictions`` catalog; they supersede the run's
    earlier rows. Returns the file written."""
    n = evaluation.samples.size
    columns: dict[str, Any] = {
        "run": [evaluation.run] * n,
        "split": [split] * n,
        "sample": evaluation.samples,
        "subhalo_id": evaluation.subhalo_id,
        "log10_mdm_true": evaluation.true.tolist(),
        "log10_mdm_median": evaluation.ensemble.median.tolist(),
        "log10_mdm_p16": evaluation.ensemble.p16.tolist(),
        "log10_mdm_p84": evaluation.ensemble.p84.tolist(),
        "log10_mdm_p2_5": evaluation.ensemble.p2_5.tolist(),
        "log10_mdm_p97_5": evaluation.ensemble.p97_5.tolist(),
        "log10_mdm_std": evaluation.ensemble.std.tolist(),
        "mc_dropout_median": evaluation.mc_dropout.median.tolist(),
        "mc_dropout_p16": evaluation.mc_dropout.p16.tolist(),
        "mc_dropout_p84": evaluation.mc_dropout.p84.tolist(),
        "baseline_mstar_only": evaluation.baseline.tolist(),
        "baseline_photometric": evaluation.photometric_baseline.tolist(),
        "radii_kpc": [evaluation.radii_kpc.tolist()] * n,
    }
    return write_catalog(
        store, PREDICTIONS_CATALOG, columns, metadata={"writer": "darkstack evaluate"}
    )
