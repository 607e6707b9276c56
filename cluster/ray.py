"""Ray: connect to a running cluster or start a local instance bound to 127.0.0.1."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def ray_session(*, address: str | None = None, num_cpus: int | None = None) -> Iterator[None]:
    """A Ray session for a training, shut down on exit if this process started it.

    Parameters
    ----------
    address : str, optional
        Address of a running cluster (``ray://host:10001``, ``host:6379`` or ``auto``);
        without one a local instance starts, its dashboard bound to 127.0.0.1 (Ray Train
        polls the state API it serves).
    num_cpus : int, optional
        CPUs of the local instance (all of the machine's by default).
    """
    if address is None:
        # Ray 2.60 turns on token authentication for new clusters; a local instance owned by
        # this process has no other client, so the token would only add a failure mode. A
        # cluster we join keeps whatever authentication it has.
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray

    if ray.is_initialized():
        yield
        return
    if address is None:
        ray.init(
            num_cpus=num_cpus,
            include_dashboard=True,
            dashboard_host="127.0.0.1",
            _node_ip_address="127.0.0.1",
            log_to_driver=True,
            configure_logging=False,
        )
    else:
        ray.init(address=address, log_to_driver=True, configure_logging=False)
    try:
        yield
    finally:
        ray.shutdown()
