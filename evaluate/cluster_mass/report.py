"""``darkstack evaluate --task cluster_mass``: the run, its sibling U-Nets and the NFW baseline.

On the run's test split (every line of sight of its test clusters) each model predicts
log10 Σ; the report compares it with the truth, with every other cluster_mass run of the store
that has the same test samples (``compare``; by default all of them) and with the observer's
baseline (:mod:`darkstack.evaluate.cluster_mass.baseline`). Scores
(:mod:`darkstack.evaluate.cluster_mass.scores`), each with a bootstrap interval over clusters:
per-pixel bias and scatter of ``log10(pred / true)`` inside ``pixel_radius_r200`` R200c, the
same of the cylinder masses M(<R) at ``radii_r200``, the mean Σ(R) and the ratio of mean power
spectra, summarised over the upper half of k. Differences between multi-view and single-view
models, and between each model and the baseline, are bootstrapped with the same resamples
(paired) and flagged when their interval excludes 0. See docs/cluster_mass.md, "Evaluation".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from darkstack.config import Checked, Increasing, Range, config_to_dict
from darkstack.errors import InputError
from darkstack.evaluate import Evaluation
from darkstack.evaluate.cluster_mass.baseline import BaselineConfig, baseline_maps
from darkstack.evaluate.cluster_mass.scores import (
    SampleScores,
    TruthScores,
    cluster_resample_counts,
    power_ratio,
    radial_profiles,
    sample_scores,
    small_scale_mask,
    truth_scores,
)
from darkstack.features.cluster_observe import CHANNELS
from darkstack.plotting import pyplot
from darkstack.store import CLUSTER_MAPS_ZARR, StoreLayout
from darkstack.train.run import run_task

FloatArray = NDArray[np.float64]
BASELINE = "baseline"


@dataclass(frozen=True, kw_only=True)
class ClusterMassEvaluateConfig(Checked):
    """Settings of the cluster_mass evaluation.

    Parameters
    ----------
    compare : tuple of str or None
        Other runs to compare (names in STORE/runs); None: every trained cluster_mass run with
        the same test samples.
    radii_r200 : tuple of float
        Cylinder radii of M(<R), in units of the cluster's true R200c.
    pixel_radius_r200 : float
        Pixels whose centres lie within this many R200c of the map centre are scored.
    profile_edges_r200 : tuple of float
        Annuli of the Σ(R) profiles, R200c units.
    n_bootstrap : int
        Resamples of the test clusters.
    level : float
        Probability of the bootstrap intervals.
    seed : int
        Of the resamples.
    min_clusters_for_flag : int
        A difference is flagged "excludes 0" only with at least this many test clusters: with
        a handful, the resamples of clusters take a few distinct values and an interval that
        excludes 0 says little.
    n_panels : int
        Test clusters shown in panels.png (their first line of sight).
    baseline : BaselineConfig
        The Y-M iteration.
    device : str
        Torch device of the predictions.
    """

    compare: tuple[str, ...] | None = None
    radii_r200: Annotated[tuple[float, ...], Range(gt=0), Increasing()] = (0.1, 0.25, 0.5, 1.0)
    pixel_radius_r200: Annotated[float, Range(gt=0)] = 1.0
    profile_edges_r200: Annotated[tuple[float, ...], Range(ge=0), Increasing()] = tuple(
        float(x) for x in np.round(np.geomspace(0.02, 1.0, 11), 4)
    )
    n_bootstrap: Annotated[int, Range(ge=10)] = 1000
    level: Annotated[float, Range(gt=0, lt=1)] = 0.95
    seed: int = 0
    min_clusters_for_flag: Annotated[int, Range(ge=2)] = 10
    n_panels: Annotated[int, Range(ge=1)] = 3
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    device: str = "cpu"


@dataclass(frozen=True, kw_only=True)
class SplitMaps:
    """The truth of one of a run's splits, in its split order."""

    samples: NDArray[np.int64]
    groups: NDArray[np.int64]
    pixel_kpc: FloatArray
    r200c_kpc: FloatArray
    images: FloatArray
    sigma_msun_kpc2: FloatArray


