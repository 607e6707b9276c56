"""The 24 right-angle rotations of a cube: dm2gal's augmentation (Kasmanoff et al. 2020, §2).

A rotation is a signed permutation of the three spatial axes with determinant +1: permute the
axes, then flip some of them. Of the 48 signed permutations, the 24 with an odd number of
(permutation parity + flips) are reflections, which a gravity-only field is not symmetric
under in general (chirality), so they are left out. The public code lists its rotations one by
one with ``np.rot90`` (``src/helper_functions.py``); here they are enumerated, so the test can
check that there are 24 of them, all distinct proper rotations.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import permutations, product

import numpy as np
import torch
from numpy.typing import NDArray


@dataclass(frozen=True)
class Rotation:
    """Permute the spatial axes by ``axes``, then reverse those with ``flips`` set."""

    axes: tuple[int, int, int]
    flips: tuple[bool, bool, bool]

    def matrix(self) -> NDArray[np.int64]:
        """The 3x3 signed permutation mapping a voxel's old offset to its new one."""
        matrix = np.zeros((3, 3), dtype=np.int64)
        for new, old in enumerate(self.axes):
            matrix[new, old] = -1 if self.flips[new] else 1
        return matrix

    def apply(self, cubes: torch.Tensor) -> torch.Tensor:
        """Rotate ``(..., X, Y, Z)`` cubes (any leading batch and channel dimensions)."""
        lead = cubes.ndim - 3
        rotated = cubes.permute(*range(lead), *(lead + axis for axis in self.axes))
        dims = [lead + axis for axis, flip in enumerate(self.flips) if flip]
        return rotated.flip(dims) if dims else rotated


def _proper_rotations() -> tuple[Rotation, ...]:
    found = []
    for axes in permutations(range(3)):
        for flips in product((False, True), repeat=3):
            rotation = Rotation(axes=axes, flips=flips)  # type: ignore[arg-type]
            if round(np.linalg.det(rotation.matrix())) == 1:
                found.append(rotation)
    return tuple(found)


#: Every proper right-angle rotation of a cube, the identity first.
ROTATIONS: tuple[Rotation, ...] = _proper_rotations()


def random_rotations(cubes: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
    """Each of ``(B, C, X, Y, Z)`` cubes turned by one of :data:`ROTATIONS` drawn uniformly.

    Turned as numpy views copied once: ``torch.flip`` on a CPU cost 15 ms per 2 x 33³ crop
    here, more than the scaled model's training step per sample.
    """
    choices = torch.randint(0, len(ROTATIONS), (cubes.shape[0],), generator=generator)
    source = cubes.detach().cpu().numpy()
    turned = np.empty_like(source)
    for row, choice in enumerate(choices.tolist()):
        rotation = ROTATIONS[choice]
        view = source[row].transpose(0, *(1 + axis for axis in rotation.axes))
        flips = tuple(slice(None, None, -1) if flip else slice(None) for flip in rotation.flips)
        turned[row] = view[(slice(None), *flips)]
    return torch.from_numpy(turned)
