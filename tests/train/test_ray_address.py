"""``darkstack train`` joins the Ray cluster that ``ray.address`` names, and a cluster that
does not answer fails within ``ray.connect_timeout_s``. No Ray instance starts here."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from darkstack.cli import cli
from darkstack.store import StoreLayout


class JoinedError(Exception):
    """Raised by the stand-in ``ray.init``: the training stops where it would join."""


def _train(store: Path, *extra: str) -> list[str]:
    return ["train", "--store", str(store), "--set", "model.image_size=96", *extra]


def test_train_joins_the_cluster_at_the_configured_address(
    synthetic_store: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray

    from darkstack.cluster import ray as cluster_ray

    store = synthetic_store(n_galaxies=6, image_size=96)
    checked: list[tuple[str, float]] = []
    joined: list[dict[str, Any]] = []

    def check(address: str, *, timeout_s: float) -> None:
        checked.append((address, timeout_s))

    def init(**kwargs: Any) -> None:
        joined.append(kwargs)
        raise JoinedError

    monkeypatch.setattr(cluster_ray, "check_ray_address", check)
    monkeypatch.setattr(ray, "init", init)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    args = _train(store, "--set", "run=joined", "--cluster-set", "ray.address=head.example:6379")
    result = CliRunner().invoke(cli, [*args, "--cluster-set", "ray.connect_timeout_s=3"], obj={})
    # The stand-in's exception ends the command (the CLI reports it in one line).
    assert result.exit_code == 1 and "JoinedError" in result.stderr, result.output
    # Checked before the run directory is made, and by the session that joins.
    assert checked == [("head.example:6379", 3.0)] * 2
    assert len(joined) == 1 and joined[0]["address"] == "head.example:6379"
    # JoinedError, not started: none of the local instance's settings.
    assert "num_cpus" not in joined[0] and "_node_ip_address" not in joined[0]


@contextmanager
def _unanswered_port() -> Iterator[int]:
    """A loopback port whose listener never accepts and whose backlog is full: a connection
    attempt hangs, as to a host that drops packets."""
    with socket.create_server(("127.0.0.1", 0), backlog=0) as server:
        port = server.getsockname()[1]
        fillers = [socket.socket() for _ in range(3)]
        try:
            for filler in fillers:
                filler.setblocking(False)
                try:
                    filler.connect(("127.0.0.1", port))
                except BlockingIOError:
                    pass
            time.sleep(0.1)
            yield port
        finally:
            for filler in fillers:
                filler.close()


def test_a_cluster_that_does_not_answer_fails_within_the_connect_timeout(
    synthetic_store: Callable[..., Path],
) -> None:
    store = synthetic_store(n_galaxies=6, image_size=96)
    with _unanswered_port() as port:
        address = f"127.0.0.1:{port}"
        started = time.monotonic()
        result = CliRunner().invoke(
            cli,
            _train(store, "--set", "run=dead", "--cluster-set", f"ray.address={address}",
                   "--cluster-set", "ray.connect_timeout_s=1.5"),
            obj={},
        )  # fmt: skip
        elapsed_s = time.monotonic() - started
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines() == [
        f"darkstack: error: no Ray cluster answered at {address} within 1.5 s: timed out "
        "(expected a running head, `ray start --head`; ray.connect_timeout_s sets the wait)"
    ]
    # It waited the configured 1.5 s (the message names it); the upper bound only catches a hang.
    assert 1.5 <= elapsed_s < 60.0
    assert not StoreLayout(store).run("dead").root.exists()
