"""The square's symmetry group as paired augmentation, against numpy's rot90 and flip."""

from __future__ import annotations

import itertools

import numpy as np
import torch

from darkstack.train.symmetry import N_DIHEDRAL, dihedral, random_dihedral


def _numpy_element(maps: np.ndarray, code: int) -> np.ndarray:
    """D4 element ``code`` by numpy: mirror the last axis if code >= 4, then code % 4 turns."""
    mirrored = np.flip(maps, axis=-1) if code >= 4 else maps
    return np.rot90(mirrored, k=code % 4, axes=(-2, -1))


def _asymmetric(*shape: int, seed: int = 0) -> torch.Tensor:
    # Distinct random values: no symmetry of the square maps such a map onto itself.
    return torch.from_numpy(np.random.default_rng(seed).permutation(np.prod(shape))).reshape(shape)


def test_each_element_matches_numpy_on_inputs_and_target() -> None:
    inputs, target = _asymmetric(3, 6, 6), _asymmetric(6, 6, seed=1)
    for code in range(N_DIHEDRAL):
        np.testing.assert_array_equal(dihedral(inputs, code), _numpy_element(inputs.numpy(), code))
        np.testing.assert_array_equal(dihedral(target, code), _numpy_element(target.numpy(), code))


def test_the_eight_elements_are_distinct_and_closed_under_composition() -> None:
    image = _asymmetric(5, 5)
    images = [dihedral(image, code) for code in range(N_DIHEDRAL)]
    keys = [tuple(m.flatten().tolist()) for m in images]
    assert len(set(keys)) == N_DIHEDRAL
    for first, second in itertools.product(range(N_DIHEDRAL), repeat=2):
        composed = dihedral(dihedral(image, first), second)
        assert tuple(composed.flatten().tolist()) in keys
    # The identity is element 0; a quarter turn has order 4, a mirror order 2.
    assert torch.equal(images[0], image)
    assert torch.equal(dihedral(dihedral(image, 1), 3), image)
    assert torch.equal(dihedral(images[4], 4), image)


def test_a_batch_moves_each_samples_inputs_and_target_by_the_same_element() -> None:
    inputs, targets = _asymmetric(64, 2, 6, 6), _asymmetric(64, 6, 6, seed=1)
    moved, moved_targets = random_dihedral(
        [inputs, targets], generator=torch.Generator().manual_seed(0)
    )
    seen = set()
    for sample in range(64):
        # Which element took the inputs there, found by numpy; the target must follow it.
        (code,) = [
            c
            for c in range(N_DIHEDRAL)
            if np.array_equal(moved[sample].numpy(), _numpy_element(inputs[sample].numpy(), c))
        ]
        expected = _numpy_element(targets[sample].numpy(), code)
        np.testing.assert_array_equal(moved_targets[sample].numpy(), expected)
        seen.add(code)
    assert seen == set(range(N_DIHEDRAL))
    assert torch.equal(inputs, _asymmetric(64, 2, 6, 6))  # the originals are left alone


def test_the_draw_depends_only_on_the_generator() -> None:
    inputs = _asymmetric(32, 1, 4, 4)

    def draw(seed: int, batch: torch.Tensor) -> torch.Tensor:
        return random_dihedral([batch], generator=torch.Generator().manual_seed(seed))[0]

    torch.manual_seed(123)  # the global generator plays no part
    first = draw(7, inputs)
    torch.manual_seed(456)
    assert torch.equal(draw(7, inputs), first)
    assert not torch.equal(draw(8, inputs), first)
    # The elements drawn do not depend on the values: another batch moves the same way.
    other = _asymmetric(32, 1, 4, 4, seed=3)
    other_moved = draw(7, other)
    for sample in range(32):
        code = next(
            c for c in range(N_DIHEDRAL) if torch.equal(dihedral(inputs[sample], c), first[sample])
        )
        assert torch.equal(other_moved[sample], dihedral(other[sample], code))
