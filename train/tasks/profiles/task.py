"""The profiles task: mock SDSS images and HI maps to log10 M_DM(<R) at the store's radii.

de los Rios et al. (2023): the chosen channels of ``observations.zarr`` in, 20 enclosed
dark-matter masses out (a :class:`~darkstack.train.regressor.Regressor` around the paper's CNNs),
the MSE of log10 masses as the loss, random flips and right-angle rotations as augmentation,
the median and 16/84 percentiles of the members (or MC-dropout passes) as the predictive summary.
By default (``head="beta_nll"``) each member also predicts a variance per radius, and the
ensemble's predictive width is calibrated on the validation split after training
(:mod:`darkstack.train.calibration`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from numpy.typing import NDArray

from darkstack.config import ConfigError
from darkstack.store import OBSERVATIONS_ZARR, RunPaths, StoreLayout
from darkstack.train.calibration import fit_calibration
from darkstack.train.data import ZarrSamples
from darkstack.train.models import MemberNetwork, build_model
from darkstack.train.predict import mixture_moments, predict_members
from darkstack.train.regressor import Regressor
from darkstack.train.symmetry import random_dihedral
from darkstack.train.tasks.profiles.config import PRESETS, ProfilesTrainConfig
from darkstack.train.tasks.profiles.data import (
    Normalisation,
    Observations,
    image_array,
    load_images,
    open_observations,
)
from darkstack.train.tasks.regression import RegressionTask


class ProfilesTask(RegressionTask[ProfilesTrainConfig, Observations]):
    """Images and HI maps of a galaxy to its enclosed dark-matter mass profile."""

    name = "profiles"
    config_type = ProfilesTrainConfig
    presets = PRESETS
    # Runs saved before the heteroscedastic head were trained with the MSE, uncalibrated.
    legacy_defaults: ClassVar[Mapping[str, Any]] = {"head": "mse", "calibration": "none"}

    def open_dataset(self, store: Path, config: ProfilesTrainConfig) -> Observations:
        observations = open_observations(store)
        path = StoreLayout(store).zarr(OBSERVATIONS_ZARR.name)
        if observations.image_size != config.model.image_size:
            raise ConfigError(
                f"model.image_size={config.model.image_size} but {path} holds "
                f"{observations.image_size} px images; set "
                f"model.image_size={observations.image_size}"
            )
        if observations.radii_kpc.size != config.model.n_outputs:
            raise ConfigError(
                f"model.n_outputs={config.model.n_outputs} but {path} holds "
                f"{observations.radii_kpc.size} radii; set "
                f"model.n_outputs={observations.radii_kpc.size}"
            )
        return observations

    def fit_normalisation(
        self,
        store: Path,
        config: ProfilesTrainConfig,
        dataset: Observations,
        *,
        samples: NDArray[np.int64],
    ) -> dict[str, Any]:
        images = load_images(store, samples=samples, channels=config.data.channels)
        targets = dataset.targets[np.searchsorted(dataset.samples, samples)]
        return Normalisation.fit(images, targets, channels=config.data.channels).to_mapping()

    def source(
        self,
        store: Path,
        config: ProfilesTrainConfig,
        dataset: Observations,
        normalisation: Mapping[str, Any],
        *,
        samples: NDArray[np.int64],
    ) -> ZarrSamples:
        images, channels = image_array(store, channels=config.data.channels)
        return ZarrSamples(
            array=images,
            samples=samples,
            targets=dataset.targets[np.searchsorted(dataset.samples, samples)],
            select=(channels, slice(None), slice(None)),
            transform=Normalisation.from_mapping(dict(normalisation)).images,
        )

    def augment(
        self, inputs: torch.Tensor, targets: torch.Tensor, *, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        (images,) = random_dihedral([inputs], generator=generator)
        return images, targets

    def build_network(self, config: ProfilesTrainConfig) -> MemberNetwork:
        model = config.model
        if config.head == "beta_nll":
            model = replace(model, n_outputs=2 * model.n_outputs)
        return build_model(model, in_channels=len(config.data.channels), n_members=config.n_members)

    def build_model(
        self, config: ProfilesTrainConfig, normalisation: Mapping[str, Any]
    ) -> Regressor:
        return Regressor(
            self.build_network(config),
            target_mean=normalisation["target_mean"],
            target_std=normalisation["target_std"],
            heteroscedastic=config.head == "beta_nll",
        )

    def calibrate(
        self, store: Path, paths: RunPaths, model: torch.nn.Module, config: ProfilesTrainConfig
    ) -> None:
        """Fit ``config.calibration`` on the members' mixture over the validation split."""
        if config.calibration == "none":
            return
        from darkstack.train.run import load_split_data

        data = load_split_data(store, paths, "validation")
        device = next(model.parameters()).device
        draws = predict_members(model, data.inputs, device=device)
        mean, sigma = mixture_moments(draws, heteroscedastic=config.head == "beta_nll")
        fit_calibration(mean=mean, sigma=sigma, true=data.targets, method=config.calibration).save(
            paths.calibration
        )


#: The registered instance (``darkstack.train.tasks.get_task("profiles")``).
TASK = ProfilesTask()
