"""``darkstack evaluate``: the evaluation of a trained run, by the run's task."""

from __future__ import annotations

from pathlib import Path

import click

from darkstack.cli.options import override_option


@click.command()
@click.option("--store", required=True, type=click.Path(path_type=Path), help="Store of the run.")
@click.option("--run", "run", required=True, help="Run name (a folder of STORE/runs).")
@click.option(
    "--task",
    default=None,
    metavar="NAME",
    help="The run's task (default: the one it was trained for; profiles).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="YAML file of the task's evaluation settings.",
)
@override_option
def evaluate(
    store: Path, run: str, task: str | None, config_path: Path | None, overrides: tuple[str, ...]
) -> None:
    """Metrics, baselines, calibration and figures of a run on its test split.

    Writes STORE/runs/RUN/report/ (summary.md, metrics.json, figures) and appends the run's
    test predictions to STORE/catalogs/predictions/ (a new file that supersedes the run's
    earlier predictions in `darkstack query`).
    """
    from darkstack.config import ConfigError, load_config
    from darkstack.evaluate import get_evaluation
    from darkstack.store import StoreLayout
    from darkstack.train.run import run_task
    from darkstack.train.session import check_device

    trained_for = run_task(StoreLayout(store).run(run))
    if task is not None and task != trained_for:
        raise ConfigError(f"--task {task}: run {run} was trained for the task {trained_for!r}")
    evaluation = get_evaluation(trained_for)
    config = load_config(evaluation.config_type, path=config_path, overrides=overrides)
    # Before the model is read: a device this machine lacks is bad input, not a failure.
    check_device(config.device)
    report = evaluation.evaluate(store, run, config)
    click.echo(f"report: {report / 'summary.md'}")
