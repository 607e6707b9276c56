"""The cluster_mass task (de Andres et al. 2023): views of a cluster to its projected total mass.

Inputs are the ``views`` of ``cluster_maps.zarr``'s ``images`` (any of ``tsz_y``, ``xray_bol``,
``stellar_mass``), the target its ``targets`` map (Msun kpc^-2); the network is the
fastMRI-style :class:`~darkstack.train.models.unet.UNet`, single-view or multi-view with early
or late ``fusion``. Groups are clusters (``group_id``): the split by group keeps every line of
sight of a cluster in one split.

Normalisation (fitted on the training split, saved with the run): each channel and the target
become ``log10(max(map, floor))`` with ``floor = floor_fraction`` times the channel's mean
training pixel (the stellar-mass map is zero between galaxies, S_X falls to zero where no gas
is; a floor tied to the channel's own scale keeps empty pixels a few decades below the signal
instead of at the smoothing kernel's 1e-30 tails), then per-channel standardisation by the
mean and standard deviation of those logs over the training pixels. The network predicts the
standardised log target; the :class:`~darkstack.train.regressor.Regressor` maps it back, so
the loss, MSE of ``log10`` Σ over the pixels, is the standardised MSE times the target's
variance (the same minimiser). With ``dihedral`` each training sample is moved by a random
symmetry of the square, its views and its target map alike (the maps are square and centred on
the cluster, so D4 is a symmetry of the problem); off by default. ``n_members`` U-Nets train
together as an ensemble (with ``bootstrap``, each on its resample of the training clusters).
With ``loss_weighting="log_radius"`` each pixel's squared error weighs ``1 / max(r, 1 px)^2``
(``r`` its centre's distance from the map centre): every logarithmic annulus then weighs the
same, as the cylinder masses at 0.1-1 R200 do, where the pixel mean gives the few central
pixels ~0.1% of the loss. See docs/cluster_mass.md, "The U-Nets".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
import torch
from numpy.typing import NDArray

from darkstack.config import Checked, Range, Rule
from darkstack.errors import InputError
from darkstack.features.cluster_observe import pixel_radii_kpc
from darkstack.store import CLUSTER_MAPS_ZARR, StoreLayout
from darkstack.train.config import TrainConfig
from darkstack.train.data import Augment
from darkstack.train.losses import Loss, squared_errors
from darkstack.train.models import MemberNetwork
from darkstack.train.models.unet import Fusion, UNetConfig, UNetMember, size_problem
from darkstack.train.symmetry import random_dihedral
from darkstack.train.tasks.regression import RegressionTask

#: The views a cluster_mass run can take, in ``cluster_maps.zarr``'s channel order.
VIEWS: tuple[str, ...] = CLUSTER_MAPS_ZARR.labels("channel")
#: Samples read at a time while fitting the normalisation.
_FIT_BATCH = 256
#: How a map's pixels weigh in the loss (module docstring).
LossWeighting = Literal["pixel", "log_radius"]


def _views_problem(config: ClusterMassTrainConfig) -> str | None:
    views = list(config.views)
    if views and len(set(views)) == len(views) and set(views) <= set(VIEWS):
        return None
    return f"distinct names among {list(VIEWS)}, at least one"


def _dihedral_problem(config: ClusterMassTrainConfig) -> str | None:
    if not config.dihedral or config.data.augment:
        return None
    return "false unless data.augment is true (the switch of every task's augmentation)"


@dataclass(frozen=True, kw_only=True)
class ClusterMassModelConfig(Checked):
    """The U-Net's width, depth and dropout (:class:`~darkstack.train.models.unet.UNetConfig`;
    the number of views comes from ``views``)."""

    channels: Annotated[int, Range(ge=1)] = 32
    poolings: Annotated[int, Range(ge=1)] = 4
    dropout: Annotated[float, Range(ge=0, lt=1)] = 0.0


@dataclass(frozen=True, kw_only=True)
class ClusterMassTrainConfig(TrainConfig):
    """A run of the cluster_mass task.

    Parameters
    ----------
    views : tuple of str
        Channels of ``cluster_maps.zarr`` the network sees, e.g. ``("tsz_y",)`` or all three.
    fusion : {"early", "late"}
        How several views meet (stacked channels, or one encoder each); moot for one view.
    floor_fraction : float
        Maps are floored at this fraction of the channel's mean training pixel before log10.
    dihedral : bool
        Augment training samples by a random symmetry of the square (rotations by 90 degrees
        and mirrors), the views and the target map alike; needs ``data.augment``. Off by
        default: runs saved before it record ``data.augment: true`` (the default) without
        having been augmented, and must resume as they were.
    loss_weighting : {"pixel", "log_radius"}
        Every pixel alike, or each logarithmic annulus around the map centre alike
        (:func:`log_radius_weights`); the validation score that selects the best epoch is
        weighted the same way.
    model : ClusterMassModelConfig
        The U-Net's width and depth.
    """

    task: Literal["cluster_mass"] = "cluster_mass"
    bootstrap: bool = False
    views: tuple[str, ...] = VIEWS
    fusion: Fusion = "early"
    floor_fraction: Annotated[float, Range(gt=0, lt=1)] = 1e-4
    dihedral: bool = False
    loss_weighting: LossWeighting = "pixel"
    model: ClusterMassModelConfig = field(default_factory=ClusterMassModelConfig)

    RULES: ClassVar[tuple[Rule, ...]] = (
        *TrainConfig.RULES,
        Rule("views", _views_problem),
        Rule("dihedral", _dihedral_problem),
    )

    def default_run_name(self) -> str:
        views = "+".join(self.views)
        fusion = f"_{self.fusion}" if len(self.views) > 1 else ""
        # Marked only when set, so the names of single, unaugmented runs stay what they were.
        members = f"_m{self.n_members}" if self.n_members > 1 else ""
        augmented = "_d4" if self.dihedral else ""
        weighted = "_wlogr" if self.loss_weighting == "log_radius" else ""
        return (
            f"unet_{views}{fusion}_c{self.model.channels}p{self.model.poolings}{members}"
            f"{augmented}{weighted}_s{self.seed}"
        )


def log_radius_weights(n_pixels: int) -> NDArray[np.float64]:
    """Loss weight of each pixel of an ``n_pixels``-square map: ``1 / max(r, 1)^2``, ``r`` the
    distance of its centre from the map centre in pixels, scaled to a mean of 1.

    An annulus of ``dr`` holds ``2 pi r dr`` pixels, so each interval of ``ln r`` weighs the
    same (``2 pi d ln r``) down to one pixel, inside which the weights stop growing.
    """
    radius = pixel_radii_kpc(n_pixels, pixel_kpc=1.0)
    weights = 1.0 / np.maximum(radius, 1.0) ** 2
    return np.asarray(weights / weights.mean())


@dataclass(frozen=True, kw_only=True)
class ClusterMaps:
    """Every sample of ``cluster_maps.zarr``: its cluster and its map side."""

    samples: NDArray[np.int64]
    groups: NDArray[np.int64]
    side: tuple[int, int]
    group_name: str = "group_id"


def _open(store: Path) -> Any:
    return CLUSTER_MAPS_ZARR.check(StoreLayout(store).zarr(CLUSTER_MAPS_ZARR.name))


def _channels(views: Sequence[str]) -> list[int]:
    return [VIEWS.index(view) for view in views]


def _log_maps(maps: NDArray[Any], floors: NDArray[Any]) -> NDArray[np.float64]:
    """``log10(max(map, floor))`` with one floor per channel (axis 1 of ``maps``)."""
    shape = (1, -1) + (1,) * (maps.ndim - 2)
    return np.log10(np.maximum(maps, np.reshape(floors, shape)))


def _standardise(
    maps: NDArray[Any], *, floor: Sequence[float], mean: Sequence[float], std: Sequence[float]
) -> NDArray[np.float32]:
    shape = (1, -1, 1, 1)
    logs = _log_maps(maps, np.asarray(floor))
    scaled = (logs - np.reshape(mean, shape)) / np.reshape(std, shape)
    return scaled.astype(np.float32)


class ClusterMapSource:
    """Normalised views and log10 target maps of some samples, read a zarr chunk at a time."""

    def __init__(
        self,
        group: Any,
        normalisation: Mapping[str, Any],
        *,
        samples: NDArray[np.int64],
        views: Sequence[str],
    ) -> None:
        self.images = group["images"]
        self.targets = group["targets"]
        self.samples = np.asarray(samples, dtype=np.int64)
        self.channels = _channels(views)
        self.normalisation = normalisation
        self.chunk = self.samples // int(self.images.chunks[0])

    def read(self, positions: NDArray[np.int64]) -> tuple[NDArray[Any], NDArray[Any]]:
        rows = self.samples[positions]
        norm = self.normalisation
        inputs = _standardise(
            self.images.get_orthogonal_selection((rows, self.channels)),
            floor=norm["input_floor"],
            mean=norm["input_mean"],
            std=norm["input_std"],
        )
        targets = _log_maps(
            self.targets.get_orthogonal_selection((rows,))[:, None],
            np.asarray(norm["target_floor"]),
        )[:, 0]
        return inputs, targets.astype(np.float32)


def _channel_moments(arrays: Sequence[NDArray[Any]], floors: NDArray[Any] | None) -> Any:
    """Per-channel pixel mean (``floors`` None) or mean and std of the floored log10."""
    total = count = squares = 0.0
    for maps in arrays:
        values = maps if floors is None else _log_maps(maps, floors)
        axes = (0, 2, 3)
        total = total + values.sum(axis=axes)
        squares = squares + (values**2).sum(axis=axes)
        count += values.shape[0] * values.shape[2] * values.shape[3]
    mean = np.asarray(total) / count
    if floors is None:
        return mean
    return mean, np.sqrt(np.maximum(np.asarray(squares) / count - mean**2, 1e-12))


class ClusterMassTask(RegressionTask[ClusterMassTrainConfig, ClusterMaps]):
    """Views of a cluster to its projected total-mass map with a U-Net."""

    name = "cluster_mass"
    config_type = ClusterMassTrainConfig
    presets: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "quick": {
            "model": {"channels": 8, "poolings": 3},
            "data": {"batch_size": 8, "augment": False},
            "optim": {"learning_rate": 1e-3, "max_epochs": 3, "patience": 2},
        },
        # issue 20's scaled preset (8 channels, 3 poolings, 64 px maps from observe's n_pixels):
        # 8 channels and 60 epochs keep a model within 30 minutes on one core (14 s an epoch
        # of 2,160 maps early, ~25 s late; docs/cluster_mass.md). The 25-epoch runs were
        # still improving; the plateau schedule and the log-radius loss are what brought the
        # inner cylinder masses below the baseline's (docs/cluster_mass.md, Scaled results).
        "small": {
            "model": {"channels": 8, "poolings": 3},
            # 32 chunks of 16 samples: a batch mixes ~40 clusters' views, not one cluster's.
            "data": {"batch_size": 16, "shuffle_chunks": 32},
            "optim": {
                "learning_rate": 1e-3,
                "max_epochs": 60,
                "patience": 10,
                "lr_schedule": "plateau",
                "lr_patience": 4,
            },
            "loss_weighting": "log_radius",
        },
    }

    def open_dataset(self, store: Path, config: ClusterMassTrainConfig) -> ClusterMaps:
        group = _open(store)
        groups = np.asarray(group["group_id"][:], dtype=np.int64)
        height, width = (int(n) for n in group["images"].shape[-2:])
        problem = size_problem(height, width, poolings=config.model.poolings)
        if problem:
            path = StoreLayout(store).zarr(CLUSTER_MAPS_ZARR.name)
            raise InputError(f"{path}: {problem}; change model.poolings or observe's n_pixels")
        square_only = [
            name
            for name, on in (
                ("dihedral=true", config.dihedral),
                ("loss_weighting=log_radius", config.loss_weighting == "log_radius"),
            )
            if on
        ]
        if square_only and height != width:
            path = StoreLayout(store).zarr(CLUSTER_MAPS_ZARR.name)
            raise InputError(
                f"{path}: maps are {height}x{width} pixels; {square_only[0]} needs square maps"
            )
        return ClusterMaps(samples=np.arange(groups.size), groups=groups, side=(height, width))

    def fit_normalisation(
        self,
        store: Path,
        config: ClusterMassTrainConfig,
        dataset: ClusterMaps,
        *,
        samples: NDArray[np.int64],
    ) -> dict[str, Any]:
        group = _open(store)
        channels = _channels(config.views)
        rows = dataset.samples[samples]
        batches = [rows[start : start + _FIT_BATCH] for start in range(0, rows.size, _FIT_BATCH)]

        def images() -> list[NDArray[Any]]:
            return [group["images"].get_orthogonal_selection((b, channels)) for b in batches]

        def targets() -> list[NDArray[Any]]:
            return [group["targets"].get_orthogonal_selection((b,))[:, None] for b in batches]

        input_floor = config.floor_fraction * _channel_moments(images(), None)
        target_floor = config.floor_fraction * _channel_moments(targets(), None)
        input_mean, input_std = _channel_moments(images(), input_floor)
        target_mean, target_std = _channel_moments(targets(), target_floor)
        if not np.all(input_floor > 0) or not np.all(target_floor > 0):
            raise InputError(
                f"{StoreLayout(store).zarr(CLUSTER_MAPS_ZARR.name)}: a channel of views "
                f"{list(config.views)} or the target is zero on every training pixel; expected "
                "some positive signal"
            )
        return {
            "views": list(config.views),
            "input_floor": input_floor.tolist(),
            "input_mean": input_mean.tolist(),
            "input_std": input_std.tolist(),
            "target_floor": target_floor.tolist(),
            "target_mean": target_mean.tolist(),
            "target_std": target_std.tolist(),
        }

    def source(
        self,
        store: Path,
        config: ClusterMassTrainConfig,
        dataset: ClusterMaps,
        normalisation: Mapping[str, Any],
        *,
        samples: NDArray[np.int64],
    ) -> ClusterMapSource:
        return ClusterMapSource(
            _open(store), normalisation, samples=dataset.samples[samples], views=config.views
        )

    def augment(
        self, inputs: torch.Tensor, targets: torch.Tensor, *, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Each sample's views ``(C, H, W)`` and target map ``(H, W)`` under one random element
        of the square's symmetry group."""
        moved, moved_targets = random_dihedral([inputs, targets], generator=generator)
        return moved, moved_targets

    def augmentation(self, config: ClusterMassTrainConfig) -> Augment | None:
        # data.augment defaults to true, and runs saved before the flips existed record it
        # true: the flips need their own switch, off by default, to leave those runs as they were.
        return self.augment if config.data.augment and config.dihedral else None

    def losses(self, config: ClusterMassTrainConfig) -> tuple[Loss, Loss]:
        if config.loss_weighting == "pixel":
            return super().losses(config)
        cache: dict[int, torch.Tensor] = {}

        def loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
            n = int(targets.shape[-1])
            if n not in cache:
                cache[n] = torch.from_numpy(log_radius_weights(n))
            return squared_errors(outputs, targets, weights=cache[n])

        # Training and validation alike: the best epoch is the best of the objective trained on.
        return loss, loss

    def build_network(self, config: ClusterMassTrainConfig) -> MemberNetwork:
        return UNetMember(
            UNetConfig(
                n_views=len(config.views),
                fusion=config.fusion,
                channels=config.model.channels,
                poolings=config.model.poolings,
                dropout=config.model.dropout,
            ),
            n_members=config.n_members,
        )


TASK = ClusterMassTask()
