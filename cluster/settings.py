"""Where builds and trainings run: typed settings of the Dask and Ray clusters.

One YAML file (``--cluster-config``) holds both, read with :func:`darkstack.config.load_config`
into :class:`ClusterConfig`::

    dask:
      kind: slurm              # local (default), cuda or slurm; or give an address
      slurm:
        partition: cpu
        cores: 32
        memory: 128GB
        walltime: "04:00:00"
        maximum_workers: 16
    ray:
      slurm:
        nodes: 4
        gpus_per_node: 4

Every listening socket darkstack opens itself (dashboards, a local Ray head) binds 127.0.0.1
unless a setting says otherwise: a laptop or a login node should not expose a scheduler that
runs arbitrary code. A SLURM Dask scheduler is the exception by necessity: its workers run on
other nodes, so it listens on ``slurm.interface`` (all interfaces when unset, as dask-jobqueue
does) while its dashboard stays on ``dashboard_host``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, Literal

from dask.utils import parse_bytes, parse_timedelta

from darkstack.config import Checked, Format, Range, Rule

#: Seconds allowed to reach a running scheduler or Ray cluster: a dead address fails in this
#: long, not Dask's 30 s or Ray's minute of retries.
ConnectTimeout = Annotated[float, Range(gt=0)]

#: SLURM's --time forms darkstack accepts: [D-]HH:MM:SS, HH:MM:SS, MM:SS.
_WALLTIME = re.compile(
    r"^(?:(?P<days>\d+)-)?(?:(?P<hours>\d+):)?(?P<minutes>\d+):(?P<seconds>\d+)$"
)


def walltime_seconds(walltime: str | int, *, name: str = "walltime") -> int:
    """Seconds of a SLURM ``--time`` value.

    Parameters
    ----------
    walltime : str or int
        ``HH:MM:SS``, ``D-HH:MM:SS`` or ``MM:SS``; an int is taken as seconds, which is what
        YAML 1.1 makes of an unquoted ``1:00:00`` (3600).
    name : str
        The setting's name, for the error message.

    Raises
    ------
    ValueError
        For any other form, naming the setting and the expected format.
    """
    if isinstance(walltime, int) and not isinstance(walltime, bool):
        seconds = walltime
    else:
        match = _WALLTIME.match(str(walltime).strip())
        if match is None:
            raise ValueError(
                f"{name}={walltime!r}: expected a SLURM time HH:MM:SS or D-HH:MM:SS "
                "(for example 01:30:00)"
            )
        parts = {key: int(value or 0) for key, value in match.groupdict().items()}
        if parts["seconds"] > 59 or (match["hours"] is not None and parts["minutes"] > 59):
            raise ValueError(f"{name}={walltime!r}: expected minutes and seconds below 60")
        seconds = ((parts["days"] * 24 + parts["hours"]) * 60 + parts["minutes"]) * 60 + parts[
            "seconds"
        ]
    if seconds <= 0:
        raise ValueError(f"{name}={walltime!r}: expected a positive duration")
    return seconds


def format_walltime(seconds: int) -> str:
    """``seconds`` as SLURM's ``[D-]HH:MM:SS``."""
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}-{clock}" if days else clock


def _single_lines(value: str | tuple[str, ...]) -> None:
    # Each value becomes one line (or one word) of a batch script: a newline would inject
    # further commands.
    for item in (value,) if isinstance(value, str) else value:
        if "\n" in item or "\r" in item:
            raise ValueError(f"{item!r} spans lines")


def _memory_limit(value: str) -> None:
    if value != "auto":
        parse_bytes(value)


def _scheduler_address(value: str) -> None:
    if "://" not in value:
        raise ValueError(value)


def _dashboard_host(value: str) -> None:
    if not re.fullmatch(r"[\w.:$-]+", value):
        raise ValueError(value)


def _jobs_address(value: str) -> None:
    if not re.fullmatch(r"https?://[^\s/]+/?", value):
        raise ValueError(value)


#: A string that becomes one line (or word) of a batch script.
Line = Annotated[str, Format(_single_lines, "a single line")]
#: Several such lines.
Lines = Annotated[tuple[str, ...], Format(_single_lines, "single lines")]
#: Memory of a SLURM job.
Memory = Annotated[str, Format(parse_bytes, "a size such as 16GB or 512MiB")]
#: A SLURM time limit (an int is seconds: what YAML 1.1 makes of an unquoted 1:00:00).
Walltime = Annotated[
    str | int,
    Format(
        walltime_seconds,
        "a positive SLURM time HH:MM:SS or D-HH:MM:SS, minutes and seconds below 60 "
        "(for example 01:30:00)",
    ),
]
#: A duration as Dask parses it.
Duration = Annotated[str, Format(parse_timedelta, "a duration such as 55m, 1h or 90s")]
#: A TCP port to listen on.
Port = Annotated[int, Range(ge=1, le=65535)]
#: A count of at least one (cores, processes, nodes).
AtLeastOne = Annotated[int, Range(ge=1)]


