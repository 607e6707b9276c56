"""``darkstack submit build VERB`` and ``darkstack submit train``: builds on a Dask cluster,
trainings as Ray jobs.

Each build verb is offered with its own options, taken from the verb's declaration rather than
repeated here, plus where to run (``--cluster-config``, ``--cluster-set``, ``--dask-address``,
``--workers``). The cluster is started or reached through :mod:`darkstack.cluster`, its
dashboard link printed, and the verb itself is then invoked against the cluster's scheduler:
the same build function, progress bars and summary as ``darkstack VERB --dask-address``.

``submit train`` likewise takes ``darkstack train``'s own options, with ``--ray-address`` now
naming the Jobs API of a running Ray cluster; the options given are turned back into a
``darkstack train`` command line that the cluster runs as a job
(:class:`darkstack.cluster.ray_jobs.RayJobs`).
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import click

from darkstack.cli.fields import fields
from darkstack.cli.ingest import ingest
from darkstack.cli.jobs import connect, follow, ray_jobs_options
from darkstack.cli.observe import observe
from darkstack.cli.options import cluster_options, load_train_config
from darkstack.cli.train import train

#: The verbs' own placement options, replaced by the cluster options of ``submit build``.
_PLACEMENT = frozenset({"dask_address", "workers"})
#: ``train``'s placement options, replaced by the Jobs API options of ``submit train`` (which
#: has its own ``--cluster-config``: that names the Jobs API, and the job's training runs on
#: the cluster it is submitted to).
_TRAIN_PLACEMENT = frozenset({"ray_address", "no_ray", "cluster_config", "cluster_overrides"})


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


def _command_line(verb: click.Command, values: Mapping[str, Any]) -> list[str]:
    """The options of ``verb`` that give it ``values``: defaults left out, paths made absolute."""
    line: list[str] = []
    for param in verb.params:
        if not isinstance(param, click.Option) or param.name not in values:
            continue
        value = values[param.name]
        if value is None or value == param.default or (param.multiple and not value):
            continue
        if param.is_flag:
            # An unset flag's default may be click's sentinel rather than False: an off flag
            # without an explicit --no- form is simply left out.
            opts = param.opts if value else param.secondary_opts
            if opts:
                line.append(max(opts, key=len))
            continue
        for item in value if param.multiple else (value,):
            # The job runs elsewhere, in the directory Ray was started from.
            text = os.path.abspath(item) if isinstance(param.type, click.Path) else str(item)
            line += [max(param.opts, key=len), text]
    return line


def _submit_training(
    verb: click.Command,
    /,
    *,
    ray_address: str | None,
    cluster_config: Path | None,
    cluster_overrides: tuple[str, ...],
    wait: bool,
    store: Path,
    config_path: Path | None,
    **train_arguments: Any,
) -> None:
    from darkstack.cluster import ClusterError

    # Resolved here too, so that a wrong value fails on this machine rather than in the job.
    config = load_train_config(
        task=train_arguments["task"],
        config_path=config_path,
        preset=train_arguments["preset"],
        overrides=train_arguments["overrides"],
    )
    client = connect(
        ray_address=ray_address, cluster_config=cluster_config, cluster_overrides=cluster_overrides
    )
    job_id = client.submit_training(
        store=store, arguments=_command_line(verb, train_arguments), config_file=config_path
    )
    click.echo(job_id)
    click.echo(f"submitted run {config.run_name} to {client.address} as job {job_id}", err=True)
    if not wait:
        click.echo(
            f"follow it: darkstack jobs logs {job_id} --follow --ray-address {client.address}",
            err=True,
        )
        return
    info = follow(client, job_id)
    if info.status != "SUCCEEDED":
        raise ClusterError(f"job {job_id} {info.status}: {info.message}")
    click.echo(f"job {job_id} {info.status}", err=True)


def _as_ray_job(verb: click.Command) -> click.Command:
    """``verb`` with its placement options replaced by those of a Ray Jobs API."""
    command = click.Command(
        name=verb.name,
        params=[param for param in verb.params if param.name not in _TRAIN_PLACEMENT],
        callback=partial(_submit_training, verb),
        help=f"{inspect.cleandoc(verb.help or '')}\n\nRuns as a job on a running Ray cluster; "
        "prints the job's id (see docs/cluster.md).",
        short_help=verb.get_short_help_str(),
    )
    command = click.option(
        "--wait", is_flag=True, help="Print the job's log as it runs; fail if the job fails."
    )(command)
    return ray_jobs_options(command)


@click.group()
def submit() -> None:
    """Run builds on a Dask cluster and trainings as Ray jobs, laptop to SLURM."""


@submit.group()
def build() -> None:
    """A dataset build (ingest, observe, fields) on the configured Dask cluster."""


for _verb in (ingest, observe, fields):
    build.add_command(_on_cluster(_verb))
submit.add_command(_as_ray_job(train))
