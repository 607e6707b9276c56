"""Fixtures shared across the stages' tests."""

from __future__ import annotations

from pathlib import Path

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
