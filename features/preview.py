"""A preview PNG of a few observed galaxies in all 8 channels, for people to look at."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from darkstack.plotting import pyplot
from darkstack.store import OBSERVATIONS_ZARR, open_dataset


def write_preview(store: str | Path, *, path: str | Path, n_samples: int = 4) -> Path:
    """Plot the first ``n_samples`` successfully observed samples, one row each.

    Optical bands use an asinh stretch (faint outskirts and bright centres both visible), HI
    moment 0 a logarithmic one, moment 1 a diverging map centred on zero (approaching blue,
    receding red) and moment 2 a sequential one. Each panel has a colour bar in the channel's
    units (the dataset's ``channel_units``), stretched as shown.
    """
    plt = pyplot()

    dataset = open_dataset(store, OBSERVATIONS_ZARR)
    fov_arcmin = float(json.loads(dataset.attrs["config"])["photometry"]["field_of_view_arcmin"])
    images = dataset["images"]
    finite = np.isfinite(images.isel(channel=0, y=0, x=0).values)
    samples = np.flatnonzero(finite)[:n_samples]
    if samples.size == 0:
        raise ValueError(f"{store}: no observed sample to preview")
    channels = [str(c) for c in dataset["channel"].values]
    units = json.loads(dataset.attrs["channel_units"])
    figure, axes = plt.subplots(
        samples.size,
        len(channels),
        figsize=(2.4 * len(channels), 2.3 * samples.size),
        squeeze=False,
    )
    for row, sample in enumerate(samples):
        stack = images.isel(sample=int(sample)).values
        for column, channel in enumerate(channels):
            axis = axes[row, column]
            shown, label, style = _stretch(stack[column], channel=channel, unit=units[channel])
            drawn = axis.imshow(shown, origin="lower", **style)
            bar = figure.colorbar(drawn, ax=axis, fraction=0.046, pad=0.03)
            bar.ax.tick_params(labelsize=5)
            bar.set_label(label, fontsize=5)
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(channel, fontsize=9)
        subhalo = int(dataset["subhalo_id"].values[sample])
        distance = float(dataset["distance_mpc"].values[sample])
        axes[row, 0].set_ylabel(f"subhalo {subhalo}\n{distance:.1f} Mpc", fontsize=8)
    figure.suptitle(
        f"{samples.size} observed samples; images {fov_arcmin:.1f} arcmin across", fontsize=9
    )
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _stretch(
    image: np.ndarray, *, channel: str, unit: str
) -> tuple[np.ndarray, str, dict[str, Any]]:
    """(values to show, colour-bar label, imshow style) of one channel."""
    if channel.startswith("sdss_"):
        # asinh(f / f0) is linear below f0 and logarithmic above: the bar states f0.
        soft = 0.05 * (np.nanpercentile(np.abs(image), 99) or 1.0)
        return np.arcsinh(image / soft), f"asinh(f / {soft:.2g}), f in {unit}", {"cmap": "gray"}
    if channel == "hi_mom0":
        # Floored at the faintest percent of the detected pixels, not at an arbitrary tiny
        # value that would spend the colour range on empty sky.
        detected = image[image > 0]
        floor = np.nanpercentile(detected, 1) if detected.size else 1e-6
        return np.log10(np.maximum(image, floor)), f"log10 {unit}", {"cmap": "viridis"}
    if channel == "hi_mom1":
        limit = np.nanmax(np.abs(image)) or 1.0
        return image, unit, {"cmap": "RdBu_r", "vmin": -limit, "vmax": limit}
    return image, unit, {"cmap": "magma"}
