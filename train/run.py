"""A run directory, ``STORE/runs/<run>/`` (:class:`darkstack.store.RunPaths` spells its files):
what a training run reads, fixes and writes.

:func:`prepare_run` fixes the split and normalisation once; a resumed or re-run training reads
them back rather than drawing them again, so every worker and every restart agree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray

from darkstack.atomic import atomic_path
from darkstack.config import dump_config, from_mapping
from darkstack.store import OBSERVATIONS_ZARR, RunPaths, StoreLayout
from darkstack.train.config import TrainConfig
from darkstack.train.data import (
    SPLITS,
    Normalisation,
    Observations,
    bootstrap_weights,
    load_images,
    open_observations,
    split_by_galaxy,
    subsample_galaxies,
)


@dataclass(frozen=True, kw_only=True)
class SplitData:
    """One split's normalised images, log10 targets and identities, in memory."""

    images: NDArray[np.float32]
    targets: NDArray[np.float32]
    samples: NDArray[np.int64]
    subhalo_id: NDArray[np.int64]


def prepare_run(store: str | Path, config: TrainConfig) -> RunPaths:
    """Create the run directory with its config, split and normalisation (once).

    Raises
    ------
    ValueError
        When the directory holds a run made with a different config.
    """
    observations = open_observations(store)
    if observations.image_size != config.model.image_size:
        raise ValueError(
            f"model.image_size={config.model.image_size} but "
            f"{StoreLayout(store).zarr(OBSERVATIONS_ZARR.name)} holds "
            f"{observations.image_size} px images; set model.image_size={observations.image_size}"
        )
    paths = StoreLayout(store).run(config.run_name)
    paths.root.mkdir(parents=True, exist_ok=True)
    if paths.config.exists():
        existing = load_run_config(paths)
        if existing != config:
            raise ValueError(
                f"{paths.root} holds a run made with another config; choose another --set run=NAME "
                "or remove the directory"
            )
    else:
        with atomic_path(paths.config) as temporary:
            dump_config(config, temporary)
    if not paths.split.exists():
        positions = split_by_galaxy(
            observations.subhalo_id,
            fractions=config.data.split_fractions,
            seed=config.data.split_seed,
        )
        split = {
            name: {
                "samples": observations.samples[positions[name]].tolist(),
                "subhalo_id": sorted(set(observations.subhalo_id[positions[name]].tolist())),
            }
            for name in SPLITS
        }
        with atomic_path(paths.split) as temporary:
            temporary.write_text(json.dumps(split))
    if not paths.normalisation.exists():
        train = _raw_split(observations, paths, "train", config.data.channels)
        normalisation = Normalisation.fit(
            train.images, train.targets, channels=config.data.channels
        )
        with atomic_path(paths.normalisation) as temporary:
            temporary.write_text(normalisation.to_json())
    return paths


def load_run_config(paths: RunPaths) -> TrainConfig:
    """The config a run was made with."""
    import yaml

    if not paths.config.exists():
        raise FileNotFoundError(f"{paths.config} does not exist: is {paths.root.name} a run?")
    return from_mapping(
        TrainConfig, yaml.safe_load(paths.config.read_text()), source=str(paths.config)
    )


def load_split(paths: RunPaths) -> dict[str, dict[str, list[int]]]:
    return dict(json.loads(paths.split.read_text()))


def load_normalisation(paths: RunPaths) -> Normalisation:
    return Normalisation.from_json(paths.normalisation.read_text())


def load_split_data(store: str | Path, paths: RunPaths, name: str, *, limit: int = 0) -> SplitData:
    """The normalised images and targets of one split of a prepared run.

    ``limit`` keeps at most that many samples, whole galaxies in the order of the split's seed
    (0: all).
    """
    config = load_run_config(paths)
    raw = _raw_split(
        open_observations(store),
        paths,
        name,
        config.data.channels,
        limit=limit,
        seed=config.data.split_seed,
    )
    return SplitData(
        images=load_normalisation(paths).images(raw.images),
        targets=raw.targets,
        samples=raw.samples,
        subhalo_id=raw.subhalo_id,
    )


def member_weights(config: TrainConfig, train: SplitData) -> torch.Tensor:
    """Per-sample, per-member loss weights: bootstrap counts, or ones."""
    if config.bootstrap and config.n_members > 1:
        weights = bootstrap_weights(train.subhalo_id, n_members=config.n_members, seed=config.seed)
    else:
        weights = np.ones((train.targets.shape[0], config.n_members), dtype=np.float32)
    return torch.from_numpy(weights)


def _raw_split(
    observations: Observations,
    paths: RunPaths,
    name: str,
    channels: tuple[str, ...],
    *,
    limit: int = 0,
    seed: int = 0,
) -> SplitData:
    samples = np.asarray(load_split(paths)[name]["samples"], dtype=np.int64)
    position = np.searchsorted(observations.samples, samples)
    if not np.array_equal(
        observations.samples[np.minimum(position, observations.samples.size - 1)], samples
    ):
        raise ValueError(
            f"{paths.split} names samples that are no longer usable in {observations.store}; "
            "the observations changed since the run was prepared"
        )
    kept = subsample_galaxies(observations.subhalo_id[position], limit=limit, seed=seed)
    samples, position = samples[kept], position[kept]
    return SplitData(
        images=load_images(observations.store, samples=samples, channels=channels),
        targets=observations.targets[position],
        samples=samples,
        subhalo_id=observations.subhalo_id[position],
    )
