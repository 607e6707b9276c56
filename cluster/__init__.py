"""The only package that knows how Dask and Ray clusters are started.

Every other stage receives a client (or ``None`` for in-process work) from here.
"""

from darkstack.cluster.dask import (
    ClusterError,
    DaskCluster,
    dask_client,
    dask_client_from_config,
    dask_cluster,
)
from darkstack.cluster.ray import RayHead, local_ray_head
from darkstack.cluster.ray_jobs import JobInfo, RayJobs, resolve_jobs_address
from darkstack.cluster.settings import (
    ClusterConfig,
    DaskClusterConfig,
    RayClusterConfig,
    RaySlurmConfig,
    SlurmWorkersConfig,
)

__all__ = [
    "ClusterConfig",
    "ClusterError",
    "DaskCluster",
    "DaskClusterConfig",
    "JobInfo",
    "RayClusterConfig",
    "RayHead",
    "RayJobs",
    "RaySlurmConfig",
    "SlurmWorkersConfig",
    "dask_client",
    "dask_client_from_config",
    "dask_cluster",
    "local_ray_head",
    "resolve_jobs_address",
]