def _processes_fit(job: SlurmWorkersConfig) -> str | None:
    if job.processes <= job.cores:
        return None
    return f"<= cores={job.cores}: each worker process needs at least one core"


def _workers_leave_in_time(job: SlurmWorkersConfig) -> str | None:
    lifetime_s = parse_timedelta(job.worker_lifetime) + parse_timedelta(job.worker_lifetime_stagger)
    if lifetime_s < walltime_seconds(job.walltime):
        return None
    return (
        f"a duration that, plus worker_lifetime_stagger={job.worker_lifetime_stagger!r}, ends "
        f"before walltime={job.walltime_hms}, so workers leave before SLURM kills them"
    )


@dataclass(frozen=True, kw_only=True)
class SlurmWorkersConfig(Checked):
    """SLURM jobs of Dask workers, as dask-jobqueue submits them, and how many to keep.

    Parameters
    ----------
    partition : str, optional
        SLURM partition (dask-jobqueue's ``queue``, ``#SBATCH -p``).
    account : str, optional
        Account charged (``#SBATCH -A``).
    cores : int
        CPU cores of one job (``--cpus-per-task``); shared by its worker processes.
    processes : int
        Worker processes per job; each gets ``cores // processes`` threads.
    memory : str
        Memory of one job (``--mem``), split between its processes.
    walltime : str or int
        Time limit of one job, ``HH:MM:SS`` or ``D-HH:MM:SS`` (``-t``).
    job_extra_directives : tuple of str
        Further ``#SBATCH`` options, for example ``--exclusive`` or ``--constraint=skylake``.
    job_script_prologue : tuple of str
        Shell lines run before the worker starts (``module load ...``, ``source
        venv/bin/activate``).
    interface : str, optional
        Network interface of the scheduler and the workers (for example ``ib0``); unset, the
        scheduler listens on every interface and workers use their default route.
    local_directory : str, optional
        Node-local scratch for spilled data (for example ``$TMPDIR``).
    log_directory : str, optional
        Where the jobs' stdout and stderr go (created when the script is rendered).
    job_name : str
        ``#SBATCH -J``.
    minimum_workers, maximum_workers : int
        Bounds of adaptive scaling: jobs are submitted while tasks wait and cancelled when idle.
    worker_lifetime : str
        Workers retire gracefully after this long (Dask's ``--lifetime``), handing their data
        to others, so a job never dies holding results at its walltime; adaptive scaling
        submits replacements.
    worker_lifetime_stagger : str
        Random spread of the lifetimes (``--lifetime-stagger``), so workers do not all leave
        at once.
    """

    partition: Line | None = None
    account: Line | None = None
    cores: AtLeastOne = 1
    processes: AtLeastOne = 1
    memory: Memory = "4GB"
    walltime: Walltime = "01:00:00"
    job_extra_directives: Lines = ()
    job_script_prologue: Lines = ()
    interface: str | None = None
    local_directory: str | None = None
    log_directory: str | None = None
    job_name: Line = "darkstack-dask"
    minimum_workers: Annotated[int, Range(ge=0)] = 0
    maximum_workers: AtLeastOne = 4
    worker_lifetime: Duration = "55m"
    worker_lifetime_stagger: Duration = "4m"

    RULES = (
        Rule("processes", _processes_fit),
        Rule("worker_lifetime", _workers_leave_in_time),
        Rule.ordered("minimum_workers", "<=", "maximum_workers"),
    )

    @property
    def walltime_hms(self) -> str:
        """The walltime as SLURM's ``[D-]HH:MM:SS``."""
        return format_walltime(walltime_seconds(self.walltime))


@dataclass(frozen=True, kw_only=True)
class DaskClusterConfig(Checked):
    """Where a Dask build runs.

    Parameters
    ----------
    kind : {"local", "cuda", "slurm"}
        A LocalCluster of worker processes on this machine; dask-cuda's LocalCUDACluster (one
        worker per GPU, ``pip install 'darkstack[gpu]'``); or dask-jobqueue's SLURMCluster
        with adaptive scaling (``pip install 'darkstack[slurm]'``).
    address : str, optional
        Scheduler of a running cluster (``tcp://host:8786``); when set, ``kind`` is ignored
        and nothing is started.
    n_workers : int, optional
        Worker processes of a local or cuda cluster; unset, one per core (local) or per
        visible GPU (cuda).
    threads_per_worker : int
        Threads of each local or cuda worker; the build tasks are numpy-bound and hold the
        GIL often, so processes scale better than threads.
    memory_limit : str
        Memory of each local or cuda worker (``4GB``), or ``auto`` to share the machine's.
    dashboard_host : str
        Interface the dashboard listens on; reach a remote one through ``ssh -L``.
    dashboard_port : int
        Dashboard port; 0 picks a free one (the link is printed either way).
    connect_timeout_s : float
        Seconds to wait for the scheduler at ``address`` to answer.
    slurm : SlurmWorkersConfig
        The SLURM jobs of ``kind: slurm``.
    """

    kind: Literal["local", "cuda", "slurm"] = "local"
    address: Annotated[
        str | None, Format(_scheduler_address, "a scheduler address such as tcp://host:8786")
    ] = None
    n_workers: AtLeastOne | None = None
    threads_per_worker: AtLeastOne = 1
    memory_limit: Annotated[str, Format(_memory_limit, "auto or a size such as 16GB or 512MiB")] = (
        "auto"
    )
    dashboard_host: str = "127.0.0.1"
    # 0 picks a free port.
    dashboard_port: Annotated[int, Range(ge=0, le=65535)] = 8787
    connect_timeout_s: ConnectTimeout = 10.0
    slurm: SlurmWorkersConfig = field(default_factory=SlurmWorkersConfig)


