"""The profiles task's data: ``observations.zarr``, its normalisation and its augmentation.

Normalisation (fitted on the training split only, saved with the run): fluxes (SDSS bands, HI
intensity) span decades and carry sky noise around zero, so they are stretched with
``asinh(x / s)``, ``s`` the median absolute pixel value, linear near the noise and logarithmic in
bright cores; velocities (moments 1 and 2) stay linear. Each channel is then standardised.
Targets are standardised per radius inside the model
(:class:`~darkstack.train.regressor.Regressor`), so the loss stays the paper's MSE on log10
masses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from darkstack.store import (
    OBSERVATIONS_CATALOG,
    OBSERVATIONS_ZARR,
    StoreLayout,
    open_group,
    read_catalog,
)

#: Channels whose pixel values are fluxes (asinh stretch); the others are velocities (linear).
_FLUX_PREFIXES = ("sdss_", "hi_mom0")


@dataclass(frozen=True, kw_only=True)
class Observations:
    """The usable samples of a store and their metadata (images stay on disk).

    Attributes
    ----------
    samples : ndarray of int
        Indices along ``observations.zarr``'s sample dimension with status ``ok``.
    subhalo_id, realisation : ndarray of int
        Of each usable sample.
    targets : ndarray, shape (n, n_radii)
        log10 enclosed dark-matter mass (Msun).
    distance_mpc : ndarray
        Distance of each usable sample's view.
    radii_kpc : ndarray
        The target radii.
    channels : tuple of str
        Every channel in the store.
    image_size : int
        Side of the square images in pixels.
    """

    store: Path
    samples: NDArray[np.int64]
    subhalo_id: NDArray[np.int64]
    realisation: NDArray[np.int64]
    targets: NDArray[np.float32]
    distance_mpc: NDArray[np.float64]
    radii_kpc: NDArray[np.float64]
    channels: tuple[str, ...]
    image_size: int

    @property
    def groups(self) -> NDArray[np.int64]:
        """Splits and bootstrap resamples take whole galaxies."""
        return self.subhalo_id

    @property
    def group_name(self) -> str:
        return "subhalo_id"


def open_observations(store: str | Path) -> Observations:
    """The samples of ``STORE/observations.zarr`` whose observation succeeded.

    Raises
    ------
    FileNotFoundError
        Without ``observations.zarr`` or ``catalogs/observations.parquet`` (run
        ``darkstack observe`` first).
    darkstack.store.SchemaError
        When either is not of the schema this darkstack reads.
    ValueError
        When no sample has status ``ok``.
    """
    store = Path(store)
    group = open_group(store, OBSERVATIONS_ZARR)
    status = read_catalog(store, OBSERVATIONS_CATALOG, columns=["sample", "status"]).to_pandas()
    ok = np.sort(status.loc[status["status"] == "ok", "sample"].to_numpy(np.int64))
    if ok.size == 0:
        raise ValueError(
            f"{StoreLayout(store).catalog(OBSERVATIONS_CATALOG.name)}: no sample has status "
            "'ok'; nothing to train on"
        )
    return Observations(
        store=store,
        samples=ok,
        subhalo_id=_read(group, "subhalo_id").astype(np.int64)[ok],
        realisation=_read(group, "realisation").astype(np.int64)[ok],
        targets=_read(group, "targets").astype(np.float32)[ok],
        distance_mpc=_read(group, "distance_mpc").astype(np.float64)[ok],
        radii_kpc=_read(group, "radius").astype(np.float64),
        channels=tuple(str(name) for name in _read(group, "channel")),
        image_size=int(group["images"].shape[-1]),
    )


def _read(group: Any, name: str) -> NDArray[Any]:
    return np.asarray(group[name][:])


def image_array(store: str | Path, *, channels: Sequence[str]) -> tuple[Any, NDArray[np.int64]]:
    """``observations.zarr``'s images array and the index of each of ``channels`` in it."""
    group = open_group(store, OBSERVATIONS_ZARR)
    names = [str(name) for name in _read(group, "channel")]
    missing = [name for name in channels if name not in names]
    if missing:
        raise ValueError(f"channels {missing} are not in observations.zarr (it has {names})")
    return group["images"], np.array([names.index(name) for name in channels])


