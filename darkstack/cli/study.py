"""``darkstack study``: the paper's architecture or input comparison in one command."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import click

from darkstack.cli.options import (
    load_train_config,
    override_option,
    ray_cluster_settings,
    ray_training_options,
    train_config_option,
    train_preset_option,
)


@click.command()
@click.option("--store", required=True, type=click.Path(path_type=Path), help="Store to train on.")
@click.option(
    "--study",
    "study",
    required=True,
    type=click.Choice(["architectures", "inputs"]),
    help="architectures: A, B, C, ResNet50 (Fig 4); inputs: channel combinations (Fig 5).",
)
@train_preset_option(help_text="Training preset shared by the variants.")
@train_config_option(help_text="YAML file of the profiles training config shared by the variants.")
@override_option
@click.option(
    "--evaluate-config",
    type=click.Path(path_type=Path),
    default=None,
    help="YAML file of EvaluateConfig fields (default: no rotation-curve fits).",
)
@ray_training_options
def study(
    store: Path,
    study: str,
    preset: str,
    config_path: Path | None,
    overrides: tuple[str, ...],
    evaluate_config: Path | None,
    ray_address: str | None,
    no_ray: bool,
    cluster_config: Path | None,
    cluster_overrides: tuple[str, ...],
) -> None:
    """Train, evaluate and compare every variant of one of the paper's studies.

    Each variant is a run STORE/runs/study-STUDY-VARIANT (resumable); the comparison is
    written to STORE/runs/study-STUDY/report/.
    """
    from darkstack.config import load_config
    from darkstack.evaluate.profiles.report import EvaluateConfig
    from darkstack.evaluate.profiles.study import run_study
    from darkstack.train.tasks.profiles import ProfilesTrainConfig

    base = cast(
        ProfilesTrainConfig,
        load_train_config(
            task="profiles", config_path=config_path, preset=preset, overrides=overrides
        ),
    )
    evaluation = load_config(
        EvaluateConfig,
        path=evaluate_config,
        preset={"rotation_curve_galaxies": 0},
    )
    report = run_study(
        store=store,
        study=study,
        base=base,
        evaluate_config=evaluation,
        use_ray=not no_ray,
        ray_cluster=ray_cluster_settings(
            ray_address=ray_address,
            cluster_config=cluster_config,
            cluster_overrides=cluster_overrides,
        ),
        echo=click.echo,
    )
    click.echo(f"report: {report / 'summary.md'}")