@dataclass(frozen=True, kw_only=True)
class RaySlurmConfig(Checked):
    """A SLURM allocation that runs one Ray cluster: a head on the first node, workers on the rest.

    Parameters
    ----------
    nodes : int
        Nodes of the allocation (the head node also runs work).
    cpus_per_node : int
        CPUs Ray may use on each node (``--cpus-per-task``, one task per node).
    gpus_per_node : int
        GPUs of each node (``--gpus-per-task``); 0 requests none.
    memory : str
        Memory per node (``--mem``), for example ``64GB``.
    walltime : str or int
        Time limit, ``HH:MM:SS`` or ``D-HH:MM:SS``.
    partition, account : str, optional
        ``#SBATCH -p`` and ``-A``.
    job_name : str
        ``#SBATCH -J``.
    job_extra_directives : tuple of str
        Further ``#SBATCH`` options.
    job_script_prologue : tuple of str
        Shell lines run first (``module load ...``, ``source venv/bin/activate``).
    port : int
        The head's GCS port.
    dashboard_host : str
        Where the head serves the dashboard and the Jobs API: ``127.0.0.1`` (reach it with
        ``ssh -L 8265:localhost:8265 HEADNODE``), or ``$head_node_ip`` (the script's variable)
        to serve it on the cluster network for ``darkstack submit train`` from a login node.
    dashboard_port : int
        Port of the dashboard and the Jobs API.
    head_startup_seconds : int
        Wait after starting the head before workers join, as Ray's example does.
    """

    nodes: AtLeastOne = 1
    cpus_per_node: AtLeastOne = 1
    gpus_per_node: Annotated[int, Range(ge=0)] = 0
    memory: Memory = "4GB"
    walltime: Walltime = "01:00:00"
    partition: Line | None = None
    account: Line | None = None
    job_name: Line = "darkstack-ray"
    job_extra_directives: Lines = ()
    job_script_prologue: Lines = ()
    port: Port = 6379
    dashboard_host: Annotated[
        str, Format(_dashboard_host, "an address such as 127.0.0.1 or $head_node_ip")
    ] = "127.0.0.1"
    dashboard_port: Port = 8265
    head_startup_seconds: Annotated[int, Range(ge=0)] = 10

    @property
    def walltime_hms(self) -> str:
        """The walltime as SLURM's ``[D-]HH:MM:SS``."""
        return format_walltime(walltime_seconds(self.walltime))


@dataclass(frozen=True, kw_only=True)
class RayClusterConfig(Checked):
    """Where a Ray training runs.

    Parameters
    ----------
    address : str, optional
        A running cluster (``auto``, ``HOST:6379`` or ``ray://HOST:10001``); unset, a local
        instance bound to 127.0.0.1 is started for the run and stopped after it.
    num_cpus : int, optional
        CPUs of the local instance; unset, Ray detects them.
    jobs_address : str, optional
        The Jobs API of a running cluster, served by its head's dashboard
        (``http://HOST:8265``), that ``darkstack submit train`` and ``darkstack jobs`` use
        when ``--ray-address`` is not given.
    connect_timeout_s : float
        Seconds to wait for the cluster at ``address`` (or the Jobs API) to answer.
    slurm : RaySlurmConfig
        The allocation of ``darkstack cluster slurm-script --kind ray``.
    """

    address: str | None = None
    num_cpus: AtLeastOne | None = None
    jobs_address: Annotated[
        str | None,
        Format(_jobs_address, "the dashboard address of a Ray head, such as http://HOST:8265"),
    ] = None
    connect_timeout_s: ConnectTimeout = 10.0
    slurm: RaySlurmConfig = field(default_factory=RaySlurmConfig)


@dataclass(frozen=True, kw_only=True)
class ClusterConfig(Checked):
    """The ``--cluster-config`` file: the Dask cluster of builds and the Ray cluster of trainings.

    Parameters
    ----------
    dask : DaskClusterConfig
        Where ``darkstack submit build`` runs.
    ray : RayClusterConfig
        Where trainings run, and the Ray SLURM script.
    """

    dask: DaskClusterConfig = field(default_factory=DaskClusterConfig)
    ray: RayClusterConfig = field(default_factory=RayClusterConfig)
