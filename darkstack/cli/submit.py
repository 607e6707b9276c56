"""``darkstack submit build VERB``: a dataset build on a Dask cluster, local to SLURM.

Each build verb is offered with its own options, taken from the verb's declaration rather than
repeated here, plus where to run (``--cluster-config``, ``--cluster-set``, ``--dask-address``,
``--workers``). The cluster is started or reached through :mod:`darkstack.cluster`, its
dashboard link printed, and the verb itself is then invoked against the cluster's scheduler:
the same build function, progress bars and summary as ``darkstack VERB --dask-address``.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from pathlib import Path
from typing import Any

import click

from darkstack.cli.ingest import ingest
from darkstack.cli.observe import observe
from darkstack.cli.options import cluster_options

#: The verbs' own placement options, replaced by the cluster options of ``submit build``.
_PLACEMENT = frozenset({"dask_address", "workers"})


def _run_on_cluster(
    verb: click.Command,
    /,
    *,
    cluster_config: Path | None,
    cluster_overrides: tuple[str, ...],
    dask_address: str | None,
    workers: int | None,
    **verb_arguments: Any,
) -> None:
    from darkstack.cluster import ClusterConfig, dask_cluster
    from darkstack.config import load_config

    config = load_config(ClusterConfig, path=cluster_config, overrides=cluster_overrides).dask
    if dask_address is not None:
        config = dataclasses.replace(config, address=dask_address)
    if workers is not None:
        config = dataclasses.replace(config, n_workers=workers)
    with dask_cluster(config) as cluster:
        click.echo(
            f"dask scheduler {cluster.address}, dashboard {cluster.dashboard_link or '(none)'}",
            err=True,
        )
        if cluster.job_script is not None:
            click.echo(f"SLURM job script of the workers:\n{cluster.job_script}", err=True)
        click.get_current_context().invoke(
            verb, **verb_arguments, dask_address=cluster.address, workers=0
        )


def _on_cluster(verb: click.Command) -> click.Command:
    """``verb`` with its placement options replaced by the cluster options."""
    command = click.Command(
        name=verb.name,
        params=[param for param in verb.params if param.name not in _PLACEMENT],
        callback=partial(_run_on_cluster, verb),
        help=f"{verb.help}\n\nRuns on the configured Dask cluster (see docs/cluster.md).",
        short_help=verb.get_short_help_str(),
    )
    return cluster_options(command)


@click.group()
def submit() -> None:
    """Run builds on a Dask cluster, from this machine to a SLURM allocation."""


@submit.group()
def build() -> None:
    """A dataset build (ingest, observe) on the configured Dask cluster."""


for _verb in (ingest, observe):
    build.add_command(_on_cluster(_verb))
