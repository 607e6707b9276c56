"""Dask clients: connect to a running scheduler or start a local cluster on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from distributed import Client


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
    from distributed import Client, LocalCluster

    if address is not None:
        with Client(address) as client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client
