"""The Ray Train shell around the plain-PyTorch loop; the only module that imports ``ray.train``.

Each Ray worker runs :func:`darkstack.train.worker.train_process` with its rank, a DDP-wrapped
model (``ray.train.torch.prepare_model``), Ray's device, and a report callback that hands rank
0's checkpoint directory to Ray. After a lost worker, Ray Train restarts the worker group (up to
``ray.max_failures`` times) and each worker resumes from the latest reported checkpoint, which
the loop restores exactly. The driver resolves the run's task and hands the task object to the
workers (pickled by reference for a task importable there), so they need no registry of their
own.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any

from darkstack.store import RunPaths
from darkstack.train.loop import FitResult
from darkstack.train.run import load_run_config
from darkstack.train.tasks import Task


def train_with_ray(*, store: Path, paths: RunPaths, task: Task[Any, Any]) -> FitResult:
    """Train a prepared run of ``task`` with Ray Train on the connected Ray cluster.

    The caller opens the Ray session (:func:`darkstack.cluster.ray.ray_session`); the run's
    :class:`~darkstack.train.config.RayConfig` sets workers, GPUs and retries.
    """
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    config = load_run_config(paths, task=task)
    trainer = TorchTrainer(
        _train_loop_per_worker,
        train_loop_config={
            "store": str(store.resolve()),
            "run": str(paths.root.resolve()),
            "task": task,
        },
        scaling_config=ScalingConfig(
            num_workers=config.ray.num_workers,
            use_gpu=config.ray.use_gpu,
            resources_per_worker={"CPU": config.ray.cpus_per_worker},
        ),
        run_config=RunConfig(
            name=paths.ray.name,
            storage_path=str(paths.ray.parent.resolve()),
            failure_config=FailureConfig(max_failures=config.ray.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=2),
        ),
    )
    result = trainer.fit()
    metrics = result.metrics or {}
    return FitResult(
        epochs=int(metrics.get("epoch", -1)) + 1,
        best_validation_loss=list(metrics.get("best_validation_loss", [])),
        stopped_early=int(metrics.get("epoch", -1)) + 1 < config.optim.max_epochs,
    )


def _train_loop_per_worker(loop_config: dict[str, Any]) -> None:
    import ray.train
    import ray.train.torch

    from darkstack.train.worker import train_process

    context = ray.train.get_context()

    def report(metrics: dict[str, Any], checkpoint_dir: Path | None) -> None:
        checkpoint = (
            ray.train.Checkpoint.from_directory(str(checkpoint_dir))
            if checkpoint_dir is not None
            else None
        )
        ray.train.report(metrics, checkpoint=checkpoint)

    restored = ray.train.get_checkpoint()
    opened = restored.as_directory() if restored is not None else nullcontext(None)
    with opened as directory:
        train_process(
            store=Path(loop_config["store"]),
            paths=RunPaths(Path(loop_config["run"])),
            task=loop_config["task"],
            device=ray.train.torch.get_device(),
            rank=context.get_world_rank(),
            world_size=context.get_world_size(),
            resume_from=Path(directory) if directory is not None else None,
            report=report,
            wrap_model=ray.train.torch.prepare_model,
        )
