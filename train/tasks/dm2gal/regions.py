"""Where dm2gal trains, validates and tests: two held-out cubes and a guard band around them.

Kasmanoff et al. (2020, §2) hold out a validation cube of 840³ and a test cube of 868³ voxels of
the 2048³ grid and train on the remaining voxels. Here the cubes keep those side fractions of
any grid. The paper picks their positions by eye (no big voids, no very massive halos); here
they sit at fixed places, validation at the origin and test at the grid's centre, which do not
overlap on any grid.

A training crop must not see a held-out voxel, or the network would learn inputs that the test
later scores it on. The public code has no guard: a training centre just outside the test cube
reads 32 voxels into it. Here a training centre is kept only when its whole crop (half a crop
on each side, with periodic wrap) lies outside both cubes; centres in that guard band belong to
no split. Validation and test centres are the voxels inside their cube (their crops read the
surrounding inputs, as the test cube's painting does).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from darkstack.features.fields.spectra import Region

#: Side fractions of the paper's cubes (840³ and 868³ of 2048³).
PAPER_VALIDATION_FRACTION = 840 / 2048
PAPER_TEST_FRACTION = 868 / 2048

#: Labels of :meth:`Regions.label`.
TRAIN, VALIDATION, TEST, GUARD = 0, 1, 2, -1


def _cube(*, start: int, side: int) -> Region:
    return Region(((start, start + side),) * 3)


def _axis_distance(coordinate: NDArray[np.int64], lo: int, hi: int, grid: int) -> NDArray[np.int64]:
    """Periodic distance in voxels from each coordinate to the interval ``[lo, hi)`` (0 inside)."""
    offset = (coordinate - lo) % grid
    above = offset - (hi - lo - 1)
    return np.where(offset < hi - lo, 0, np.minimum(above, grid - offset))


@dataclass(frozen=True, kw_only=True)
class Regions:
    """The held-out cubes of a grid and the half-crop guard around them.

    Attributes
    ----------
    grid : int
        Voxels per side of the fields.
    validation, test : Region
        The held-out cubes.
    half_crop : int
        Voxels a crop reaches on each side of its centre (``(crop_side - 1) // 2``).
    """

    grid: int
    validation: Region
    test: Region
    half_crop: int

    def label(self, centres: NDArray[np.int64]) -> NDArray[np.int64]:
        """Label of each of ``(n, 3)`` centres: TRAIN, VALIDATION, TEST or GUARD."""
        centres = np.asarray(centres, dtype=np.int64).reshape(-1, 3)
        labels = np.full(centres.shape[0], TRAIN, dtype=np.int64)
        for value, cube in ((VALIDATION, self.validation), (TEST, self.test)):
            distance = np.max(
                [
                    _axis_distance(centres[:, axis], lo, hi, self.grid)
                    for axis, (lo, hi) in enumerate(cube.bounds)
                ],
                axis=0,
            )
            # A crop meets the cube when it reaches it along every axis: Chebyshev distance.
            labels[(distance <= self.half_crop) & (labels == TRAIN)] = GUARD
            labels[distance == 0] = value
        return labels


def paper_regions(
    *,
    grid: int,
    crop_side: int,
    validation_fraction: float = PAPER_VALIDATION_FRACTION,
    test_fraction: float = PAPER_TEST_FRACTION,
) -> Regions:
    """The paper's held-out cubes scaled to ``grid``, guarded by half of ``crop_side``.

    Raises
    ------
    ValueError
        When a crop does not fit in the grid or the cubes would overlap.
    """
    if not 1 <= crop_side < grid:
        raise ValueError(f"crop side {crop_side} must be between 1 and the grid {grid} - 1")
    validation = max(1, round(validation_fraction * grid))
    test = max(1, round(test_fraction * grid))
    start = grid // 2
    if validation > start or start + test > grid:
        raise ValueError(
            f"held-out cubes of {validation} and {test} voxels do not fit side by side in a grid "
            f"of {grid} (expected side fractions of at most 0.5)"
        )
    return Regions(
        grid=grid,
        validation=_cube(start=0, side=validation),
        test=_cube(start=start, side=test),
        half_crop=(crop_side - 1) // 2,
    )
