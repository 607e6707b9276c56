"""SLURM batch scripts: Dask workers through dask-jobqueue, and a whole Ray cluster.

The Dask script is exactly what a :class:`dask_jobqueue.SLURMCluster` built from the same
settings submits (``cluster.job_script()``), rendered without starting a scheduler, so it can
be reviewed or submitted by hand against a ``dask scheduler`` started elsewhere. The Ray script
follows Ray's documented Ray-on-SLURM pattern (``slurm-basic.sh``): one task per node, ``ray
start --head --block`` on the first node through ``srun``, ``ray start --address --block`` on
the others, then the user's command on the batch host with ``RAY_ADDRESS`` pointing at the
head, so ``ray.init()`` and ``darkstack train --ray-address auto`` find it.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Sequence
from typing import Any

from dask.utils import parse_bytes

from darkstack.cluster.dask import import_extra
from darkstack.cluster.settings import RaySlurmConfig, SlurmWorkersConfig

#: What dask-jobqueue writes when the scheduler is not known yet.
PLACEHOLDER_SCHEDULER = "tcp://<insert-scheduler-address-here>:8786"

_RAY_TEMPLATE = """\
#!/bin/bash
{directives}

# Written by `darkstack cluster slurm-script --kind ray`, after Ray's slurm-basic.sh: one Ray
# node per SLURM node (the head on the first), then the command on the batch host.
set -eo pipefail
{prologue}
nodes=$(scontrol show hostnames "$SLURM_JOB_NODELIST")
nodes_array=($nodes)
head_node=${{nodes_array[0]}}
head_node_ip=$(srun --nodes=1 --ntasks=1 -w "$head_node" hostname --ip-address)
# A node with both an IPv6 and an IPv4 address lists both; Ray wants the IPv4 one.
if [[ "$head_node_ip" == *" "* ]]; then
    IFS=' ' read -ra addresses <<<"$head_node_ip"
    if [[ ${{#addresses[0]}} -gt 16 ]]; then
        head_node_ip=${{addresses[1]}}
    else
        head_node_ip=${{addresses[0]}}
    fi
fi
port={port}
ip_head=$head_node_ip:$port
export ip_head
export RAY_ADDRESS=$ip_head

echo "Starting the Ray head on $head_node ($ip_head)"
srun --nodes=1 --ntasks=1 -w "$head_node" \\
    ray start --head --node-ip-address="$head_node_ip" --port=$port \\
    --dashboard-host="{dashboard_host}" --dashboard-port={dashboard_port} \\
    --num-cpus={cpus} --num-gpus={gpus} --block &
# Workers that start before the head's GCS listens fail to join.
sleep {head_startup_seconds}

worker_num=$((SLURM_JOB_NUM_NODES - 1))
for ((i = 1; i <= worker_num; i++)); do
    node_i=${{nodes_array[$i]}}
    echo "Starting Ray worker $i on $node_i"
    srun --nodes=1 --ntasks=1 -w "$node_i" \\
        ray start --address "$ip_head" --num-cpus={cpus} --num-gpus={gpus} --block &
    sleep 5
done

{command}
"""


def slurm_memory(size: str) -> str:
    """A size as SLURM's ``--mem``: ``64G`` as given, ``64GB`` or ``60GiB`` in whole MiB.

    SLURM reads ``K``, ``M``, ``G`` and ``T`` as binary units and rejects ``GB``; a size
    already in its form is kept, others are converted and rounded up.
    """
    if re.fullmatch(r"\d+[KMGT]?", size.strip()):
        return size.strip()
    mebibytes = math.ceil(parse_bytes(size) / 2**20)
    return f"{mebibytes // 1024}G" if mebibytes % 1024 == 0 else f"{mebibytes}M"


def dask_jobqueue_kwargs(config: SlurmWorkersConfig) -> dict[str, Any]:
    """The keyword arguments of ``dask_jobqueue.SLURMCluster`` (and its job) for ``config``."""
    return {
        "queue": config.partition,
        "account": config.account,
        "cores": config.cores,
        "processes": config.processes,
        "memory": config.memory,
        "walltime": config.walltime_hms,
        "job_extra_directives": list(config.job_extra_directives),
        "job_script_prologue": list(config.job_script_prologue),
        "interface": config.interface,
        "local_directory": config.local_directory,
        "log_directory": config.log_directory,
        "job_name": config.job_name,
        "worker_extra_args": [
            "--lifetime",
            config.worker_lifetime,
            "--lifetime-stagger",
            config.worker_lifetime_stagger,
        ],
    }


def dask_job_script(config: SlurmWorkersConfig, *, scheduler_address: str | None = None) -> str:
    """The batch script of one SLURM job of Dask workers, as dask-jobqueue renders it.

    Parameters
    ----------
    config : SlurmWorkersConfig
        Resources of the job and the workers' lifetime.
    scheduler_address : str, optional
        The scheduler the workers join; unset, dask-jobqueue's placeholder is left in.

    Raises
    ------
    darkstack.cluster.dask.ClusterError
        When dask-jobqueue is not installed.
    """
    slurm = import_extra("dask_jobqueue.slurm", extra="slurm", purpose="a Dask SLURM script")
    job = slurm.SLURMJob(
        scheduler_address or PLACEHOLDER_SCHEDULER,
        # The name dask-jobqueue's own cluster.job_script() renders; each real job replaces it.
        name="dummy-name",
        **dask_jobqueue_kwargs(config),
    )
    return str(job.job_script()).rstrip("\n") + "\n"


def ray_job_script(config: RaySlurmConfig, *, command: Sequence[str]) -> str:
    """A batch script that starts a Ray cluster over the allocation and runs ``command``.

    Parameters
    ----------
    config : RaySlurmConfig
        Nodes, per-node resources, time limit and placement of the allocation.
    command : sequence of str
        The program and its arguments, run on the first node once the cluster is up; quoted
        for the shell.

    Raises
    ------
    ValueError
        When ``command`` is empty.
    """
    if not command:
        raise ValueError("a Ray SLURM script needs a command to run, e.g. darkstack train ...")
    directives = [
        f"--job-name={config.job_name}",
        f"--nodes={config.nodes}",
        "--ntasks-per-node=1",
        f"--cpus-per-task={config.cpus_per_node}",
        f"--mem={slurm_memory(config.memory)}",
        f"--time={config.walltime_hms}",
    ]
    if config.gpus_per_node:
        directives.append(f"--gpus-per-task={config.gpus_per_node}")
    if config.partition is not None:
        directives.append(f"--partition={config.partition}")
    if config.account is not None:
        directives.append(f"--account={config.account}")
    directives.extend(config.job_extra_directives)
    prologue = "".join(f"{line}\n" for line in config.job_script_prologue)
    return _RAY_TEMPLATE.format(
        directives="\n".join(f"#SBATCH {directive}" for directive in directives),
        prologue=prologue,
        port=config.port,
        dashboard_host=config.dashboard_host,
        dashboard_port=config.dashboard_port,
        cpus=config.cpus_per_node,
        gpus=config.gpus_per_node,
        head_startup_seconds=config.head_startup_seconds,
        command=shlex.join(command),
    )
