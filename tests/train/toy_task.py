"""A toy second task, registered for tests only: a scalar from a small 3D volume.

It proves the task contract before the three real systems arrive: a dataset other than
``observations.zarr`` (``volumes.zarr``: particle counts on a grid, several samples per storage
chunk), a 3D convolutional network, a scalar target, flips in 3D as augmentation. Nothing in
the loop, the ensembles, the Ray shell or the checkpoints knows it exists.

Each volume holds Poisson counts of particles in a Gaussian blob; the target is log10 of the
blob's expected particle count, so a network learns it in a few epochs.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pytest
import torch
from numpy.typing import NDArray
from torch import nn

from darkstack.config import load_config
from darkstack.store import RunPaths, Variable, ZarrSpec
from darkstack.train.config import TrainConfig
from darkstack.train.data import ZarrSamples
from darkstack.train.models.members import MemberLinear, MemberNetwork, flatten_members
from darkstack.train.run import prepare_run
from darkstack.train.tasks import register_task
from darkstack.train.tasks.regression import RegressionTask
from darkstack.train.worker import train_process

#: The toy's dataset, declared as the store declares its own (but not one of them: no darkstack
#: command writes it, so it lives beside the store's datasets, at ``STORE/volumes.zarr``).
VOLUMES_ZARR = ZarrSpec(
    name="volumes",
    version=1,
    coords=(
        Variable(name="sample", dims=("sample",), dtype="int64"),
        Variable(name="halo_id", dims=("sample",), dtype="int64"),
    ),
    data_vars=(
        Variable(
            name="volumes",
            dims=("sample", "channel", "z", "y", "x"),
            dtype="float32",
            unit="particles per voxel",
        ),
        Variable(name="target", dims=("sample",), dtype="float32", unit="log10 particles"),
    ),
    writer_attrs=("config",),
    written_by="tests/train/toy_task.py:write_toy_store",
)
CPU = torch.device("cpu")


def volumes_path(store: Path) -> Path:
    return Path(store) / f"{VOLUMES_ZARR.name}.zarr"


def open_volumes(store: Path) -> Any:
    """The toy dataset of ``store``, checked against its schema."""
    return VOLUMES_ZARR.check(volumes_path(store))


def write_toy_store(
    root: Path,
    *,
    n_groups: int = 40,
    realisations: int = 2,
    side: int = 16,
    chunk_samples: int = 4,
    seed: int = 0,
) -> Path:
    """Write the toy dataset: ``volumes(sample, channel, z, y, x)``, ``target(sample)``.

    Samples of a group (a halo) are consecutive; ``chunk_samples`` samples share a chunk.
    """
    rng = np.random.default_rng(seed)
    log_count = rng.uniform(2.5, 3.5, n_groups)
    width = np.full(n_groups, 0.15 * side)
    axis = np.arange(side) - (side - 1) / 2
    z, y, x = np.meshgrid(axis, axis, axis, indexing="ij")
    radius2 = x**2 + y**2 + z**2
    n_samples = n_groups * realisations
    volumes = np.empty((n_samples, 1, side, side, side), dtype=np.float32)
    for sample in range(n_samples):
        group = sample // realisations
        blob = np.exp(-radius2 / (2 * width[group] ** 2))
        volumes[sample, 0] = rng.poisson(10 ** log_count[group] * blob / blob.sum())
    dataset = VOLUMES_ZARR.build(
        data_vars={"volumes": volumes, "target": np.repeat(log_count, realisations)},
        coords={
            "sample": np.arange(n_samples),
            "halo_id": np.repeat(np.arange(n_groups) * 3 + 1, realisations),
        },
        attrs={"config": json.dumps({"seed": seed, "side": side})},
    )
    encoding = {"volumes": {"chunks": (chunk_samples, 1, side, side, side)}}
    dataset.to_zarr(volumes_path(root), mode="w", consolidated=False, encoding=encoding)
    return root


@dataclass(frozen=True, kw_only=True)
class ToyNetConfig:
    """A two-layer 3D CNN.

    Parameters
    ----------
    in_channels, n_outputs : int
        Channels of the volumes and values predicted.
    width : int
        Convolution channels per member.
    dropout : float
        Dropout before the dense head (MC-dropout samples it).
    n_members : int
        Members trained together.
    """

    in_channels: int = 1
    n_outputs: int = 1
    width: int = 8
    dropout: float = 0.1
    n_members: int = 1


class ToyVolumeNet(MemberNetwork):
    """``(B, C, z, y, x) -> (B, M, n_outputs)``: member-grouped 3D convolutions, average pool,
    one dense layer per member."""

    def __init__(self, config: ToyNetConfig) -> None:
        super().__init__(n_members=config.n_members)
        self.config = config
        members, width = config.n_members, config.width
        self.features = nn.Sequential(
            nn.Conv3d(config.in_channels, members * width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv3d(members * width, members * width, 3, stride=2, padding=1, groups=members),
            nn.ReLU(),
            nn.AdaptiveAvgPool3d(1),
        )
        self.dropout = nn.Dropout(config.dropout)
        self.head = MemberLinear(
            in_features=width, out_features=config.n_outputs, n_members=members
        )

    def forward(self, volumes: torch.Tensor) -> torch.Tensor:
        features = flatten_members(self.features(volumes), n_members=self.n_members)
        output: torch.Tensor = self.head(self.dropout(features))
        return output

    def make_single(self) -> ToyVolumeNet:
        return ToyVolumeNet(dataclasses.replace(self.config, n_members=1))


@dataclass(frozen=True, kw_only=True)
class ToyModelConfig:
    width: int = 8
    dropout: float = 0.1


@dataclass(frozen=True, kw_only=True)
class ToyTrainConfig(TrainConfig):
    task: Literal["toy"] = "toy"
    model: ToyModelConfig = field(default_factory=ToyModelConfig)


@dataclass(frozen=True, kw_only=True)
class Volumes:
    """Every sample of ``volumes.zarr`` is usable."""

    samples: NDArray[np.int64]
    groups: NDArray[np.int64]
    targets: NDArray[np.float32]
    group_name: str = "halo_id"


class ToyTask(RegressionTask[ToyTrainConfig, Volumes]):
    name = "toy"
    config_type = ToyTrainConfig
    presets: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "quick": {"n_members": 2, "optim": {"max_epochs": 4}}
    }

    def open_dataset(self, store: Path, config: ToyTrainConfig) -> Volumes:
        group = open_volumes(store)
        halo = np.asarray(group["halo_id"][:], dtype=np.int64)
        return Volumes(
            samples=np.arange(halo.size),
            groups=halo,
            targets=np.asarray(group["target"][:], dtype=np.float32),
        )

    def fit_normalisation(
        self, store: Path, config: ToyTrainConfig, dataset: Volumes, *, samples: NDArray[np.int64]
    ) -> dict[str, Any]:
        volumes = open_volumes(store)["volumes"]
        logs = np.log1p(volumes.get_orthogonal_selection((samples,)).astype(np.float64))
        targets = dataset.targets[samples]
        return {
            "mean": float(logs.mean()),
            "std": float(logs.std()),
            "target_mean": [float(targets.mean())],
            "target_std": [float(targets.std())],
        }

    def source(
        self,
        store: Path,
        config: ToyTrainConfig,
        dataset: Volumes,
        normalisation: Mapping[str, Any],
        *,
        samples: NDArray[np.int64],
    ) -> ZarrSamples:
        mean, std = normalisation["mean"], normalisation["std"]

        def standardise(volumes: NDArray[np.float32]) -> NDArray[np.float32]:
            # In place: a read's only copy is zarr's.
            np.log1p(volumes, out=volumes)
            volumes -= mean
            volumes /= std
            return volumes

        return ZarrSamples(
            array=open_volumes(store)["volumes"],
            samples=samples,
            targets=dataset.targets[samples][:, None],
            transform=standardise,
        )

    def augment(
        self, inputs: torch.Tensor, targets: torch.Tensor, *, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        flips = torch.randint(0, 2, (inputs.shape[0], 3), generator=generator)
        for sample, axes in enumerate(flips.tolist()):
            dims = [axis + 1 for axis, flip in enumerate(axes) if flip]
            if dims:
                inputs[sample] = inputs[sample].flip(dims)
        return inputs, targets

    def build_network(self, config: ToyTrainConfig) -> ToyVolumeNet:
        return ToyVolumeNet(
            ToyNetConfig(
                width=config.model.width, dropout=config.model.dropout, n_members=config.n_members
            )
        )


TASK = ToyTask()
register_task(TASK)


class StopTrainingError(Exception):
    """Stands for a crash after an epoch's checkpoint was written."""


