"""Training data from ``observations.zarr``: galaxy splits, normalisation, batches.

Splits are drawn over *galaxies* so no galaxy's realisations cross train, validation and test.
Images are read once into memory (8 x 128 x 128 float32 is 0.5 MB a sample, so the paper's ~6000
samples take 3 GB) and batches are tensor slices with a random dihedral transform per sample,
which keeps loading far faster than the model consumes it (``benchmarks/bench_train.py``).

Normalisation (fitted on the training split only, saved with the run): fluxes (SDSS bands, HI
intensity) span decades and carry sky noise around zero, so they are stretched with
``asinh(x / s)``, ``s`` the median absolute pixel value, linear near the noise and logarithmic in
bright cores; velocities (moments 1 and 2) stay linear. Each channel is then standardised.
Targets are standardised per radius; the loop maps outputs back to log10 masses before the loss,
so the loss stays the paper's MSE on log10 masses.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from darkstack.store import (
    OBSERVATIONS_CATALOG,
    OBSERVATIONS_ZARR,
    StoreLayout,
    open_group,
    read_catalog,
)

SPLITS = ("train", "validation", "test")
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


def split_by_galaxy(
    subhalo_id: NDArray[np.int64], *, fractions: Sequence[float], seed: int
) -> dict[str, NDArray[np.int64]]:
    """Positions of the samples in each split, drawn over galaxies.

    Parameters
    ----------
    subhalo_id : ndarray of int
        The galaxy of each sample; all samples of a galaxy land in the same split.
    fractions : sequence of 3 floats
        Train, validation and test fractions of the galaxies.
    seed : int
        Seed of the permutation of galaxies.

    Returns
    -------
    dict
        ``{"train": positions, "validation": ..., "test": ...}``, sorted positions into
        ``subhalo_id``.
    """
    galaxies = np.unique(subhalo_id)
    if galaxies.size < len(SPLITS):
        raise ValueError(f"{galaxies.size} galaxies cannot fill three splits")
    order = np.random.default_rng(seed).permutation(galaxies)
    edges = np.round(np.cumsum(fractions)[:-1] * galaxies.size).astype(int)
    edges = np.clip(edges, 1, galaxies.size - 1)
    if edges[1] <= edges[0]:
        edges[1] = edges[0] + 1
    return {
        name: np.flatnonzero(np.isin(subhalo_id, members))
        for name, members in zip(SPLITS, np.split(order, edges), strict=True)
    }


def subsample_galaxies(
    subhalo_id: NDArray[np.int64], *, limit: int, seed: int
) -> NDArray[np.int64]:
    """Positions of at most ``limit`` samples, whole galaxies drawn in a seeded random order.

    For learning curves: the first samples by index would be the first galaxies of the group
    catalog, which is sorted by halo mass. Only the last galaxy drawn may be cut short.

    Parameters
    ----------
    subhalo_id : ndarray of int
        The galaxy of each sample.
    limit : int
        Samples to keep (0 or at least all of them: every position).
    seed : int
        Seed of the galaxy order.
    """
    if limit <= 0 or limit >= subhalo_id.size:
        return np.arange(subhalo_id.size)
    galaxies = np.unique(subhalo_id)
    rank = np.empty(galaxies.size, dtype=np.int64)
    rank[np.random.default_rng(seed).permutation(galaxies.size)] = np.arange(galaxies.size)
    order = np.lexsort((np.arange(subhalo_id.size), rank[np.searchsorted(galaxies, subhalo_id)]))
    return np.sort(order[:limit])


def load_images(
    store: str | Path, *, samples: NDArray[np.int64], channels: Sequence[str]
) -> NDArray[np.float32]:
    """Images ``(n, len(channels), y, x)`` of the given samples, channels in the order asked."""
    group = open_group(store, OBSERVATIONS_ZARR)
    names = [str(name) for name in _read(group, "channel")]
    missing = [name for name in channels if name not in names]
    if missing:
        raise ValueError(f"channels {missing} are not in observations.zarr (it has {names})")
    index = [names.index(name) for name in channels]
    images = group["images"]
    # Orthogonal selection reads each sample's chunk once, whatever the channel subset.
    selected = images.get_orthogonal_selection(
        (np.asarray(samples), np.asarray(index), slice(None), slice(None))
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

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Normalisation:
        data: dict[str, Any] = json.loads(text)
        return cls(**{key: tuple(value) for key, value in data.items()})


def _stretch(values: NDArray[Any], scale: float) -> NDArray[Any]:
    return np.arcsinh(values / scale) if scale > 0 else values


def bootstrap_weights(
    subhalo_id: NDArray[np.int64], *, n_members: int, seed: int
) -> NDArray[np.float32]:
    """How often each training sample's galaxy appears in each member's resample.

    Member ``m`` draws as many galaxies as the training split holds, with replacement; a sample
    then weighs its galaxy's count in the member's loss, which is the loss on the resample
    exactly (all realisations of a drawn galaxy come along, as in a resample of galaxies).

    Returns
    -------
    ndarray, shape (n_samples, n_members)
    """
    galaxies, inverse = np.unique(subhalo_id, return_inverse=True)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0xB007,)))
    counts = rng.multinomial(galaxies.size, np.full(galaxies.size, 1 / galaxies.size), n_members)
    return counts.T[inverse].astype(np.float32)


def dihedral_augment(images: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
    """Each image flipped and rotated by a random element of the square's symmetry group."""
    transform = torch.randint(0, 8, (images.shape[0],), generator=generator)
    out = images.clone()
    for code in range(8):
        chosen = transform == code
        if not chosen.any():
            continue
        view = images[chosen]
        if code >= 4:
            view = view.flip(-1)
        out[chosen] = torch.rot90(view, k=code % 4, dims=(-2, -1))
    return out


