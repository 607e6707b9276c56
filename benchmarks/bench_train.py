"""Benchmark: the training loader against the model, and an ensemble's step against lone steps.

1. Data loading: an epoch of the training batch stream (in-memory tensors with the random
   dihedral augmentation) against training steps of architecture B (forward and backward,
   batch 32, one member) over as many samples, both in samples per second. Goal: the loader
   >= 10x the model, so that it never holds training up.
2. Where an ensemble's time goes: one training step of the ``--members``-member module
   (members grouped in one module) against ``--members`` steps of a lone network on the same
   batch, one after the other. On a CPU the members' arithmetic cannot overlap, so a ratio
   near 1 means grouping is free; whole runs are compared in ``bench_ensemble.py``.

Run: ``python benchmarks/bench_train.py --store STORE [--members 8] [--repeats 3]`` (``STORE``
holds ``observations.zarr`` with 128 px images, e.g. from ``make demo``).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import torch
from _harness import Report, compare, print_stats
from bench_ensemble import synthetic_store

from darkstack.config import load_config
from darkstack.store import StoreLayout
from darkstack.train.data import Batch, BatchStream
from darkstack.train.loop import member_losses
from darkstack.train.losses import squared_errors
from darkstack.train.models import build_model
from darkstack.train.run import prepare_run
from darkstack.train.tasks import get_task
from darkstack.train.tasks.profiles import ProfilesTrainConfig as TrainConfig
from darkstack.train.worker import training_streams


def training_stream(store: Path, config: TrainConfig) -> BatchStream:
    """The training split's batch stream of ``config``'s run, as training reads it."""
    paths = prepare_run(store, config)
    stream, _ = training_streams(store, paths, task=get_task("profiles"))
    return stream


def trainer(config: TrainConfig, *, n_members: int, batch: Batch) -> object:
    """A function taking ``steps`` training steps of an ``n_members`` module on ``batch``."""
    model = build_model(config.model, in_channels=len(config.data.channels), n_members=n_members)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-4)
    model.train()
    weights = batch.weights[:, :n_members]

    def steps(count: int) -> int:
        for _ in range(count):
            outputs = model(batch.inputs)
            loss = member_losses(squared_errors(outputs, batch.targets), weights).sum()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        return count

    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--store", type=Path, default=None, help="Default: a synthetic store of --galaxies."
    )
    parser.add_argument("--galaxies", type=int, default=100, help="of the synthetic store")
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    given = args.store
    scratch = tempfile.TemporaryDirectory(prefix="darkstack-bench-store-")
    if args.store is None:
        args.store = synthetic_store(Path(scratch.name) / "store", galaxies=args.galaxies)
    torch.set_num_threads(2)
    report = Report(
        bench="train",
        title="Training: loader, model and grouped members",
        about=(
            "Architecture B (128 px, the default channels, batch 32) on 2 CPU threads: the "
            "training batch stream against the model's training steps, and one step of a "
            "grouped ensemble against as many steps of a lone network."
        ),
        parameters={
            "members": args.members,
            "store": str(given) if given else f"synthetic, {args.galaxies} galaxies",
        },
    )
    config = load_config(TrainConfig, overrides=["run=bench-loader", f"n_members={args.members}"])
    stream = training_stream(args.store, config)
    shutil.rmtree(StoreLayout(args.store).run("bench-loader").root, ignore_errors=True)
    batch = next(iter(stream.epoch(0)))
    size = batch.inputs.shape[0]
    samples = len(stream)
    lone = trainer(config, n_members=1, batch=batch)
    grouped = trainer(config, n_members=args.members, batch=batch)
    model_steps = max(1, samples // size)

    def loader() -> int:
        return sum(b.inputs.shape[0] for b in stream.epoch(1))

    stats = compare(
        {
            "batch stream, one epoch": loader,
            "architecture B training steps, as many samples": lambda: lone(model_steps),  # type: ignore[operator]
        },
        repeats=args.repeats,
    )
    print_stats(stats)
    report.comparison(
        "Loader against model",
        stats,
        reference="architecture B training steps, as many samples",
        differs=(
            "the model's forward and backward passes on one batch of 32 (the work the "
            "loader must keep fed); the loader only builds batches"
        ),
        per={
            "batch stream, one epoch": samples,
            "architecture B training steps, as many samples": model_steps * size,
        },
        per_unit="samples",
    )
    steps = compare(
        {
            f"one step of the {args.members}-member module": lambda: grouped(1),  # type: ignore[operator]
            f"{args.members} steps of a lone network": lambda: lone(args.members),  # type: ignore[operator]
        },
        repeats=args.repeats,
    )
    print_stats(steps)
    report.comparison(
        "Grouped members against lone steps",
        steps,
        reference=f"{args.members} steps of a lone network",
        differs=(
            "one network stepped as many times as there are members, on the same batch; the "
            "grouped module runs its members' convolutions member by member on a CPU"
        ),
    )
    report.write()


if __name__ == "__main__":
    main()
