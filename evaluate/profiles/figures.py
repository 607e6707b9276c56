"""The report's figures (the paper's Figs 4, 6, 7, 8 and 9 for one run) and their numbers."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from darkstack.evaluate.metrics import COVERAGE_SIGMAS, NOMINAL_COVERAGE, coverage_sigma
from darkstack.plotting import pyplot

if TYPE_CHECKING:
    from darkstack.evaluate.profiles.report import EvaluateConfig, Evaluation
    from darkstack.train.regressor import Regressor


def write_figures(
    store: Path,
    evaluation: Evaluation,
    galaxies: pd.DataFrame,
    *,
    model: Regressor,
    config: EvaluateConfig,
    report: Path,
) -> dict[str, Any]:
    """Draw every figure into ``report``; returns extra metrics, summary text and file names."""
    figures = [
        _accuracy(evaluation, report / "accuracy.png"),
        _coverage(evaluation, report / "coverage.png"),
        _pit(evaluation, report / "pit.png"),
        _reliability(evaluation, report / "reliability.png"),
        _profiles(
            evaluation, report / "profiles.png", n=config.n_example_profiles, seed=config.seed
        ),
        _sensitivity(evaluation, model, report / "sensitivity.png", config=config),
    ]
    extras: dict[str, Any] = {"summary_lines": {}}
    tully_fisher = _tully_fisher(evaluation, galaxies, report / "tully_fisher.png")
    figures.append(tully_fisher["figure"])
    extras["tully_fisher"] = tully_fisher["summary"]
    extras["summary_lines"]["Tully-Fisher (§5.5)"] = tully_fisher["text"]
    if config.rotation_curve_galaxies > 0:
        rotation = _rotation_curves(store, evaluation, report / "rotation_curve.png", config=config)
        figures.append(rotation["figure"])
        extras["rotation_curve"] = rotation["rows"]
        extras["summary_lines"]["Rotation-curve method (§5.6)"] = rotation["text"]
    extras["figures"] = [path.name for path in figures]
    return extras


def _accuracy(evaluation: Evaluation, path: Path) -> Path:
    plt = pyplot()

    m = evaluation.metrics
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    for ax, kind, label in zip(axes, ("mse", "mae"), ("Δ_MSE", "Δ_MAE"), strict=True):
        ax.plot(
            evaluation.radii_kpc, m[f"delta_{kind}_ensemble"], "o-", label="CNN ensemble median"
        )
        ax.plot(evaluation.radii_kpc, m[f"delta_{kind}_member0"], ".--", label="one member")
        ax.plot(evaluation.radii_kpc, m[f"delta_{kind}_baseline"], "s:", label="M*-only baseline")
        ax.plot(
            evaluation.radii_kpc, m[f"delta_{kind}_photometric"], "^:", label="photometric baseline"
        )
        ax.set(xscale="log", xlabel="R (kpc)", ylabel=f"{label} (dex)")
    axes[0].legend()
    fig.suptitle(f"{evaluation.run}: accuracy on the test split (paper eqs 2-3, Fig 4)")
    return _save(fig, path)


def _coverage(evaluation: Evaluation, path: Path) -> Path:
    plt = pyplot()

    m = evaluation.metrics
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(evaluation.radii_kpc, m["coverage68_bootstrap"], "o-", label="bootstrap ensemble")
    ax.plot(evaluation.radii_kpc, m["coverage68_mc_dropout"], "s--", label="MC-dropout")
    if "coverage68_calibrated" in m:
        ax.plot(
            evaluation.radii_kpc, m["coverage68_calibrated"], "d-", label="ensemble, calibrated"
        )
    n = int(np.unique(evaluation.subhalo_id).size)
    sigma = coverage_sigma(nominal=NOMINAL_COVERAGE, n=n)
    ax.axhspan(
        NOMINAL_COVERAGE - COVERAGE_SIGMAS * sigma,
        NOMINAL_COVERAGE + COVERAGE_SIGMAS * sigma,
        color="0.85",
        label=f"±{COVERAGE_SIGMAS:g}σ binomial, {n} galaxies",
    )
    ax.axhline(NOMINAL_COVERAGE, color="k", lw=0.8, label="0.68: calibrated")
    ax.set(xscale="log", ylim=(0, 1), xlabel="R (kpc)", ylabel="fraction inside 68% interval")
    # Run names are long (architecture, channels, members, seed): on a line of their own.
    ax.set_title(f"coverage of the 16-84% intervals\nrun {evaluation.run}", fontsize=8)
    ax.legend(fontsize=8)
    return _save(fig, path)


#: Labels of the predictives whose PIT an evaluation carries.
_PREDICTIVES = {
    "bootstrap": "bootstrap ensemble",
    "calibrated": "ensemble, calibrated",
    "mc_dropout": "MC-dropout",
    "baseline": "M*-only (Gaussian)",
    "photometric": "photometric (Gaussian)",
}


def _pit(evaluation: Evaluation, path: Path) -> Path:
    """PIT histograms over all test samples and radii: flat when calibrated, U when too narrow."""
    plt = pyplot()

    shown = {key: label for key, label in _PREDICTIVES.items() if key in evaluation.pit}
    fig, axes = plt.subplots(1, len(shown), figsize=(3 * len(shown), 3), sharey=True)
    bins = np.linspace(0.0, 1.0, 11)
    for ax, (key, label) in zip(axes, shown.items(), strict=True):
        ax.hist(evaluation.pit[key].ravel(), bins=bins, density=True, color="0.6")
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set(xlabel="PIT", title=label)
    axes[0].set_ylabel("density (1 when calibrated)")
    fig.suptitle(f"PIT histograms, all radii pooled\nrun {evaluation.run}", fontsize=9)
    return _save(fig, path)


def _reliability(evaluation: Evaluation, path: Path) -> Path:
    """Observed against nominal coverage of central intervals, all radii pooled."""
    plt = pyplot()

    from darkstack.evaluate.predictive import central_coverage

    levels = np.linspace(0.05, 0.95, 19)
    fig, ax = plt.subplots(figsize=(5, 4))
    for key, label in _PREDICTIVES.items():
        if key not in evaluation.pit:
            continue
        pooled = evaluation.pit[key].reshape(-1, 1)
        observed = [central_coverage(pit=pooled, level=level)[0] for level in levels]
        ax.plot(levels, observed, ".-", label=label)
    ax.plot([0, 1], [0, 1], "k", lw=0.8, label="calibrated")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="nominal coverage", ylabel="observed coverage")
    ax.set_title(f"reliability of central intervals\nrun {evaluation.run}", fontsize=8)
    ax.legend(fontsize=8)
    return _save(fig, path)


def _profiles(evaluation: Evaluation, path: Path, *, n: int, seed: int) -> Path:
    plt = pyplot()

    # One view of each drawn galaxy: several realisations of one galaxy would repeat its truth.
    first_views = np.unique(evaluation.subhalo_id, return_index=True)[1]
    chosen = np.random.default_rng(seed).choice(
        first_views, size=min(n, first_views.size), replace=False
    )
    columns = min(3, chosen.size)
    rows = -(-chosen.size // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3.2 * rows), squeeze=False)
    r = evaluation.radii_kpc
    for ax, index in zip(axes.flat, chosen, strict=False):
        ax.fill_between(
            r,
            evaluation.ensemble.p16[index],
            evaluation.ensemble.p84[index],
            alpha=0.3,
            label="ensemble 68%",
        )
        ax.plot(r, evaluation.ensemble.median[index], "-", label="median")
        ax.plot(r, evaluation.mc_dropout.p16[index], ":", color="C2", label="MC-dropout 68%")
        ax.plot(r, evaluation.mc_dropout.p84[index], ":", color="C2")
        ax.plot(r, evaluation.true[index], "k--", label="true")
        ax.set(
            xscale="log",
            title=f"subhalo {evaluation.subhalo_id[index]}",
            xlabel="R (kpc)",
            ylabel="log10 M_DM(<R)",
        )
    for ax in axes.flat[chosen.size :]:
        ax.set_axis_off()
    axes.flat[0].legend(fontsize=7)
    return _save(fig, path)


def _sensitivity(
    evaluation: Evaluation, model: Regressor, path: Path, *, config: EvaluateConfig
) -> Path:
    plt = pyplot()

    from darkstack.evaluate.profiles.sensitivity import smoothgrad_maps

    channels = evaluation.channels
    count = min(config.sensitivity_samples, evaluation.images.shape[0])
    images = evaluation.images[:count]
    radius_indices = [
        int(np.argmin(np.abs(np.log(evaluation.radii_kpc / r))))
        for r in config.sensitivity_radii_kpc
    ]
    maps = {
        index: smoothgrad_maps(
            model, images, radius_index=index, n_samples=config.smoothgrad_samples, seed=config.seed
        )
        for index in radius_indices
    }
    n_columns = len(channels)
    n_rows = count * (1 + len(radius_indices))
    fig, axes = plt.subplots(
        n_rows, n_columns, figsize=(1.6 * n_columns, 1.6 * n_rows), squeeze=False
    )
    for sample in range(count):
        base = sample * (1 + len(radius_indices))
        for c, name in enumerate(channels):
            axes[base, c].imshow(images[sample, c], origin="lower", cmap="gray")
            axes[base, c].set_title(name, fontsize=7)
            for k, index in enumerate(radius_indices):
                ax = axes[base + 1 + k, c]
                ax.imshow(images[sample, c], origin="lower", cmap="gray")
                ax.imshow(maps[index][sample, c], origin="lower", cmap="inferno", alpha=0.6)
                if c == 0:
                    ax.set_ylabel(f"{evaluation.radii_kpc[index]:.1f} kpc", fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("SmoothGrad sensitivity per channel and radius (Fig 7)", fontsize=9)
    return _save(fig, path)


def _tully_fisher(evaluation: Evaluation, galaxies: pd.DataFrame, path: Path) -> dict[str, Any]:
    plt = pyplot()

    from darkstack.evaluate.profiles.tully_fisher import tully_fisher_summary, tully_fisher_table

    predictions = pd.DataFrame(
        {
            "sample": evaluation.samples,
            "subhalo_id": evaluation.subhalo_id,
            "log10_mdm_median": list(evaluation.ensemble.median),
            "log10_mdm_p16": list(evaluation.ensemble.p16),
            "log10_mdm_p84": list(evaluation.ensemble.p84),
        }
    )
    table = tully_fisher_table(predictions=predictions, galaxies=galaxies)
    summary = tully_fisher_summary(table=table)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(
        table["v_true_kms"], table["v_procedure_a_kms"], "o", ms=3, label="A: CNN DM + true baryons"
    )
    ax.plot(
        table["v_true_kms"], table["v_procedure_b_kms"], "s", ms=3, label="B: Hall et al. 2012 TF"
    )
    limits = [table["v_true_kms"].min() * 0.8, table["v_true_kms"].max() * 1.2]
    ax.plot(limits, limits, "k-", lw=0.8)
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="true V(2 r_half) (km/s)",
        ylabel="estimated V (km/s)",
        title="Tully-Fisher comparison (Fig 8)",
    )
    ax.legend(fontsize=8)
    text = "```\n" + summary.to_string(float_format=lambda v: f"{v:.3f}") + "\n```"
    return {
        "figure": _save(fig, path),
        "summary": summary.reset_index().to_dict(orient="records"),
        "text": text,
    }


def _rotation_curves(
    store: Path, evaluation: Evaluation, path: Path, *, config: EvaluateConfig
) -> dict[str, Any]:
    plt = pyplot()

    from darkstack.evaluate.profiles.rotation_curve import rotation_curve_masses

    chosen = np.random.default_rng(config.seed).choice(
        evaluation.samples.size,
        size=min(config.rotation_curve_galaxies, evaluation.samples.size),
        replace=False,
    )
    fits = rotation_curve_masses(
        store=store, samples=evaluation.samples[chosen].tolist(), config=config.rotation_curve
    )
    fig, axes = plt.subplots(1, chosen.size, figsize=(4.2 * chosen.size, 3.6), squeeze=False)
    r = evaluation.radii_kpc
    rows = []
    for ax, index, (_, fit) in zip(axes.flat, chosen, fits.iterrows(), strict=True):
        ax.plot(r, evaluation.true[index], "k--", label="true")
        ax.fill_between(
            r,
            evaluation.ensemble.p16[index],
            evaluation.ensemble.p84[index],
            alpha=0.3,
            label="CNN 68%",
        )
        status = str(fit["status"])
        if status == "ok":
            ax.fill_between(
                r,
                fit["log10_mdm_p16"],
                fit["log10_mdm_p84"],
                alpha=0.3,
                color="C3",
                label="rotation-curve fit 68%",
            )
            ax.plot(r, fit["log10_mdm_median"], "-", color="C3")
        ax.set(xscale="log", xlabel="R (kpc)", ylabel="log10 M_DM(<R)")
        # A failed fit's status is long: inside its panel, wrapped, so titles never overlap.
        ax.set_title(f"subhalo {evaluation.subhalo_id[index]}", fontsize=9)
        if status != "ok":
            ax.text(
                0.03,
                0.97,
                textwrap.fill(f"fit {status}", width=38),
                transform=ax.transAxes,
                fontsize=6,
                va="top",
            )
        rows.append({"sample": int(evaluation.samples[index]), "status": status})
    axes.flat[0].legend(fontsize=7)
    n_ok = sum(row["status"] == "ok" for row in rows)
    text = f"{n_ok} of {len(rows)} rotation-curve fits succeeded; statuses: " + ", ".join(
        f"sample {row['sample']}: {row['status']}" for row in rows
    )
    return {"figure": _save(fig, path), "rows": rows, "text": text}


def _save(fig: Any, path: Path) -> Path:
    plt = pyplot()

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
