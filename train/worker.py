"""One training process: stream the run's data, build the model, fit, save the best weights.

The same function runs in a test without Ray, in this process (``darkstack train --no-ray``) or
as each Ray Train worker; :mod:`darkstack.train.ray_trainer` only adds the DDP wrapping, the
device and Ray's checkpoint reporting. The run's task (:mod:`darkstack.train.tasks`) supplies
the data, the model and the loss; nothing here depends on which task it is.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from darkstack import __version__
from darkstack.atomic import atomic_path
from darkstack.config import config_to_dict
from darkstack.store import RunPaths
from darkstack.train.data import BatchStream
from darkstack.train.loop import CHECKPOINT_NAME, FitResult, Report, fit, load_torch_file
from darkstack.train.run import (
    load_normalisation,
    load_run_config,
    member_weights,
    open_split,
    ordered_stream,
    run_task,
)
from darkstack.train.tasks import Task, get_task


def initial_model(paths: RunPaths, *, task: Task[Any, Any]) -> nn.Module:
    """The untrained model of a prepared run (initialised from the run's seed)."""
    config = load_run_config(paths, task=task)
    torch.manual_seed(config.seed)
    return task.build_model(config, load_normalisation(paths))


def training_streams(
    store: Path, paths: RunPaths, *, task: Task[Any, Any], rank: int = 0, world_size: int = 1
) -> tuple[BatchStream, BatchStream]:
    """The training stream of this rank (shuffled, augmented, bootstrap-weighted) and the whole
    validation split's, as :func:`train_process` reads them."""
    train = open_split(store, paths, "train", task=task, limited=True)
    config = train.config
    train_stream = BatchStream(
        source=train.source,
        weights=member_weights(config, train.groups),
        batch_size=config.data.batch_size,
        shuffle=True,
        augment=task.augmentation(config),
        seed=config.seed,
        rank=rank,
        world_size=world_size,
        shuffle_chunks=config.data.shuffle_chunks,
        workers=config.data.loader_workers,
        draw=train.draw,
    )
    validation = ordered_stream(open_split(store, paths, "validation", task=task, limited=True))
    return train_stream, validation


def train_process(
    *,
    store: Path,
    paths: RunPaths,
    device: torch.device,
    task: Task[Any, Any] | None = None,
    rank: int = 0,
    world_size: int = 1,
    resume_from: Path | None = None,
    report: Report | None = None,
    wrap_model: Callable[[nn.Module], nn.Module] = lambda model: model,
) -> FitResult:
    """Train a prepared run in this process; rank 0 writes ``model.pt``.

    Parameters
    ----------
    store : Path
        The store holding the task's dataset.
    paths : RunPaths
        The run, prepared by :func:`darkstack.train.run.prepare_run`.
    device : torch.device
        Where the model and batches live.
    task : Task, optional
        The run's task (default: the registered one its config names).
    rank, world_size : int
        Data-parallel position of this process.
    resume_from : Path, optional
        A checkpoint directory; without one, the run's own latest checkpoint is used if any.
    report : callable, optional
        Called after each epoch with the metrics and the checkpoint directory.
    wrap_model : callable
        Applied to the model on ``device`` (DDP under Ray).
    """
    task = task or get_task(run_task(paths))
    config = load_run_config(paths, task=task)
    if config.torch_threads:
        torch.set_num_threads(config.torch_threads)
    train, validation = training_streams(store, paths, task=task, rank=rank, world_size=world_size)
    core = initial_model(paths, task=task).to(device)
    model = wrap_model(core)
    if resume_from is None and (paths.checkpoints / CHECKPOINT_NAME).exists():
        resume_from = paths.checkpoints
    loss, validation_loss = task.losses(config)
    select = task.selection(store, config, validation=validation.source)
    result = fit(
        model=model,
        train=train,
        validation=validation,
        config=config,
        loss=loss,
        validation_loss=validation_loss,
        select=select,
        run=paths,
        device=device,
        rank=rank,
        resume_from=resume_from,
        report=report,
    )
    if rank == 0:
        save_model(
            paths, core, config=config, result=result, weights=torch.from_numpy(train.weights)
        )
        task.calibrate(store, paths, core, config)
    return result


def save_model(
    paths: RunPaths, model: nn.Module, *, config: Any, result: FitResult, weights: torch.Tensor
) -> None:
    """Write ``model.pt``: best weights, config, bootstrap weights and the fit's outcome."""
    with atomic_path(paths.model) as temporary:
        torch.save(
            {
                "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
                "config": config_to_dict(config),
                "bootstrap_weights": weights,
                "epochs": result.epochs,
                "best_validation_loss": result.best_validation_loss,
                "stopped_early": result.stopped_early,
                "darkstack_version": __version__,
            },
            temporary,
        )


def load_trained(
    paths: RunPaths, *, task: Task[Any, Any] | None = None, device: torch.device | str = "cpu"
) -> nn.Module:
    """The trained model of a run, in eval mode (``task`` defaults to the run's own)."""
    if not paths.model.exists():
        raise FileNotFoundError(
            f"{paths.model} does not exist: train the run first "
            f"(darkstack train --set run={paths.root.name} ...)"
        )
    task = task or get_task(run_task(paths))
    model = initial_model(paths, task=task)
    payload = load_torch_file(paths.model, device=device)
    model.load_state_dict(payload["state_dict"])
    return model.to(device).eval()