def _run_views(store: Path, run: str) -> dict[str, Any]:
    import yaml

    return dict(yaml.safe_load(StoreLayout(store).run(run).config.read_text()))


def _split_samples(store: Path, run: str, split: str) -> NDArray[np.int64]:
    from darkstack.train.run import load_split

    return np.asarray(load_split(StoreLayout(store).run(run))[split]["samples"], dtype=np.int64)


def comparable_runs(store: Path, run: str) -> list[str]:
    """Trained cluster_mass runs of the store whose test samples are ``run``'s, ``run`` first."""
    layout = StoreLayout(store)
    mine = np.sort(_split_samples(store, run, "test"))
    found = [run]
    for folder in sorted(layout.runs.iterdir()) if layout.runs.is_dir() else []:
        paths = layout.run(folder.name)
        if folder.name == run or not (paths.model.is_file() and paths.split.is_file()):
            continue
        if _run_views(store, folder.name).get("task") != "cluster_mass":
            continue
        if np.array_equal(np.sort(_split_samples(store, folder.name, "test")), mine):
            found.append(folder.name)
    return found


def read_split_maps(store: Path, run: str, *, split: str = "test") -> SplitMaps:
    """The raw views, true Σ, cluster and pixel of each sample of ``run``'s ``split`` (the test
    split unless told), and its cluster's R200c."""
    layout = StoreLayout(store)
    group = CLUSTER_MAPS_ZARR.check(layout.zarr(CLUSTER_MAPS_ZARR.name))
    samples = _split_samples(store, run, split)
    groups = np.asarray(group["group_id"][:], dtype=np.int64)[samples]
    catalog = pd.read_parquet(layout.catalog("clusters"), columns=["group_id", "r200c_kpc"])
    r200 = catalog.set_index("group_id")["r200c_kpc"]
    missing = sorted(set(groups.tolist()) - set(r200.index.tolist()))
    if missing:
        raise InputError(
            f"{layout.catalog('clusters')}: no row for test clusters {missing[:5]}; expected "
            "the catalog the maps were observed from"
        )
    return SplitMaps(
        samples=samples,
        groups=groups,
        pixel_kpc=np.asarray(group["pixel_kpc"][:], dtype=np.float64)[samples],
        r200c_kpc=r200.loc[groups].to_numpy(dtype=np.float64),
        images=np.asarray(group["images"].get_orthogonal_selection((samples,)), dtype=np.float64),
        sigma_msun_kpc2=np.asarray(
            group["targets"].get_orthogonal_selection((samples,)), dtype=np.float64
        ),
    )


@dataclass(frozen=True, kw_only=True)
class RunPrediction:
    """A run's maps of the test samples.

    Attributes
    ----------
    sigma_msun_kpc2 : ndarray, shape (n_samples, n, n)
        Σ = 10^(the members' mean log10 Σ): the ensemble's point prediction (a lone network's
        own map), the mixture mean of :func:`~darkstack.train.predict.mixture_moments`.
    spread_dex : ndarray, shape (n_samples, n, n)
        Standard deviation of log10 Σ over the members, per pixel (0 for one member).
    n_members : int
        Networks of the run.
    """

    sigma_msun_kpc2: FloatArray
    spread_dex: FloatArray
    n_members: int


