"""One training process: load the run's data, build the model, fit, save the best weights.

The same function runs in a test without Ray, in this process (``darkstack train
--ray-address none``) or as each Ray Train worker; :mod:`darkstack.train.ray_trainer` only adds
the DDP wrapping, the device and Ray's checkpoint reporting.
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
from darkstack.train.loop import CHECKPOINT_NAME, FitResult, Report, fit
from darkstack.train.models import build_model
from darkstack.train.regressor import ProfileRegressor
from darkstack.train.run import (
    load_normalisation,
    load_run_config,
    load_split_data,
    member_weights,
)


def build_regressor(paths: RunPaths) -> ProfileRegressor:
    """The untrained model of a prepared run (initialised from the run's seed)."""
    config = load_run_config(paths)
    normalisation = load_normalisation(paths)
    torch.manual_seed(config.seed)
    network = build_model(
        config.model, in_channels=len(config.data.channels), n_members=config.n_members
    )
    return ProfileRegressor(
        network, target_mean=normalisation.target_mean, target_std=normalisation.target_std
    )


def train_process(
    *,
    store: Path,
    paths: RunPaths,
    device: torch.device,
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
        The store holding ``observations.zarr``.
    paths : RunPaths
        The run, prepared by :func:`darkstack.train.run.prepare_run`.
    device : torch.device
        Where the model and batches live.
    rank, world_size : int
        Data-parallel position of this process.
    resume_from : Path, optional
        A checkpoint directory; without one, the run's own latest checkpoint is used if any.
    report : callable, optional
        Called after each epoch with the metrics and the checkpoint directory.
    wrap_model : callable
        Applied to the model on ``device`` (DDP under Ray).
    """
    config = load_run_config(paths)
    if config.torch_threads:
        torch.set_num_threads(config.torch_threads)
    limit = config.data.max_samples_per_split
    train = load_split_data(store, paths, "train", limit=limit)
    validation = load_split_data(store, paths, "validation", limit=limit)
    weights = member_weights(config, train)
    train_stream = BatchStream(
        images=torch.from_numpy(train.images),
        targets=torch.from_numpy(train.targets),
        weights=weights,
        batch_size=config.data.batch_size,
        shuffle=True,
        augment=config.data.augment,
        seed=config.seed,
        rank=rank,
        world_size=world_size,
    )
    validation_stream = BatchStream(
        images=torch.from_numpy(validation.images),
        targets=torch.from_numpy(validation.targets),
        weights=torch.ones(validation.targets.shape[0], config.n_members),
        batch_size=max(config.data.batch_size, 64),
        shuffle=False,
        augment=False,
        seed=config.seed,
    )
    regressor = build_regressor(paths).to(device)
    model = wrap_model(regressor)
    if resume_from is None and (paths.checkpoints / CHECKPOINT_NAME).exists():
        resume_from = paths.checkpoints
    result = fit(
        model=model,
        train=train_stream,
        validation=validation_stream,
        config=config,
        run=paths,
        device=device,
        rank=rank,
        resume_from=resume_from,
        report=report,
    )
    if rank == 0:
        save_model(paths, regressor, result=result, weights=weights)
    return result


def save_model(
    paths: RunPaths, regressor: ProfileRegressor, *, result: FitResult, weights: torch.Tensor
) -> None:
    """Write ``model.pt``: best weights, config, bootstrap weights and the fit's outcome."""
    config = load_run_config(paths)
    payload: dict[str, Any] = {
        "state_dict": {k: v.cpu() for k, v in regressor.state_dict().items()},
        "config": config_to_dict(config),
        "bootstrap_weights": weights,
        "epochs": result.epochs,
        "best_validation_loss": result.best_validation_loss,
        "stopped_early": result.stopped_early,
        "darkstack_version": __version__,
    }
    with atomic_path(paths.model) as temporary:
        torch.save(payload, temporary)


def load_trained(paths: RunPaths, *, device: torch.device | str = "cpu") -> ProfileRegressor:
    """The trained model of a run, in eval mode."""
    if not paths.model.exists():
        raise FileNotFoundError(
            f"{paths.model} does not exist: train the run first "
            f"(darkstack train --set run={paths.root.name} ...)"
        )
    regressor = build_regressor(paths)
    payload = torch.load(paths.model, map_location=device, weights_only=False)
    regressor.load_state_dict(payload["state_dict"])
    return regressor.to(device).eval()
