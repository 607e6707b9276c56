"""dm2gal's samples: centres, their split, the input and target transforms, the sampler weights.

Kasmanoff et al. (2020, §2) and the public code (``dat/sampling/make_samples.py``):

* a sample is a voxel whose hydro-run subhalo stellar mass exceeds 1e8 Msun/h (1.48e8 Msun at
  h = 0.6774): the public code keeps ``log10(1 + M*) > 8``. The voxel value is the CIC deposit
  of ``hydro_stellar_mass_subhalo``, as the public code's. Those centres come from the hydro
  run, which a user of an N-body run does not have; ``centres = "dark_subhalos"`` takes instead
  the voxels whose Dark-run ``dark_subhalo_mass`` exceeds a threshold, whose targets may be
  zero (issue 18's mode (b));
* inputs are crops of ``dark_dm_mass`` and ``dark_subhalo_mass`` around it, the target the
  voxel's ``hydro_stellar_mass_subhalo``; all three go through ``log10(1 + x)`` and are
  standardised. The public code hard-codes the means and deviations of its whole box; here
  they are fitted on the training region's voxels (inputs) and training centres (target);
* the weighted sampler: the training targets' ``log10(1 + M*)`` binned in 100 bins between
  their minimum and maximum (so that empty voxels, 0, share the lowest bin), each sample
  weighted by the inverse count of its bin; every epoch draws as many samples anew, with
  replacement (the public code's ``WeightedRandomSampler``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
from numpy.typing import NDArray

from darkstack.config import Checked, Range, Rule
from darkstack.train.tasks.dm2gal.regions import (
    PAPER_TEST_FRACTION,
    PAPER_VALIDATION_FRACTION,
    TRAIN,
    Regions,
    paper_regions,
)

#: Input channels, in order, and the target field of ``fields.zarr``.
INPUT_FIELDS = ("dark_dm_mass", "dark_subhalo_mass")
TARGET_FIELD = "hydro_stellar_mass_subhalo"
#: The Dark-run field whose voxels are the gravity-only centres.
DARK_SUBHALO_FIELD = INPUT_FIELDS[1]
#: 1e8 Msun/h of the paper at TNG's h = 0.6774.
PAPER_MIN_STELLAR_MASS_MSUN = 1.48e8


def _odd(config: Dm2galSamplesConfig) -> str | None:
    return None if config.crop_side % 2 == 1 else "an odd number of voxels (a central voxel)"


@dataclass(frozen=True, kw_only=True)
class Dm2galSamplesConfig(Checked):
    """Which voxels are samples, how big their crops are, and how training draws them.

    Parameters
    ----------
    crop_side : int
        Voxels per side of an input crop, odd (65 in the paper).
    centres : {"hydro_galaxies", "dark_subhalos"}
        Which voxels are sample centres: those whose target exceeds ``min_stellar_mass_msun``
        (the paper's), or those whose ``dark_subhalo_mass`` exceeds
        ``dark_subhalo_min_mass_msun`` (no hydro information; targets may be 0).
    min_stellar_mass_msun : float
        The hydro centres' threshold.
    dark_subhalo_min_mass_msun : float
        The Dark centres' threshold; also where a gravity-only painting predicts.
    validation_fraction, test_fraction : float
        Side of the held-out cubes as a fraction of the grid (840/2048 and 868/2048).
    weight_bins : int
        Logarithmic bins of the weighted sampler (100); 0 draws training samples uniformly.
    weight_field : {"target", "dark_subhalo_mass"}
        What the sampler bins: the centre's target (the paper's), or its Dark-run
        ``dark_subhalo_mass``, an input. Weights that depend on the input alone leave the
        network's answer, the mean of the target at given inputs, where it is, and only show
        the rare massive halos more often; weights on the target raise the answers of the
        rare targets' neighbours. For Dark centres the target's lowest bin also holds the
        empty voxels and the CIC spill below 1e8 Msun, which the paper's weights then draw most
        (docs/dm2gal.md, "The `small` comparison").
    draws_per_epoch : int, optional
        Samples the weighted sampler draws each epoch; ``None`` draws as many as there are
        training samples (the public code's). A scaled preset caps it so that an epoch, and
        the learning-rate schedule's patience, stay short on a CPU.
    """

    crop_side: Annotated[int, Range(ge=1)] = 65
    centres: Literal["hydro_galaxies", "dark_subhalos"] = "hydro_galaxies"
    min_stellar_mass_msun: Annotated[float, Range(gt=0)] = PAPER_MIN_STELLAR_MASS_MSUN
    dark_subhalo_min_mass_msun: Annotated[float, Range(ge=0)] = 1e10
    validation_fraction: Annotated[float, Range(gt=0, le=0.5)] = PAPER_VALIDATION_FRACTION
    test_fraction: Annotated[float, Range(gt=0, le=0.5)] = PAPER_TEST_FRACTION
    weight_bins: Annotated[int, Range(ge=0)] = 100
    weight_field: Literal["target", "dark_subhalo_mass"] = "target"
    draws_per_epoch: Annotated[int, Range(ge=1)] | None = None

    RULES = (Rule("crop_side", _odd),)

    def regions(self, grid: int) -> Regions:
        """The held-out cubes of a ``grid`` and the guard band of this crop side."""
        return paper_regions(
            grid=grid,
            crop_side=self.crop_side,
            validation_fraction=self.validation_fraction,
            test_fraction=self.test_fraction,
        )

    def centre_field(self) -> tuple[str, float]:
        """The field whose voxels above a threshold are the centres, and the threshold."""
        if self.centres == "dark_subhalos":
            return DARK_SUBHALO_FIELD, self.dark_subhalo_min_mass_msun
        return TARGET_FIELD, self.min_stellar_mass_msun


def log1p10(values: NDArray[Any]) -> NDArray[np.float32]:
    """``log10(1 + x)`` in float32, the paper's transform of masses in Msun."""
    return np.log10(np.float32(1) + np.asarray(values, dtype=np.float32))


def find_centres(array: Any, *, threshold: float) -> NDArray[np.int64]:
    """Flat indices (``x * n² + y * n + z``) of voxels above ``threshold``, increasing.

    Reads ``array`` (a zarr array of the target) one storage chunk at a time.
    """
    grid = array.shape[0]
    chunk = array.chunks[0]
    found = []
    for x0 in range(0, grid, chunk):
        for y0 in range(0, grid, chunk):
            for z0 in range(0, grid, chunk):
                block = np.asarray(array[x0 : x0 + chunk, y0 : y0 + chunk, z0 : z0 + chunk])
                local = np.argwhere(block > threshold) + np.array([x0, y0, z0])
                found.append(np.ravel_multi_index(local.T, (grid,) * 3))
    return np.sort(np.concatenate(found)).astype(np.int64)


@dataclass(frozen=True, kw_only=True)
class Standardise:
    """``(log10(1 + x) - mean) / std`` per channel."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __call__(self, values: NDArray[Any], *, axis: int) -> NDArray[np.float32]:
        """Transform ``values`` whose channels lie along ``axis``."""
        shape = [1] * np.ndim(values)
        shape[axis] = len(self.mean)
        mean = np.asarray(self.mean, dtype=np.float32).reshape(shape)
        std = np.asarray(self.std, dtype=np.float32).reshape(shape)
        return (log1p10(values) - mean) / std


def fit_inputs(arrays: list[Any], *, regions: Regions) -> Standardise:
    """Mean and deviation of ``log10(1 + x)`` of each input over the training region's voxels.

    A voxel counts when a crop centred on it could be a training input's centre (its label is
    :data:`TRAIN`); accumulated in float64 a chunk at a time.
    """
    means, stds = [], []
    for array in arrays:
        grid, chunk = array.shape[0], array.chunks[0]
        total = total_sq = count = 0.0
        for x0 in range(0, grid, chunk):
            for y0 in range(0, grid, chunk):
                for z0 in range(0, grid, chunk):
                    block = log1p10(array[x0 : x0 + chunk, y0 : y0 + chunk, z0 : z0 + chunk])
                    index = np.indices(block.shape).reshape(3, -1).T + np.array([x0, y0, z0])
                    keep = regions.label(index) == TRAIN
                    values = block.reshape(-1)[keep].astype(np.float64)
                    total += values.sum()
                    total_sq += np.square(values).sum()
                    count += values.size
        if count == 0:
            raise ValueError("no training voxels: the held-out cubes and guard cover the grid")
        mean = total / count
        means.append(mean)
        stds.append(max(np.sqrt(max(total_sq / count - mean * mean, 0.0)), 1e-6))
    return Standardise(mean=tuple(means), std=tuple(stds))


def sampler_weights(masses_msun: NDArray[Any], *, n_bins: int) -> NDArray[np.float64]:
    """The paper's weighted sampler: 1 / (count of the sample's bin) in ``n_bins`` log bins.

    The bins span the masses' ``log10(1 + M)`` from minimum to maximum (for the paper's
    targets 1e8 to 10^11.5 Msun/h; empty voxels of Dark centres fall in the lowest); the
    maximum falls in the last bin. Weights are not normalised.
    """
    log_mass = np.log10(1.0 + np.asarray(masses_msun, dtype=np.float64))
    edges = np.linspace(log_mass.min(), log_mass.max(), n_bins + 1)
    bins = np.clip(np.searchsorted(edges, log_mass, side="right") - 1, 0, n_bins - 1)
    counts = np.bincount(bins, minlength=n_bins)
    return 1.0 / counts[bins]


@dataclass(frozen=True, kw_only=True)
class WeightedDraw:
    """The public code's ``WeightedRandomSampler(weights, len(weights))``, drawn every epoch.

    Calling it with an epoch gives ``size`` positions (default: as many as weights), drawn with
    replacement in proportion to the weights and sorted; the draw depends on ``(seed, epoch)``
    alone, so a resumed run draws what it would have drawn, and every data-parallel rank draws
    the same.

    Attributes
    ----------
    weights : ndarray of float
        Unnormalised weight of each position (:func:`sampler_weights`).
    seed : int
        The run's seed.
    size : int, optional
        Positions drawn per epoch.
    """

    weights: NDArray[np.float64]
    seed: int
    size: int | None = None

    def __call__(self, epoch: int) -> NDArray[np.int64]:
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(0xD2, epoch)))
        drawn = rng.choice(
            self.weights.size,
            size=self.size or self.weights.size,
            p=self.weights / self.weights.sum(),
        )
        return np.sort(drawn).astype(np.int64)
