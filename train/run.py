"""A run directory, ``STORE/runs/<run>/`` (:class:`darkstack.store.RunPaths` spells its files):
what a training run reads, fixes and writes. Its ``config.yaml`` names the run's task;
``split.json`` holds the store sample indices and groups of train / validation / test.

:func:`prepare_run` fixes the split and normalisation once; a resumed or re-run training reads
them back rather than drawing them again, so every worker and every restart agree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from darkstack.atomic import atomic_path
from darkstack.config import dump_config, from_mapping
from darkstack.errors import InputError
from darkstack.store import RunPaths, StoreLayout
from darkstack.train.config import TrainConfig
from darkstack.train.data import (
    SPLITS,
    BatchStream,
    EpochDraw,
    SampleSource,
    bootstrap_weights,
    subsample_groups,
)
from darkstack.train.tasks import Task, TaskDataset, get_task

#: The task of a run whose config predates the ``task`` field.
_DEFAULT_TASK = "profiles"


@dataclass(frozen=True, kw_only=True)
class SplitData:
    """One split's normalised inputs, targets and identities, in memory (for evaluation)."""

    inputs: NDArray[np.float32]
    targets: NDArray[np.float32]
    samples: NDArray[np.int64]
    groups: NDArray[np.int64]


def prepare_run(
    store: str | Path, config: TrainConfig, *, task: Task[Any, Any] | None = None
) -> RunPaths:
    """Create the run directory with its config, split and normalisation (once).

    Parameters
    ----------
    store : path
        The store holding the task's dataset.
    config : TrainConfig
        The run, of its task's config type.
    task : Task, optional
        The run's task (default: the registered one named by ``config.task``).

    Raises
    ------
    ValueError
        When the directory holds a run made with a different config, or the task cannot read
        the store with this config.
    """
    store = Path(store)
    task = task or get_task(config.task)
    if not isinstance(config, task.config_type):
        raise ValueError(
            f"task {task.name!r} takes a {task.config_type.__name__}, not a {type(config).__name__}"
        )
    dataset = task.open_dataset(store, config)
    paths = StoreLayout(store).run(config.run_name)
    # Drawn before the directory exists: a store too small to split leaves no stub run behind.
    try:
        positions = task.split(dataset, config)
    except InputError as error:
        raise InputError(f"cannot split {store} by {dataset.group_name}: {error}") from None
    paths.root.mkdir(parents=True, exist_ok=True)
    if paths.config.exists():
        existing = load_run_config(paths, task=task)
        if existing != config:
            raise ValueError(
                f"{paths.root} holds a run made with another config; choose another --set run=NAME "
                "or remove the directory"
            )
    else:
        with atomic_path(paths.config) as temporary:
            dump_config(config, temporary)
    if not paths.split.exists():
        split = {
            name: {
                "samples": dataset.samples[positions[name]].tolist(),
                dataset.group_name: sorted(set(dataset.groups[positions[name]].tolist())),
            }
            for name in SPLITS
        }
        with atomic_path(paths.split) as temporary:
            temporary.write_text(json.dumps(split))
    if not paths.normalisation.exists():
        train = split_samples(dataset, paths, "train")
        normalisation = task.fit_normalisation(store, config, dataset, samples=train)
        with atomic_path(paths.normalisation) as temporary:
            temporary.write_text(json.dumps(normalisation, indent=1))
    return paths


def run_task(paths: RunPaths) -> str:
    """The name of the task a run was made for."""
    import yaml

    if not paths.config.exists():
        runs = paths.root.parent
        found = sorted(p.name for p in runs.glob("*") if (p / paths.config.name).is_file())
        raise InputError(
            f"no run {paths.root.name!r} in {runs} (no {paths.config.name}); runs there: "
            f"{', '.join(found) or 'none (darkstack train makes one)'}"
        )
    data = yaml.safe_load(paths.config.read_text()) or {}
    return str(data.get("task", _DEFAULT_TASK))


