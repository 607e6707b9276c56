"""The dm2gal task: the Dark run's DM and subhalo crops to the hydro run's central stellar mass.

Kasmanoff et al. (2020): MSE on the standardised ``log10(1 + M*)`` (a
:class:`~darkstack.train.regressor.Regressor` around :class:`Dm2galCNN`), Adam with
ReduceLROnPlateau (patience 5, factor 10, in every preset), the 24 cube
rotations as augmentation, the weighted sampler on the training split, and the split by region
(:mod:`~darkstack.train.tasks.dm2gal.regions`) instead of by group. See docs/dm2gal.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from numpy.typing import NDArray

from darkstack.config import ConfigError, Rule
from darkstack.errors import InputError
from darkstack.train.config import TrainConfig
from darkstack.train.data import SampleSource
from darkstack.train.models import MemberNetwork
from darkstack.train.models.dm2gal_cnn import Dm2galCNNConfig, Dm2galMember
from darkstack.train.tasks.base import Select
from darkstack.train.tasks.dm2gal.regions import TEST, TRAIN, VALIDATION
from darkstack.train.tasks.dm2gal.rotations import random_rotations
from darkstack.train.tasks.dm2gal.samples import (
    DARK_SUBHALO_FIELD,
    INPUT_FIELDS,
    TARGET_FIELD,
    Dm2galSamplesConfig,
    WeightedDraw,
    find_centres,
    fit_inputs,
    log1p10,
    sampler_weights,
)
from darkstack.train.tasks.dm2gal.selection import Dm2galSelectionConfig, power_selection
from darkstack.train.tasks.dm2gal.source import (
    CropSource,
    Dm2galSamples,
    crop_source,
    open_fields,
)
from darkstack.train.tasks.regression import RegressionTask

_SAME_CROP = "model.crop_side, the samples' crop side"


@dataclass(frozen=True, kw_only=True)
class Dm2galTrainConfig(TrainConfig):
    """A run of the dm2gal task: its samples and its network.

    ``model.crop_side`` must equal ``samples.crop_side``. The paper's optimiser settings are
    Adam, MSE and ReduceLROnPlateau (patience 5); the presets set the last
    (``optim.lr_schedule``).
    """

    task: Literal["dm2gal"] = "dm2gal"
    bootstrap: bool = False
    samples: Dm2galSamplesConfig = field(default_factory=Dm2galSamplesConfig)
    model: Dm2galCNNConfig = field(default_factory=Dm2galCNNConfig)
    selection: Dm2galSelectionConfig = field(default_factory=Dm2galSelectionConfig)

    RULES: ClassVar[tuple[Rule, ...]] = (
        *TrainConfig.RULES,
        Rule(
            "model.crop_side",
            lambda c: None if c.model.crop_side == c.samples.crop_side else _SAME_CROP,
        ),
    )

    def default_run_name(self) -> str:
        centres = "_dark" if self.samples.centres == "dark_subhalos" else ""
        members = f"_m{self.n_members}" if self.n_members > 1 else ""
        return (
            f"dm2gal{centres}_c{self.samples.crop_side}_w{self.model.width}{members}_s{self.seed}"
        )


#: Kasmanoff et al. (2020): "ReduceLROnPlateau (patience 5)", torch's default factor of 10.
_PLATEAU = {"lr_schedule": "plateau", "lr_patience": 5, "lr_factor": 0.1}
_SCALED_MODEL = {"crop_side": 33, "width": 8, "kernels": (5, 3, 3), "blocks_per_stage": 1}


class Dm2galTask(RegressionTask[Dm2galTrainConfig, Dm2galSamples]):
    """Dark-run crops to the hydro run's stellar mass in the central voxel."""

    name = "dm2gal"
    config_type = Dm2galTrainConfig
    presets: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        # A 64³ quick universe: 17³ crops leave training voxels outside the guard band; two
        # stages (17 -> 15 -> 7 -> 5 -> 2) fit them.
        "quick": {
            "samples": {"crop_side": 17, "weight_bins": 20},
            "model": {"crop_side": 17, "width": 4, "kernels": (3, 3), "blocks_per_stage": 1},
            "data": {"batch_size": 16},
            "optim": {"learning_rate": 1e-3, "max_epochs": 3, "patience": 2, **_PLATEAU},
        },
        # 8192 draws an epoch (of ~27,500 training centres on the 512³ small fields): about a
        # minute an epoch on 2 cores, so 30 epochs take 30 minutes.
        "small": {
            "samples": {"crop_side": 33, "draws_per_epoch": 8192},
            "model": _SCALED_MODEL,
            "data": {"batch_size": 32, "shuffle_chunks": 4},
            "optim": {"learning_rate": 1e-3, "max_epochs": 30, "patience": 8, **_PLATEAU},
        },
        # The paper selects by the P(k) of its network's own painting.
        "paper": {
            "data": {"batch_size": 16},
            "optim": {"learning_rate": 1e-4, **_PLATEAU},
            "selection": {"by": "power", "calibration": "none"},
        },
    }

    def open_dataset(self, store: Path, config: Dm2galTrainConfig) -> Dm2galSamples:
        group = open_fields(store)
        target = group[TARGET_FIELD]
        grid = int(target.shape[0])
        regions = config.samples.regions(grid)
        name, threshold = config.samples.centre_field()
        centres = find_centres(group[name], threshold=threshold)
        cube = np.stack(np.unravel_index(centres, (grid,) * 3), axis=1)
        labels = regions.label(cube)
        keep = labels != -1
        samples = centres[keep]
        if not all(np.any(labels[keep] == value) for value in (TRAIN, VALIDATION, TEST)):
            setting = (
                "dark_subhalo_min_mass_msun" if name != TARGET_FIELD else "min_stellar_mass_msun"
            )
            raise InputError(
                f"{name} of {store} has {centres.size} voxels above {threshold:.3g} Msun, too "
                "few to fill the train, validation and test regions; lower "
                f"samples.{setting} or samples.crop_side"
            )
        kept = tuple(cube[keep].T)
        return Dm2galSamples(
            samples=samples,
            labels=labels[keep],
            targets_msun=np.asarray(target.get_coordinate_selection(kept), dtype=np.float32),
            dark_subhalo_msun=np.asarray(
                group[DARK_SUBHALO_FIELD].get_coordinate_selection(kept), dtype=np.float32
            ),
            grid=grid,
        )

    def split(
        self, dataset: Dm2galSamples, config: Dm2galTrainConfig
    ) -> dict[str, NDArray[np.int64]]:
        """Positions of the centres in each region (the split is the regions, not groups)."""
        return {
            name: np.flatnonzero(dataset.labels == value)
            for name, value in (("train", TRAIN), ("validation", VALIDATION), ("test", TEST))
        }

    def fit_normalisation(
        self,
        store: Path,
        config: Dm2galTrainConfig,
        dataset: Dm2galSamples,
        *,
        samples: NDArray[np.int64],
    ) -> dict[str, Any]:
        group = open_fields(store)
        inputs = fit_inputs(
            [group[name] for name in INPUT_FIELDS], regions=config.samples.regions(dataset.grid)
        )
        targets = log1p10(dataset.targets_msun[np.searchsorted(dataset.samples, samples)])
        return {
            "input_fields": list(INPUT_FIELDS),
            "input_mean": list(inputs.mean),
            "input_std": list(inputs.std),
            "target_mean": [float(targets.mean())],
            "target_std": [float(max(targets.std(), 1e-6))],
        }

    def source(
        self,
        store: Path,
        config: Dm2galTrainConfig,
        dataset: Dm2galSamples,
        normalisation: Mapping[str, Any],
        *,
        samples: NDArray[np.int64],
    ) -> CropSource:
        """Crops of ``samples``, each once (training draws from them: :meth:`epoch_draw`)."""
        return crop_source(
            open_fields(store),
            dataset,
            normalisation,
            samples=samples,
            side=config.samples.crop_side,
            cached=2 * config.data.shuffle_chunks,
        )

    def epoch_draw(
        self, config: Dm2galTrainConfig, dataset: Dm2galSamples, *, samples: NDArray[np.int64]
    ) -> WeightedDraw | None:
        """The weighted sampler over the training ``samples`` (binned by
        ``samples.weight_field``), drawn anew every epoch; with ``samples.weight_bins = 0`` a
        uniform draw of ``samples.draws_per_epoch``, or None
        without a cap (every sample once per epoch)."""
        draws = config.samples.draws_per_epoch
        if not config.samples.weight_bins:
            if draws is None:
                return None
            return WeightedDraw(weights=np.ones(samples.size), seed=config.seed, size=draws)
        rows = np.searchsorted(dataset.samples, samples)
        binned = (
            dataset.targets_msun
            if config.samples.weight_field == "target"
            else dataset.dark_subhalo_msun
        )
        weights = sampler_weights(binned[rows], n_bins=config.samples.weight_bins)
        return WeightedDraw(weights=weights, seed=config.seed, size=draws)

    def augment(
        self, inputs: torch.Tensor, targets: torch.Tensor, *, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # The target is the central voxel's stellar mass, which a rotation about it keeps.
        return random_rotations(inputs, generator=generator), targets

    def selection(
        self, store: Path, config: Dm2galTrainConfig, *, validation: SampleSource
    ) -> Select | None:
        """The paper's selection by the validation cube's P(k) (``selection.by = "power"``)."""
        if config.selection.by == "loss":
            return None
        if not isinstance(validation, CropSource):
            raise TypeError(f"dm2gal validates on a CropSource, not {type(validation).__name__}")
        group = open_fields(store)
        regions = config.samples.regions(int(group[TARGET_FIELD].shape[0]))
        return power_selection(
            group,
            validation=validation,
            cube=regions.validation,
            config=config.selection,
            store=store,
        )

    def build_network(self, config: Dm2galTrainConfig) -> MemberNetwork:
        if config.model.in_channels != len(INPUT_FIELDS):
            raise ConfigError(f"model.in_channels must be {len(INPUT_FIELDS)} for dm2gal")
        return Dm2galMember(config.model, n_members=config.n_members)


TASK = Dm2galTask()
