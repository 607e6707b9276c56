"""Fixtures shared across the stages' tests."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from pathlib import Path

import psutil
import pytest

from darkstack.ingest.build import run_ingest
from darkstack.ingest.config import IngestConfig
from darkstack.ingest.selection import SelectionConfig
from darkstack.universe.build import build_universe
from darkstack.universe.config import UniverseConfig


@pytest.fixture(scope="session")
def tiny_sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The basePath of a tiny mock universe (7 Mpc/h, a handful of galaxies); read only.

    It is ``ROOT/sim/output`` beside the ingested ``ROOT/store`` of :func:`tiny_ingested_store`.
    """
    root = tmp_path_factory.mktemp("tiny")
    build_universe(
        UniverseConfig(seed=3, box_size_mpc_h=7.0, snapshot_files=2, groupcat_files=1),
        root / "sim",
        progress=False,
    )
    return root / "sim" / "output"


@pytest.fixture(scope="session")
def tiny_ingested_store(tiny_sim: Path) -> Path:
    """A store ingested from the tiny mock universe (``ROOT/store``); copy before writing."""
    store = tiny_sim.parent.parent / "store"
    config = IngestConfig(selection=SelectionConfig(stellar_mass_min_msun=3e9))
    run_ingest(config, sim=tiny_sim, store=store, progress=False)
    return store


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="Rewrite tests/golden/*.json from this run instead of comparing (`make golden`).",
    )


def _wide_sockets(processes: Iterable[psutil.Process]) -> list[str]:
    """The listening TCP and bound UDP sockets of ``processes`` that reach beyond loopback."""
    pids = {process.pid for process in processes}
    wide = []
    for connection in psutil.net_connections(kind="inet"):
        listening = connection.status == psutil.CONN_LISTEN or (
            connection.type == socket.SOCK_DGRAM and not connection.raddr
        )
        if connection.pid not in pids or not listening or not connection.laddr:
            continue
        address = ipaddress.ip_address(connection.laddr.ip.split("%")[0])
        mapped = getattr(address, "ipv4_mapped", None)
        if not (mapped or address).is_loopback:
            name = psutil.Process(connection.pid).name()
            where = f"{connection.laddr.ip}:{connection.laddr.port}"
            wide.append(f"{name} (pid {connection.pid}) on {where}")
    return wide


@pytest.fixture
def assert_loopback_only() -> Callable[[Iterable[psutil.Process]], set[str]]:
    """A check that processes and all their descendants listen on loopback addresses only.

    It returns the names of the processes it looked at, so that a test can check it found the
    ones it meant to.
    """

    def check(roots: Iterable[psutil.Process]) -> set[str]:
        found: dict[int, psutil.Process] = {}
        for root in roots:
            try:
                found[root.pid] = root
                found.update((child.pid, child) for child in root.children(recursive=True))
            except psutil.NoSuchProcess:
                continue
        wide = _wide_sockets(found.values())
        assert not wide, "listening beyond loopback: " + "; ".join(wide)
        names = set()
        for process in found.values():
            try:
                names.add(process.name())
            except psutil.NoSuchProcess:
                continue
        return names

    return check