def toy_config(**overrides: object) -> ToyTrainConfig:
    """A small, fast toy run (one torch thread, so runs compare bit for bit)."""
    settings = [f"{key}={value}" for key, value in overrides.items()]
    base = ["n_members=2", "data.batch_size=8", "optim.learning_rate=1e-2", "torch_threads=1"]
    config: ToyTrainConfig = load_config(ToyTrainConfig, overrides=base + settings)
    return config


def train_interrupted(store: Path, config: ToyTrainConfig, *, after_epoch: int) -> RunPaths:
    """Train ``config``'s run in this process until ``after_epoch`` is checkpointed, then stop;
    returns the run."""
    paths = prepare_run(store, config)

    def crash(metrics: dict[str, Any], written: Path | None) -> None:
        if metrics["epoch"] == after_epoch:
            raise StopTrainingError

    with pytest.raises(StopTrainingError):
        train_process(store=store, paths=paths, device=CPU, report=crash)
    assert not paths.model.exists()
    return paths


def assert_same_weights(a: RunPaths, b: RunPaths) -> None:
    """The trained models of runs ``a`` and ``b`` hold equal weights, bit for bit."""
    first = torch.load(a.model, weights_only=False)["state_dict"]
    second = torch.load(b.model, weights_only=False)["state_dict"]
    assert first.keys() == second.keys()
    for name, tensor in first.items():
        assert torch.equal(tensor, second[name]), name
