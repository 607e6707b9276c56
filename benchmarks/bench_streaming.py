"""Benchmark: training epochs fed by the streaming loader against the same batches held in memory.

The reference is what darkstack did before streaming, and what ``torch.utils.data.TensorDataset``
does: the whole training split read once into a tensor, batches sliced out of it. The streaming
loader (:class:`darkstack.train.data.BatchStream`) reads every batch from ``observations.zarr``
(one zarr read per sample chunk, normalised on the fly) with ``loader_workers`` 0 (in the
training thread) and 1 (a thread reading the next batch). All three give the same batches; the
benchmark times a training epoch of the quick preset's model (architecture B, 4 members, batch
32) fed by each, and the loader alone. Timed by ``_harness.compare``.

Run: ``python benchmarks/bench_streaming.py --store STORE`` (a store with 128 px observations,
e.g. from ``make demo``); writes ``benchmarks/results/streaming.json``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from _harness import Report, compare, print_stats
from bench_ensemble import synthetic_store

from darkstack.config import load_config
from darkstack.store import StoreLayout
from darkstack.train.data import Batch, BatchStream
from darkstack.train.loop import member_losses
from darkstack.train.run import load_split_data, prepare_run
from darkstack.train.tasks import get_task
from darkstack.train.tasks.profiles import PRESETS, ProfilesTrainConfig
from darkstack.train.worker import initial_model, training_streams

RUN = "bench-streaming"


def in_memory_epochs(
    stream: BatchStream, inputs: torch.Tensor, targets: torch.Tensor
) -> Callable[[int], Iterator[Batch]]:
    """The same epochs as ``stream``, sliced from ``inputs`` and ``targets`` held in memory."""

    def epoch(number: int) -> Iterator[Batch]:
        generator = stream.generator(number)
        for positions in stream.plan(number, generator=generator):
            index = torch.from_numpy(positions)
            batch, target = inputs[index], targets[index]
            if stream.augment is not None:
                batch, target = stream.augment(batch, target, generator=generator)
            yield Batch(
                inputs=batch,
                targets=target,
                weights=torch.from_numpy(stream.weights[positions]),
                positions=positions,
            )

    return epoch


def epoch_seconds(
    epochs: Callable[[int], Iterator[Batch]], model: torch.nn.Module | None, number: int
) -> float:
    """Wall time of one epoch; with a model, each batch also takes a training step."""
    task = get_task("profiles")
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-4) if model is not None else None
    start = time.perf_counter()
    for batch in epochs(number):
        if model is None or optimiser is None:
            continue
        model.train()
        per_sample = task.per_sample_loss(model(batch.inputs), batch.targets)
        loss = member_losses(per_sample, batch.weights).sum()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return time.perf_counter() - start


def timed_epochs(
    variants: dict[str, Callable[[int], Iterator[Batch]]], model: torch.nn.Module | None
) -> dict[str, Callable[[], float]]:
    """One call per variant running its next epoch (a new batch order each call)."""
    numbers = iter(range(10**9))
    return {
        name: (lambda epochs=epochs: epoch_seconds(epochs, model, next(numbers)))
        for name, epochs in variants.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--store", type=Path, default=None, help="Default: a synthetic store of --galaxies."
    )
    parser.add_argument("--galaxies", type=int, default=100, help="of the synthetic store")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    args = parser.parse_args()
    given = args.store
    scratch = tempfile.TemporaryDirectory(prefix="darkstack-bench-store-")
    if args.store is None:
        args.store = synthetic_store(Path(scratch.name) / "store", galaxies=args.galaxies)
    torch.set_num_threads(args.threads)
    report = Report(
        bench="streaming",
        title="Streaming batches from zarr",
        about=(
            "Epochs of the training split of a store with 128 px observations, fed by "
            "darkstack's streaming loader (`BatchStream`, one zarr read per sample chunk) "
            "and by the same batches sliced from tensors held in memory; the loader alone, "
            "then with a training step of the quick preset's model (architecture B, 4 "
            "members, batch 32) per batch."
        ),
        parameters={
            "threads": args.threads,
            "store": str(given) if given else f"synthetic, {args.galaxies} galaxies",
        },
    )
    task = get_task("profiles")
    shutil.rmtree(StoreLayout(args.store).run(RUN).root, ignore_errors=True)
    config = load_config(ProfilesTrainConfig, preset=PRESETS["quick"], overrides=[f"run={RUN}"])
    paths = prepare_run(args.store, config, task=task)
    variants: dict[str, Callable[[int], Iterator[Batch]]] = {}
    for workers in (0, 1):
        stream, _ = training_streams(args.store, paths, task=task)
        stream.workers = workers
        variants[f"streaming, {workers} loader worker(s)"] = stream.epoch
    read_start = time.perf_counter()
    split = load_split_data(args.store, paths, "train")
    read_s = time.perf_counter() - read_start
    memory = in_memory_epochs(
        stream, torch.from_numpy(split.inputs), torch.from_numpy(split.targets)
    )
    variants = {"in memory (TensorDataset-like)": memory, **variants}
    model = initial_model(paths, task=task)
    samples = len(stream)
    for label, with_model in (("loader only", None), ("training epoch", model)):
        stats = compare(timed_epochs(variants, with_model), repeats=args.repeats)
        print(f"{label}:")
        print_stats(stats)
        report.comparison(
            f"One epoch, {label}",
            stats,
            reference="in memory (TensorDataset-like)",
            differs=(
                "reads the whole training split into one tensor first (not timed here: "
                "see the figure below) and slices batches from memory, so the split must "
                "fit in memory; the stream reads each batch from zarr as it goes"
            ),
            per=dict.fromkeys(stats, samples),
            per_unit="samples",
        )
    report.parameters["training samples"] = samples
    report.figure("reading the split into memory once", read_s, unit="s")
    report.write()
    shutil.rmtree(StoreLayout(args.store).run(RUN).root, ignore_errors=True)


if __name__ == "__main__":
    main()
