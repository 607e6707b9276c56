"""Dask clusters: a running scheduler, or a local, CUDA or SLURM cluster started for one build.

:func:`dask_cluster` starts (or reaches) the cluster a :class:`DaskClusterConfig` describes and
stops what it started on exit; :func:`dask_client_from_config` and :func:`dask_client` hand a
client to the stages. The optional backends (dask-cuda, dask-jobqueue) are imported only when
asked for, and their absence is one line naming the extra to install.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from darkstack.cluster.ports import check_reachable
from darkstack.cluster.settings import DaskClusterConfig
from darkstack.errors import DarkstackError, one_line

if TYPE_CHECKING:
    from distributed import Client


class ClusterError(DarkstackError, RuntimeError):
    """A cluster that cannot be started or reached as configured."""


@dataclass(frozen=True)
class DaskCluster:
    """A Dask cluster a build can use.

    Attributes
    ----------
    address : str
        The scheduler's address, for ``distributed.Client``.
    dashboard_link : str or None
        Where its dashboard is served, if it has one.
    job_script : str or None
        The batch script SLURM jobs of workers run (``kind: slurm`` only).
    """

    address: str
    dashboard_link: str | None
    job_script: str | None = None


def import_extra(module: str, *, extra: str, purpose: str) -> ModuleType:
    """Import an optional dependency, or fail with the install command of its extra.

    Parameters
    ----------
    module : str
        Module to import (``dask_jobqueue``).
    extra : str
        darkstack's extra that installs it (``slurm``).
    purpose : str
        What needs it, for the message (``a SLURM cluster``).

    Raises
    ------
    ClusterError
        When the module cannot be imported.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ClusterError(
            f"{purpose} needs {module}, which is not installed: pip install 'darkstack[{extra}]'"
        ) from None


@contextmanager
def dask_cluster(config: DaskClusterConfig) -> Iterator[DaskCluster]:
    """The configured cluster, started for the duration of the ``with`` block.

    Parameters
    ----------
    config : DaskClusterConfig
        An ``address`` is reached (and left running); otherwise a cluster of ``kind`` is
        started and closed on exit (a SLURM cluster cancels its jobs).

    Yields
    ------
    DaskCluster
        Its address and dashboard link.

    Raises
    ------
    ClusterError
        When the scheduler cannot be reached or the kind's extra is not installed.
    """
    if config.address is not None:
        with _connect(config.address, timeout_s=config.connect_timeout_s) as client:
            yield DaskCluster(address=config.address, dashboard_link=_dashboard_link(client))
        return
    with _start(config) as cluster:
        job_script = cluster.job_script() if config.kind == "slurm" else None
        yield DaskCluster(
            address=cluster.scheduler_address,
            dashboard_link=_link_on(cluster.dashboard_link, config.dashboard_host),
            job_script=job_script,
        )


@contextmanager
def dask_client_from_config(config: DaskClusterConfig) -> Iterator[Client]:
    """A client of the configured cluster (see :func:`dask_cluster`), closed on exit."""
    with (
        dask_cluster(config) as cluster,
        _connect(cluster.address, timeout_s=config.connect_timeout_s) as client,
    ):
        yield client


@contextmanager
def dask_client(*, address: str | None = None, workers: int = 0) -> Iterator[Client | None]:
    """A Dask client for a build, closed on exit.

    Parameters
    ----------
    address : str, optional
        Scheduler address of an existing cluster; wins over ``workers``.
    workers : int
        Local worker processes to start (one thread each: the tasks are numpy-bound and
        release little of the GIL); 0 means no cluster, the build runs in this process.

    Yields
    ------
    distributed.Client or None
        None when the work should run in this process.
    """
    if address is None and workers == 0:
        yield None
        return
    config = DaskClusterConfig(address=address, n_workers=workers or None, dashboard_port=0)
    with dask_client_from_config(config) as client:
        yield client


def _connect(address: str, *, timeout_s: float) -> AbstractContextManager[Client]:
    from distributed import Client

    try:
        parts = urlsplit(address)
        if parts.scheme == "tcp" and parts.hostname and parts.port:
            # A refused port fails here at once; Dask's client would retry it until timeout_s.
            check_reachable(parts.hostname, parts.port, timeout_s=timeout_s)
        if not _in_event_loop():
            asyncio.run(_handshake(address, timeout_s=timeout_s))
        return Client(address, timeout=timeout_s)
    except (OSError, TimeoutError) as error:
        raise ClusterError(
            f"no Dask scheduler answered at {address} within {timeout_s:g} s "
            f"(expected a running `dask scheduler`; dask.connect_timeout_s sets the wait): "
            f"{one_line(str(error)) or type(error).__name__}"
        ) from None


async def _handshake(address: str, *, timeout_s: float) -> None:
    # Client(timeout=...) waits forever on a listener that never answers Dask's handshake (a
    # wrong port, a stuck scheduler); this bounds the whole exchange.
    from distributed.comm import connect

    comm = await asyncio.wait_for(connect(address, timeout=timeout_s), timeout_s)
    await comm.close()


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _dashboard_link(client: Client) -> str | None:
    # Client.dashboard_link assumes the scheduler serves one; `dask scheduler --no-dashboard`
    # does not.
    if "dashboard" not in client.scheduler_info().get("services", {}):
        return None
    return str(client.dashboard_link)


def _link_on(link: str | None, host: str) -> str | None:
    # A scheduler listening on every interface (SLURM) formats the link with its public
    # address even though the dashboard binds only `host`.
    if link is None or host in ("", "0.0.0.0", "::"):
        return link
    parts = urlsplit(link)
    return urlunsplit(parts._replace(netloc=f"{host}:{parts.port}"))


def _start(config: DaskClusterConfig) -> AbstractContextManager[Any]:
    dashboard = f"{config.dashboard_host}:{config.dashboard_port}"
    if config.kind == "slurm":
        from darkstack.cluster.slurm import dask_jobqueue_kwargs

        jobqueue = import_extra("dask_jobqueue", extra="slurm", purpose="a SLURM Dask cluster")
        cluster = jobqueue.SLURMCluster(
            **dask_jobqueue_kwargs(config.slurm),
            scheduler_options={
                "dashboard_address": dashboard,
                "interface": config.slurm.interface,
            },
        )
        cluster.adapt(minimum=config.slurm.minimum_workers, maximum=config.slurm.maximum_workers)
        return cluster
    local: dict[str, Any] = {
        "n_workers": config.n_workers,
        "threads_per_worker": config.threads_per_worker,
        "memory_limit": config.memory_limit,
        "host": "127.0.0.1",
        "dashboard_address": dashboard,
    }
    if config.kind == "cuda":
        dask_cuda = import_extra("dask_cuda", extra="gpu", purpose="a CUDA Dask cluster")
        return dask_cuda.LocalCUDACluster(**local)
    from distributed import LocalCluster

    return LocalCluster(**local)
