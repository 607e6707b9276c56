"""``optim.lr_schedule = "plateau"``: the loop's ReduceLROnPlateau on the validation loss; and
the loop's ``select``, a whole-split score that keeps the best weights instead of the loss.

A tiny linear model on synthetic data goes through :func:`darkstack.train.loop.fit`; its
validation losses are scripted per epoch, so the epochs without improvement are known and the
learning rates the loop logs can be checked against the rule written out by hand and against
torch's own scheduler fed the same losses. A run stopped mid-plateau and resumed from its
checkpoint must log the same rates and end with the same weights.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from numpy.typing import NDArray
from torch import nn

from darkstack.config import ConfigError
from darkstack.store import RunPaths
from darkstack.train.config import OptimConfig, TrainConfig
from darkstack.train.data import BatchStream
from darkstack.train.loop import CHECKPOINT_NAME, fit

#: Validation loss of each epoch: improvements at 0, 1 and 5; plateaus of three epochs after.
SCRIPTED = [1.0, 0.9, 0.95, 0.92, 0.91, 0.8, 0.85, 0.85, 0.85, 0.85]
PATIENCE, FACTOR, LEARNING_RATE = 2, 0.1, 1e-2
#: torch's rule, written out: after more than PATIENCE epochs without a loss below best *
#: (1 - 1e-4) the rate is multiplied by FACTOR. Epochs 2-4 and 6-8 are such runs, so the rate
#: used in epochs 5-8 is 1e-3 and in epoch 9 1e-4.
EXPECTED = [1e-2] * 5 + [1e-3] * 4 + [1e-4]


class _Memory:
    """A :class:`~darkstack.train.data.SampleSource` of in-memory arrays, a sample per chunk."""

    def __init__(self, inputs: NDArray[np.float32], targets: NDArray[np.float32]) -> None:
        self.inputs = inputs
        self.targets = targets
        self.chunk = np.arange(inputs.shape[0], dtype=np.int64)

    def read(self, positions: NDArray[np.int64]) -> tuple[NDArray[Any], NDArray[Any]]:
        return self.inputs[positions], self.targets[positions]


def _stream(n: int, *, seed: int, shuffle: bool, batch_size: int) -> BatchStream:
    rng = np.random.default_rng(seed)
    inputs = rng.normal(size=(n, 4)).astype(np.float32)
    targets = (inputs @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.3).astype(np.float32)[:, None]
    return BatchStream(
        source=_Memory(inputs, targets),
        weights=np.ones((n, 1), dtype=np.float32),
        batch_size=batch_size,
        shuffle=shuffle,
        augment=None,
        seed=seed,
    )


def _squared_error(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return (outputs[:, :, 0] - targets).pow(2)


def _scripted(first_epoch: int) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """A validation loss reading SCRIPTED: the whole validation split is one batch, so call
    ``k`` is epoch ``first_epoch + k``."""
    calls = iter(range(first_epoch, len(SCRIPTED)))

    def loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return torch.full(outputs.shape[:2], SCRIPTED[next(calls)])

    return loss


def _config(schedule: str = "plateau") -> TrainConfig:
    return TrainConfig(
        task="toy",
        optim=OptimConfig(
            learning_rate=LEARNING_RATE,
            max_epochs=len(SCRIPTED),
            patience=50,
            lr_schedule=schedule,
            lr_patience=PATIENCE,
            lr_factor=FACTOR,
        ),
    )


class _StopError(Exception):
    pass


def _fit(
    run: RunPaths,
    *,
    first_epoch: int = 0,
    resume: bool = False,
    stop_after: int | None = None,
    schedule: str = "plateau",
) -> nn.Module:
    run.checkpoints.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 1), nn.Unflatten(1, (1, 1)))

    def report(metrics: dict[str, Any], written: Path | None) -> None:
        if metrics["epoch"] == stop_after:
            raise _StopError

    fit(
        model=model,
        train=_stream(64, seed=1, shuffle=True, batch_size=16),
        validation=_stream(16, seed=2, shuffle=False, batch_size=16),
        config=_config(schedule),
        loss=_squared_error,
        validation_loss=_scripted(first_epoch),
        run=run,
        device=torch.device("cpu"),
        resume_from=run.checkpoints if resume else None,
        report=report,
    )
    return model


def _logged(run: RunPaths, key: str) -> list[Any]:
    return [json.loads(line)[key] for line in run.metrics.read_text().splitlines()]


def test_plateau_divides_the_rate_after_patience_epochs_without_improvement(
    tmp_path: Path,
) -> None:
    run = RunPaths(tmp_path / "plateau")
    _fit(run)
    rates = _logged(run, "learning_rate")
    np.testing.assert_allclose(rates, EXPECTED, rtol=1e-12)
    # torch's scheduler fed the same losses on an optimiser of its own gives the same rates.
    reference = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=LEARNING_RATE)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        reference, factor=FACTOR, patience=PATIENCE
    )
    torch_rates = []
    for loss in SCRIPTED:
        torch_rates.append(reference.param_groups[0]["lr"])
        scheduler.step(loss)
    assert rates == torch_rates
    # Without a schedule the rate stays.
    fixed = RunPaths(tmp_path / "fixed")
    _fit(fixed, schedule="none")
    assert _logged(fixed, "learning_rate") == [LEARNING_RATE] * len(SCRIPTED)


def test_a_run_resumed_mid_plateau_keeps_the_schedule_and_the_weights(tmp_path: Path) -> None:
    straight = RunPaths(tmp_path / "straight")
    whole = _fit(straight)
    # Stopped after epoch 6, one epoch into the second plateau: the drop at epoch 8 needs the
    # schedule's count of bad epochs from the checkpoint (a fresh one would not drop by 9).
    resumed = RunPaths(tmp_path / "resumed")
    with pytest.raises(_StopError):
        _fit(resumed, stop_after=6)
    saved = torch.load(resumed.checkpoints / CHECKPOINT_NAME, weights_only=False)
    assert saved["schedule"]["num_bad_epochs"] == 1
    finished = _fit(resumed, first_epoch=7, resume=True)
    assert _logged(resumed, "learning_rate") == _logged(straight, "learning_rate")
    for name, tensor in whole.state_dict().items():
        assert torch.equal(tensor, finished.state_dict()[name]), name


def test_schedule_settings_are_checked() -> None:
    assert OptimConfig().lr_schedule == "none"
    with pytest.raises(ConfigError, match="lr_factor"):
        OptimConfig(lr_factor=1.0)
    with pytest.raises(ConfigError, match="lr_schedule"):
        OptimConfig(lr_schedule="cosine")


def test_fit_keeps_the_epoch_the_select_score_prefers(tmp_path: Path) -> None:
    # The validation MSE of this linear model falls every epoch; the select score prefers
    # epoch 2. The kept weights must be epoch 2's, and select must see the outputs of the
    # whole validation split in source order.
    run = RunPaths(tmp_path / "run")
    run.checkpoints.mkdir(parents=True)
    # The validation source's chunks in reverse order, so the stream's order is not the source's.
    source = _stream(16, seed=2, shuffle=False, batch_size=5).source
    assert isinstance(source, _Memory)
    source.chunk = source.chunk[::-1].copy()
    validation = BatchStream(
        source=source,
        weights=np.ones((16, 1), dtype=np.float32),
        batch_size=5,
        shuffle=False,
        augment=None,
        seed=2,
    )
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 1), nn.Unflatten(1, (1, 1)))
    scripted = iter([0.5, 0.4, 0.1, 0.3, 0.2])
    seen: list[torch.Tensor] = []

    def select(outputs: torch.Tensor) -> list[float]:
        with torch.no_grad():
            expected = model(torch.from_numpy(source.inputs))
        torch.testing.assert_close(outputs, expected)
        seen.append(outputs.clone())
        return [next(scripted)]

    config = TrainConfig(
        task="toy", optim=OptimConfig(learning_rate=1e-2, max_epochs=5, patience=50)
    )
    result = fit(
        model=model,
        train=_stream(64, seed=1, shuffle=True, batch_size=16),
        validation=validation,
        config=config,
        loss=_squared_error,
        select=select,
        run=run,
        device=torch.device("cpu"),
    )
    lines = [json.loads(line) for line in run.metrics.read_text().splitlines()]
    losses = [line["validation_loss"][0] for line in lines]
    assert all(b < a for a, b in itertools.pairwise(losses))
    assert [line["validation_selection"] for line in lines] == [[0.5], [0.4], [0.1], [0.3], [0.2]]
    assert result.best_validation_loss == [0.1]
    with torch.no_grad():
        kept = model(torch.from_numpy(source.inputs))
    torch.testing.assert_close(kept, seen[2])
