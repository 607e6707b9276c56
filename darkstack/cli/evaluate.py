"""``darkstack evaluate``: the paper's evaluation of a trained run."""

from __future__ import annotations

from pathlib import Path

import click

from darkstack.cli.options import override_option


@click.command()
@click.option("--store", required=True, type=click.Path(path_type=Path), help="Store of the run.")
@click.option("--run", "run", required=True, help="Run name (a folder of STORE/runs).")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="YAML file of EvaluateConfig fields.",
)
@override_option
def evaluate(store: Path, run: str, config_path: Path | None, overrides: tuple[str, ...]) -> None:
    """Metrics, baselines, calibration and figures of a run on its test split.

    Writes STORE/runs/RUN/report/ (summary.md, metrics.json, figures) and appends the run's
    test predictions to STORE/catalogs/predictions/ (a new file that supersedes the run's
    earlier predictions in `darkstack query`).
    """
    from darkstack.config import load_config
    from darkstack.train.evaluate.report import EvaluateConfig, evaluate_run

    config = load_config(EvaluateConfig, path=config_path, overrides=overrides)
    report = evaluate_run(store, run, config)
    click.echo(f"report: {report / 'summary.md'}")
