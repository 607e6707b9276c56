"""``darkstack cluster slurm-script``: batch scripts of Dask workers or of a Ray cluster.

Settings come from the ``--cluster-config`` file (its ``dask.slurm`` or ``ray.slurm`` section)
and ``--cluster-set`` overrides; the resource flags win over both. ``--kind dask`` prints the
job script dask-jobqueue submits for each job of workers; ``--kind ray`` prints a script that
starts Ray over the whole allocation and runs the command given after ``--``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click

from darkstack.cli.options import cluster_config_options

#: Flag -> (field of SlurmWorkersConfig, field of RaySlurmConfig); None where it does not apply.
_RESOURCE_FIELDS: dict[str, tuple[str | None, str]] = {
    "partition": ("partition", "partition"),
    "account": ("account", "account"),
    "time": ("walltime", "walltime"),
    "memory": ("memory", "memory"),
    "cpus": ("cores", "cpus_per_node"),
    "nodes": (None, "nodes"),
    "gpus": (None, "gpus_per_node"),
}


@click.group()
def cluster() -> None:
    """Script clusters: SLURM batch scripts of Dask workers or of a Ray cluster."""


@cluster.command("slurm-script")
@click.option("--kind", type=click.Choice(["dask", "ray"]), required=True, help="Which cluster.")
@cluster_config_options
@click.option("--partition", default=None, help="SLURM partition (#SBATCH -p).")
@click.option("--account", default=None, help="SLURM account (#SBATCH -A).")
@click.option("--time", default=None, metavar="HH:MM:SS", help="Time limit of each job.")
@click.option("--memory", default=None, metavar="SIZE", help="Memory per job or node (16GB).")
@click.option(
    "--cpus", type=click.IntRange(min=1), default=None, help="Cores per job (dask) or node (ray)."
)
@click.option("--nodes", type=click.IntRange(min=1), default=None, help="Nodes (ray).")
@click.option("--gpus", type=click.IntRange(min=0), default=None, help="GPUs per node (ray).")
@click.option(
    "--job-extra", multiple=True, metavar="OPTION", help="Extra #SBATCH option; repeatable."
)
@click.option("--prologue", multiple=True, metavar="LINE", help="Shell line run first; repeatable.")
@click.option(
    "--scheduler-address",
    default=None,
    metavar="ADDR",
    help="Scheduler the Dask workers join (default: dask-jobqueue's placeholder).",
)
@click.option(
    "--out", type=click.Path(path_type=Path), default=None, help="Write here, not to stdout."
)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def slurm_script(
    kind: str,
    cluster_config: Path | None,
    cluster_overrides: tuple[str, ...],
    job_extra: tuple[str, ...],
    prologue: tuple[str, ...],
    scheduler_address: str | None,
    out: Path | None,
    command: tuple[str, ...],
    **resources: Any,
) -> None:
    """A SLURM batch script: Dask workers (--kind dask) or a Ray cluster running COMMAND.

    \b
    darkstack cluster slurm-script --kind dask --partition cpu --cpus 32 --memory 128GB
    darkstack cluster slurm-script --kind ray --nodes 2 --gpus 4 --time 04:00:00 \\
        -- darkstack train --store STORE --ray-address auto
    """
    from darkstack.cluster import ClusterConfig
    from darkstack.cluster.slurm import dask_job_script, ray_job_script
    from darkstack.config import load_config

    config = load_config(ClusterConfig, path=cluster_config, overrides=cluster_overrides)
    settings: Any = config.dask.slurm if kind == "dask" else config.ray.slurm
    changes: dict[str, Any] = {}
    for flag, value in resources.items():
        if value is None:
            continue
        field = _RESOURCE_FIELDS[flag][0 if kind == "dask" else 1]
        if field is None:
            raise click.UsageError(f"--{flag} applies to --kind ray only")
        changes[field] = value
    changes["job_extra_directives"] = (*settings.job_extra_directives, *job_extra)
    changes["job_script_prologue"] = (*settings.job_script_prologue, *prologue)
    settings = dataclasses.replace(settings, **changes)
    if kind == "dask":
        if command:
            raise click.UsageError(
                f"unexpected command {' '.join(command)!r}: a Dask script only starts workers"
            )
        script = dask_job_script(settings, scheduler_address=scheduler_address)
    else:
        if scheduler_address is not None:
            raise click.UsageError("--scheduler-address applies to --kind dask only")
        script = ray_job_script(settings, command=command)
    if out is None:
        click.echo(script, nl=False)
        return
    out.write_text(script)
    out.chmod(0o755)
    click.echo(f"wrote {out} (submit it with: sbatch {out})", err=True)
