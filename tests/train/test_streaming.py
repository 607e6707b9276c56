"""The streaming loader: its epoch plan, its reads, and its memory on a split 4x its budget."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import zarr
from numpy.typing import NDArray

from darkstack.config import load_config
from darkstack.train.data import BatchStream, ZarrSamples
from darkstack.train.run import prepare_run

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import toy_task  # noqa: E402


class CountingSource:
    """Samples ``0..n-1`` in chunks of ``chunk_size``; inputs are the sample numbers."""

    def __init__(self, n: int, chunk_size: int) -> None:
        self.chunk = np.arange(n) // chunk_size
        self.reads: list[NDArray[np.int64]] = []

    def read(self, positions: NDArray[np.int64]) -> tuple[NDArray[Any], NDArray[Any]]:
        assert np.unique(self.chunk[positions]).size == 1, "a read spans several chunks"
        self.reads.append(positions)
        return positions.astype(np.float32)[:, None], positions.astype(np.float32)


def stream(source: Any, **options: Any) -> BatchStream:
    settings: dict[str, Any] = {
        "batch_size": 8,
        "shuffle": True,
        "augment": None,
        "seed": 3,
        "weights": np.ones((source.chunk.size, 2), dtype=np.float32),
    }
    return BatchStream(source=source, **{**settings, **options})


def test_an_epoch_visits_every_sample_once_in_a_seeded_chunk_aware_order() -> None:
    source = CountingSource(100, chunk_size=5)
    loader = stream(source, shuffle_chunks=2)
    order = np.concatenate(loader.plan(4))
    assert np.array_equal(np.sort(order), np.arange(100))
    assert np.array_equal(order, np.concatenate(loader.plan(4)))
    assert not np.array_equal(order, np.concatenate(loader.plan(5)))
    # Windows of 2 chunks: the 10 samples of a window come out together, shuffled.
    windows = [order[start : start + 10] for start in range(0, 100, 10)]
    assert all(np.unique(source.chunk[window]).size <= 2 for window in windows)
    assert not all(np.all(np.diff(window) > 0) for window in windows)


def test_ranks_take_equal_disjoint_shards() -> None:
    source = CountingSource(103, chunk_size=5)
    shards = [np.concatenate(stream(source, rank=r, world_size=3).plan(2)) for r in range(3)]
    assert [shard.size for shard in shards] == [34, 34, 34]
    assert np.unique(np.concatenate(shards)).size == 102


def test_one_sample_per_chunk_gives_the_permutation_of_samples() -> None:
    # The order of the in-memory loader this one replaced (and so of runs trained before).
    plan = np.concatenate(stream(CountingSource(50, chunk_size=1)).plan(7))
    expected = torch.randperm(50, generator=torch.Generator().manual_seed(3 * 1_000_003 + 7))
    assert np.array_equal(plan, expected.numpy())


def test_a_batch_reads_each_of_its_chunks_once() -> None:
    source = CountingSource(60, chunk_size=6)
    batches = list(stream(source, batch_size=10).epoch(0))
    for batch in batches:
        assert np.array_equal(batch.inputs[:, 0].numpy(), batch.positions)
        assert np.array_equal(batch.targets.numpy(), batch.positions)
    expected = sum(np.unique(source.chunk[batch.positions]).size for batch in batches)
    assert len(source.reads) == expected


def test_streamed_batches_equal_the_store_and_do_not_depend_on_workers(tmp_path: Path) -> None:
    array = zarr.create_array(tmp_path / "a.zarr", shape=(40, 2, 3), chunks=(7, 2, 3), dtype="f4")
    values = np.random.default_rng(0).normal(size=(40, 2, 3)).astype(np.float32)
    array[:] = values
    samples = np.array([1, 2, 3, 8, 9, 15, 16, 17, 18, 30, 31, 39])
    source = ZarrSamples(
        array=array,
        samples=samples,
        targets=samples.astype(np.float32),
        select=(np.array([1]), slice(None)),
        transform=lambda x: 2 * x,
    )

    def flip(
        inputs: torch.Tensor, targets: torch.Tensor, *, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        signs = torch.randint(0, 2, (inputs.shape[0], 1, 1), generator=generator) * 2 - 1
        return inputs * signs, targets * signs[:, 0, 0]

    reference = list(stream(source, batch_size=5, augment=flip, shuffle_chunks=2).epoch(1))
    for batch in reference:
        expected = 2 * values[samples[batch.positions]][:, [1]]
        assert np.allclose(np.abs(batch.inputs.numpy()), np.abs(expected))
        # The augmentation sees each sample's target with its inputs (one sign for both).
        signs = np.sign(batch.inputs.numpy()[:, 0, 0]) * np.sign(expected[:, 0, 0])
        assert np.array_equal(batch.targets.numpy(), signs * samples[batch.positions])
    for workers in (1, 3):
        batches = stream(source, batch_size=5, augment=flip, shuffle_chunks=2, workers=workers)
        for a, b in zip(reference, batches.epoch(1), strict=True):
            assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)


#: Runs in a fresh interpreter: the loader's peak resident memory over one training epoch.
_MEASURE = """
import gc, json, sys
from pathlib import Path
sys.path.insert(0, {here!r})
import numpy as np
import toy_task
from darkstack.store import RunPaths
from darkstack.train.run import load_split
from darkstack.train.tasks import get_task
from darkstack.train.worker import training_streams


