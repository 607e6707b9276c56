"""The paper's comparative studies: one command trains, evaluates and compares every variant.

``architectures`` (Fig 4): A, B, C and ResNet50 on the u, r, z images and the three HI maps.
``inputs`` (Fig 5): architecture B on u, r, z + HI; the three HI maps; i + HI velocity; i alone;
u, r, z alone. Each variant is an ordinary run (``study-<study>-<variant>``, resumable,
evaluated like any run); the comparison of their Δ_MSE and Δ_MAE per radius, with the
stellar-mass-only and photometric baselines of the shared split, goes to
``STORE/runs/study-<study>/report/``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from darkstack.cluster.settings import RayClusterConfig
from darkstack.evaluate.profiles.report import EvaluateConfig, evaluate_run
from darkstack.plotting import pyplot
from darkstack.store import StoreLayout
from darkstack.train.session import run_training
from darkstack.train.tasks.profiles import ProfilesTrainConfig

#: The baselines drawn beside the variants: metric name -> (legend title, line style).
BASELINES = {"baseline": ("M*-only", "k:"), "photometric": ("photometric", "k--")}

_URZ_HI = ("sdss_u", "sdss_r", "sdss_z", "hi_mom0", "hi_mom1", "hi_mom2")

#: Variant name -> (architecture, channels).
STUDIES: dict[str, dict[str, tuple[str, tuple[str, ...]]]] = {
    "architectures": {
        "A": ("A", _URZ_HI),
        "B": ("B", _URZ_HI),
        "C": ("C", _URZ_HI),
        "resnet50": ("resnet50", _URZ_HI),
    },
    "inputs": {
        "urz+hi": ("B", _URZ_HI),
        "hi": ("B", ("hi_mom0", "hi_mom1", "hi_mom2")),
        "i+hi_mom1": ("B", ("sdss_i", "hi_mom1")),
        "i": ("B", ("sdss_i",)),
        "urz": ("B", ("sdss_u", "sdss_r", "sdss_z")),
    },
}


def run_study(
    *,
    store: Path,
    study: str,
    base: ProfilesTrainConfig,
    evaluate_config: EvaluateConfig,
    use_ray: bool = True,
    ray_cluster: RayClusterConfig | None = None,
    echo: Callable[[str], None] = print,
) -> Path:
    """Train and evaluate every variant of ``study``, then write the comparison.

    Parameters
    ----------
    store : Path
        The store with ``observations.zarr``.
    study : {"architectures", "inputs"}
        Which of the paper's comparisons.
    base : ProfilesTrainConfig
        Settings shared by the variants (members, epochs, seed, split, Ray); the study sets
        each variant's architecture, channels and run name.
    evaluate_config : EvaluateConfig
        How each variant is evaluated.
    use_ray, ray_cluster
        As for :func:`darkstack.train.session.run_training`.
    echo : callable
        Progress lines.

    Returns
    -------
    Path
        The study's report directory.
    """
    if study not in STUDIES:
        raise ValueError(f"unknown study {study!r}; expected one of {sorted(STUDIES)}")
    metrics: dict[str, dict[str, Any]] = {}
    for variant, (architecture, channels) in STUDIES[study].items():
        config = dataclasses.replace(
            base,
            run=f"study-{study}-{variant}",
            model=dataclasses.replace(base.model, architecture=architecture),  # type: ignore[arg-type]
            data=dataclasses.replace(base.data, channels=channels),
        )
        run_training(config, store=store, use_ray=use_ray, ray_cluster=ray_cluster)
        report = evaluate_run(store, config.run_name, evaluate_config)
        metrics[variant] = json.loads((report / "metrics.json").read_text())
        echo(f"{study}: {variant} trained and evaluated -> {report}")
    return write_comparison(store, study, metrics)


def write_comparison(store: Path, study: str, metrics: dict[str, dict[str, Any]]) -> Path:
    """The study's figure (Fig 4 or 5), ``metrics.json`` and ``summary.md``."""
    plt = pyplot()

    report = StoreLayout(store).run(f"study-{study}").report
    report.mkdir(parents=True, exist_ok=True)
    first = next(iter(metrics.values()))
    radii = first["radii_kpc"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    for ax, kind, label in zip(axes, ("mse", "mae"), ("Δ_MSE", "Δ_MAE"), strict=True):
        for variant, record in metrics.items():
            ax.plot(radii, record["metrics"][f"delta_{kind}_ensemble"], "o-", ms=3, label=variant)
        for name, (title, style) in BASELINES.items():
            values = first["metrics"][f"delta_{kind}_{name}"]
            ax.plot(radii, values, style, label=f"{title} baseline")
        ax.set(xscale="log", xlabel="R (kpc)", ylabel=f"{label} (dex)")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"study '{study}': test-split accuracy per radius")
    fig.tight_layout()
    fig.savefig(report / "comparison.png", dpi=110)
    plt.close(fig)
    (report / "metrics.json").write_text(json.dumps(metrics, indent=1))
    header = "| R (kpc) | " + " | ".join(metrics) + " | M*-only | photometric |"
    lines = [
        f"# Study `{study}`: Δ_MSE per radius on the test split (dex)",
        "",
        header,
        "|" + "---|" * (len(metrics) + 3),
    ]
    for i, radius in enumerate(radii):
        row = [f"{record['metrics']['delta_mse_ensemble'][i]:.3f}" for record in metrics.values()]
        row += [f"{first['metrics'][f'delta_mse_{name}'][i]:.3f}" for name in BASELINES]
        lines.append(f"| {radius:.1f} | " + " | ".join(row) + " |")
    lines += ["", "![comparison](comparison.png)", ""]
    (report / "summary.md").write_text("\n".join(lines))
    return report
