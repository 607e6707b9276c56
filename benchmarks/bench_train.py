"""Benchmark: a bootstrap ensemble against one network, and the loader against the model.

1. Data loading: samples per second of the training batch stream (in-memory tensors with the
   random dihedral augmentation) against the samples per second architecture B consumes in
   training steps (forward and backward, batch 32, one member). Goal: loader >= 10x model.
2. Ensembles: wall time of an ``--members``-member bootstrap ensemble of architecture B
   trained in one Ray Train run (members grouped in one module, one data pass) against one
   member trained alone through the same command on the same samples and epochs. Goal <= 10x
   for 100 members; the paper's sequential approach costs ``members`` x the single run.
3. Where the ensemble's time goes: one training step (forward and backward, batch 32) of the
   ``--members``-member module against the same step of one member, per member. On a CPU the
   members' arithmetic cannot overlap, so this per-member ratio (about 1 when grouping is free)
   times ``members`` bounds the ensemble ratio from below once the data outweigh the fixed
   costs; only hardware with idle parallel capacity (a GPU) brings it towards 10x.

Both are measured in this process on the same run data. Run:
``python benchmarks/bench_train.py --store STORE [--members 100] [--samples 128] [--epochs 1]``
(``STORE`` holds ``observations.zarr`` with 128 px images, e.g. from ``make demo``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch

from darkstack.config import load_config
from darkstack.store import StoreLayout
from darkstack.train.data import Batch, BatchStream
from darkstack.train.loop import member_losses
from darkstack.train.losses import squared_errors
from darkstack.train.models import build_model
from darkstack.train.run import prepare_run
from darkstack.train.session import run_training
from darkstack.train.tasks import get_task
from darkstack.train.tasks.profiles import ProfilesTrainConfig as TrainConfig
from darkstack.train.worker import training_streams

RESULTS = Path(__file__).parent / "results"


def training_stream(store: Path, config: TrainConfig) -> BatchStream:
    """The training split's batch stream of ``config``'s run, as training reads it."""
    paths = prepare_run(store, config)
    stream, _ = training_streams(store, paths, task=get_task("profiles"))
    return stream


def loader_samples_per_s(stream: BatchStream, *, epochs: int = 3) -> float:
    start = time.perf_counter()
    loaded = 0
    for epoch in range(epochs):
        for batch in stream.epoch(epoch):
            loaded += batch.inputs.shape[0]
    return loaded / (time.perf_counter() - start)


def step_seconds(config: TrainConfig, *, n_members: int, batch: Batch, steps: int) -> float:
    """Mean wall time of one training step of an ``n_members`` module (after one warm-up)."""
    model = build_model(config.model, in_channels=len(config.data.channels), n_members=n_members)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-4)
    model.train()
    elapsed = 0.0
    for step in range(steps + 1):
        start = time.perf_counter()
        outputs = model(batch.inputs)
        loss = member_losses(squared_errors(outputs, batch.targets), batch.weights).sum()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step:
            elapsed += time.perf_counter() - start
    return elapsed / steps


def ensemble_against_single(
    store: Path, *, members: int, samples: int, epochs: int, workers: int
) -> dict[str, float]:
    timings = {}
    for n_members in (1, members):
        run = f"bench-ensemble-m{n_members}"
        shutil.rmtree(StoreLayout(store).run(run).root, ignore_errors=True)
        config = load_config(
            TrainConfig,
            overrides=[
                f"run={run}",
                f"n_members={n_members}",
                f"data.max_samples_per_split={samples}",
                f"optim.max_epochs={epochs}",
                f"ray.num_workers={workers}",
            ],
        )
        start = time.perf_counter()
        run_training(config, store=store)
        timings[n_members] = time.perf_counter() - start
        shutil.rmtree(StoreLayout(store).run(run).root, ignore_errors=True)
    single, ensemble = timings[1], timings[members]
    return {
        "members": members,
        "single_s": single,
        "ensemble_s": ensemble,
        "ensemble_over_single": ensemble / single,
        "sequential_estimate_s": members * single,
        "ensemble_over_sequential": ensemble / (members * single),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--members", type=int, default=100)
    parser.add_argument("--samples", type=int, default=128, help="per split, for the ensembles")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1, help="Ray Train workers")
    parser.add_argument("--model-steps", type=int, default=10)
    parser.add_argument("--member-steps", type=int, default=2, help="timed steps per module")
    args = parser.parse_args()
    torch.set_num_threads(2)
    config = load_config(TrainConfig, overrides=["run=bench-loader"])
    stream = training_stream(args.store, config)
    shutil.rmtree(StoreLayout(args.store).run("bench-loader").root, ignore_errors=True)
    batch = next(iter(stream.epoch(0)))
    single_step_s = step_seconds(config, n_members=1, batch=batch, steps=args.model_steps)
    loader_rate = loader_samples_per_s(stream)
    model_rate = batch.inputs.shape[0] / single_step_s
    loading = {
        "loader_samples_per_s": loader_rate,
        "model_samples_per_s": model_rate,
        "loader_over_model": loader_rate / model_rate,
    }
    print(
        f"loader {loading['loader_samples_per_s']:.0f} samples/s, architecture B trains "
        f"{loading['model_samples_per_s']:.1f} samples/s: "
        f"loader x{loading['loader_over_model']:.0f}"
    )
    ensembles = ensemble_against_single(
        args.store,
        members=args.members,
        samples=args.samples,
        epochs=args.epochs,
        workers=args.workers,
    )
    print(
        f"one member {ensembles['single_s']:.1f} s; {args.members}-member bootstrap ensemble "
        f"{ensembles['ensemble_s']:.1f} s: x{ensembles['ensemble_over_single']:.2f} the single "
        f"run, x{ensembles['ensemble_over_sequential']:.3f} of {args.members} sequential runs "
        f"({ensembles['sequential_estimate_s']:.0f} s)"
    )
    ensemble_step_s = step_seconds(
        config, n_members=args.members, batch=batch, steps=args.member_steps
    )
    steps = {
        "single_step_s": single_step_s,
        "ensemble_step_s": ensemble_step_s,
        "per_member_over_single": ensemble_step_s / (args.members * single_step_s),
    }
    print(
        f"one training step: one member {steps['single_step_s']:.2f} s, {args.members} members "
        f"{steps['ensemble_step_s']:.1f} s: x{steps['per_member_over_single']:.2f} a lone "
        "member's step per member"
    )
    RESULTS.mkdir(exist_ok=True)
    arguments = {**vars(args), "store": str(args.store)}
    record = {"loader": loading, "ensemble": ensembles, "steps": steps, "args": arguments}
    (RESULTS / "bench_train.json").write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
