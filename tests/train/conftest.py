"""A synthetic store with the layout of ``darkstack observe``'s output, for training tests.

Each galaxy is a Gaussian blob whose brightness and size follow its (made-up) dark-matter
profile, so a network can learn the targets from the images in a few epochs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from darkstack.catalogs.parquet import table_with_units, write_table_atomic
from darkstack.features.observe import CHANNELS

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
    dataset = xr.Dataset(
        {
            "images": (("sample", "channel", "y", "x"), images),
            "targets": (("sample", "radius"), np.repeat(log_mdm, n_realisations, 0).astype("f4")),
        },
        coords={
            "sample": np.arange(n_samples, dtype=np.int64),
            "channel": np.array(CHANNELS, dtype=object),
            "radius": RADII_KPC,
            "subhalo_id": ("sample", subhalo),
            "realisation": ("sample", realisation),
            "distance_mpc": ("sample", rng.uniform(10, 20, n_samples)),
        },
        attrs={"config": json.dumps({"synthetic": True})},
    )
    dataset.to_zarr(root / "observations.zarr", mode="w", consolidated=False)
    status = ["ok" if s not in failed_samples else "render failed" for s in range(n_samples)]
    write_table_atomic(
        table_with_units(
            {
                "sample": np.arange(n_samples),
                "subhalo_id": subhalo,
                "realisation": realisation,
                "status": status,
            },
            units={"sample": "", "subhalo_id": "", "realisation": "", "status": ""},
        ),
        root / "catalogs" / "observations.parquet",
    )
    galaxies_subhalo = np.arange(n_galaxies, dtype=np.int64) * 7 + 3
    r_half = 10 ** rng.uniform(0.3, 0.8, n_galaxies)
    mstar_enclosed = 10 ** log_mstar[:, None] * (1 - np.exp(-RADII_KPC[None, :] / r_half[:, None]))
    write_table_atomic(
        table_with_units(
            {
                "subhalo_id": galaxies_subhalo,
                "stellar_mass_msun": 10**log_mstar,
                "r_half_star_kpc": r_half,
                "r_half_star_cutout_kpc": r_half,
                "log10_mdm_enclosed": log_mdm.tolist(),
                "mstar_enclosed_msun": mstar_enclosed.tolist(),
                "mgas_enclosed_msun": (0.3 * mstar_enclosed).tolist(),
                "radii_kpc": [RADII_KPC.tolist()] * n_galaxies,
                "v_rot_2rhalf_kms": 10 ** (0.264 * log_mstar - 0.558),
                "status": ["ok"] * n_galaxies,
            },
            units={
                "subhalo_id": "",
                "stellar_mass_msun": "Msun",
                "r_half_star_kpc": "kpc",
                "r_half_star_cutout_kpc": "kpc",
                "log10_mdm_enclosed": "log10 Msun",
                "mstar_enclosed_msun": "Msun",
                "mgas_enclosed_msun": "Msun",
                "radii_kpc": "kpc",
                "v_rot_2rhalf_kms": "km/s",
                "status": "",
            },
        ),
        root / "catalogs" / "galaxies.parquet",
    )
    return root


@pytest.fixture
def synthetic_store(tmp_path: Path) -> Callable[..., Path]:
    """A factory: ``synthetic_store(**options)`` writes a store under ``tmp_path``."""

    def make(**options: object) -> Path:
        return write_synthetic_store(tmp_path / "store", **options)  # type: ignore[arg-type]

    return make
