"""Benchmark: time and size of one training checkpoint, quick and paper ensembles.

A checkpoint (:func:`darkstack.train.loop.save_checkpoint`, what a run writes every
``checkpoint_every_epochs`` epochs) holds the model, Adam's state (two moments per weight), the
loop's state with every member's best weights, and the config: about 4x the weights. The
reference is what a user would write by hand: ``torch.save(model.state_dict(), path)``, the
weights alone, which cannot resume a run exactly.

The models are the profiles task's ``quick`` (4 members) and ``paper`` (100 members) presets,
untrained (the size and the write do not depend on the values); Adam's moments are filled by
one step on zero gradients, so the optimiser's state is as large as in training. Each write
replaces the previous file (the loop's atomic write). Every variant runs once as a warm-up,
then ``--repeats`` rounds alternate the order.

Run: ``nice -n 10 python benchmarks/bench_checkpoint.py [--repeats 3] [--dir DIR]`` (needs
~2.5 GB of memory and ~4 GB of free disk in ``DIR``, default a temporary folder; a few
minutes).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from _harness import Report, Stats, compare, print_stats
from torch import nn

from darkstack.atomic import atomic_path
from darkstack.config import load_config
from darkstack.train.loop import CHECKPOINT_NAME, initial_state, save_checkpoint
from darkstack.train.tasks.profiles import PRESETS, TASK, ProfilesTrainConfig

MIB = 2**20


def _model(preset: str) -> tuple[ProfilesTrainConfig, nn.Module, torch.optim.Optimizer]:
    """The preset's member network with Adam's state filled as after a training step."""
    config = load_config(ProfilesTrainConfig, preset=PRESETS[preset])
    torch.manual_seed(config.seed)
    model = TASK.build_network(config)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.optim.learning_rate)
    for parameter in model.parameters():
        parameter.grad = torch.zeros_like(parameter)
    optimiser.step()
    return config, model, optimiser


def _writers(preset: str, folder: Path) -> tuple[dict[str, Callable[[], Any]], int]:
    """The preset's checkpoint and weights-only writers, and its number of weights."""
    config, model, optimiser = _model(preset)
    state = initial_state(model, config.n_members)
    directory = folder / preset
    weights_path = folder / f"{preset}-weights.pt"

    def checkpoint() -> int:
        save_checkpoint(directory, model, optimiser, state, config)
        return (directory / CHECKPOINT_NAME).stat().st_size

    def checkpoint_on_disk() -> int:
        # The loop does not wait for the disk; this is the write's cost once the page cache
        # cannot absorb it (a full cache, a file system that flushes on close).
        size = checkpoint()
        descriptor = os.open(directory / CHECKPOINT_NAME, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        return size

    def weights_only() -> int:
        with atomic_path(weights_path) as temporary:
            torch.save(model.state_dict(), temporary)
        return weights_path.stat().st_size

    n_weights = sum(parameter.numel() for parameter in model.parameters())
    label = f"{preset} ({config.n_members} members)"
    return {
        f"checkpoint, {label}": checkpoint,
        f"checkpoint then fsync, {label}": checkpoint_on_disk,
        f"weights-only torch.save, {label}": weights_only,
    }, n_weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="Where the files are written.")
    args = parser.parse_args()
    torch.set_num_threads(2)
    report = Report(
        bench="checkpoint",
        title="Training checkpoints: time and size per write",
        about=(
            "One checkpoint write of the profiles task (model, Adam's moments, every member's "
            "best weights, config: what a run writes every `checkpoint_every_epochs` epochs "
            "and resumes from) for the quick (4 members) and paper (100 members) presets' "
            "architecture B at 128 px, against `torch.save` of the weights alone, what a "
            "user would write by hand. Written to the machine's local disk, each write "
            "replacing the last; the loop returns once the page cache holds the file, the "
            "fsync variant waits for the disk."
        ),
    )
    with tempfile.TemporaryDirectory(prefix="darkstack-bench-checkpoint-", dir=args.dir) as tmp:
        folder = Path(tmp)
        variants: dict[str, Callable[[], Any]] = {}
        weights: dict[str, int] = {}
        for preset in ("quick", "paper"):
            writers, n_weights = _writers(preset, folder)
            variants.update(writers)
            weights[preset] = n_weights
        stats = compare(variants, repeats=args.repeats)
    print_stats(stats)
    for preset in ("quick", "paper"):
        chosen: dict[str, Stats] = {name: s for name, s in stats.items() if f"{preset} (" in name}
        reference = next(name for name in chosen if name.startswith("weights-only"))
        sizes = {name: stat.value / MIB for name, stat in chosen.items()}
        report.comparison(
            f"One write, {preset} preset",
            chosen,
            reference=reference,
            differs=(
                "the weights alone: no optimiser state and no best weights, so a run cannot "
                "resume from it exactly; a quarter of the checkpoint's bytes"
            ),
            notes={name: f"{size:,.0f} MiB per write" for name, size in sizes.items()},
        )
        for name, size in sizes.items():
            if "fsync" in name:
                continue  # the same file as the checkpoint's
            report.figure(f"size per write: {name}", size, unit="MiB")
            print(f"  {name:60s} {size:10,.0f} MiB")
        report.figure(f"weights, {preset} preset", weights[preset], unit="parameters")
    report.note(
        "A 200-epoch paper run writes its checkpoint every 10 epochs (and after its last): "
        "20 writes instead of 200, from its `checkpoint_every_epochs: 10`."
    )
    report.note(
        "With free memory the page cache absorbs a write and the disk catches up while "
        "training goes on; the fsync figures are the cost when it cannot. A cluster's network "
        "file system may be slower than this local disk."
    )
    report.write()


if __name__ == "__main__":
    main()
