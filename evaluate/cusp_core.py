"""``darkstack evaluate --task cusp_core``: the numbers of Exposito-Marquez et al. (2022), §3.

For a run trained with k folds (``data.n_folds``), the report gathers every fold run of the
store that shares its config (all but ``data.fold``), so each dwarf is held out once; a fold
not yet trained is listed as missing. On the held-out samples (one per projection and star
subset) it reports the mean absolute deviation of the posterior mode, the fractions within
+-0.1 and +-0.3, the mean posterior sigma, the bias of cusps (slope < -0.75) and cores, the
fraction of double-peaked posteriors, the 68% coverage with its binomial sigma, a PIT
histogram and a Fig. 2-like figure. The baseline is E[slope | log M*], a quadratic fitted on
each fold's training dwarfs with a Gaussian of the training residuals' width: what a user gets
without kinematics. A second one, E[slope | scalars], is a full quadratic in all of
``phase_space.zarr``'s scalars (log M*, and the velocity scale and R_hlr that the maps divide
out) fitted on the training samples: what the dwarf's scales give without the maps' shapes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch

from darkstack.config import Checked, Range, config_to_dict
from darkstack.evaluate import Evaluation
from darkstack.evaluate.metrics import group_bootstrap_means, paired_interval
from darkstack.evaluate.posterior import PosteriorSummary, pit, summarise
from darkstack.plotting import pyplot
from darkstack.store import DWARFS_CATALOG, PHASE_SPACE_ZARR, StoreLayout, read_catalog
from darkstack.train.tasks.cusp_core import SLOPE_GRID, CuspCoreModel, PosteriorCalibration

#: Slopes below this are cusps in the cusp/core bias (the middle of the flat target range).
CUSP_CORE_BOUNDARY = -0.75


@dataclass(frozen=True, kw_only=True)
class CuspCoreEvaluateConfig(Checked):
    """Settings of the evaluation.

    Parameters
    ----------
    passes : int
        MC-dropout passes (0: the run's ``mc_dropout_passes``).
    split : {"train", "validation", "test"}
        The split evaluated (the held-out fold is ``test``).
    device : str
        Torch device.
    """

    passes: Annotated[int, Range(ge=0)] = 0
    split: Literal["train", "validation", "test"] = "test"
    device: str = "cpu"


def _fold_runs(store: Path, run: str) -> tuple[list[str], list[int]]:
    """Names of the trained runs that are folds of ``run``'s cross-validation, and missing folds."""
    import yaml

    layout = StoreLayout(store)
    mine = yaml.safe_load(layout.run(run).config.read_text())
    n_folds = int(mine["data"]["n_folds"])
    if n_folds < 2:
        return [run], []

    def key(config: dict[str, Any]) -> str:
        config = json.loads(json.dumps(config))
        config.pop("run", None)
        config["data"].pop("fold", None)
        return json.dumps(config, sort_keys=True)

    found: dict[int, str] = {}
    for folder in sorted((Path(store) / "runs").iterdir()):
        paths = layout.run(folder.name)
        if not (paths.config.is_file() and paths.model.is_file()):
            continue
        other = yaml.safe_load(paths.config.read_text())
        if other.get("task") == "cusp_core" and key(other) == key(mine):
            found.setdefault(int(other["data"]["fold"]), folder.name)
    return [found[f] for f in sorted(found)], [f for f in range(n_folds) if f not in found]


def _predict_run(store: Path, run: str, config: CuspCoreEvaluateConfig) -> dict[str, Any]:
    import yaml

    from darkstack.train.run import load_split, load_split_data
    from darkstack.train.tasks import get_task
    from darkstack.train.worker import load_trained

    paths = StoreLayout(store).run(run)
    model = load_trained(paths, task=get_task("cusp_core"), device=config.device)
    if not isinstance(model, CuspCoreModel):
        raise TypeError(f"{paths.model} is not a cusp_core model ({type(model).__name__})")

    passes = config.passes or int(yaml.safe_load(paths.config.read_text())["mc_dropout_passes"])
    data = load_split_data(store, paths, config.split)
    torch.manual_seed(0)
    inputs = torch.tensor(data.inputs)
    density, band = model.posterior_in_batches(inputs, n_passes=passes)
    train = load_split(paths)["train"]
    return {
        "density": density,
        "calibration": PosteriorCalibration.load(paths.calibration),
        "band": band,
        "truth": data.targets.reshape(-1),
        "groups": data.groups,
        "samples": data.samples,
        "maps": model.split_inputs(inputs)[0].numpy(),
        "train_groups": np.asarray(train["subhalo_id"]),
        "train_samples": np.asarray(train["samples"]),
    }


def _baseline(
    catalog: Any, *, train_groups: np.ndarray, test_groups: np.ndarray
) -> tuple[np.ndarray, float]:
    """E[slope | log M*] (quadratic, training dwarfs) at each test group, and the residual sigma.

    Fitted per dwarf (not per map), so every dwarf weighs the same.
    """
    table = catalog.set_index("subhalo_id")
    train_groups = np.unique(train_groups)
    groups = np.concatenate([train_groups, test_groups])
    x = np.log10(table.loc[groups, "stellar_mass_msun"].to_numpy())[:, None]
    y = table.loc[groups, "dm_log_slope_150pc"].to_numpy()
    train = np.arange(train_groups.size)
    # Quadratic, or lower when the fold has few training dwarfs (a tiny demo).
    return quadratic_baseline(
        x, y, train=train, test=np.arange(train.size, groups.size), max_terms=train.size - 1
    )


def quadratic_baseline(
    x: np.ndarray,
    y: np.ndarray,
    *,
    train: np.ndarray,
    test: np.ndarray,
    max_terms: int | None = None,
) -> tuple[np.ndarray, float]:
    """Least-squares full quadratic in the standardised columns of ``x`` ``(n, k)``, fitted on
    rows ``train``: its prediction at rows ``test`` and the training residuals' sigma.

    With ``max_terms`` (the training dwarfs less one: a dwarf's samples share its M*), a
    quadratic with more terms falls back to a linear fit, and that to the mean (a tiny demo's
    folds).
    """
    k = x.shape[1]
    degree = 2
    for terms in (1 + k + k * (k + 1) // 2, 1 + k):
        if max_terms is not None and terms > max_terms:
            degree -= 1
    spread = x[train].std(axis=0)
    # A column constant over the training rows is only centred.
    spread[spread == 0] = 1.0

    def design(rows: np.ndarray) -> np.ndarray:
        z = (x[rows] - x[train].mean(axis=0)) / spread
        pairs = [z[:, i] * z[:, j] for i in range(k) for j in range(i, k)]
        columns = [
            np.ones(len(rows)),
            *(z.T if degree >= 1 else []),
            *(pairs if degree == 2 else []),
        ]
        return np.column_stack(columns)

    fit = design(train)
    coefficients, *_ = np.linalg.lstsq(fit, y[train], rcond=None)
    residual = y[train] - fit @ coefficients
    sigma = float(np.sqrt(residual @ residual / max(len(train) - fit.shape[1], 1)))
    return design(test) @ coefficients, sigma


def cusp_core_metrics(
    *, mode: np.ndarray, truth: np.ndarray, sigma: np.ndarray, inside68: np.ndarray
) -> dict[str, float]:
    """§3's numbers from each sample's mode, truth, posterior sigma and 68% coverage flag."""
    error = mode - truth
    n = truth.size
    cusp = truth < CUSP_CORE_BOUNDARY
    return {
        "n_samples": int(n),
        "mad_mode": float(np.mean(np.abs(error))),
        "within_0.1": float(np.mean(np.abs(error) <= 0.1)),
        "within_0.3": float(np.mean(np.abs(error) <= 0.3)),
        "mean_sigma": float(np.mean(sigma)),
        "bias_cusps": float(np.mean(error[cusp])) if cusp.any() else float("nan"),
        "bias_cores": float(np.mean(error[~cusp])) if (~cusp).any() else float("nan"),
        "coverage_68": float(np.mean(inside68)),
        "coverage_68_binomial_sigma": float(np.sqrt(0.68 * 0.32 / n)),
    }


def evaluate_cusp_core(store: str | Path, run: str, config: CuspCoreEvaluateConfig) -> Path:
    """Evaluate ``run`` (and its sibling folds) and write ``runs/RUN/report/``."""
    store = Path(store)
    runs, missing = _fold_runs(store, run)
    catalog = read_catalog(store, DWARFS_CATALOG).to_pandas()
    parts = [_predict_run(store, name, config) for name in runs]
    density = np.concatenate([p["density"] for p in parts])
    truth = np.concatenate([p["truth"] for p in parts])
    groups = np.concatenate([p["groups"] for p in parts])
    metrics, summary = _posterior_metrics(density, truth=truth, groups=groups)
    calibrations = [p["calibration"] for p in parts]
    calibrated = None
    if all(calibration is not None for calibration in calibrations):
        calibrated = np.concatenate(
            [c.apply(p["density"]) for c, p in zip(calibrations, parts, strict=True) if c]
        )
    baseline_mean, baseline_sigma = [], []
    for part in parts:
        mean, sigma = _baseline(
            catalog, train_groups=part["train_groups"], test_groups=part["groups"]
        )
        baseline_mean.append(mean)
        baseline_sigma.append(np.full(mean.size, sigma))
    b_mean, b_sigma = np.concatenate(baseline_mean), np.concatenate(baseline_sigma)
    baseline = _gaussian_metrics(truth, b_mean, b_sigma)
    phase_space = PHASE_SPACE_ZARR.check(StoreLayout(store).zarr(PHASE_SPACE_ZARR.name))
    scalars = np.asarray(phase_space["scalars"][:], dtype=np.float64)
    targets = np.asarray(phase_space["targets"][:], dtype=np.float64)
    scalar_fits = [
        quadratic_baseline(
            scalars,
            targets,
            train=part["train_samples"],
            test=part["samples"],
            max_terms=np.unique(part["train_groups"]).size - 1,
        )
        for part in parts
    ]
    scalar_baseline = _gaussian_metrics(
        truth,
        np.concatenate([mean for mean, _ in scalar_fits]),
        np.concatenate([np.full(mean.size, sigma) for mean, sigma in scalar_fits]),
    )
    pit_values = pit(SLOPE_GRID, density if calibrated is None else calibrated, truth)
    report = StoreLayout(store).run(run).report
    report.mkdir(parents=True, exist_ok=True)
    _figures(
        report,
        parts[0],
        summary_first=summarise(SLOPE_GRID, parts[0]["density"]),
        pit_values=pit_values,
    )
    document = {
        "runs": runs,
        "missing_folds": missing,
        "metrics": metrics,
        "metrics_calibrated": (
            None
            if calibrated is None
            else _posterior_metrics(calibrated, truth=truth, groups=groups)[0]
        ),
        "mdcnn_minus_baseline_stellar_mass": paired_differences(
            groups, truth, summary.mode, b_mean
        ),
        "mdcnn_minus_baseline_scalars": paired_differences(
            groups, truth, summary.mode, np.concatenate([mean for mean, _ in scalar_fits])
        ),
        "temperatures": [None if c is None else c.temperature for c in calibrations],
        "baseline_stellar_mass": baseline,
        "baseline_scalars": scalar_baseline,
        "pit_histogram": np.histogram(pit_values, bins=10, range=(0, 1))[0].tolist(),
        "paper": {"within_0.1": 0.82, "within_0.3": 0.98},
        "evaluate_config": config_to_dict(config),
    }
    (report / "metrics.json").write_text(json.dumps(document, indent=1))
    (report / "summary.md").write_text(_markdown(document))
    return report


def dwarf_bootstrap_sigma(groups: np.ndarray, flags: dict[str, np.ndarray]) -> dict[str, float]:
    """Standard deviation of each flag's mean over resampled dwarfs
    (:func:`~darkstack.evaluate.metrics.group_bootstrap_means`: a dwarf's maps share its halo,
    so the binomial sigma over maps understates it)."""
    return {
        name: float(draws.std()) for name, draws in group_bootstrap_means(groups, flags).items()
    }


def _posterior_metrics(
    density: np.ndarray, *, truth: np.ndarray, groups: np.ndarray
) -> tuple[dict[str, float], PosteriorSummary]:
    """§3's numbers of posteriors, with the double-peaked fraction and the dwarf-bootstrap
    sigma of the fractions within +-0.1 and of the coverage; and the posteriors' summary."""
    summary = summarise(SLOPE_GRID, density)
    inside = (truth >= summary.lower68) & (truth <= summary.upper68)
    metrics = cusp_core_metrics(
        mode=summary.mode, truth=truth, sigma=summary.sigma, inside68=inside
    )
    metrics["double_peaked"] = float(np.mean(np.isfinite(summary.second_peak)))
    metrics["n_dwarfs"] = int(np.unique(groups).size)
    spread = dwarf_bootstrap_sigma(
        groups, {"within_0.1": np.abs(summary.mode - truth) <= 0.1, "coverage_68": inside}
    )
    metrics.update({f"{name}_dwarf_bootstrap_sigma": value for name, value in spread.items()})
    return metrics, summary


def paired_differences(
    groups: np.ndarray, truth: np.ndarray, mode: np.ndarray, other: np.ndarray
) -> dict[str, list[float]]:
    """The model's fraction within +-0.1 and +-0.3 and its MAD minus another predictor's, each
    as [difference, 2.5th, 97.5th percentile] over dwarfs resampled together (paired)."""
    error, other_error = np.abs(mode - truth), np.abs(other - truth)
    values = {
        "within_0.1": (error <= 0.1).astype(float) - (other_error <= 0.1),
        "within_0.3": (error <= 0.3).astype(float) - (other_error <= 0.3),
        "mad_mode": error - other_error,
    }
    draws = group_bootstrap_means(groups, values)
    return {
        name: paired_interval(float(value.mean()), draws[name]) for name, value in values.items()
    }


def _gaussian_metrics(truth: np.ndarray, mean: np.ndarray, sigma: np.ndarray) -> dict[str, float]:
    """§3's numbers of a Gaussian predictive (a baseline): its mode is its mean."""
    return cusp_core_metrics(
        mode=mean, truth=truth, sigma=sigma, inside68=np.abs(truth - mean) <= 0.9945 * sigma
    )


def _markdown(document: dict[str, Any]) -> str:
    ours, base = document["metrics"], document["baseline_stellar_mass"]
    scales = document["baseline_scalars"]
    calibrated = document["metrics_calibrated"] or {}
    rows = [
        ("MAD of the mode", "mad_mode", ""),
        ("within +-0.1", "within_0.1", "0.82"),
        ("within +-0.3", "within_0.3", "0.98"),
        ("mean posterior sigma", "mean_sigma", ""),
        ("bias, cusps (< -0.75)", "bias_cusps", ""),
        ("bias, cores", "bias_cores", ""),
        ("68% coverage", "coverage_68", "0.68"),
    ]
    lines = [
        "# cusp_core evaluation",
        "",
        f"Runs: {', '.join(document['runs'])}; "
        f"missing folds: {document['missing_folds'] or 'none'}.",
        f"Held-out samples: {ours['n_samples']} of {ours['n_dwarfs']} dwarfs.",
        "",
        "| metric | paper | MDCNN | MDCNN, calibrated | E[slope given log M*] "
        "| E[slope given the scalars] |",
        "|---|---|---|---|---|---|",
    ]
    for label, key, paper in rows:
        mine = f"{calibrated[key]:.3f}" if calibrated else "(no calibration)"
        lines.append(
            f"| {label} | {paper} | {ours[key]:.3f} | {mine} | {base[key]:.3f} "
            f"| {scales[key]:.3f} |"
        )
    lines += [
        "",
        f"Double-peaked posteriors: {ours['double_peaked']:.3f}. Sigma of the coverage: "
        f"binomial over maps {ours['coverage_68_binomial_sigma']:.3f}, resampling dwarfs "
        f"{ours['coverage_68_dwarf_bootstrap_sigma']:.3f}; of the fraction within +-0.1, "
        f"resampling dwarfs {ours['within_0.1_dwarf_bootstrap_sigma']:.3f}. Posterior "
        f"temperatures (calibration): {document['temperatures']}. PIT histogram (10 bins"
        f"{', calibrated' if calibrated else ''}): {document['pit_histogram']}.",
        "",
        "The scalars: log M*, log P98(|v_los|) and log R_hlr (phase_space.zarr), a full "
        "quadratic fitted on each fold's training samples.",
        "",
        "MDCNN minus each baseline (the posterior mode; paired, 95% interval resampling dwarfs):",
        "",
        "| baseline | within +-0.1 | within +-0.3 | MAD |",
        "|---|---|---|---|",
        *(
            f"| {label} | "
            + " | ".join(
                "{:+.3f} [{:+.3f}, {:+.3f}]".format(*document[key][name])
                for name in ("within_0.1", "within_0.3", "mad_mode")
            )
            + " |"
            for label, key in (
                ("E[slope given log M*]", "mdcnn_minus_baseline_stellar_mass"),
                ("E[slope given the scalars]", "mdcnn_minus_baseline_scalars"),
            )
        ),
        "",
        "Figures: posteriors.png (Fig. 2-like), pit.png.",
    ]
    return "\n".join(lines) + "\n"


def _figures(
    report: Path, part: dict[str, Any], *, summary_first: Any, pit_values: np.ndarray
) -> None:
    plt = pyplot()

    groups = part["groups"]
    first = np.flatnonzero(groups == groups[0])[:2]
    fig, axes = plt.subplots(len(first), 3, figsize=(11, 3.4 * len(first)), squeeze=False)
    for row, index in enumerate(first):
        axes[row, 0].imshow(part["maps"][index, 0], origin="lower", extent=(-2, 2, -2, 2))
        axes[row, 0].set(xlabel="x [kpc]", ylabel="y [kpc]", title="xy")
        axes[row, 1].imshow(
            part["maps"][index, 1], origin="lower", extent=(0, 1, -1, 1), aspect="auto"
        )
        axes[row, 1].set(xlabel="R / R_hlr", ylabel="v / P98(|v|)", title="rv")
        ax = axes[row, 2]
        ax.fill_between(
            SLOPE_GRID,
            part["band"][index, 0],
            part["band"][index, 1],
            alpha=0.3,
            label="MC-dropout 16-84%",
        )
        ax.plot(SLOPE_GRID, part["density"][index], label="posterior")
        ax.axvline(part["truth"][index], color="k", label="truth")
        ax.axvline(summary_first.mode[index], color="C1", ls="--", label="mode")
        ax.axvline(summary_first.mean[index], color="C2", ls=":", label="mean")
        if np.isfinite(summary_first.second_peak[index]):
            ax.axvline(summary_first.second_peak[index], color="C3", ls="-.", label="second peak")
        ax.set(xlim=(-2.5, 0.5), xlabel="d ln rho / d ln r at 150 pc")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(report / "posteriors.png", dpi=90)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.hist(pit_values, bins=10, range=(0, 1))
    ax.axhline(pit_values.size / 10, color="k", ls="--")
    ax.set(xlabel="PIT", ylabel="samples")
    fig.tight_layout()
    fig.savefig(report / "pit.png", dpi=90)
    plt.close(fig)


#: What ``darkstack evaluate --task cusp_core`` runs.
EVALUATION = Evaluation(config_type=CuspCoreEvaluateConfig, evaluate=evaluate_cusp_core)
