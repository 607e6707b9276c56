"""Options shared by several verbs, declared once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from darkstack.cluster.settings import RayClusterConfig
    from darkstack.train.config import TrainConfig

F = TypeVar("F", bound=Callable[..., Any])

override_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override one config value (dotted keys for nested ones); repeatable.",
)


verbose_option = click.option(
    "--verbose",
    is_flag=True,
    help="Show Ray's own logs (start-up, workers' output, Ray Train) in the terminal.",
)

rebuild_option = click.option(
    "--rebuild",
    is_flag=True,
    help="Rebuild what was made with other settings or inputs instead of refusing to mix them.",
)


def train_config_option(*, help_text: str) -> Callable[[F], F]:
    """``--config`` (parameter ``config_path``): a YAML file of TrainConfig fields.

    Parameters
    ----------
    help_text : str
        The option's help, which says how the file combines with the verb's other settings.
    """
    return click.option(
        "--config",
        "config_path",
        type=click.Path(path_type=Path),
        default=None,
        help=help_text,
    )


task_option = click.option(
    "--task",
    default="profiles",
    show_default=True,
    metavar="NAME",
    # Spelled out rather than read from the task registry, which would import torch for --help.
    help="What to learn: profiles (dark-matter profiles from galaxy images and HI maps), "
    "cusp_core (the inner dark-matter slope of dwarfs), dm2gal (stellar mass painted on a "
    "gravity-only run), cluster_mass (projected mass maps of clusters), or an installed "
    "plug-in's name.",
)


def load_train_config(
    *, task: str, config_path: Path | None, preset: str, overrides: tuple[str, ...]
) -> TrainConfig:
    """The training config of ``task``: its preset, then the YAML file, then ``--set``."""
    from darkstack.config import ConfigError, load_config
    from darkstack.train.tasks import get_task

    spec = get_task(task)
    if preset != "default" and preset not in spec.presets:
        raise ConfigError(
            f"--preset {preset}: task {task!r} has the presets {sorted(spec.presets) or 'none'}"
        )
    config: TrainConfig = load_config(
        spec.config_type, path=config_path, preset=spec.presets.get(preset), overrides=overrides
    )
    return config


def train_preset_option(*, help_text: str) -> Callable[[F], F]:
    """``--preset``: the preset of the task's training config to start from.

    Parameters
    ----------
    help_text : str
        The option's help, which says what the preset sets for the verb.
    """
    # The names are spelled out rather than read from PRESETS: that would import the
    # training stage (torch) for every --help.
    return click.option(
        "--preset",
        type=click.Choice(["default", "quick", "small", "paper"]),
        default="default",
        show_default=True,
        help=help_text,
    )


def dask_options(function: F) -> F:
    """``--dask-address`` and ``--workers``: where a Dask build runs."""
    function = click.option(
        "--workers",
        type=click.IntRange(min=0),
        default=0,
        show_default=True,
        help="Local Dask worker processes to start; 0 runs in this process.",
    )(function)
    return click.option(
        "--dask-address",
        default=None,
        metavar="ADDR",
        help="Scheduler of a running Dask cluster (tcp://host:8786) instead of local work.",
    )(function)


def cluster_config_options(function: F) -> F:
    """``--cluster-config`` and ``--cluster-set``: the cluster settings file and overrides."""
    function = click.option(
        "--cluster-set",
        "cluster_overrides",
        multiple=True,
        metavar="KEY=VALUE",
        help="Override one cluster setting (dask.kind=slurm, dask.slurm.cores=32); repeatable.",
    )(function)
    return click.option(
        "--cluster-config",
        type=click.Path(path_type=Path),
        default=None,
        help="YAML file of cluster settings (dask: and ray: sections, see docs/cluster.md).",
    )(function)


def ray_training_options(function: F) -> F:
    """Where a training runs: ``--ray-address``, ``--no-ray`` and the cluster settings file."""
    function = click.option(
        "--no-ray",
        is_flag=True,
        help="Run the training loop in this process instead of under Ray Train (debugging).",
    )(function)
    function = click.option(
        "--ray-address",
        default=None,
        metavar="ADDR",
        help="A running Ray cluster (ray://host:10001 or host:6379); default: ray.address of "
        "the cluster settings, else a local Ray instance of ray.num_cpus CPUs.",
    )(function)
    return cluster_config_options(function)


def ray_cluster_settings(
    *, ray_address: str | None, cluster_config: Path | None, cluster_overrides: tuple[str, ...]
) -> RayClusterConfig:
    """The ``ray:`` cluster settings, with ``--ray-address`` taking precedence."""
    import dataclasses

    from darkstack.cluster.settings import ClusterConfig
    from darkstack.config import load_config

    settings = load_config(ClusterConfig, path=cluster_config, overrides=cluster_overrides).ray
    if ray_address is None:
        return settings
    return dataclasses.replace(settings, address=ray_address)


def cluster_options(function: F) -> F:
    """Where ``darkstack submit build`` runs: a settings file, overrides, an address."""
    function = click.option(
        "--workers",
        type=click.IntRange(min=1),
        default=None,
        help="Worker processes of a local or cuda cluster (default: one per core or GPU).",
    )(function)
    function = click.option(
        "--dask-address",
        default=None,
        metavar="ADDR",
        help="Scheduler of a running Dask cluster (tcp://host:8786); wins over the settings.",
    )(function)
    return cluster_config_options(function)
