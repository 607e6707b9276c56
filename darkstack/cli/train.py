"""``darkstack train``: train a task's model or bootstrap ensemble on its dataset in a store."""

from __future__ import annotations

from pathlib import Path

import click

from darkstack.cli.options import (
    load_train_config,
    override_option,
    ray_cluster_settings,
    ray_training_options,
    task_option,
    train_config_option,
    train_preset_option,
    verbose_option,
)


@click.command()
@click.option("--store", required=True, type=click.Path(path_type=Path), help="Store to train on.")
@task_option
@train_config_option(
    help_text="YAML file of the task's training config, applied on top of the preset."
)
@train_preset_option(
    help_text="Size of the run, per task: quick (seconds to minutes, for tests and the demo), "
    "small (the scaled runs of docs/<task>.md), paper (the paper's recipe, profiles and dm2gal "
    "only). For profiles: 4, 10 and 100 bootstrap members."
)
@override_option
@ray_training_options
@verbose_option
def train(
    store: Path,
    task: str,
    config_path: Path | None,
    preset: str,
    overrides: tuple[str, ...],
    ray_address: str | None,
    no_ray: bool,
    cluster_config: Path | None,
    cluster_overrides: tuple[str, ...],
    verbose: bool,
) -> None:
    """Train a model or a bootstrap ensemble with Ray Train into STORE/runs/<run>/.

    Rerunning a finished run does nothing; an interrupted one resumes from its last epoch.
    """
    from darkstack.train.session import run_training

    config = load_train_config(
        task=task, config_path=config_path, preset=preset, overrides=overrides
    )
    ray_cluster = ray_cluster_settings(
        ray_address=ray_address, cluster_config=cluster_config, cluster_overrides=cluster_overrides
    )
    summary = run_training(
        config, store=store, use_ray=not no_ray, ray_cluster=ray_cluster, verbose=verbose
    )
    if summary.result is None:
        click.echo(f"{summary.paths.root} is already trained; nothing to do")
        return
    losses = summary.result.best_validation_loss
    click.echo(
        f"trained {config.run_name} for {summary.result.epochs} epochs: best validation loss "
        f"{min(losses):.4f}-{max(losses):.4f} over {len(losses)} member(s) -> {summary.paths.root}"
    )