@dataclass(frozen=True, kw_only=True)
class Batch:
    images: torch.Tensor
    targets: torch.Tensor
    weights: torch.Tensor


class BatchStream:
    """Epochs of batches over in-memory tensors, sharded over data-parallel ranks.

    Parameters
    ----------
    images : tensor (n, c, y, x)
        Normalised images.
    targets : tensor (n, n_radii)
        log10 masses.
    weights : tensor (n, n_members)
        Per-member sample weights (bootstrap counts, or ones).
    batch_size : int
        Samples per batch on each rank.
    shuffle, augment : bool
        Training order and dihedral augmentation; both off for evaluation.
    seed : int
        With the epoch, fixes order and augmentation, so a resumed run sees the same batches.
    rank, world_size : int
        This process' shard of each epoch.
    """

    def __init__(
        self,
        *,
        images: torch.Tensor,
        targets: torch.Tensor,
        weights: torch.Tensor,
        batch_size: int,
        shuffle: bool,
        augment: bool,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if not images.shape[0] == targets.shape[0] == weights.shape[0]:
            raise ValueError("images, targets and weights must have one row per sample")
        self.images = images
        self.targets = targets
        self.weights = weights
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.augment = augment
        self.seed = seed
        self.rank = rank
        self.world_size = world_size

    def epoch(self, epoch: int) -> Iterator[Batch]:
        n = self.images.shape[0]
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(n, generator=generator) if self.shuffle else torch.arange(n)
        # Equal shards: every data-parallel rank must take the same number of steps.
        per_rank = n // self.world_size if self.world_size > 1 else n
        shard = order[self.rank * per_rank : (self.rank + 1) * per_rank]
        for start in range(0, shard.numel(), self.batch_size):
            index = shard[start : start + self.batch_size]
            images = self.images[index]
            if self.augment:
                images = dihedral_augment(images, generator=generator)
            yield Batch(images=images, targets=self.targets[index], weights=self.weights[index])