def predict_run(store: Path, run: str, *, samples: NDArray[np.int64], device: str) -> RunPrediction:
    """Σ (Msun kpc^-2) predicted by ``run`` for ``samples`` (batched through its network)."""
    from darkstack.train.predict import mixture_moments, predict_members
    from darkstack.train.run import load_split_data
    from darkstack.train.worker import load_trained

    paths = StoreLayout(store).run(run)
    data = load_split_data(store, paths, "test")
    order = np.searchsorted(data.samples, samples)
    if not np.array_equal(data.samples[np.minimum(order, data.samples.size - 1)], samples):
        raise InputError(f"{paths.split}: its test samples are not those of the evaluated run")
    model = load_trained(paths, device=device)
    members = predict_members(model, data.inputs[order], device=device)
    # The mean of the log maps, not of Σ: the members are trained on log10 Σ, and their
    # errors are closer to symmetric in the log (Σ spans ~3 decades across a map).
    log_sigma, spread = mixture_moments(members, heteroscedastic=False)
    return RunPrediction(
        sigma_msun_kpc2=np.asarray(10.0**log_sigma),
        spread_dex=spread,
        n_members=int(members.shape[1]),
    )


def ensemble_spread_dex(prediction: RunPrediction, *, scored: NDArray[np.bool_]) -> float:
    """Mean over the ``scored`` pixels (:func:`.scores.scored_pixels`) of the members'
    per-pixel spread of log10 Σ."""
    return float(prediction.spread_dex[scored].mean())


def _label(config: dict[str, Any]) -> str:
    views = list(config.get("views", []))
    if len(views) == 1:
        return views[0]
    return f"{'+'.join(views)} ({config.get('fusion', 'early')} fusion)"


def _interval(values: FloatArray, level: float) -> list[float]:
    tail = 50.0 * (1.0 - level)
    low, high = np.nanpercentile(values, [tail, 100.0 - tail])
    return [float(low), float(high)]


def _statistics(
    scores: SampleScores,
    weights: FloatArray,
    *,
    truth: TruthScores,
    small: NDArray[np.bool_],
) -> FloatArray:
    """Flat vector: pixel bias, pixel scatter, M(<R) biases, M(<R) scatters, small-scale ratios
    of Σ and of the substructure."""
    bias, scatter = scores.pixel_bias_scatter(weights)
    mass_bias, mass_scatter = scores.mass_bias_scatter(weights)
    ratio = scores.small_scale_power_ratio(weights, truth=truth, small=small)
    substructure = scores.small_scale_power_ratio(
        weights, truth=truth, small=small, substructure=True
    )
    return np.concatenate([[bias, scatter], mass_bias, mass_scatter, [ratio, substructure]])


def _names(radii: tuple[float, ...]) -> list[str]:
    return [
        "pixel_bias_dex",
        "pixel_scatter_dex",
        *[f"mass_bias_dex_{r:g}r200" for r in radii],
        *[f"mass_scatter_dex_{r:g}r200" for r in radii],
        "small_scale_power_ratio",
        "substructure_power_ratio",
    ]


