"""Training through Ray Train: the profiles task with two CPU workers (DDP over gloo), and the
toy task resumed under Ray. One local Ray instance serves the module (it takes ~30 s to start)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# ray[train] is a dependency: without it these tests fail (the loopback one must never skip).
import ray.train  # noqa: F401

from darkstack.config import load_config
from darkstack.train.session import run_training
from darkstack.train.tasks.profiles import ProfilesTrainConfig

sys.path.insert(0, str(Path(__file__).parent))
import toy_task
from toy_task import assert_same_weights, toy_config, train_interrupted

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[None]:
    from darkstack.cluster.ray import ray_session

    # Ray's workers unpickle the toy task the driver hands them by importing its module, which
    # lives in this test folder: they inherit this PYTHONPATH from the instance started here.
    with pytest.MonkeyPatch.context() as patch:
        path = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
        patch.setenv("PYTHONPATH", path)
        with ray_session(num_cpus=2):
            yield


@pytest.mark.timeout(600)
def test_two_ray_workers_train_a_tiny_ensemble(
    ray_instance: None, synthetic_store: Callable[..., Path]
) -> None:
    store = synthetic_store(n_galaxies=12, image_size=96)
    config = load_config(
        ProfilesTrainConfig,
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


@pytest.mark.timeout(600)
def test_the_toy_task_resumes_under_ray_train(ray_instance: None, tmp_path: Path) -> None:
    store = toy_task.write_toy_store(tmp_path / "store")
    straight = run_training(
        toy_config(run="straight", **{"optim.max_epochs": 4}), store=store, use_ray=False
    )
    # Interrupted after its second epoch in this process, then finished by a Ray Train worker.
    config = toy_config(run="resumed", **{"optim.max_epochs": 4})
    resumed = train_interrupted(store, config, after_epoch=1)
    summary = run_training(config, store=store, use_ray=True)
    assert summary.result is not None and summary.result.epochs == 4
    epochs = [json.loads(line)["epoch"] for line in resumed.metrics.read_text().splitlines()]
    assert epochs == [0, 1, 2, 3]
    assert list(resumed.ray.rglob("checkpoint.pt"))
    assert_same_weights(straight.paths, resumed)


def test_the_local_instance_listens_on_loopback_only(
    ray_instance: None, assert_loopback_only: Callable[..., set[str]]
) -> None:
    import psutil
    import ray

    @ray.remote
    def worker_pid() -> int:
        return os.getpid()

    assert ray.get(worker_pid.remote()) != os.getpid()  # a worker is up
    # The driver (this process) and all it started: GCS, raylet, dashboard, its agents, workers.
    names = assert_loopback_only([psutil.Process()])
    assert {"gcs_server", "raylet"} <= names
