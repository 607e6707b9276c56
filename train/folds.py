"""k-fold cross-validation by galaxy: no galaxy's samples are in two folds."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from darkstack.errors import InputError

IntArray = NDArray[np.int64]


def galaxy_folds(
    galaxy_ids: ArrayLike, *, n_folds: int, seed: int = 0
) -> list[tuple[IntArray, IntArray]]:
    """(train, test) sample indices of each fold; every galaxy is held out exactly once.

    Parameters
    ----------
    galaxy_ids : array_like (n_samples,)
        The galaxy each sample (projection, subset) comes from.
    n_folds : int
        Folds, 2 <= n_folds <= number of galaxies.
    seed : int
        Seed of the shuffle of galaxies into folds.
    """
    ids = np.asarray(galaxy_ids)
    galaxies = np.unique(ids)
    if not 2 <= n_folds <= galaxies.size:
        raise InputError(f"n_folds must be in [2, {galaxies.size}] (the galaxies), got {n_folds}")
    shuffled = np.random.default_rng(seed).permutation(galaxies)
    folds = []
    for held_out in np.array_split(shuffled, n_folds):
        test = np.isin(ids, held_out)
        folds.append((np.flatnonzero(~test), np.flatnonzero(test)))
    return folds
