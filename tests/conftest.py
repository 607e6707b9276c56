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
def tiny_ingested_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store ingested from a tiny mock universe (a handful of galaxies); copy before writing."""
    root = tmp_path_factory.mktemp("tiny")
    build_universe(
        UniverseConfig(seed=3, box_size_mpc_h=7.0, snapshot_files=2, groupcat_files=1),
        root / "sim",
        progress=False,
    )
    config = IngestConfig(selection=SelectionConfig(stellar_mass_min_msun=3e9))
    run_ingest(config, sim=root / "sim" / "output", store=root / "store", progress=False)
    return root / "store"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="Rewrite tests/golden/*.json from this run instead of comparing (`make golden`).",
    )
