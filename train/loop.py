"""The training loop: plain PyTorch, with or without Ray, for any task.

The task's per-sample loss weighted per member, Adam (with an optional ReduceLROnPlateau on the
validation loss, ``optim.lr_schedule``), early stopping on the validation loss, a checkpoint
every ``checkpoint_every_epochs`` epochs (and after the last) that resumes exactly.
Members of an ensemble train in one module
(:mod:`darkstack.train.models`): the loss is the sum of the members' losses, so each member's
gradient is that of its own loss, and Adam's element-wise updates keep the members' trajectories
what they would be alone. Each member early-stops on its own: its best weights are kept when its
validation loss improves, and training ends when no member has improved for ``patience`` epochs.
A task may replace that loss by a score of the whole validation split's predictions (a
``select``: dm2gal's P(k) of the painted validation cube, as the paper selects its model); the
learning-rate schedule still follows the loss.

Exact resume: the batch order, augmentation and dropout of epoch ``e`` depend only on
``(seed, e, rank)``, and the checkpoint holds the model, the optimiser, the learning-rate
schedule, the best weights and the patience counters, so ``N`` epochs in one go and ``k`` then
``N - k`` after a restart give the same weights bit for bit on the same hardware. A run resumed
from a checkpoint older than its last epoch repeats the epochs since; their lines leave the
metrics log first, so it holds each epoch once.

Distribution is the caller's: :mod:`darkstack.train.ray_trainer` passes a DDP-wrapped model,
the rank and world size, and a ``report`` callback; gradients are averaged by DDP, and the
validation set is evaluated whole on every rank so all ranks stop together.
"""

from __future__ import annotations

import json
import math
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from darkstack.atomic import atomic_path
from darkstack.config import config_to_dict
from darkstack.errors import InputError, one_line
from darkstack.store import RunPaths
from darkstack.train.config import TrainConfig
from darkstack.train.data import BatchStream
from darkstack.train.losses import Loss
from darkstack.train.tasks.base import MEMBERS_ATTRIBUTE, Select

CHECKPOINT_NAME = "checkpoint.pt"


def load_torch_file(path: Path, *, device: torch.device | str) -> Any:
    """A checkpoint or model file written by :func:`torch.save`, on ``device``.

    Raises
    ------
    darkstack.errors.InputError
        When the file is truncated or not a torch file, in one line naming it (torch's own
        message names neither the file nor what to do).
    """
    try:
        return torch.load(path, map_location=device, weights_only=False)
    except (RuntimeError, EOFError, pickle.UnpicklingError) as error:
        raise InputError(
            f"{path} is truncated or not a torch file ({one_line(str(error)).split('. ')[0]}); "
            "delete it and "
            "rerun darkstack train to write it again"
        ) from None


#: Called after every epoch with the epoch's metrics and the directory holding its checkpoint
#: (None on ranks that do not write one).
Report = Callable[[dict[str, Any], Path | None], None]


@dataclass(frozen=True, kw_only=True)
class FitResult:
    """How a fit ended: its epochs, each member's best validation score (the loss, or the
    ``select`` score when one was given) and whether early stopping ended it."""

    epochs: int
    best_validation_loss: list[float]
    stopped_early: bool


