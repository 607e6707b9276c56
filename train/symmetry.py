"""The symmetries of the square (the dihedral group D4) as random augmentations of maps.

Element ``code`` (0-7) of D4 acts on the last two axes of a tensor: a mirror of the last axis
when ``code >= 4``, then ``code % 4`` quarter turns (:func:`torch.rot90` over ``(-2, -1)``).
The eight are distinct and closed under composition (``tests/train/test_symmetry.py``), so a
uniform draw of ``code`` is a uniform draw over the group. A batch draws one element per
sample and applies it to every tensor of the sample alike: the input views and, for a map
target, the target too.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

#: Elements of the square's symmetry group.
N_DIHEDRAL = 8


def dihedral(maps: torch.Tensor, code: int) -> torch.Tensor:
    """Element ``code`` of D4 applied to the last two (equal) axes of ``maps``."""
    mirrored = maps.flip(-1) if code >= 4 else maps
    return torch.rot90(mirrored, k=code % 4, dims=(-2, -1))


def random_dihedral(
    tensors: Sequence[torch.Tensor], *, generator: torch.Generator
) -> tuple[torch.Tensor, ...]:
    """Each sample of ``tensors`` (all ``(B, ..., n, n)``) under one random element of D4.

    Parameters
    ----------
    tensors : sequence of tensor
        Tensors of the same batch (sample first); sample ``i`` of each is transformed by the
        same element.
    generator : torch.Generator
        Draws the ``B`` elements (one ``torch.randint`` call whatever the number of tensors).

    Returns
    -------
    tuple of tensor
        New tensors, the inputs left as they were.
    """
    transform = torch.randint(0, N_DIHEDRAL, (tensors[0].shape[0],), generator=generator)
    outputs = tuple(tensor.clone() for tensor in tensors)
    for code in range(N_DIHEDRAL):
        chosen = transform == code
        if not chosen.any():
            continue
        for output, tensor in zip(outputs, tensors, strict=True):
            output[chosen] = dihedral(tensor[chosen], code)
    return outputs
