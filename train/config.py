"""Configuration of a training run, read from YAML and saved in the run directory.

A run trains one architecture on one set of input channels; ``n_members > 1`` makes it a
bootstrap ensemble whose members train together as one module (see
:mod:`darkstack.train.models.members`). The resolved config is written to
``STORE/runs/<run>/config.yaml`` and into every checkpoint, so a result always says how it was
made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from darkstack.features.observe import CHANNELS
from darkstack.store import check_run_name
from darkstack.train.models import ModelConfig


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    """Which inputs a run sees and how they are split, normalised and augmented.

    Parameters
    ----------
    channels : tuple of str
        Input channels by name, a subset of ``observations.zarr``'s ``channel`` coordinate.
    split_fractions : tuple of float
        Train, validation and test fractions of the *galaxies* (never of samples, so no
        galaxy's realisations cross splits); 60/20/20 in the paper.
    split_seed : int
        Seed of the galaxy split; runs that share it share the split, so they compare fairly.
    augment : bool
        Random flips and right-angle rotations of training images.
    batch_size : int
        Samples per optimisation step (per Ray worker).
    max_samples_per_split : int
        Train and validate on at most this many samples of each split (whole galaxies in an
        order seeded by ``split_seed``; 0: all), for learning curves and benchmarks. The split
        itself is unchanged.
    """

    channels: tuple[str, ...] = CHANNELS
    split_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    split_seed: int = 0
    augment: bool = True
    batch_size: int = 32
    max_samples_per_split: int = 0

    def __post_init__(self) -> None:
        unknown = [name for name in self.channels if name not in CHANNELS]
        if unknown or not self.channels:
            raise ValueError(
                f"channels {list(self.channels)}: expected names from {list(CHANNELS)}"
            )
        if len(set(self.channels)) != len(self.channels):
            raise ValueError(f"channels {list(self.channels)} repeat a name")
        if any(f <= 0 for f in self.split_fractions) or abs(sum(self.split_fractions) - 1) > 1e-6:
            raise ValueError(
                f"split_fractions {self.split_fractions}: expected three positive fractions "
                "summing to 1"
            )
        if self.batch_size < 1 or self.max_samples_per_split < 0:
            raise ValueError("need batch_size >= 1 and max_samples_per_split >= 0")


@dataclass(frozen=True, kw_only=True)
class OptimConfig:
    """The optimisation of the paper (§4.1): MSE on log10 masses, Adam, early stopping.

    Parameters
    ----------
    learning_rate : float
        Adam's step size (1e-4 in the paper).
    max_epochs : int
        Upper bound on passes over the training split.
    patience : int
        Epochs without a lower validation loss before a member stops improving; training ends
        when every member has run out of patience.
    """

    learning_rate: float = 1e-4
    max_epochs: int = 200
    patience: int = 10

    def __post_init__(self) -> None:
        if self.learning_rate <= 0 or self.max_epochs < 1 or self.patience < 1:
            raise ValueError("need learning_rate > 0, max_epochs >= 1 and patience >= 1")


@dataclass(frozen=True, kw_only=True)
class RayConfig:
    """How Ray Train runs the loop; only :mod:`darkstack.train.ray_trainer` reads it.

    Parameters
    ----------
    num_workers : int
        Data-parallel training workers.
    use_gpu : bool
        One GPU per worker (the loop then runs on ``cuda``).
    cpus_per_worker : float
        CPUs Ray reserves for each worker.
    max_failures : int
        Worker-group restarts Ray Train attempts after a lost worker, resuming from the latest
        checkpoint.
    """

    num_workers: int = 1
    use_gpu: bool = False
    cpus_per_worker: float = 1.0
    max_failures: int = 2

    def __post_init__(self) -> None:
        if self.num_workers < 1 or self.cpus_per_worker <= 0 or self.max_failures < 0:
            raise ValueError("need num_workers >= 1, cpus_per_worker > 0 and max_failures >= 0")


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """A training run.

    Parameters
    ----------
    run : str
        Name of the run directory under ``STORE/runs``; empty derives one from the
        architecture, the channels and the member count.
    seed : int
        Seeds initialisation, batch order, augmentation, dropout and bootstrap resamples.
    n_members : int
        Networks trained together; more than one with ``bootstrap`` is a bootstrap ensemble
        (100 in the paper).
    bootstrap : bool
        Each member trains on its own resample with replacement of the training galaxies;
        off, members differ only by initialisation and dropout (a deep ensemble).
    mc_dropout_passes : int
        Stochastic passes of MC-dropout predictions.
    device : str
        Torch device of the loop without Ray (``cpu``, ``cuda``, ``cuda:1``, ``mps``).
    torch_threads : int
        Intra-op threads per process (0 leaves torch's default).
    model, data, optim, ray : configs
        Architecture, inputs, optimisation and distribution.
    """

    run: str = ""
    seed: int = 0
    n_members: int = 1
    bootstrap: bool = True
    mc_dropout_passes: int = 100
    device: str = "cpu"
    torch_threads: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    ray: RayConfig = field(default_factory=RayConfig)

    def __post_init__(self) -> None:
        if self.n_members < 1 or self.mc_dropout_passes < 1 or self.torch_threads < 0:
            raise ValueError("need n_members >= 1, mc_dropout_passes >= 1, torch_threads >= 0")
        if self.run:
            check_run_name(self.run)

    @property
    def run_name(self) -> str:
        """The run directory's name."""
        if self.run:
            return self.run
        channels = "-".join(name.removeprefix("sdss_") for name in self.data.channels)
        return f"{self.model.architecture}_{channels}_m{self.n_members}_s{self.seed}"


#: Values each preset changes from the defaults: ``quick`` trains a 4-member ensemble in a few
#: minutes on 2 CPU cores; ``paper`` is the paper's setting (100-member bootstrap).
PRESETS: dict[str, dict[str, Any]] = {
    "quick": {"n_members": 4, "mc_dropout_passes": 30, "optim": {"max_epochs": 20, "patience": 5}},
    # The paper's 1e-4 needs ~10x the epochs 2 CPU cores afford on ~1800 images; 60 epochs
    # (80 min) beat 25 at every radius on the small universe.
    "small": {
        "n_members": 10,
        "optim": {"learning_rate": 1e-3, "max_epochs": 60, "patience": 10},
    },
    "paper": {"n_members": 100, "optim": {"max_epochs": 200, "patience": 10}},
}
