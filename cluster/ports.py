"""Free TCP ports on this machine, for the local processes darkstack starts."""

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