def member_losses(per_sample: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Per-member weighted mean of the per-sample losses.

    Parameters
    ----------
    per_sample : tensor (B, M)
        Each sample's loss for each member.
    weights : tensor (B, M)
        Sample weights per member (bootstrap counts); a member whose weights in the batch are
        all zero gets a zero loss.
    """
    return (per_sample * weights).sum(dim=0) / weights.sum(dim=0).clamp(min=1.0)


def fit(
    *,
    model: nn.Module,
    train: BatchStream,
    validation: BatchStream,
    config: TrainConfig,
    loss: Loss,
    run: RunPaths,
    device: torch.device,
    rank: int = 0,
    resume_from: Path | None = None,
    report: Report | None = None,
    validation_loss: Loss | None = None,
    select: Select | None = None,
) -> FitResult:
    """Train a task's ``model`` (maybe DDP-wrapped).

    Parameters
    ----------
    model : nn.Module
        Maps a batch's inputs to ``(B, M, ...)`` (see :mod:`darkstack.train.tasks.base`);
        already on ``device``.
    train, validation : BatchStream
        Batches of this rank; validation batches should cover the whole validation split.
    config : TrainConfig
        Seeds, optimisation and member count.
    loss : callable
        The task's per-sample loss, ``(B, M)``.
    run : RunPaths
        The run whose ``checkpoints/`` gets rank 0's checkpoint (``checkpoint.pt``) every
        ``config.checkpoint_every_epochs`` epochs and after the last, and whose metrics log
        gets a line per epoch.
    device : torch.device
        Where batches are moved.
    rank : int
        Data-parallel rank; only rank 0 writes.
    resume_from : Path, optional
        A checkpoint directory to continue from.
    report : callable, optional
        Called after every epoch (Ray Train's report, or a progress printer).
    validation_loss : callable, optional
        The per-sample score early stopping compares on the validation split (default:
        ``loss``; a training loss whose value is no measure of quality, as the β-NLL's, needs
        another).
    select : callable, optional
        A score of the whole validation split's predictions per member that keeps the best
        weights and early-stops instead of the validation loss (logged as
        ``validation_selection``); the schedule still steps on the loss.

    Returns
    -------
    FitResult
        The best validation loss of each member. The module's weights are left at each
        member's best (early-stopped) weights.
    """
    core = _unwrap(model)
    optimiser = torch.optim.Adam(
        model.parameters(), lr=config.optim.learning_rate, weight_decay=config.optim.weight_decay
    )
    schedule = lr_schedule(optimiser, config)
    n_members = config.n_members
    state = initial_state(core, n_members)
    if resume_from is not None:
        saved = load_torch_file(resume_from / CHECKPOINT_NAME, device=device)
        core.load_state_dict(saved["model"])
        optimiser.load_state_dict(saved["optimiser"])
        state = saved["state"]
        if schedule is not None:
            if saved.get("schedule") is None:
                raise InputError(
                    f"{resume_from / CHECKPOINT_NAME} holds no learning-rate schedule but the "
                    "run's optim.lr_schedule is 'plateau'; resume with the config it was "
                    "written with"
                )
            schedule.load_state_dict(saved["schedule"])
    if rank == 0:
        _forget_epochs_after(run.metrics, state["epoch"])
    stopped_early = False
    last_epoch = config.optim.max_epochs - 1
    for epoch in range(state["epoch"] + 1, config.optim.max_epochs):
        torch.manual_seed(config.seed * 1_000_003 + epoch * 1_009 + rank)
        train_loss = _train_epoch(model, optimiser, train.epoch(epoch), device, loss)
        scores, outputs = evaluate_losses(
            model,
            validation,
            loss=validation_loss or loss,
            device=device,
            keep_outputs=select is not None,
        )
        selection = scores if select is None or outputs is None else select(outputs)
        _track_best(core, state, selection, epoch)
        state["epoch"] = epoch
        # The step size this epoch trained with, before the schedule sees its validation loss.
        learning_rate = optimiser.param_groups[0]["lr"]
        if schedule is not None:
            schedule.step(sum(scores) / len(scores))
        metrics = {
            "epoch": epoch,
            "learning_rate": learning_rate,
            "train_loss": train_loss,
            "validation_loss": scores,
            **({} if select is None else {"validation_selection": selection}),
            "best_validation_loss": state["best_loss"],
            "members_improving": sum(s < config.optim.patience for s in state["since_best"]),
        }
        stopping = all(s >= config.optim.patience for s in state["since_best"])
        due = (epoch + 1) % config.checkpoint_every_epochs == 0 or epoch == last_epoch
        written = None
        if rank == 0:
            if due or stopping:
                written = save_checkpoint(
                    run.checkpoints, core, optimiser, state, config, schedule=schedule
                )
            with run.metrics.open("a") as log:
                log.write(json.dumps(metrics) + "\n")
        if report is not None:
            report(metrics, written)
        if stopping:
            stopped_early = True
            break
    core.load_state_dict(state["best_model"])
    return FitResult(
        epochs=state["epoch"] + 1,
        best_validation_loss=list(state["best_loss"]),
        stopped_early=stopped_early,
    )


def lr_schedule(
    optimiser: torch.optim.Optimizer, config: TrainConfig
) -> torch.optim.lr_scheduler.ReduceLROnPlateau | None:
    """The learning-rate schedule ``config.optim.lr_schedule`` names, on ``optimiser``.

    ``plateau``: torch's ``ReduceLROnPlateau`` in ``min`` mode with ``optim.lr_patience`` and
    ``optim.lr_factor`` and torch's default threshold (relative, 1e-4), stepped once per epoch
    with the validation loss (the members' mean: the members share one optimiser).
    """
    if config.optim.lr_schedule == "none":
        return None
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimiser, mode="min", factor=config.optim.lr_factor, patience=config.optim.lr_patience
    )


def evaluate_losses(
    model: nn.Module,
    stream: BatchStream,
    *,
    loss: Loss,
    device: torch.device,
    keep_outputs: bool = False,
) -> tuple[list[float], torch.Tensor | None]:
    """Mean per-sample loss of each member over a whole stream, in eval mode, and with
    ``keep_outputs`` the model's outputs (on the CPU) in the order of the source's positions."""
    model.eval()
    total = None
    count = 0
    kept: list[tuple[Any, torch.Tensor]] = []
    with torch.no_grad():
        for batch in stream.epoch(0):
            outputs = model(batch.inputs.to(device))
            per_sample = loss(outputs, batch.targets.to(device))
            total = per_sample.sum(dim=0) if total is None else total + per_sample.sum(dim=0)
            count += batch.inputs.shape[0]
            if keep_outputs:
                kept.append((batch.positions, outputs.cpu()))
    if total is None:
        raise ValueError("the validation split is empty")
    ordered = None
    if keep_outputs:
        stacked = torch.cat([outputs for _, outputs in kept])
        positions = torch.from_numpy(np.concatenate([positions for positions, _ in kept]))
        ordered = torch.empty_like(stacked)
        ordered[positions] = stacked
    return (total / count).tolist(), ordered


def _train_epoch(
    model: nn.Module,
    optimiser: torch.optim.Optimizer,
    batches: Any,
    device: torch.device,
    loss: Loss,
) -> list[float]:
    model.train()
    total = None
    steps = 0
    for batch in batches:
        per_sample = loss(model(batch.inputs.to(device)), batch.targets.to(device))
        losses = member_losses(per_sample, batch.weights.to(device))
        optimiser.zero_grad(set_to_none=True)
        losses.sum().backward()
        optimiser.step()
        detached = losses.detach()
        total = detached if total is None else total + detached
        steps += 1
    if total is None:
        raise ValueError("the training split gave no batch (fewer samples than workers?)")
    return (total / steps).tolist()


def _unwrap(model: nn.Module) -> nn.Module:
    inner = getattr(model, "module", model)
    assert isinstance(inner, nn.Module)
    return inner


def initial_state(core: nn.Module, n_members: int) -> dict[str, Any]:
    """The loop's state before the first epoch: no epoch done, every member's best weights
    the initial ones."""
    return {
        "epoch": -1,
        "best_loss": [math.inf] * n_members,
        "since_best": [0] * n_members,
        "best_model": {k: v.detach().clone() for k, v in core.state_dict().items()},
    }


def _track_best(
    core: nn.Module, state: dict[str, Any], validation_loss: list[float], epoch: int
) -> None:
    n_members = len(validation_loss)
    current = core.state_dict()
    for member, loss in enumerate(validation_loss):
        if loss < state["best_loss"][member]:
            state["best_loss"][member] = loss
            state["since_best"][member] = 0
            copy_member(state["best_model"], current, member=member, n_members=n_members)
        else:
            state["since_best"][member] += 1


def copy_member(
    destination: dict[str, torch.Tensor],
    source: dict[str, torch.Tensor],
    *,
    member: int,
    n_members: int,
) -> None:
    """Copy member ``member``'s slice of every network tensor from ``source`` to ``destination``.

    Member-grouped layers keep members along the first dimension, member-major (member ``m``
    owns rows ``[m * k, (m + 1) * k)``); tensors outside the model's member network (a fixed
    target scaling) and scalar counters are shared and copied whole.
    """
    prefix = f"{MEMBERS_ATTRIBUTE}."
    for name, value in source.items():
        target = destination[name]
        if name.startswith(prefix) and value.ndim >= 1 and value.shape[0] % n_members == 0:
            rows = value.shape[0] // n_members
            target[member * rows : (member + 1) * rows] = value[member * rows : (member + 1) * rows]
        else:
            target.copy_(value)


def _forget_epochs_after(log_path: Path, epoch: int) -> None:
    """Drop the metrics log's lines of epochs after ``epoch`` (the checkpoint's): they are
    trained again. The log is replaced whole, so a reader following it sees a new file."""
    if not log_path.exists():
        return
    lines = log_path.read_text().splitlines(keepends=True)
    kept = [line for line in lines if line.endswith("\n") and json.loads(line)["epoch"] <= epoch]
    if len(kept) == len(lines):
        return
    with atomic_path(log_path) as temporary:
        temporary.write_text("".join(kept))


def save_checkpoint(
    directory: Path,
    core: nn.Module,
    optimiser: torch.optim.Optimizer,
    state: dict[str, Any],
    config: TrainConfig,
    *,
    schedule: torch.optim.lr_scheduler.ReduceLROnPlateau | None = None,
) -> Path:
    """Write ``checkpoint.pt`` into ``directory`` atomically: the model, the optimiser (Adam's
    two moments per weight), the learning-rate schedule's counters (None without one), the
    loop's state (with every member's best weights) and the config; about 4x the size of the
    weights. Returns ``directory``."""
    with atomic_path(directory / CHECKPOINT_NAME) as temporary:
        torch.save(
            {
                "model": core.state_dict(),
                "optimiser": optimiser.state_dict(),
                "schedule": None if schedule is None else schedule.state_dict(),
                "state": state,
                "config": config_to_dict(config),
            },
            temporary,
        )
    return directory
