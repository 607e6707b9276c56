"""A synthetic store with the layout of ``darkstack observe``'s output, for training tests.

Each galaxy is a Gaussian blob whose brightness and size follow its (made-up) dark-matter
profile, so a network can learn the targets from the images in a few epochs. The datasets are
built from the store's schemas, as ``darkstack ingest`` and ``observe`` build theirs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from darkstack.features.observe import CHANNELS
from darkstack.store import (
    GALAXIES_CATALOG,
    OBSERVATIONS_CATALOG,
    OBSERVATIONS_ZARR,
    StoreLayout,
    write_catalog,
)

RADII_KPC = np.logspace(0, 2, 20)


def write_synthetic_store(
    root: Path,
    *,
    n_galaxies: int = 40,
    n_realisations: int = 2,
    image_size: int = 128,
    seed: int = 0,
    failed_samples: tuple[int, ...] = (),
) -> Path:
    """Write ``observations.zarr``, ``catalogs/observations.parquet`` and ``galaxies.parquet``."""
    rng = np.random.default_rng(seed)
    log_mstar = rng.uniform(10.0, 11.5, n_galaxies)
    # A profile whose normalisation tracks stellar mass with scatter the images reveal.
    hidden = rng.normal(0.0, 0.2, n_galaxies)
    log_mdm = (
        log_mstar[:, None]
        - 1.5
        + hidden[:, None]
        + 1.6 * np.log10(RADII_KPC)[None, :] / (1 + 0.2 * np.log10(RADII_KPC)[None, :])
    )
    n_samples = n_galaxies * n_realisations
    y, x = np.mgrid[:image_size, :image_size] - (image_size - 1) / 2
    images = np.zeros((n_samples, len(CHANNELS), image_size, image_size), dtype=np.float32)
    for sample in range(n_samples):
        galaxy = sample // n_realisations
        width = 3.0 + 4.0 * (hidden[galaxy] + 0.6)
        blob = np.exp(-(x**2 + y**2) / (2 * width**2))
        for channel in range(len(CHANNELS)):
            amplitude = 10 ** (log_mstar[galaxy] - 10.5) * (1 + 0.1 * channel)
            noise = rng.normal(0.0, 0.02, blob.shape)
            images[sample, channel] = amplitude * blob + noise
    for sample in failed_samples:
        images[sample] = np.nan
    subhalo = np.repeat(np.arange(n_galaxies, dtype=np.int64) * 7 + 3, n_realisations)
    realisation = np.tile(np.arange(n_realisations, dtype=np.int64), n_galaxies)
    dataset = OBSERVATIONS_ZARR.build(
        data_vars={"images": images, "targets": np.repeat(log_mdm, n_realisations, 0)},
        coords={
            "sample": np.arange(n_samples),
            "channel": CHANNELS,
            "radius": RADII_KPC,
            "subhalo_id": subhalo,
            "realisation": realisation,
            "distance_mpc": rng.uniform(10, 20, n_samples),
            # Every view face-on: no test here reads the orientation.
            "orientation": np.tile([0.0, 0.0, 0.0, 1.0], (n_samples, 1)),
        },
        attrs={"config": json.dumps({"synthetic": True}), "darkstack_version": "synthetic"},
    )
    dataset.to_zarr(StoreLayout(root).zarr(OBSERVATIONS_ZARR.name), mode="w", consolidated=False)
    status = ["ok" if s not in failed_samples else "render failed" for s in range(n_samples)]
    write_catalog(
        root,
        OBSERVATIONS_CATALOG,
        {
            "sample": np.arange(n_samples),
            "subhalo_id": subhalo,
            "realisation": realisation,
            "status": status,
        },
    )
    galaxies_subhalo = np.arange(n_galaxies, dtype=np.int64) * 7 + 3
    r_half = 10 ** rng.uniform(0.3, 0.8, n_galaxies)
    mstar_enclosed = 10 ** log_mstar[:, None] * (1 - np.exp(-RADII_KPC[None, :] / r_half[:, None]))
    write_catalog(
        root,
        GALAXIES_CATALOG,
        {
            "subhalo_id": galaxies_subhalo,
            "group_id": galaxies_subhalo,
            "snap": np.full(n_galaxies, 99),
            "stellar_mass_msun": 10**log_mstar,
            "sfr_msun_yr": np.ones(n_galaxies),
            "m200c_msun": 10 ** (log_mstar + 1.5),
            "r200c_kpc": np.full(n_galaxies, 200.0),
            "r_half_star_kpc": r_half,
            "r_half_star_cutout_kpc": r_half,
            "log10_mdm_enclosed": log_mdm.tolist(),
            "mstar_enclosed_msun": mstar_enclosed.tolist(),
            "mgas_enclosed_msun": (0.3 * mstar_enclosed).tolist(),
            "radii_kpc": [RADII_KPC.tolist()] * n_galaxies,
            "v_rot_2rhalf_kms": 10 ** (0.264 * log_mstar - 0.558),
            "status": ["ok"] * n_galaxies,
        },
    )
    return root


@pytest.fixture
def synthetic_store(tmp_path: Path) -> Callable[..., Path]:
    """A factory: ``synthetic_store(**options)`` writes a store under ``tmp_path``."""

    def make(**options: object) -> Path:
        return write_synthetic_store(tmp_path / "store", **options)  # type: ignore[arg-type]

    return make
