"""Train a run end to end: prepare its directory, then train with Ray Train or in-process."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from darkstack.cluster.settings import RayClusterConfig
from darkstack.config import ConfigError
from darkstack.store import RunPaths
from darkstack.train.config import TrainConfig
from darkstack.train.loop import FitResult
from darkstack.train.progress import epoch_progress
from darkstack.train.run import prepare_run
from darkstack.train.tasks import get_task


@dataclass(frozen=True, kw_only=True)
class TrainSummary:
    paths: RunPaths
    #: None when the run had finished before and nothing was trained.
    result: FitResult | None


def run_training(
    config: TrainConfig,
    *,
    store: Path,
    use_ray: bool = True,
    ray_cluster: RayClusterConfig | None = None,
    progress: bool = True,
    verbose: bool = False,
) -> TrainSummary:
    """Prepare and train one run; a finished run (``model.pt`` present) is left as it is.

    Parameters
    ----------
    config : TrainConfig
        The run, of its task's config type (the task is the registered one ``config.task``
        names).
    store : Path
        The store with the task's dataset.
    use_ray : bool
        Train with Ray Train; off, the loop runs in this process on ``config.device``.
    ray_cluster : RayClusterConfig, optional
        Where Ray runs: its ``address`` (a running cluster) or, unset, a local instance of
        ``num_cpus`` CPUs.
    progress : bool
        Show a bar of the epochs (loss, members improving, ETA) on stderr.
    verbose : bool
        Let Ray's own logs (its start-up, the workers' output, Ray Train's controller) reach
        the terminal; without it they stay in Ray's session logs.
    """
    from darkstack.cluster.ray import check_ray_address, ray_session

    task = get_task(config.task)
    cluster = ray_cluster or RayClusterConfig()
    # Checked before the run directory is made: a wrong device or a dead cluster leaves
    # nothing behind.
    device = check_device(config.device) if not use_ray else None
    if use_ray and cluster.address is not None:
        check_ray_address(cluster.address, timeout_s=cluster.connect_timeout_s)
    paths = prepare_run(store, config, task=task)
    if paths.model.exists():
        return TrainSummary(paths=paths, result=None)
    bar = epoch_progress(paths, max_epochs=config.optim.max_epochs, enabled=progress)
    if not use_ray:
        from darkstack.train.worker import train_process

        with bar:
            result = train_process(
                store=store, paths=paths, task=task, device=device or torch.device("cpu")
            )
        return TrainSummary(paths=paths, result=result)
    from darkstack.train.ray_trainer import train_with_ray

    with (
        ray_session(
            address=cluster.address,
            num_cpus=cluster.num_cpus,
            connect_timeout_s=cluster.connect_timeout_s,
            verbose=verbose,
        ),
        bar,
    ):
        result = train_with_ray(store=store, paths=paths, task=task)
    return TrainSummary(paths=paths, result=result)


def check_device(device: str) -> torch.device:
    """The torch device ``device`` names, if this machine has it.

    Checked before the run directory is made, so a wrong device leaves nothing behind.

    Raises
    ------
    darkstack.config.ConfigError
        Naming the setting, the value and what this machine offers.
    """
    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise ConfigError(
            f"device={device!r}: expected a torch device such as cpu, cuda, cuda:1 or mps"
        ) from None
    available = {
        "cpu": 1,
        "cuda": torch.cuda.device_count() if torch.cuda.is_available() else 0,
        "mps": int(torch.backends.mps.is_available()),
    }.get(parsed.type)
    if available is None:
        return parsed
    if available == 0:
        raise ConfigError(
            f"device={device!r}: this machine has no {parsed.type} device (torch "
            f"{torch.__version__}); use device=cpu"
        )
    if parsed.index is not None and parsed.index >= available:
        raise ConfigError(
            f"device={device!r}: this machine has {available} {parsed.type} device(s), "
            f"numbered from 0"
        )
    return parsed
