"""dm2gal's samples: rotations, held-out regions and guard, crops, streaming, the weighted
sampler and its draw per epoch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from darkstack.train.tasks.dm2gal.crops import read_chunk_crops, read_crops
from darkstack.train.tasks.dm2gal.regions import GUARD, TEST, TRAIN, VALIDATION, paper_regions
from darkstack.train.tasks.dm2gal.rotations import ROTATIONS, random_rotations
from darkstack.train.tasks.dm2gal.samples import WeightedDraw, sampler_weights


def _arrays(root: Path, *, grid: int, chunk: int, n: int = 2) -> tuple[list[Any], np.ndarray]:
    import zarr

    group = zarr.open_group(root / "fields.zarr", mode="w")
    values = np.random.default_rng(3).random((n, grid, grid, grid), dtype=np.float32)
    arrays = []
    for i in range(n):
        array = group.create_array(f"f{i}", shape=(grid,) * 3, chunks=(chunk,) * 3, dtype="float32")
        array[...] = values[i]
        arrays.append(array)
    return arrays, values


def test_there_are_24_distinct_proper_rotations_each_invertible() -> None:
    matrices = {tuple(r.matrix().ravel()) for r in ROTATIONS}
    assert len(ROTATIONS) == 24 and len(matrices) == 24
    assert all(round(np.linalg.det(r.matrix())) == 1 for r in ROTATIONS)
    cube = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(1, 2, 3, 4, 5)
    turned = {(*r.apply(cube).shape, *r.apply(cube).flatten().tolist()) for r in ROTATIONS}
    assert len(turned) == 24
    by_matrix = {tuple(r.matrix().ravel()): r for r in ROTATIONS}
    for rotation in ROTATIONS:
        inverse = by_matrix[tuple(rotation.matrix().T.ravel())]
        assert torch.equal(inverse.apply(rotation.apply(cube)), cube)


def test_a_rotation_moves_a_voxel_as_its_matrix_says() -> None:
    side = 5
    centre = side // 2
    for rotation in ROTATIONS:
        cube = torch.zeros(side, side, side)
        cube[centre + 1, centre + 2, centre - 1] = 1.0
        found = np.argwhere(rotation.apply(cube).numpy() == 1.0)[0] - centre
        assert np.array_equal(found, rotation.matrix() @ np.array([1, 2, -1]))


def test_random_rotations_keep_each_sample_a_rotation_of_itself() -> None:
    cubes = torch.rand(6, 2, 4, 4, 4)
    turned = random_rotations(cubes.clone(), generator=torch.Generator().manual_seed(0))
    for before, after in zip(cubes, turned, strict=True):
        assert any(torch.equal(r.apply(before), after) for r in ROTATIONS)


def test_held_out_cubes_scale_with_the_grid_like_the_paper() -> None:
    regions = paper_regions(grid=2048, crop_side=65)
    assert regions.validation.side == 840 and regions.test.side == 868
    assert regions.half_crop == 32
    assert paper_regions(grid=512, crop_side=33).validation.side == 210


def test_guard_band_keeps_every_training_crop_out_of_the_held_out_cubes() -> None:
    grid, side = 40, 9
    regions = paper_regions(grid=grid, crop_side=side)
    held = np.zeros((grid,) * 3, dtype=bool)
    held[regions.validation.slices] = True
    held[regions.test.slices] = True
    centres = np.argwhere(np.ones((grid,) * 3, dtype=bool))
    labels = regions.label(centres)
    half = side // 2
    offsets = np.arange(-half, half + 1)
    touches = np.array(
        [held[np.ix_(*(((c + offsets) % grid) for c in centre))].any() for centre in centres[::7]]
    )
    sampled = labels[::7]
    # Training crops never touch a held-out voxel; every guard-band crop does.
    assert not touches[sampled == TRAIN].any()
    assert touches[sampled == GUARD].all()
    assert np.array_equal(labels == VALIDATION, _inside(centres, regions.validation))
    assert (labels == TEST).sum() == regions.test.side**3
    assert (labels == TRAIN).sum() > 0


def _inside(centres: np.ndarray, cube: Any) -> np.ndarray:
    return np.all(
        [(centres[:, a] >= lo) & (centres[:, a] < hi) for a, (lo, hi) in enumerate(cube.bounds)],
        axis=0,
    )


@pytest.mark.parametrize(("grid", "chunk", "side"), [(24, 8, 7), (16, 8, 13), (12, 4, 5)])
def test_crops_equal_the_periodic_numpy_reference(
    tmp_path: Path, grid: int, chunk: int, side: int
) -> None:
    arrays, values = _arrays(tmp_path, grid=grid, chunk=chunk)
    rng = np.random.default_rng(grid)
    centres = np.concatenate([rng.integers(0, grid, (20, 3)), [[0, 0, 0], [grid - 1] * 3]])
    half = side // 2
    reference = np.stack(
        [
            np.stack(
                [
                    np.take(
                        np.take(
                            np.take(field, np.arange(x - half, x + half + 1), axis=0, mode="wrap"),
                            np.arange(y - half, y + half + 1),
                            axis=1,
                            mode="wrap",
                        ),
                        np.arange(z - half, z + half + 1),
                        axis=2,
                        mode="wrap",
                    )
                    for field in values
                ]
            )
            for x, y, z in centres
        ]
    )
    assert np.array_equal(read_crops(arrays, centres, side=side), reference)
    rolled = np.roll(values, shift=(half - centres[0]).tolist(), axis=(1, 2, 3))
    assert np.array_equal(reference[0], rolled[:, :side, :side, :side])
    streamed = np.empty_like(reference)
    blocks = centres // chunk
    for block in np.unique(blocks, axis=0):
        rows = np.flatnonzero(np.all(blocks == block, axis=1))
        streamed[rows] = read_chunk_crops(arrays, centres[rows], side=side)
    assert np.array_equal(streamed, reference)


def test_the_streaming_reader_refuses_centres_of_two_chunks(tmp_path: Path) -> None:
    arrays, _ = _arrays(tmp_path, grid=16, chunk=8, n=1)
    with pytest.raises(ValueError, match="2 storage chunks"):
        read_chunk_crops(arrays, np.array([[0, 0, 0], [8, 0, 0]]), side=3)


def test_sampler_weights_are_the_inverse_counts_of_100_log_bins() -> None:
    rng = np.random.default_rng(1)
    masses = 10 ** rng.uniform(8.2, 11.5, 5000) + 0.0
    weights = sampler_weights(masses, n_bins=100)
    counts, edges = np.histogram(np.log10(masses), bins=100)
    bins = np.clip(np.digitize(np.log10(masses), edges) - 1, 0, 99)
    assert np.allclose(weights, 1.0 / counts[bins])
    # Every occupied bin carries the same total weight: the draw is flat in log mass.
    totals = np.bincount(bins, weights=weights, minlength=100)
    assert np.allclose(totals[counts > 0], 1.0)


def test_the_weighted_draw_is_new_every_epoch_fixed_by_seed_and_epoch_and_flat_in_log_mass() -> (
    None
):
    from darkstack.train.data import BatchStream

    rng = np.random.default_rng(2)
    # Many light and few massive centres, as in a box: counts per bin fall by ~100 over it.
    log_mass = np.concatenate([rng.uniform(8.2, 9.0, 2000), rng.uniform(9.0, 11.5, 200)])
    n_bins = 10
    weights = sampler_weights(10**log_mass, n_bins=n_bins)
    draw = WeightedDraw(weights=weights, seed=4)
    first, second = draw(0), draw(1)
    assert first.size == second.size == log_mass.size
    assert not np.array_equal(first, second)
    assert np.array_equal(WeightedDraw(weights=weights, seed=4)(1), second)
    assert not np.array_equal(WeightedDraw(weights=weights, seed=5)(1), second)
    # Inverse-count weights make every occupied bin equally likely: over 40 epochs each of
    # the 10 bins gets 1/10 of the draws, within 5 binomial deviations (the uniform draw
    # would put 92% of them in the three lightest bins).
    edges = np.linspace(log_mass.min(), log_mass.max(), n_bins + 1)
    drawn = np.concatenate([draw(epoch) for epoch in range(40)])
    bins = np.clip(np.searchsorted(edges, log_mass[drawn], side="right") - 1, 0, n_bins - 1)
    counts = np.bincount(bins, minlength=n_bins)
    expected = drawn.size / n_bins
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected * (1 - 1 / n_bins)))

    # The stream visits exactly each epoch's draw, in its shuffled order.
    class Source:
        chunk = np.arange(log_mass.size) // 50

    stream = BatchStream(
        source=Source(),
        weights=np.ones((log_mass.size, 1), np.float32),
        batch_size=64,
        shuffle=True,
        augment=None,
        seed=4,
        shuffle_chunks=3,
        draw=draw,
    )
    for epoch in (0, 1):
        visited = np.sort(np.concatenate(stream.plan(epoch)))
        assert np.array_equal(visited, draw(epoch))


def test_the_cached_crop_source_equals_random_access_reads(tmp_path: Path) -> None:
    from darkstack.train.data import BatchStream
    from darkstack.train.tasks.dm2gal.samples import Standardise
    from darkstack.train.tasks.dm2gal.source import CropSource

    grid, side = 16, 5
    arrays, _ = _arrays(tmp_path, grid=grid, chunk=4)
    centres = np.random.default_rng(7).integers(0, grid, (60, 3))
    identity = Standardise(mean=(-1.0, -1.0), std=(1.0, 1.0))
    source = CropSource(
        arrays=arrays,
        centres=centres,
        targets=np.zeros((60, 1), np.float32),
        side=side,
        inputs=identity,
        cached=2,
    )
    stream = BatchStream(
        source=source,
        weights=np.ones((60, 1), np.float32),
        batch_size=7,
        shuffle=True,
        augment=None,
        seed=3,
        shuffle_chunks=2,
    )
    for epoch in (0, 1):
        for batch in stream.epoch(epoch):
            expected = identity(read_crops(arrays, centres[batch.positions], side=side), axis=1)
            assert np.array_equal(batch.inputs.numpy(), expected)


def test_dark_centres_without_a_galaxy_share_the_lowest_bin_and_a_capped_draw_has_its_size() -> (
    None
):
    # Dark-run centres: a fifth hold no galaxy (target 0), the rest 1e8-1e11 Msun.
    rng = np.random.default_rng(5)
    masses = np.where(rng.random(4000) < 0.2, 0.0, 10 ** rng.uniform(8.0, 11.0, 4000))
    weights = sampler_weights(masses, n_bins=10)
    empty = masses == 0
    # log10(1 + 0) = 0 is the minimum: the empty centres fill the lowest bin alone (the rest
    # start at 8 of an 11-wide range) and share its unit weight.
    assert np.allclose(weights[empty], 1.0 / empty.sum())
    assert np.all(np.isfinite(weights)) and np.all(weights > 0)
    draw = WeightedDraw(weights=weights, seed=1, size=500)
    drawn = draw(3)
    assert drawn.size == 500
    assert np.all(np.diff(drawn) >= 0) and drawn.max() < masses.size
    assert np.array_equal(WeightedDraw(weights=weights, seed=1, size=500)(3), drawn)
