"""``darkstack jobs list|logs|stop``: follow the trainings submitted as Ray jobs.

The cluster is reached through its Jobs API (:mod:`darkstack.cluster.ray_jobs`): the address
comes from ``--ray-address``, else the cluster settings' ``ray.jobs_address``, else
``$RAY_ADDRESS``, else ``http://127.0.0.1:8265``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from darkstack.cli.options import cluster_config_options

if TYPE_CHECKING:
    from darkstack.cluster.ray_jobs import JobInfo, RayJobs

F = TypeVar("F", bound=Callable[..., Any])


def ray_jobs_options(function: F) -> F:
    """``--ray-address`` of a Ray Jobs API, and the cluster settings that may name one."""
    function = cluster_config_options(function)
    return click.option(
        "--ray-address",
        default=None,
        metavar="URL",
        help="Jobs API of a running Ray cluster, http://HOST:8265 (the head's dashboard); "
        "default: ray.jobs_address of the cluster settings, $RAY_ADDRESS, "
        "http://127.0.0.1:8265.",
    )(function)


def connect(
    *, ray_address: str | None, cluster_config: Path | None, cluster_overrides: tuple[str, ...]
) -> RayJobs:
    """The Jobs API that ``--ray-address`` and the cluster settings name."""
    from darkstack.cluster import ClusterConfig
    from darkstack.cluster.ray_jobs import RayJobs, resolve_jobs_address
    from darkstack.config import load_config

    configured = load_config(ClusterConfig, path=cluster_config, overrides=cluster_overrides)
    return RayJobs(
        resolve_jobs_address(given=ray_address, configured=configured.ray.jobs_address),
        connect_timeout_s=configured.ray.connect_timeout_s,
    )


def follow(client: RayJobs, job_id: str) -> JobInfo:
    """Print the job's log as it is written until the job ends; its final state."""
    return client.wait(job_id, echo=lambda chunk: click.echo(chunk, nl=False))


@click.group()
def jobs() -> None:
    """Follow trainings submitted as Ray jobs (darkstack submit train): list, logs, stop."""


@jobs.command("list")
@ray_jobs_options
def list_jobs(**address: Any) -> None:
    """The jobs of the Ray cluster, oldest first: id, status, start time, duration, command."""
    listed = connect(**address).jobs()
    if not listed:
        click.echo("no jobs", err=True)
        return
    now = time.time()
    for job in listed:
        started = (
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(job.start_time_s))
            if job.start_time_s is not None
            else "-"
        )
        end = job.end_time_s if job.end_time_s is not None else now
        duration = f"{end - job.start_time_s:.0f}s" if job.start_time_s is not None else "-"
        click.echo(f"{job.job_id}  {job.status:<9}  {started}  {duration:>6}  {job.entrypoint}")


@jobs.command()
@click.argument("job_id", metavar="JOB")
@click.option("--follow", "keep_following", is_flag=True, help="Keep printing until JOB ends.")
@ray_jobs_options
def logs(job_id: str, keep_following: bool, **address: Any) -> None:
    """What the driver of JOB has printed (all of it; --follow keeps going until it ends)."""
    client = connect(**address)
    if not keep_following:
        click.echo(client.logs(job_id), nl=False)
        return
    info = follow(client, job_id)
    click.echo(f"job {job_id} {info.status}: {info.message}", err=True)


@jobs.command()
@click.argument("job_id", metavar="JOB")
@ray_jobs_options
def stop(job_id: str, **address: Any) -> None:
    """Stop JOB: its driver gets SIGTERM, then SIGKILL; a training resumes if resubmitted."""
    client = connect(**address)
    if client.stop(job_id):
        click.echo(f"stopping {job_id}")
    else:
        click.echo(f"{job_id} was not running ({client.info(job_id).status})")