def status():
    with open("/proc/self/status") as file:
        lines = dict(line.split(":", 1) for line in file)
    return {{key: int(lines[key].split()[0]) * 1024 for key in ("VmRSS", "VmHWM")}}


def reset_peak():
    with open("/proc/self/clear_refs", "w") as file:
        file.write("5")


store, paths = Path({store!r}), RunPaths(Path({run!r}))
train, _ = training_streams(store, paths, task=get_task("toy"))
for batch in train.epoch(0):
    del batch
peaks, streamed = [], 0
for epoch in range(1, {epochs} + 1):
    gc.collect()
    reset_peak()
    before = status()["VmRSS"]
    for batch in train.epoch(epoch):
        streamed += batch.inputs.shape[0]
        del batch
    peaks.append(status()["VmHWM"] - before)
# The same instrument on the split read whole, as the loader this one replaced did.
gc.collect()
reset_peak()
before = status()["VmRSS"]
samples = np.asarray(load_split(paths)["train"]["samples"])
whole = toy_task.open_volumes(store)["volumes"].get_orthogonal_selection((samples,))
control = status()["VmHWM"] - before
print(json.dumps({{"peaks": peaks, "control": control, "streamed": streamed}}))
"""


@pytest.mark.skipif(
    not Path("/proc/self/clear_refs").exists(), reason="needs Linux's /proc/self/clear_refs"
)
def test_a_split_four_times_the_loaders_memory_streams_in_two_chunks_and_a_batch(
    tmp_path: Path,
) -> None:
    """The loader holds at most two chunks and the batch, training from a split 4x that size.

    What the loader holds at its peak: the batch it fills, and the chunk it reads (zarr's
    decoded copy of the chunk, its compressed bytes and the samples selected from it). That is
    below two chunks plus the batch in every epoch but those where zarr-python's I/O and
    decoding threads (``asyncio.to_thread``) still hold the bytes of the previous read: such a
    thread drops its reference only when next scheduled, after the next read has begun (seen in
    about one epoch in ten here, by tracemalloc's tracebacks). So: every epoch stays below
    three chunks plus the batch, and the median epoch below two chunks plus the batch.

    Why the measurement is sound: it runs in a fresh interpreter doing nothing else (no pytest
    heap); glibc's mmap threshold is fixed at 64 KiB (``MALLOC_MMAP_THRESHOLD_``), so every
    array buffer is a mapping of its own, mapped when allocated and unmapped when freed, and
    resident memory follows the live arrays instead of a heap that keeps freed memory; the
    kernel's high-water mark is reset (``/proc/self/clear_refs``) before each epoch, after a
    warm-up epoch (torch, zarr and their threads initialise once), so each peak is that
    epoch's, above what was resident before it. The control reads the split whole with the
    same instrument and must see all of it.
    """
    side, chunk_samples, batch_size, epochs = 32, 16, 4, 5
    store = toy_task.write_toy_store(
        tmp_path / "store", n_groups=180, side=side, chunk_samples=chunk_samples, seed=1
    )
    config = load_config(
        toy_task.ToyTrainConfig,
        overrides=[f"data.batch_size={batch_size}", "data.loader_workers=0", "n_members=2"],
    )
    paths = prepare_run(store, config)
    sample_bytes = side**3 * 4
    chunk_bytes, batch_bytes = chunk_samples * sample_bytes, batch_size * sample_bytes
    split_bytes = len(json.loads(paths.split.read_text())["train"]["samples"]) * sample_bytes
    assert split_bytes >= 4 * (3 * chunk_bytes + batch_bytes)
    script = _MEASURE.format(here=str(HERE), store=str(store), run=str(paths.root), epochs=epochs)
    environment = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    measured = json.loads(result.stdout.splitlines()[-1])
    assert measured["streamed"] == epochs * split_bytes // sample_bytes
    assert measured["control"] >= split_bytes, measured
    assert np.median(measured["peaks"]) < 2 * chunk_bytes + batch_bytes, measured
    assert max(measured["peaks"]) < 3 * chunk_bytes + batch_bytes, measured
