"""cusp_core chain on a tiny dwarfs universe: ingest slopes, then phase-space maps."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from darkstack.features.phase_space import PhaseSpaceConfig, build_phase_space
from darkstack.ingest.dwarfs import TARGET_COLUMN, DwarfIngestConfig, ingest_dwarfs
from darkstack.store import DWARFS_CATALOG, read_catalog
from darkstack.universe.dwarfs import DwarfsConfig, build_dwarfs


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dwarfs")
    config = DwarfsConfig(
        n_dwarfs=2, n_stars=600, highres_particle_mass_msun=2e3, n_lowres=500, snapshot_files=2
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        build_dwarfs(config, root / "sim", progress=False)
    ingest_dwarfs(
        DwarfIngestConfig(), sim=root / "sim" / "output", store=root / "store", progress=False
    )
    return root


def test_measured_slopes_match_the_analytic_ones(store: Path) -> None:
    rows = pd.read_parquet(store / "store" / "catalogs" / "dwarfs.parquet")
    truth = pd.read_parquet(store / "sim" / "truth.parquet")
    assert list(rows["status"]) == ["ok", "ok"]
    error = rows[f"{TARGET_COLUMN}_error"].to_numpy()
    # The fit averages over +-0.3 dex; allow 3 Poisson sigma plus that curvature (< 0.03).
    offset = np.abs(rows[TARGET_COLUMN].to_numpy() - truth["dm_log_slope_true"].to_numpy())
    assert np.all(offset < 3.0 * error + 0.03), (offset, error)
    np.testing.assert_allclose(rows["r_half_kpc"], truth["r_half_kpc"], rtol=0.15)
    np.testing.assert_allclose(rows["anisotropy_radius_kpc"], truth["anisotropy_radius_kpc"])


def test_phase_space_maps_of_every_dwarf(store: Path) -> None:
    config = PhaseSpaceConfig(n_lines_of_sight=2, n_subsets=3, n_stars=200)
    path = build_phase_space(config, store=store / "store", progress=False)
    dataset = xr.open_zarr(path, consolidated=False)
    assert dataset["images"].shape == (12, 2, 64, 64)
    np.testing.assert_allclose(dataset["images"].sum(dim=("y", "x")).values, 1.0, rtol=1e-5)
    assert sorted(set(dataset["subhalo_id"].values)) == [0, 1]
    # The scalars: M* is the catalog's, R_hlr each line of sight's median projected radius.
    catalog = read_catalog(store / "store", DWARFS_CATALOG).to_pandas().set_index("subhalo_id")
    scalars = dataset["scalars"].to_pandas()
    mass = catalog.loc[dataset["subhalo_id"].values, "stellar_mass_msun"]
    np.testing.assert_allclose(scalars["log_stellar_mass_msun"], np.log10(mass), rtol=1e-6)
    radius = catalog.loc[dataset["subhalo_id"].values, "r_half_kpc"]
    np.testing.assert_allclose(10 ** scalars["log_r_half_kpc"], radius, rtol=0.15)
