"""Training through Ray Train with two CPU workers (data-parallel, DDP over gloo)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from darkstack.config import load_config
from darkstack.train.config import TrainConfig
from darkstack.train.session import run_training

pytest.importorskip("ray.train")


@pytest.mark.timeout(600)
def test_two_ray_workers_train_a_tiny_ensemble(synthetic_store: Callable[..., Path]) -> None:
    store = synthetic_store(n_galaxies=12, image_size=96)
    config = load_config(
        TrainConfig,
        overrides=[
            "run=ray2",
            "n_members=2",
            "data.channels=[sdss_r]",
            "data.batch_size=8",
            "model.image_size=96",
            "optim.max_epochs=2",
            "ray.num_workers=2",
            "torch_threads=1",
        ],
    )
    summary = run_training(config, store=store, use_ray=True)
    assert summary.result is not None
    assert summary.result.epochs == 2
    assert len(summary.result.best_validation_loss) == 2
    run = summary.paths
    assert run.model.exists()
    lines = [json.loads(line) for line in run.metrics.read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [0, 1]  # rank 0 alone writes
    # Ray Train persisted the reported checkpoints under the run.
    assert list(run.ray.rglob("checkpoint.pt"))
