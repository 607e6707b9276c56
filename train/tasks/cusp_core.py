"""The cusp_core task (Exposito-Marquez et al. 2022): phase-space maps to the 150 pc DM slope.

Inputs are ``phase_space.zarr``'s two maps (``xy``, ``rv``), targets its slopes; groups are
dwarfs (``subhalo_id``), so k-fold cross-validation (``data.n_folds``, ``data.fold``) holds
out whole dwarfs. The model is :class:`~darkstack.train.models.mdcnn.MDCNN`, one network (the
paper's uncertainty is MC-dropout, not an ensemble), the loss the mixture NLL, and the
predictive summary the normalised mean of the MC-dropout passes' mixture densities.

Normalisation: the maps are probabilities per pixel (mean 1 / n_pixels^2); they are multiplied
by n_pixels^2 so a uniform map is 1 everywhere. The scalars a run takes (``model.scalars``:
all by default; none in the paper) are standardised by their training mean and deviation. The
targets are used as they are (they already lie in about [-1.5, 0]).

A sample's input row is its two maps flattened, then its scalars (:func:`pack_inputs`): the
training stream moves one array per sample, and :class:`CuspCoreModel` unpacks it.

Calibration (``calibration``, default ``temperature``): after training, one temperature for
the posteriors (:func:`darkstack.evaluate.posterior.fit_temperature`) is fitted on the
validation split so that their 68% intervals hold 68% of its slopes, and saved as the run's
``calibration.json`` (:class:`PosteriorCalibration`); evaluate and predict apply it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from darkstack.atomic import atomic_path
from darkstack.config import Checked, Rule
from darkstack.errors import InputError
from darkstack.evaluate.posterior import (
    PosteriorSummary,
    central_coverage,
    fit_temperature,
    summarise,
    temper,
)
from darkstack.features.phase_space import CHANNELS, SCALARS
from darkstack.store import PHASE_SPACE_ZARR, StoreLayout
from darkstack.train.config import TrainConfig
from darkstack.train.data import Augment, ZarrSamples
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
    """Layer sizes of :class:`MDCNNConfig` (the paper gives none; see docs/cusp_core.md), and
    the scalars (names of ``phase_space.zarr``'s ``scalar`` axis) the network takes beside the
    maps: all three by default, what an observer of a dwarf knows (its stellar mass, and the
    velocity scale and half-light radius the maps divide out); ``()`` is the paper's
    maps-only network, which on the mock dwarfs does worse than the stellar mass alone
    (docs/cusp_core.md)."""

    conv_channels: Widths = (16, 32, 64)
    dense_units: Widths = (256, 64)
    dropout: Dropout = 0.2
    n_components: Components = 2
    scalars: tuple[str, ...] = SCALARS

    RULES = (
        Rule(
            "scalars",
            lambda c: (
                None
                if set(c.scalars) <= set(SCALARS) and len(set(c.scalars)) == len(c.scalars)
                else f"distinct names among {list(SCALARS)}"
            ),
        ),
    )


@dataclass(frozen=True, kw_only=True)
class CuspCoreTrainConfig(TrainConfig):
    """A run of the cusp_core task; ``n_members`` must be 1 (MC-dropout gives the spread).
    ``calibration``: ``temperature`` fits a posterior temperature on the validation split
    after training (see the module), ``none`` keeps the raw MC-dropout posterior."""

    task: Literal["cusp_core"] = "cusp_core"
    bootstrap: bool = False
    model: CuspCoreModelConfig = field(default_factory=CuspCoreModelConfig)
    calibration: Literal["none", "temperature"] = "temperature"

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


def pack_inputs(maps: NDArray[np.floating], scalars: NDArray[np.floating]) -> NDArray[np.float32]:
    """Input rows ``(B, 2 S S + k)``: each sample's maps ``(B, 2, S, S)`` flattened, then its
    scalars ``(B, k)`` (k may be 0)."""
    rows = maps.shape[0]
    return np.concatenate([maps.reshape(rows, -1), scalars.reshape(rows, -1)], axis=1).astype(
        np.float32
    )


class CuspCoreModel(nn.Module):
    """The MDCNN (at ``network``) behind the fixed input scaling, on packed input rows."""

    network: MDCNN
    input_scale: torch.Tensor
    scalar_mean: torch.Tensor
    scalar_std: torch.Tensor

    def __init__(
        self,
        network: MDCNN,
        *,
        input_scale: float,
        scalar_mean: tuple[float, ...] = (),
        scalar_std: tuple[float, ...] = (),
    ) -> None:
        super().__init__()
        self.network = network
        self.register_buffer("input_scale", torch.tensor(input_scale, dtype=torch.float32))
        # Saved only when there are scalars, so the weights of a maps-only run saved before
        # scalars existed still load.
        saved = len(scalar_mean) > 0
        mean, std = (torch.tensor(v, dtype=torch.float32) for v in (scalar_mean, scalar_std))
        self.register_buffer("scalar_mean", mean, persistent=saved)
        self.register_buffer("scalar_std", std, persistent=saved)

    def split_inputs(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The probability maps ``(B, n_maps, S, S)`` and scalars ``(B, k)`` of packed rows."""
        config = self.network.config
        n_pixels = config.n_maps * config.image_size**2
        maps = inputs[:, :n_pixels].unflatten(
            1, (config.n_maps, config.image_size, config.image_size)
        )
        return maps, inputs[:, n_pixels:]

    def _network_inputs(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        maps, scalars = self.split_inputs(inputs)
        if self.network.config.n_scalars == 0:
            return maps * self.input_scale, None
        return maps * self.input_scale, (scalars - self.scalar_mean) / self.scalar_std

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        output: torch.Tensor = self.network(*self._network_inputs(inputs))
        return output

    def posterior(
        self, inputs: torch.Tensor, *, n_passes: int
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """MC-dropout posterior on :data:`SLOPE_GRID` of packed input rows (:func:`pack_inputs`).

        Returns the normalised mean density ``(B, G)`` and each pass's ``(n_passes, B, G)``.
        """
        grid = torch.tensor(SLOPE_GRID, dtype=torch.float32)
        maps, scalars = self._network_inputs(inputs)
        mean, passes = mc_dropout_density(
            self.network, maps, grid, scalars=scalars, n_passes=n_passes
        )
        return mean.numpy().astype(np.float64), passes.numpy().astype(np.float64)

    def posterior_in_batches(
        self, inputs: torch.Tensor, *, n_passes: int, batch_size: int = 64
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """:meth:`posterior` of many rows, ``batch_size`` at a time (the passes of a whole split
        would not fit in memory): the densities ``(B, G)`` and the passes' 16th and 84th
        percentiles ``(B, 2, G)``, the band of the figures."""
        densities, bands = [], []
        for start in range(0, len(inputs), batch_size):
            mean, passes = self.posterior(inputs[start : start + batch_size], n_passes=n_passes)
            densities.append(mean)
            bands.append(np.percentile(passes, [16, 84], axis=0).transpose(1, 0, 2))
        return np.concatenate(densities), np.concatenate(bands)


@dataclass(frozen=True, kw_only=True)
class PosteriorCalibration:
    """A run's posterior temperature and the 68% coverage of its validation split before and
    after it."""

    temperature: float
    coverage68_before: float
    coverage68_after: float
    n_samples: int

    def apply(self, density: NDArray[np.float64]) -> NDArray[np.float64]:
        """The tempered densities (rows need not be normalised)."""
        return temper(density, self.temperature)

    def save(self, path: Path) -> None:
        """Write it as JSON, atomically."""
        payload = {"method": "temperature", **self.__dict__}
        with atomic_path(path) as temporary:
            temporary.write_text(json.dumps(payload, indent=1))

    @classmethod
    def load(cls, path: Path) -> PosteriorCalibration | None:
        """What :meth:`save` wrote, or None when the run has no calibration file."""
        if not path.exists():
            return None
        try:
            payload = json.loads(path.read_text())
            payload.pop("method")
            return cls(**payload)
        except (ValueError, KeyError, TypeError) as error:
            raise InputError(
                f"{path} is not a cusp_core calibration ({type(error).__name__}: {error}); "
                "delete it and run darkstack train again"
            ) from None


class PhaseSpaceSource:
    """The maps of a split read from zarr by chunk, with the run's scalars held in memory,
    packed into input rows (:func:`pack_inputs`)."""

    def __init__(self, maps: ZarrSamples, scalars: NDArray[np.float32]) -> None:
        self.maps = maps
        self.scalars = scalars
        self.chunk = maps.chunk

    def read(self, positions: NDArray[np.int64]) -> tuple[NDArray[np.float32], NDArray[Any]]:
        maps, targets = self.maps.read(positions)
        return pack_inputs(maps, self.scalars[positions]), targets


def _open(store: Path) -> Any:
    return PHASE_SPACE_ZARR.check(StoreLayout(store).zarr(PHASE_SPACE_ZARR.name))


class CuspCoreTask(Task[CuspCoreTrainConfig, PhaseSpaceSamples]):
    name = "cusp_core"
    config_type = CuspCoreTrainConfig
    # Runs saved before scalars and calibration existed took maps only, uncalibrated.
    legacy_defaults: ClassVar[Mapping[str, Any]] = {"model.scalars": [], "calibration": "none"}
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
        group = _open(store)
        side = int(group["images"].shape[-1])
        scalars = _scalars(group, config)[np.sort(samples)]
        return {
            "input_scale": float(side * side),
            "scalar_mean": scalars.mean(axis=0).tolist(),
            # A constant scalar (one dwarf's M* in a tiny store) is left unscaled.
            "scalar_std": np.where(scalars.std(axis=0) > 0, scalars.std(axis=0), 1.0).tolist(),
        }

    def source(
        self,
        store: Path,
        config: CuspCoreTrainConfig,
        dataset: PhaseSpaceSamples,
        normalisation: Mapping[str, Any],
        *,
        samples: NDArray[np.int64],
    ) -> PhaseSpaceSource:
        group = _open(store)
        maps = ZarrSamples(array=group["images"], samples=samples, targets=dataset.targets[samples])
        return PhaseSpaceSource(maps, _scalars(group, config)[samples])

    def augmentation(self, config: CuspCoreTrainConfig) -> Augment | None:
        """Mirror the xy map when ``data.augment`` is on (:func:`mirror_xy_maps`)."""
        if not config.data.augment:
            return None
        return partial(mirror_xy_maps, n_scalars=len(config.model.scalars))

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
                n_scalars=len(config.model.scalars),
            )
        )
        # Runs saved before scalars existed have no scalar statistics (and take none).
        return CuspCoreModel(
            network,
            input_scale=float(normalisation["input_scale"]),
            scalar_mean=tuple(normalisation.get("scalar_mean", ())),
            scalar_std=tuple(normalisation.get("scalar_std", ())),
        )

    def per_sample_loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return mixture_nll(outputs, targets)

    def calibrate(
        self, store: Path, paths: Any, model: nn.Module, config: CuspCoreTrainConfig
    ) -> None:
        """Fit the posterior temperature on the validation split (``calibration``)."""
        if config.calibration == "none" or not isinstance(model, CuspCoreModel):
            return
        from darkstack.train.run import load_split_data

        data = load_split_data(store, paths, "validation")
        torch.manual_seed(config.seed)
        inputs = torch.from_numpy(data.inputs).to(next(model.parameters()).device)
        density, _ = model.posterior_in_batches(inputs, n_passes=config.mc_dropout_passes)
        truth = data.targets.reshape(-1)
        temperature = fit_temperature(SLOPE_GRID, density, truth)
        PosteriorCalibration(
            temperature=temperature,
            coverage68_before=central_coverage(SLOPE_GRID, density, truth),
            coverage68_after=central_coverage(SLOPE_GRID, temper(density, temperature), truth),
            n_samples=int(truth.size),
        ).save(paths.calibration)

    def summarise(self, draws: NDArray[np.floating]) -> PosteriorSummary:
        """Posterior of each sample from its MC-dropout draws of mixture parameters."""
        grid = torch.tensor(SLOPE_GRID)
        density = mixture_density(torch.tensor(np.asarray(draws), dtype=torch.float64), grid)
        return summarise(SLOPE_GRID, density.mean(dim=1).numpy())


def select_scalars(values: NDArray[np.floating], names: tuple[str, ...]) -> NDArray[np.float32]:
    """The columns ``names`` ``(n, k)`` of scalars ``(n, len(SCALARS))`` in the store's order."""
    return np.asarray(values, dtype=np.float32)[:, [SCALARS.index(name) for name in names]]


def _scalars(group: Any, config: CuspCoreTrainConfig) -> NDArray[np.float32]:
    """The run's scalar columns of every sample, ``(n_samples, k)``."""
    return select_scalars(group["scalars"][:], config.model.scalars)


def mirror_xy_maps(
    inputs: torch.Tensor, targets: torch.Tensor, *, generator: torch.Generator, n_scalars: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mirror each row's xy map (x -> -x and/or y -> -y at random): a symmetry of a projected
    spheroid, which leaves the rv map, the scalars and the slope target as they are."""
    side = round(((inputs.shape[1] - n_scalars) / len(CHANNELS)) ** 0.5)
    # A view of each row's first map; xy[sample] is one (y, x) map: x is its dim 1, y dim 0.
    xy = inputs[:, : side * side].unflatten(1, (side, side))
    flips = torch.randint(0, 2, (inputs.shape[0], 2), generator=generator)
    for sample, (flip_x, flip_y) in enumerate(flips.tolist()):
        dims = [d for d, flip in ((1, flip_x), (0, flip_y)) if flip]
        if dims:
            xy[sample] = xy[sample].flip(dims)
    return inputs, targets


TASK = CuspCoreTask()
