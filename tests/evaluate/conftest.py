"""Fixtures of the evaluation tests: the settings that shrink dm2gal's chain to a test's size.

The evaluate test and the demo's fast test run the same chain (an 8 Mpc/h universe pair, 5³
crops, one epoch, 3 HODs) as overrides of each stage's settings, written here once.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_dm2gal_universe() -> tuple[str, ...]:
    """Overrides of the universe (and its gravity-only twin): 8 Mpc/h in few files."""
    return ("box_size_mpc_h=8.0", "snapshot_files=2", "groupcat_files=1")


@pytest.fixture(scope="session")
def tiny_dm2gal_training() -> tuple[str, ...]:
    """Overrides of dm2gal's quick training preset: 5³ crops, one epoch, one thread, the
    gravity-only mode's candidates above 1e9 Msun; no run name."""
    return (
        "samples.crop_side=5",
        "samples.dark_subhalo_min_mass_msun=1e9",
        "model.crop_side=5",
        "model.kernels=[3]",
        "samples.min_stellar_mass_msun=1e7",
        "optim.max_epochs=1",
        "torch_threads=1",
    )


@pytest.fixture(scope="session")
def tiny_dm2gal_evaluation() -> tuple[str, ...]:
    """Overrides of dm2gal's evaluation: 3 HODs, r(k) over all k (the tiny test cube's 2 k_F
    exceeds 2 h/Mpc)."""
    return ("n_hod=3", "scores.r_k_max_h_mpc=null")
