"""Configuration of a profiles run: which channels the CNN reads, and which CNN.

A run trains one architecture on one set of input channels; ``n_members > 1`` makes it a
bootstrap ensemble whose members train together as one module (see
:mod:`darkstack.train.models.members`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from darkstack.config import Rule
from darkstack.features.observe import CHANNELS
from darkstack.train.calibration import CalibrationMethod
from darkstack.train.config import DataConfig, TrainConfig
from darkstack.train.models import ModelConfig


def _known_channels(config: ProfilesDataConfig) -> str | None:
    channels = config.channels
    if channels and set(channels) <= set(CHANNELS) and len(set(channels)) == len(channels):
        return None
    return f"distinct names from {list(CHANNELS)}"


@dataclass(frozen=True, kw_only=True)
class ProfilesDataConfig(DataConfig):
    """The split and loader of :class:`DataConfig`, and the input channels.

    Parameters
    ----------
    channels : tuple of str
        Input channels by name, a subset of ``observations.zarr``'s ``channel`` coordinate.
    """

    channels: tuple[str, ...] = CHANNELS

    RULES = (*DataConfig.RULES, Rule("channels", _known_channels))


def _calibration_has_width(config: ProfilesTrainConfig) -> str | None:
    if config.calibration == "none" or config.head == "beta_nll" or config.n_members > 1:
        return None
    return "none for a single member with head=mse (its predictive has no width to scale)"


@dataclass(frozen=True, kw_only=True)
class ProfilesTrainConfig(TrainConfig):
    """A run of the profiles task (de los Rios et al. 2023): images to enclosed DM masses.

    Parameters
    ----------
    data : ProfilesDataConfig
        Channels, split and loader.
    model : ModelConfig
        Architecture, outputs and image size.
    head : {"beta_nll", "mse"}
        ``beta_nll``: each member predicts a mean and a log-variance per radius, trained with
        the β-NLL (β = 0.5, Seitzer et al. 2022; :func:`darkstack.train.losses.beta_nll`);
        ``mse``: a mass per radius trained with the MSE (the paper's).
    calibration : {"variance_scaling", "conformal", "none"}
        Post-hoc width calibration of the ensemble's predictive, fitted on the validation
        split after training and applied at predict time (:mod:`darkstack.train.calibration`).
    """

    task: Literal["profiles"] = "profiles"
    data: ProfilesDataConfig = field(default_factory=ProfilesDataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    head: Literal["beta_nll", "mse"] = "beta_nll"
    calibration: CalibrationMethod = "variance_scaling"

    RULES = (*TrainConfig.RULES, Rule("calibration", _calibration_has_width))

    def default_run_name(self) -> str:
        channels = "-".join(name.removeprefix("sdss_") for name in self.data.channels)
        return f"{self.model.architecture}_{channels}_m{self.n_members}_s{self.seed}"


#: Values each preset changes from the defaults: ``quick`` trains a 4-member ensemble in a few
#: minutes on 2 CPU cores; ``paper`` is the paper's setting (100-member bootstrap).
PRESETS: dict[str, dict[str, Any]] = {
    # The demo's ~120 training galaxies: the paper's B (dropout 0.5 before every batch norm,
    # running statistics that keep 0.99 per step) predicted one profile for every galaxy.
    # Architecture A at half width with 10% dropout, PyTorch's batch-norm momentum, batches of
    # 8 (15 steps an epoch) and a little weight decay learns (README, docs/train.md).
    "quick": {
        "n_members": 4,
        "mc_dropout_passes": 30,
        "data": {"batch_size": 8},
        "model": {
            "architecture": "A",
            "width_fraction": 0.5,
            "dropout_fraction": 0.1,
            "batchnorm_momentum": 0.1,
        },
        "optim": {
            "learning_rate": 1e-3,
            "max_epochs": 30,
            "patience": 10,
            "weight_decay": 1e-4,
        },
    },
    # The paper's 1e-4 needs ~10x the epochs 2 CPU cores afford on ~1800 images; 60 epochs
    # (80 min) beat 25 at every radius on the small universe.
    "small": {
        "n_members": 10,
        "optim": {"learning_rate": 1e-3, "max_epochs": 60, "patience": 10},
    },
    # A checkpoint of 100 members is 2 GB (docs/train.md): one every 10 epochs. The paper's
    # recipe, a faithful reproduction: MSE, 100-member bootstrap, no calibration.
    "paper": {
        "n_members": 100,
        "head": "mse",
        "calibration": "none",
        "checkpoint_every_epochs": 10,
        "optim": {"max_epochs": 200, "patience": 10},
    },
}