def load_images(
    store: str | Path, *, samples: NDArray[np.int64], channels: Sequence[str]
) -> NDArray[np.float32]:
    """Images ``(n, len(channels), y, x)`` of the given samples, channels in the order asked."""
    images, index = image_array(store, channels=channels)
    # Orthogonal selection reads each sample's chunk once, whatever the channel subset.
    selected = images.get_orthogonal_selection(
        (np.asarray(samples), index, slice(None), slice(None))
    )
    return np.ascontiguousarray(selected, dtype=np.float32)


def total_fluxes(
    store: str | Path,
    *,
    samples: NDArray[np.int64],
    channels: Sequence[str],
    batch_size: int = 256,
) -> NDArray[np.float64]:
    """Sum over the pixels of each sample's images, ``(n, len(channels))``, in the images' units.

    Reads ``batch_size`` samples at a time, so memory stays bounded on the paper's 6000 views.
    """
    samples = np.asarray(samples, dtype=np.int64)
    sums = [
        load_images(store, samples=samples[start : start + batch_size], channels=channels)
        .astype(np.float64)
        .sum(axis=(2, 3))
        for start in range(0, samples.size, batch_size)
    ]
    return np.concatenate(sums) if sums else np.zeros((0, len(channels)))


@dataclass(frozen=True, kw_only=True)
class Normalisation:
    """Per-channel input and per-radius target normalisation, fitted on the training split."""

    channels: tuple[str, ...]
    stretch_scale: tuple[float, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    target_mean: tuple[float, ...]
    target_std: tuple[float, ...]

    @classmethod
    def fit(
        cls, images: NDArray[np.float32], targets: NDArray[np.float32], *, channels: Sequence[str]
    ) -> Normalisation:
        """Fit on training images ``(n, c, y, x)`` and targets ``(n, n_radii)``."""
        scales = []
        means = []
        stds = []
        for index, name in enumerate(channels):
            pixels = images[:, index].astype(np.float64).ravel()
            scale = 0.0
            if name.startswith(_FLUX_PREFIXES):
                nonzero = np.abs(pixels[pixels != 0])
                scale = float(np.median(nonzero)) if nonzero.size else 1.0
            stretched = _stretch(pixels, scale)
            scales.append(scale)
            means.append(float(stretched.mean()))
            stds.append(float(stretched.std()) or 1.0)
        target_std = np.where(targets.std(axis=0) > 0, targets.std(axis=0), 1.0)
        return cls(
            channels=tuple(channels),
            stretch_scale=tuple(scales),
            mean=tuple(means),
            std=tuple(stds),
            target_mean=tuple(float(v) for v in targets.mean(axis=0)),
            target_std=tuple(float(v) for v in target_std),
        )

    def images(self, images: NDArray[np.float32]) -> NDArray[np.float32]:
        """Normalised copy of ``images`` ``(n, c, y, x)`` in this normalisation's channels."""
        out = np.empty_like(images, dtype=np.float32)
        for index, scale in enumerate(self.stretch_scale):
            stretched = _stretch(images[:, index], scale)
            out[:, index] = (stretched - self.mean[index]) / self.std[index]
        return out

    def to_mapping(self) -> dict[str, Any]:
        """Plain JSON of the fitted values (``normalisation.json``)."""
        return {key: list(value) for key, value in self.__dict__.items()}

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> Normalisation:
        return cls(**{key: tuple(value) for key, value in data.items()})


def _stretch(values: NDArray[Any], scale: float) -> NDArray[Any]:
    return np.arcsinh(values / scale) if scale > 0 else values
