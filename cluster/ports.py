"""TCP ports: free ones for the local processes darkstack starts, and whether an address answers."""

from __future__ import annotations

import socket


def free_ports(count: int, *, host: str = "127.0.0.1") -> list[int]:
    """Ports that nothing listens on at ``host``, all different.

    Parameters
    ----------
    count : int
        How many ports.
    host : str
        The interface they are free on.

    Returns
    -------
    list of int
        ``count`` ports, distinct because their sockets are bound together before any is
        closed. Another process may take one before the caller binds it: use them at once.
    """
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((host, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def check_reachable(host: str, port: int, *, timeout_s: float) -> None:
    """Connect to ``host:port`` and close at once: is anything listening there?

    Clients of Dask and Ray retry a dead address for 30 s to minutes; this answers within
    ``timeout_s`` (at once when the port is refused).

    Raises
    ------
    OSError
        When nothing accepts the connection in time (``TimeoutError`` then).
    """
    socket.create_connection((host, port), timeout=timeout_s).close()
