"""Benchmark: training epochs fed by the streaming loader against the same batches held in memory.

The reference is what darkstack did before streaming, and what ``torch.utils.data.TensorDataset``
does: the whole training split read once into a tensor, batches sliced out of it. The streaming
loader (:class:`darkstack.train.data.BatchStream`) reads every batch from ``observations.zarr``
(one zarr read per sample chunk, normalised on the fly) with ``loader_workers`` 0 (in the
training thread) and 1 (a thread reading the next batch). All three give the same batches; the
benchmark times a training epoch of the quick preset's model (architecture B, 4 members, batch
32) fed by each, and the loader alone. Each figure is the median of ``--repeats`` runs after a
warm-up, the variants alternating within every repeat.

Run: ``python benchmarks/bench_streaming.py --store STORE`` (a store with 128 px observations,
e.g. from ``make demo``); writes ``benchmarks/results/bench_streaming.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from darkstack.config import load_config
from darkstack.store import StoreLayout
from darkstack.train.data import Batch, BatchStream
from darkstack.train.loop import member_losses
from darkstack.train.run import load_split_data, prepare_run
from darkstack.train.tasks import get_task
from darkstack.train.tasks.profiles import PRESETS, ProfilesTrainConfig
from darkstack.train.worker import initial_model, training_streams

RESULTS = Path(__file__).parent / "results"
RUN = "bench-streaming"


def in_memory_epochs(
    stream: BatchStream, inputs: torch.Tensor, targets: torch.Tensor
) -> Callable[[int], Iterator[Batch]]:
    """The same epochs as ``stream``, sliced from ``inputs`` and ``targets`` held in memory."""

    def epoch(number: int) -> Iterator[Batch]:
        generator = stream.generator(number)
        for positions in stream.plan(number, generator=generator):
            index = torch.from_numpy(positions)
            batch = inputs[index]
            if stream.augment is not None:
                batch = stream.augment(batch, generator=generator)
            yield Batch(
                inputs=batch,
                targets=targets[index],
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
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
    variants = {"in memory": memory, **variants}
    model = initial_model(paths, task=task)
    record: dict[str, dict[str, object]] = {}
    for label, with_model in (("loader only", None), ("training epoch", model)):
        timings: dict[str, list[float]] = {name: [] for name in variants}
        for epochs in variants.values():  # warm-up
            epoch_seconds(epochs, with_model, 0)
        for repeat in range(args.repeats):
            names = list(variants) if repeat % 2 == 0 else list(reversed(variants))
            for name in names:
                timings[name].append(epoch_seconds(variants[name], with_model, repeat + 1))
        record[label] = {
            name: {"median_s": statistics.median(values), "runs_s": values}
            for name, values in timings.items()
        }
        for name, values in timings.items():
            print(
                f"{label}: {name}: median {statistics.median(values):.2f} s "
                f"(runs {', '.join(f'{v:.2f}' for v in values)})"
            )
    samples = len(stream)
    print(f"{samples} training samples; reading them into memory once took {read_s:.1f} s")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_streaming.json").write_text(
        json.dumps(
            {
                "samples": samples,
                "in_memory_read_s": read_s,
                "threads": args.threads,
                "cpus": len(os.sched_getaffinity(0)),
                "load_average": list(os.getloadavg()),
                **record,
                "numpy": np.__version__,
                "torch": torch.__version__,
            },
            indent=1,
        )
    )
    shutil.rmtree(StoreLayout(args.store).run(RUN).root, ignore_errors=True)


if __name__ == "__main__":
    main()
