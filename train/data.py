"""Training data of any task: splits by group, bootstrap weights, and batches streamed from zarr.

Splits are drawn over *groups* (the galaxy, dwarf or cluster a sample shows) so no object's
realisations cross train, validation and test; bootstrap resamples draw whole groups.

Batches stream from the store: a split never has to fit in memory. A :class:`SampleSource`
reads the samples of one storage chunk at a time (:class:`ZarrSamples` for an array whose first
dimension is the sample); :class:`BatchStream` plans each epoch from ``(seed, epoch, rank)``
alone, so a resumed run sees the same batches, and reads every batch's samples chunk by chunk
into that batch. It holds no decoded chunk between batches, so its memory is the batches in
flight plus one chunk read at a time: with ``loader_workers=0``, one batch, and the compressed
and the decoded bytes of the chunk being read (zarr decodes a chunk into a buffer of its own,
then copies the selected samples out). ``tests/train/test_streaming.py`` measures it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from numpy.typing import NDArray

from darkstack.errors import InputError

SPLITS = ("train", "validation", "test")


def split_by_group(
    groups: NDArray[np.int64],
    *,
    fractions: Sequence[float],
    seed: int,
    n_folds: int = 0,
    fold: int = 0,
) -> dict[str, NDArray[np.int64]]:
    """Positions of the samples in each split, drawn over groups.

    Parameters
    ----------
    groups : ndarray of int
        The group (galaxy, cluster, ...) of each sample; all samples of a group land in the
        same split.
    fractions : sequence of 3 floats
        Train, validation and test fractions of the groups.
    seed : int
        Seed of the permutation of groups.
    n_folds, fold : int
        With ``n_folds >= 2``, the test split is fold ``fold`` of
        :func:`~darkstack.train.folds.galaxy_folds` and the rest is split into train and
        validation in the ratio of the first two fractions.

    Returns
    -------
    dict
        ``{"train": positions, "validation": ..., "test": ...}``, sorted positions into
        ``groups``; none is empty.

    Raises
    ------
    darkstack.errors.InputError
        With fewer groups than splits.
    """
    if n_folds >= 2:
        from darkstack.train.folds import galaxy_folds

        rest, test = galaxy_folds(groups, n_folds=n_folds, seed=seed)[fold]
        share = fractions[1] / (fractions[0] + fractions[1])
        inner = split_by_group(groups[rest], fractions=(1 - share, share / 2, share / 2), seed=seed)
        return {
            "train": rest[inner["train"]],
            "validation": np.sort(rest[np.concatenate([inner["validation"], inner["test"]])]),
            "test": test,
        }
    unique = np.unique(groups)
    if unique.size < len(SPLITS):
        raise InputError(
            f"{unique.size} groups cannot fill the {', '.join(SPLITS)} splits; need at least "
            f"{len(SPLITS)}"
        )
    order = np.random.default_rng(seed).permutation(unique)
    edges = np.round(np.cumsum(fractions)[:-1] * unique.size).astype(int)
    # Every split keeps at least one group, whatever the rounding of small fractions.
    edges[0] = np.clip(edges[0], 1, unique.size - 2)
    edges[1] = np.clip(edges[1], edges[0] + 1, unique.size - 1)
    return {
        name: np.flatnonzero(np.isin(groups, members))
        for name, members in zip(SPLITS, np.split(order, edges), strict=True)
    }


def subsample_groups(groups: NDArray[np.int64], *, limit: int, seed: int) -> NDArray[np.int64]:
    """Positions of at most ``limit`` samples, whole groups drawn in a seeded random order.

    For learning curves: the first samples by index would be the first groups of the catalog,
    which is sorted by halo mass. Only the last group drawn may be cut short.

    Parameters
    ----------
    groups : ndarray of int
        The group of each sample.
    limit : int
        Samples to keep (0 or at least all of them: every position).
    seed : int
        Seed of the group order.
    """
    if limit <= 0 or limit >= groups.size:
        return np.arange(groups.size)
    unique = np.unique(groups)
    rank = np.empty(unique.size, dtype=np.int64)
    rank[np.random.default_rng(seed).permutation(unique.size)] = np.arange(unique.size)
    order = np.lexsort((np.arange(groups.size), rank[np.searchsorted(unique, groups)]))
    return np.sort(order[:limit])


def bootstrap_weights(
    groups: NDArray[np.int64], *, n_members: int, seed: int
) -> NDArray[np.float32]:
    """How often each training sample's group appears in each member's resample.

    Member ``m`` draws as many groups as the training split holds, with replacement; a sample
    then weighs its group's count in the member's loss, which is the loss on the resample
    exactly (all realisations of a drawn group come along, as in a resample of groups).

    Returns
    -------
    ndarray, shape (n_samples, n_members)
    """
    unique, inverse = np.unique(groups, return_inverse=True)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0xB007,)))
    counts = rng.multinomial(unique.size, np.full(unique.size, 1 / unique.size), n_members)
    return counts.T[inverse].astype(np.float32)


class SampleSource(Protocol):
    """The samples of one split, read a storage chunk at a time.

    Attributes
    ----------
    chunk : ndarray of int
        The storage chunk holding each sample (any labels; equal labels, one chunk).
    """

    chunk: NDArray[np.int64]

    def read(self, positions: NDArray[np.int64]) -> tuple[NDArray[Any], NDArray[Any]]:
        """Model inputs and targets of ``positions`` (samples of one chunk), in that order."""
        ...


class ZarrSamples:
    """Samples along the first dimension of a zarr array, with their targets held in memory.

    Parameters
    ----------
    array : zarr.Array
        Inputs with the sample first, chunked along it.
    samples : ndarray of int
        Index along the array's first dimension of each sample of the split.
    targets : ndarray
        Target of each sample, ``(n, *target_shape)``.
    select : tuple
        Orthogonal selection of the remaining dimensions (a channel subset, ``slice(None)``).
    transform : callable, optional
        Normalisation applied to each read, ``(k, ...) -> (k, ...)`` float32 (it may work in
        place).
    """

    def __init__(
        self,
        *,
        array: Any,
        samples: NDArray[np.int64],
        targets: NDArray[Any],
        select: tuple[Any, ...] = (),
        transform: Callable[[NDArray[Any]], NDArray[Any]] | None = None,
    ) -> None:
        if samples.shape[0] != targets.shape[0]:
            raise ValueError(f"{samples.shape[0]} samples but {targets.shape[0]} targets")
        self.array = array
        self.samples = np.asarray(samples, dtype=np.int64)
        self.targets = targets
        self.select = select
        self.transform = transform
        self.chunk = self.samples // int(array.chunks[0])

    def read(self, positions: NDArray[np.int64]) -> tuple[NDArray[Any], NDArray[Any]]:
        inputs = self.array.get_orthogonal_selection((self.samples[positions], *self.select))
        if self.transform is not None:
            inputs = self.transform(inputs)
        return inputs, self.targets[positions]


@dataclass(frozen=True, kw_only=True)
class Batch:
    """Model inputs, targets and per-member loss weights of a batch, and the samples in it."""

    inputs: torch.Tensor
    targets: torch.Tensor
    weights: torch.Tensor
    #: Positions of the batch's samples in the stream's source.
    positions: NDArray[np.int64]


#: Random augmentation of a batch's inputs and targets, drawing from the stream's generator.
Augment = Callable[..., tuple[torch.Tensor, torch.Tensor]]
#: The positions of the source an epoch visits (repeats allowed), from the epoch alone: a
#: sampler that draws anew every epoch (dm2gal's weighted sampler).
EpochDraw = Callable[[int], NDArray[np.int64]]


class BatchStream:
    """Epochs of batches read from a :class:`SampleSource`, sharded over data-parallel ranks.

    An epoch's order depends on ``(seed, epoch)`` only: storage chunks in a random order, the
    samples of every ``shuffle_chunks`` consecutive chunks shuffled together, the sequence cut
    into equal contiguous shards, one per rank, and each shard into batches. With one sample
    per chunk the order is ``torch.randperm`` of the samples. An epoch visits every sample of
    the source once, or, with a ``draw``, the positions ``draw(epoch)`` names (ordered the
    same way, by their chunks). Augmentation draws from the same
    generator in batch order, in the consuming thread, so reading ahead changes nothing.

    Parameters
    ----------
    source : SampleSource
        The split's samples.
    weights : ndarray (n, n_members)
        Per-member sample weights (bootstrap counts, or ones).
    batch_size : int
        Samples per batch on each rank.
    shuffle : bool
        Random order (training); off, samples come in source order (evaluation).
    augment : callable, optional
        ``augment(inputs, targets, generator=...) -> (inputs, targets)``; None for
        evaluation.
    seed : int
        With the epoch, fixes order and augmentation, so a resumed run sees the same batches.
    rank, world_size : int
        This process' shard of each epoch.
    shuffle_chunks : int
        Chunks whose samples are shuffled together.
    workers : int
        Threads reading upcoming batches (0: read when the batch is asked for).
    draw : callable, optional
        ``draw(epoch)``: the source positions the epoch visits, the same on every rank (it must
        depend on the epoch alone, so a resumed run draws the same).
    """

    def __init__(
        self,
        *,
        source: SampleSource,
        weights: NDArray[np.float32],
        batch_size: int,
        shuffle: bool,
        augment: Augment | None,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        shuffle_chunks: int = 1,
        workers: int = 0,
        draw: EpochDraw | None = None,
    ) -> None:
        if source.chunk.shape[0] != weights.shape[0]:
            raise ValueError("the source and the weights must have one row per sample")
        self.source = source
        self.weights = np.asarray(weights, dtype=np.float32)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.augment = augment
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.shuffle_chunks = shuffle_chunks
        self.workers = workers
        self.draw = draw

    def __len__(self) -> int:
        """Samples of the source (all ranks)."""
        return int(self.source.chunk.shape[0])

    def generator(self, epoch: int) -> torch.Generator:
        """The generator of ``epoch``'s chunk order and augmentation."""
        return torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)

    def plan(
        self, epoch: int, *, generator: torch.Generator | None = None
    ) -> list[NDArray[np.int64]]:
        """Positions of every batch this rank reads in ``epoch``.

        ``generator`` is :meth:`generator` ``(epoch)``, left where the epoch's augmentation
        continues drawing.
        """
        generator = generator or self.generator(epoch)
        visits = np.arange(len(self)) if self.draw is None else self.draw(epoch)
        n = visits.size
        if self.shuffle:
            labels, chunk = np.unique(self.source.chunk[visits], return_inverse=True)
            rank = np.empty(labels.size, dtype=np.int64)
            rank[torch.randperm(labels.size, generator=generator).numpy()] = np.arange(labels.size)
            window = rank[chunk] // self.shuffle_chunks
            # Shuffles within windows draw from their own generator: the epoch's stays where it
            # would be with one sample per chunk, whose windows of one sample need none.
            within = np.random.default_rng([self.seed, epoch]).random(n)
            order = visits[np.lexsort((within, window))]
        else:
            order = visits
        # Equal shards: every data-parallel rank must take the same number of steps.
        per_rank = n // self.world_size if self.world_size > 1 else n
        shard = order[self.rank * per_rank : (self.rank + 1) * per_rank]
        return [
            shard[start : start + self.batch_size]
            for start in range(0, shard.size, self.batch_size)
        ]

    def epoch(self, epoch: int) -> Iterator[Batch]:
        """The batches of this rank in ``epoch``."""
        generator = self.generator(epoch)
        batches = self.plan(epoch, generator=generator)
        reads = self._read_all(batches)
        for positions in batches:
            inputs, targets = next(reads)
            tensor, target = torch.from_numpy(inputs), torch.from_numpy(targets)
            if self.augment is not None:
                tensor, target = self.augment(tensor, target, generator=generator)
            yield Batch(
                inputs=tensor,
                targets=target,
                weights=torch.from_numpy(self.weights[positions]),
                positions=positions,
            )
            # The consumer holds the batch now; hold nothing of it while reading the next.
            del inputs, targets, tensor, target

    def _read_all(
        self, batches: list[NDArray[np.int64]]
    ) -> Iterator[tuple[NDArray[Any], NDArray[Any]]]:
        """Every batch's inputs and targets in order, ``workers`` batches read ahead."""
        if self.workers == 0:
            for positions in batches:
                yield self._read(positions)
            return
        with ThreadPoolExecutor(self.workers, thread_name_prefix="darkstack-loader") as pool:
            pending: deque[Future[tuple[NDArray[Any], NDArray[Any]]]] = deque()
            upcoming = iter(batches)
            try:
                for positions in upcoming:
                    pending.append(pool.submit(self._read, positions))
                    if len(pending) == self.workers:
                        break
                while pending:
                    done = pending.popleft()
                    following = next(upcoming, None)
                    if following is not None:
                        pending.append(pool.submit(self._read, following))
                    yield done.result()
            finally:
                for future in pending:
                    future.cancel()

    def _read(self, positions: NDArray[np.int64]) -> tuple[NDArray[Any], NDArray[Any]]:
        """One batch, one read per storage chunk it draws from."""
        chunk = self.source.chunk[positions]
        inputs: NDArray[Any] | None = None
        targets: NDArray[Any] | None = None
        for label in np.unique(chunk):
            rows = np.flatnonzero(chunk == label)
            part_inputs, part_targets = self.source.read(positions[rows])
            if inputs is None or targets is None:
                inputs = np.empty((positions.size, *part_inputs.shape[1:]), part_inputs.dtype)
                targets = np.empty((positions.size, *part_targets.shape[1:]), part_targets.dtype)
            inputs[rows] = part_inputs
            targets[rows] = part_targets
            del part_inputs
        if inputs is None or targets is None:
            raise ValueError("a batch without samples")
        return inputs, targets