def evaluate_cluster_mass(store: str | Path, run: str, config: ClusterMassEvaluateConfig) -> Path:
    """Predict the test maps of ``run`` and its comparable runs, score them and the baseline,
    and write ``runs/RUN/report/`` (summary.md, metrics.json, panels.png, profiles.png,
    power.png)."""
    store = Path(store)
    runs = comparable_runs(store, run) if config.compare is None else [run, *config.compare]
    for name in runs[1:]:
        task = run_task(StoreLayout(store).run(name))  # a one-line error for an unknown run
        if task != "cluster_mass":
            raise InputError(f"compare: run {name} was trained for {task!r}, not cluster_mass")
    truth = read_split_maps(store, run)
    runs_predicted = {
        name: predict_run(store, name, samples=truth.samples, device=config.device)
        for name in dict.fromkeys(runs)
    }
    predictions = {name: found.sigma_msun_kpc2 for name, found in runs_predicted.items()}
    tsz = truth.images[:, CHANNELS.index("tsz_y")]
    baseline = baseline_maps(tsz, pixel_kpc=truth.pixel_kpc, config=config.baseline)
    predictions[BASELINE] = baseline.sigma_msun_kpc2
    configs = {name: _run_views(store, name) for name in runs}
    labels = {name: _label(configs[name]) for name in runs}
    # Two runs of the same views (another width or training length) keep their run names.
    repeated = [name for name in labels if list(labels.values()).count(labels[name]) > 1]
    labels.update({name: f"{labels[name]} [{name}]" for name in repeated})
    labels[BASELINE] = "projected NFW from Y500 (Arnaud 2010 + diemer19)"

    radii = np.asarray(config.radii_r200)
    scoring = truth_scores(
        truth.sigma_msun_kpc2,
        pixel_kpc=truth.pixel_kpc,
        pixel_radius_kpc=config.pixel_radius_r200 * truth.r200c_kpc,
        cylinder_radius_kpc=truth.r200c_kpc[:, None] * radii[None],
    )
    ensembles = {
        name: {
            "n_members": found.n_members,
            "pixel_spread_dex": ensemble_spread_dex(found, scored=scoring.scored),
        }
        for name, found in runs_predicted.items()
    }
    k = scoring.k
    small = small_scale_mask(k)
    scores = {name: sample_scores(maps, truth=scoring) for name, maps in predictions.items()}
    ones = np.ones(truth.samples.size)
    resamples = cluster_resample_counts(
        truth.groups, n_resamples=config.n_bootstrap, seed=config.seed
    )
    names = _names(config.radii_r200)
    n_clusters = int(np.unique(truth.groups).size)

    def measure(model: str, weights: FloatArray) -> FloatArray:
        return _statistics(scores[model], weights, truth=scoring, small=small)

    point = {model: measure(model, ones) for model in predictions}
    boot = {model: np.stack([measure(model, w) for w in resamples]) for model in predictions}
    models = {
        model: {
            "label": labels[model],
            **{
                key: {
                    "value": float(point[model][i]),
                    "interval": _interval(boot[model][:, i], config.level),
                }
                for i, key in enumerate(names)
            },
        }
        for model in predictions
    }
    differences = _differences(
        comparison_pairs({name: tuple(configs[name].get("views", [])) for name in runs}),
        labels=labels,
        point=point,
        boot=boot,
        names=names,
        level=config.level,
        enough_clusters=n_clusters >= config.min_clusters_for_flag,
    )
    edges = truth.r200c_kpc[:, None] * np.asarray(config.profile_edges_r200)[None]
    profiles = {
        name: _mean_profile(radial_profiles(maps, pixel_kpc=truth.pixel_kpc, edges_kpc=edges))
        for name, maps in {"truth": truth.sigma_msun_kpc2, **predictions}.items()
    }
    ratios = {model: power_ratio(scores[model].power, scoring.power, ones) for model in predictions}
    substructure_ratios = {
        model: power_ratio(scores[model].substructure_power, scoring.substructure_power, ones)
        for model in predictions
    }
    document = {
        "run": run,
        "compared_runs": runs[1:],
        "test": {
            "n_clusters": n_clusters,
            "n_maps": int(truth.samples.size),
            "group_id": sorted(set(truth.groups.tolist())),
        },
        "pixel_selection": f"pixel centres within {config.pixel_radius_r200:g} R200c of the map "
        "centre, true and predicted Σ > 0",
        "models": models,
        "ensembles": ensembles,
        "differences": differences,
        "baseline": {
            "m500c_msun": baseline.solution.m500c_msun.tolist(),
            "y_cyl_r500_mpc2": baseline.solution.y_cyl_mpc2.tolist(),
            "m200c_msun": baseline.m200c_msun.tolist(),
            "c200c": baseline.c200c.tolist(),
            "n_not_converged": int((~baseline.solution.converged).sum()),
        },
        "profiles": {
            "edges_r200": list(config.profile_edges_r200),
            "mean_sigma_msun_kpc2": {name: _listed(values) for name, values in profiles.items()},
        },
        "power": {
            "k_per_map_side": k.tolist(),
            "small_scale_k_min": float(k[small].min()),
            "ratio": {model: values.tolist() for model, values in ratios.items()},
            "substructure_ratio": {
                model: values.tolist() for model, values in substructure_ratios.items()
            },
        },
        "evaluate_config": config_to_dict(config),
    }
    report = StoreLayout(store).run(run).report
    report.mkdir(parents=True, exist_ok=True)
    (report / "metrics.json").write_text(json.dumps(document, indent=1))
    (report / "summary.md").write_text(_markdown(document, names=names))
    _panels(
        report / "panels.png",
        truth=truth,
        predictions=predictions,
        labels=labels,
        n=config.n_panels,
    )
    _profiles_figure(report / "profiles.png", document=document, labels=labels)
    _power_figure(
        report / "power.png",
        k=k,
        ratios={"Σ": ratios, "substructure of log Σ": substructure_ratios},
        labels=labels,
        small=small,
    )
    return report