def load_run_config(paths: RunPaths, *, task: Task[Any, Any] | None = None) -> Any:
    """The config a run was made with, of its task's config type.

    ``task`` (default: the registered task the config names) gives the config type.
    """
    import yaml

    task = task or get_task(run_task(paths))
    data = yaml.safe_load(paths.config.read_text())
    data.setdefault("task", task.name)
    for key, value in task.legacy_defaults.items():
        # "section.key" sets a default inside a section of the config.
        *sections, name = key.split(".")
        table = data
        for section in sections:
            table = table.setdefault(section, {})
        table.setdefault(name, value)
    return from_mapping(task.config_type, data, source=str(paths.config))


def load_split(paths: RunPaths) -> dict[str, dict[str, list[int]]]:
    return dict(json.loads(paths.split.read_text()))


def load_normalisation(paths: RunPaths) -> dict[str, Any]:
    return dict(json.loads(paths.normalisation.read_text()))


def split_samples(
    dataset: TaskDataset, paths: RunPaths, name: str, *, limit: int = 0, seed: int = 0
) -> NDArray[np.int64]:
    """Store sample indices of one split of a prepared run, still usable in ``dataset``.

    ``limit`` keeps at most that many samples, whole groups in the order of ``seed`` (0: all).
    """
    samples = np.asarray(load_split(paths)[name]["samples"], dtype=np.int64)
    position = np.searchsorted(dataset.samples, samples)
    if not np.array_equal(dataset.samples[np.minimum(position, dataset.samples.size - 1)], samples):
        raise ValueError(
            f"{paths.split} names samples that are no longer usable in the store; "
            "its dataset changed since the run was prepared"
        )
    kept = subsample_groups(dataset.groups[position], limit=limit, seed=seed)
    return samples[kept]


@dataclass(frozen=True, kw_only=True)
class OpenSplit:
    """One split of a prepared run, ready to stream: its config, samples and source, and for
    the training split the task's per-epoch draw (:meth:`Task.epoch_draw`)."""

    config: Any
    samples: NDArray[np.int64]
    groups: NDArray[np.int64]
    source: SampleSource
    draw: EpochDraw | None = None


def open_split(
    store: str | Path, paths: RunPaths, name: str, *, task: Task[Any, Any], limited: bool
) -> OpenSplit:
    """A split of a prepared run: its samples (``data.max_samples_per_split`` of them when
    ``limited``, as training reads it) and the task's source of their normalised inputs."""
    store = Path(store)
    config = load_run_config(paths, task=task)
    dataset = task.open_dataset(store, config)
    limit = config.data.max_samples_per_split if limited else 0
    samples = split_samples(dataset, paths, name, limit=limit, seed=config.data.split_seed)
    return OpenSplit(
        config=config,
        samples=samples,
        groups=dataset.groups[np.searchsorted(dataset.samples, samples)],
        source=task.source(store, config, dataset, load_normalisation(paths), samples=samples),
        draw=task.epoch_draw(config, dataset, samples=samples) if name == "train" else None,
    )


def ordered_stream(split: OpenSplit) -> BatchStream:
    """Every sample of a split in order, unit weights, batches of at least 64 (no training)."""
    config = split.config
    return BatchStream(
        source=split.source,
        weights=np.ones((split.samples.size, config.n_members), dtype=np.float32),
        batch_size=max(config.data.batch_size, 64),
        shuffle=False,
        augment=None,
        seed=config.seed,
        workers=config.data.loader_workers,
    )


def load_split_data(store: str | Path, paths: RunPaths, name: str) -> SplitData:
    """One whole split's normalised inputs and targets, read into memory (for evaluation)."""
    split = open_split(store, paths, name, task=get_task(run_task(paths)), limited=False)
    batches = list(ordered_stream(split).epoch(0))
    return SplitData(
        inputs=np.concatenate([batch.inputs.numpy() for batch in batches]),
        targets=np.concatenate([batch.targets.numpy() for batch in batches]),
        samples=split.samples,
        groups=split.groups,
    )


def member_weights(config: TrainConfig, groups: NDArray[np.int64]) -> NDArray[np.float32]:
    """Per-sample, per-member loss weights of the training samples: bootstrap counts, or ones."""
    if config.bootstrap and (config.n_members > 1 or config.bootstrap_single):
        return bootstrap_weights(groups, n_members=config.n_members, seed=config.seed)
    return np.ones((groups.size, config.n_members), dtype=np.float32)
