"""The cusp_core task (Exposito-Marquez et al. 2022): phase-space maps to the 150 pc DM slope.

Inputs are ``phase_space.zarr``'s two maps (``xy``, ``rv``), targets its slopes; groups are
dwarfs (``subhalo_id``), so k-fold cross-validation (``data.n_folds``, ``data.fold``) holds
out whole dwarfs. The model is :class:`~darkstack.train.models.mdcnn.MDCNN`, one network (the
paper's uncertainty is MC-dropout, not an ensemble), the loss the mixture NLL, and the
predictive summary the normalised mean of the MC-dropout passes' mixture densities.

Normalisation: the maps are probabilities per pixel (mean 1 / n_pixels^2); they are multiplied
by n_pixels^2 so a uniform map is 1 everywhere. The targets are used as they are (they already
lie in about [-1.5, 0]).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from darkstack.config import Checked, Rule
from darkstack.evaluate.posterior import PosteriorSummary, summarise
from darkstack.store import PHASE_SPACE_ZARR, StoreLayout
from darkstack.train.config import TrainConfig
from darkstack.train.data import ZarrSamples
from darkstack.train.models.mdcnn import (
    MDCNN,
    Components,
    Dropout,
    MDCNNConfig,
    Widths,
    mc_dropout_density,
    mixture_density,
    mixture_nll,
)
from darkstack.train.tasks.base import Task

_ONE_NETWORK = "1: cusp_core trains one network and takes its spread from MC-dropout"
#: Slope grid of the posteriors.
SLOPE_GRID = np.linspace(-3.0, 1.0, 801)


@dataclass(frozen=True, kw_only=True)
class CuspCoreModelConfig(Checked):
    """Layer sizes of :class:`MDCNNConfig` (the paper gives none; see docs/cusp_core.md)."""

    conv_channels: Widths = (16, 32, 64)
    dense_units: Widths = (256, 64)
    dropout: Dropout = 0.2
    n_components: Components = 2


@dataclass(frozen=True, kw_only=True)
class CuspCoreTrainConfig(TrainConfig):
    """A run of the cusp_core task; ``n_members`` must be 1 (MC-dropout gives the spread)."""

    task: Literal["cusp_core"] = "cusp_core"
    bootstrap: bool = False
    model: CuspCoreModelConfig = field(default_factory=CuspCoreModelConfig)

    RULES: ClassVar[tuple[Rule, ...]] = (
        *TrainConfig.RULES,
        Rule("n_members", lambda c: None if c.n_members == 1 else _ONE_NETWORK),
    )

    def default_run_name(self) -> str:
        return f"mdcnn_fold{self.data.fold}of{self.data.n_folds}_s{self.seed}"


@dataclass(frozen=True, kw_only=True)
class PhaseSpaceSamples:
    """Every sample of ``phase_space.zarr``."""

    samples: NDArray[np.int64]
    groups: NDArray[np.int64]
    targets: NDArray[np.float32]
    group_name: str = "subhalo_id"


class CuspCoreModel(nn.Module):
    """The MDCNN (at ``network``) behind the fixed input scaling."""

    network: MDCNN
    input_scale: torch.Tensor

    def __init__(self, network: MDCNN, *, input_scale: float) -> None:
        super().__init__()
        self.network = network
        self.register_buffer("input_scale", torch.tensor(input_scale, dtype=torch.float32))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        output: torch.Tensor = self.network(images * self.input_scale)
        return output

    def posterior(
        self, maps: torch.Tensor, *, n_passes: int
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """MC-dropout posterior on :data:`SLOPE_GRID` of probability maps ``(B, 2, S, S)``.

        Returns the normalised mean density ``(B, G)`` and each pass's ``(n_passes, B, G)``.
        """
        grid = torch.tensor(SLOPE_GRID, dtype=torch.float32)
        mean, passes = mc_dropout_density(
            self.network, maps * self.input_scale, grid, n_passes=n_passes
        )
        return mean.numpy().astype(np.float64), passes.numpy().astype(np.float64)


def _open(store: Path) -> Any:
    return PHASE_SPACE_ZARR.check(StoreLayout(store).zarr(PHASE_SPACE_ZARR.name))


class CuspCoreTask(Task[CuspCoreTrainConfig, PhaseSpaceSamples]):
    name = "cusp_core"
    config_type = CuspCoreTrainConfig
    presets: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "quick": {
            "mc_dropout_passes": 20,
            "data": {"n_folds": 2, "batch_size": 16, "augment": False},
            "optim": {"max_epochs": 3, "patience": 2},
            "model": {"conv_channels": (8, 16, 16), "dense_units": (64,)},
        },
        "small": {
            "mc_dropout_passes": 100,
            "data": {"n_folds": 5, "batch_size": 32},
            "optim": {"learning_rate": 1e-3, "max_epochs": 40, "patience": 8},
        },
    }

    def open_dataset(self, store: Path, config: CuspCoreTrainConfig) -> PhaseSpaceSamples:
        group = _open(store)
        subhalo = np.asarray(group["subhalo_id"][:], dtype=np.int64)
        return PhaseSpaceSamples(
            samples=np.arange(subhalo.size),
            groups=subhalo,
            targets=np.asarray(group["targets"][:], dtype=np.float32),
        )

    def fit_normalisation(
        self,
        store: Path,
        config: CuspCoreTrainConfig,
        dataset: PhaseSpaceSamples,
        *,
        samples: NDArray[np.int64],
    ) -> dict[str, Any]:
        side = int(_open(store)["images"].shape[-1])
        return {"input_scale": float(side * side)}

    def source(
        self,
        store: Path,
        config: CuspCoreTrainConfig,
        dataset: PhaseSpaceSamples,
        normalisation: Mapping[str, Any],
        *,
        samples: NDArray[np.int64],
    ) -> ZarrSamples:
        return ZarrSamples(
            array=_open(store)["images"], samples=samples, targets=dataset.targets[samples]
        )

    def augment(
        self, inputs: torch.Tensor, targets: torch.Tensor, *, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mirror the xy map (x -> -x, y -> -y): a symmetry of a projected spheroid, which
        leaves the slope target as it is."""
        flips = torch.randint(0, 2, (inputs.shape[0], 2), generator=generator)
        for sample, (flip_x, flip_y) in enumerate(flips.tolist()):
            # inputs[sample, 0] is one (y, x) map: x is its dim 1, y its dim 0.
            dims = [d for d, flip in ((1, flip_x), (0, flip_y)) if flip]
            if dims:
                inputs[sample, 0] = inputs[sample, 0].flip(dims)
        return inputs, targets

    def build_model(
        self, config: CuspCoreTrainConfig, normalisation: Mapping[str, Any]
    ) -> CuspCoreModel:
        side = round(float(normalisation["input_scale"]) ** 0.5)
        network = MDCNN(
            MDCNNConfig(
                image_size=side,
                conv_channels=tuple(config.model.conv_channels),
                dense_units=tuple(config.model.dense_units),
                dropout=config.model.dropout,
                n_components=config.model.n_components,
            )
        )
        return CuspCoreModel(network, input_scale=float(normalisation["input_scale"]))

    def per_sample_loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return mixture_nll(outputs, targets)

    def summarise(self, draws: NDArray[np.floating]) -> PosteriorSummary:
        """Posterior of each sample from its MC-dropout draws of mixture parameters."""
        grid = torch.tensor(SLOPE_GRID)
        density = mixture_density(torch.tensor(np.asarray(draws), dtype=torch.float64), grid)
        return summarise(SLOPE_GRID, density.mean(dim=1).numpy())


TASK = CuspCoreTask()
