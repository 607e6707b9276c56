"""A preview PNG of a few observed galaxies in all 8 channels, for people to look at."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from darkstack.store import OBSERVATIONS_ZARR, open_dataset


def write_preview(store: str | Path, *, path: str | Path, n_samples: int = 4) -> Path:
    """Plot the first ``n_samples`` successfully observed samples, one row each.

    Optical bands use an asinh stretch (faint outskirts and bright centres both visible), HI
    moment 0 a logarithmic one, moment 1 a diverging map centred on zero (approaching blue,
    receding red) and moment 2 a sequential one.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dataset = open_dataset(store, OBSERVATIONS_ZARR)
    images = dataset["images"]
    finite = np.isfinite(images.isel(channel=0, y=0, x=0).values)
    samples = np.flatnonzero(finite)[:n_samples]
    if samples.size == 0:
        raise ValueError(f"{store}: no observed sample to preview")
    channels = [str(c) for c in dataset["channel"].values]
    figure, axes = plt.subplots(
        samples.size,
        len(channels),
        figsize=(2.0 * len(channels), 2.1 * samples.size),
        squeeze=False,
    )
    for row, sample in enumerate(samples):
        stack = images.isel(sample=int(sample)).values
        for column, channel in enumerate(channels):
            axis = axes[row, column]
            image = stack[column]
            if channel.startswith("sdss_"):
                scale = np.nanpercentile(np.abs(image), 99) or 1.0
                axis.imshow(np.arcsinh(image / (0.05 * scale)), origin="lower", cmap="gray")
            elif channel == "hi_mom0":
                axis.imshow(np.log10(np.maximum(image, 1e-6)), origin="lower", cmap="viridis")
            elif channel == "hi_mom1":
                limit = np.nanmax(np.abs(image)) or 1.0
                axis.imshow(image, origin="lower", cmap="RdBu_r", vmin=-limit, vmax=limit)
            else:
                axis.imshow(image, origin="lower", cmap="magma")
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(channel, fontsize=9)
        subhalo = int(dataset["subhalo_id"].values[sample])
        distance = float(dataset["distance_mpc"].values[sample])
        axes[row, 0].set_ylabel(f"subhalo {subhalo}\n{distance:.1f} Mpc", fontsize=8)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path