def _mean_profile(profiles: FloatArray) -> FloatArray:
    """Mean over maps per annulus; NaN where no map has a pixel centre in it (small maps)."""
    counts = np.isfinite(profiles).sum(axis=0)
    totals = np.nansum(profiles, axis=0)
    return np.where(counts > 0, totals / np.maximum(counts, 1), np.nan)


def _listed(values: FloatArray) -> list[float | None]:
    """JSON has no NaN: an empty annulus is null."""
    return [float(v) if np.isfinite(v) else None for v in values]


def comparison_pairs(views: dict[str, tuple[str, ...]]) -> list[tuple[str, str]]:
    """Pairs (A, B) whose differences A - B the report gives.

    Every multi-view run minus every single-view run; every single-view run minus every
    single view of an earlier channel (``CHANNELS`` order: xray_bol - tsz_y, stellar_mass -
    tsz_y, stellar_mass - xray_bol), the comparisons of the paper's finding that the
    stars-only maps keep more small-scale structure than the SZ and X-ray ones; and every run
    minus the baseline.

    Parameters
    ----------
    views : dict of str to tuple of str
        Each run's input views, in the order the runs are reported.
    """
    multi = [r for r, v in views.items() if len(v) > 1]
    single = sorted((r for r in views if r not in multi), key=lambda r: CHANNELS.index(views[r][0]))
    return (
        [(a, b) for a in multi for b in single]
        + [(a, b) for i, a in enumerate(single) for b in single[:i]]
        + [(r, BASELINE) for r in views]
    )


def _differences(
    pairs: list[tuple[str, str]],
    *,
    labels: dict[str, str],
    point: dict[str, FloatArray],
    boot: dict[str, FloatArray],
    names: list[str],
    level: float,
    enough_clusters: bool,
) -> list[dict[str, Any]]:
    """Paired bootstrap differences A - B for ``pairs`` (:func:`comparison_pairs`), with the
    same cluster resamples for both."""
    keys = [
        "pixel_scatter_dex",
        *[n for n in names if n.startswith("mass_scatter")],
        "small_scale_power_ratio",
        "substructure_power_ratio",
    ]
    result = []
    for a, b in pairs:
        entry: dict[str, Any] = {"a": a, "b": b, "label": f"{labels[a]} − {labels[b]}"}
        for key in keys:
            i = names.index(key)
            interval = _interval(boot[a][:, i] - boot[b][:, i], level)
            entry[key] = {
                "value": float(point[a][i] - point[b][i]),
                "interval": interval,
                "excludes_0": bool((interval[0] > 0 or interval[1] < 0) and enough_clusters),
            }
        result.append(entry)
    return result


