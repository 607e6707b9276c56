"""The only package that knows how Dask and Ray clusters are started.

Every other stage receives a client (or ``None`` for in-process work) from here.
"""

from darkstack.cluster.dask import dask_client

__all__ = ["dask_client"]