def _markdown(document: dict[str, Any], *, names: list[str]) -> str:
    test = document["test"]
    level = document["evaluate_config"]["level"]
    lines = [
        "# cluster_mass evaluation",
        "",
        f"Run {document['run']}; test split: {test['n_clusters']} clusters, {test['n_maps']} maps "
        f"(all lines of sight). Compared runs (same test maps): "
        f"{', '.join(document['compared_runs']) or 'none'}. Intervals: {level:.0%} bootstrap over "
        "clusters (a resampled cluster brings all its lines of sight).",
        "",
        f"Pixels: {document['pixel_selection']}. Residual r = log10(Σ_pred / Σ_true); bias = mean, "
        "scatter = standard deviation (dex). M(<R): cylinder mass inside R (pixel centres), "
        "R in units of the true R200c; bias and scatter of log10(M_pred / M_true) over maps. "
        "Small-scale power: mean over the upper half of k of <P_pred(k)> / <P_true(k)> "
        f"(k >= {document['power']['small_scale_k_min']:.1f} per map side; 1 = as much "
        "small-scale power as the truth), of the Σ maps (small_scale_power_ratio) and of "
        "their substructure (substructure_power_ratio: log10 Σ minus its mean in unit-pixel "
        "rings about the centre, over the scored pixels).",
        "",
        "| model | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for model, row in document["models"].items():
        cells = [
            f"{row[n]['value']:.3f} [{row[n]['interval'][0]:.3f}, {row[n]['interval'][1]:.3f}]"
            for n in names
        ]
        lines.append(f"| {row['label']} ({model}) | " + " | ".join(cells) + " |")
    spreads = [
        f"{document['models'][model]['label']} ({model}): {found['n_members']} members, "
        f"{found['pixel_spread_dex']:.3f} dex"
        for model, found in document["ensembles"].items()
        if found["n_members"] > 1
    ]
    if spreads:
        lines += [
            "",
            "Ensembles (prediction: the members' mean log10 Σ; spread: the members' standard "
            "deviation of log10 Σ, averaged over the scored pixels): " + "; ".join(spreads) + ".",
        ]
    if document["differences"]:
        keys = [k for k in document["differences"][0] if k not in ("a", "b", "label")]
        lines += [
            "",
            "Differences A − B (negative scatter: A scatters less; * the interval excludes 0"
            + (
                "):"
                if test["n_clusters"] >= document["evaluate_config"]["min_clusters_for_flag"]
                else f"; not flagged with {test['n_clusters']} test clusters, fewer than "
                f"min_clusters_for_flag = {document['evaluate_config']['min_clusters_for_flag']}):"
            ),
            "",
            "| A − B | " + " | ".join(keys) + " |",
            "|---|" + "---|" * len(keys),
        ]
        for entry in document["differences"]:
            cells = [
                f"{entry[k]['value']:+.3f} [{entry[k]['interval'][0]:+.3f}, "
                f"{entry[k]['interval'][1]:+.3f}]{' *' if entry[k]['excludes_0'] else ''}"
                for k in keys
            ]
            lines.append(f"| {entry['label']} | " + " | ".join(cells) + " |")
    baseline = document["baseline"]
    lines += [
        "",
        "Baseline: Y_cyl(<R500) on the tsz_y map, R500 and M500 iterated with the Arnaud et al. "
        "(2010) Y_cyl-M500 relation (5 R500 deep), NFW with the diemer19 c(M200c), colossus' "
        f"projected Σ; {baseline['n_not_converged']} maps did not converge.",
        "",
        "Figures: panels.png (inputs, truth, predictions, residuals), profiles.png (mean Σ(R)), "
        "power.png (P_pred / P_true).",
    ]
    return "\n".join(lines) + "\n"


def _panels(
    path: Path,
    *,
    truth: SplitMaps,
    predictions: dict[str, FloatArray],
    labels: dict[str, str],
    n: int,
) -> None:
    """Fig. 3/4-like rows: the three views, truth, each model's Σ, each model's residual."""
    plt = pyplot()
    first = np.unique(truth.groups, return_index=True)[1][:n]
    columns = len(CHANNELS) + 1 + 2 * len(predictions)
    fig, axes = plt.subplots(
        len(first), columns, figsize=(1.9 * columns, 2.0 * len(first)), squeeze=False
    )
    for row, i in zip(axes, first, strict=True):
        panels: list[tuple[str, FloatArray, str, tuple[float, float] | None]] = []
        for c, name in enumerate(CHANNELS):
            image = truth.images[i, c]
            floor = max(float(image[image > 0].min()) if (image > 0).any() else 1.0, 1e-300)
            panels.append((name, np.log10(np.maximum(image, floor)), "viridis", None))
        log_true = np.log10(truth.sigma_msun_kpc2[i])
        limits = (float(log_true.min()), float(log_true.max()))
        panels.append(("true log Σ", log_true, "magma", limits))
        for model, maps in predictions.items():
            panels.append((labels[model][:18], np.log10(maps[i]), "magma", limits))
        for model, maps in predictions.items():
            panels.append(
                (
                    f"log ratio, {labels[model][:12]}",
                    np.log10(maps[i] / truth.sigma_msun_kpc2[i]),
                    "coolwarm",
                    (-0.5, 0.5),
                )
            )
        for ax, (title, image, cmap, lim) in zip(row, panels, strict=True):
            ax.imshow(
                image,
                origin="lower",
                cmap=cmap,
                vmin=lim[0] if lim else None,
                vmax=lim[1] if lim else None,
            )
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(title, fontsize=6)
        row[0].set_ylabel(f"group {truth.groups[i]}", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _profiles_figure(path: Path, *, document: dict[str, Any], labels: dict[str, str]) -> None:
    plt = pyplot()
    edges = np.asarray(document["profiles"]["edges_r200"])
    centres = np.sqrt(edges[1:] * np.maximum(edges[:-1], edges[1] / 10))
    means = {
        name: np.asarray(values, dtype=np.float64)  # null (empty annulus) becomes NaN
        for name, values in document["profiles"]["mean_sigma_msun_kpc2"].items()
    }
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(5, 6), sharex=True)
    # One colour per model in both panels (the truth is drawn in the top panel only).
    for colour, (name, values) in enumerate(means.items()):
        style = {"color": f"C{colour}", "lw": 2 if name == "truth" else 1}
        top.loglog(centres, values, label=labels.get(name, name), **style)
        if name != "truth":
            bottom.semilogx(centres, values / means["truth"], **style)
    top.set(ylabel="mean Σ (Msun kpc⁻²)")
    top.legend(fontsize=6)
    bottom.axhline(1, color="k", lw=0.5)
    bottom.set(xlabel="R / R200c", ylabel="Σ / Σ_true")
    bottom.xaxis.set_minor_formatter(plt.NullFormatter())
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _power_figure(
    path: Path,
    *,
    k: FloatArray,
    ratios: dict[str, dict[str, FloatArray]],
    labels: dict[str, str],
    small: NDArray[np.bool_],
) -> None:
    """One panel per kind of map (``ratios``: kind -> model -> ratio per k)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(ratios), figsize=(5 * len(ratios), 3.5), squeeze=False)
    for ax, (kind, by_model) in zip(axes[0], ratios.items(), strict=True):
        for model, ratio in by_model.items():
            ax.semilogx(k, ratio, label=labels[model])
        ax.axhline(1, color="k", lw=0.5)
        ax.axvspan(float(k[small].min()), float(k.max()), color="0.9")
        ax.set(
            xlabel="k (cycles per map side)",
            ylabel="<P_pred> / <P_true>",
            yscale="log",
            title=kind,
        )
        ax.xaxis.set_minor_formatter(plt.NullFormatter())
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


#: What ``darkstack evaluate --task cluster_mass`` runs.
EVALUATION = Evaluation(config_type=ClusterMassEvaluateConfig, evaluate=evaluate_cluster_mass)
