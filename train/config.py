"""Configuration of a training run, read from YAML and saved in the run directory.

:class:`TrainConfig` holds what every task shares: seeds, the ensemble, the split and the loader,
the optimisation and the distribution. Each task extends it with its inputs and its model
(:mod:`darkstack.train.tasks`); its ``task`` field names the task, so a run directory says which
task made it. The resolved config is written to ``STORE/runs/<run>/config.yaml`` and into every
checkpoint, so a result always says how it was made.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from darkstack.store import check_run_name


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    """How a task's samples are split, streamed, batched and augmented.

    Parameters
    ----------
    split_fractions : tuple of float
        Train, validation and test fractions of the *groups* (galaxies, clusters, ...; never
        of samples, so no object's realisations cross splits); 60/20/20 in the paper.
    split_seed : int
        Seed of the split; runs that share it share the split, so they compare fairly.
    augment : bool
        The task's random augmentation of training inputs (flips and rotations).
    batch_size : int
        Samples per optimisation step (per Ray worker).
    max_samples_per_split : int
        Train and validate on at most this many samples of each split (whole groups in an
        order seeded by ``split_seed``; 0: all), for learning curves and benchmarks. The split
        itself is unchanged.
    shuffle_chunks : int
        The shuffle buffer, in storage chunks: chunks are visited in a random order and the
        samples of every ``shuffle_chunks`` consecutive chunks are shuffled together. More
        mixes batches better and costs no memory, only chunk reads (a batch reads each chunk it
        draws from once). With one sample per chunk, 1 is a full shuffle.
    loader_workers : int
        Threads that read upcoming batches while the model trains (0: read in the training
        thread). Each holds one batch in flight.
    n_folds : int
        k-fold cross-validation by group when >= 2: the test split is fold ``fold`` of the
        groups (:func:`darkstack.train.folds.galaxy_folds`, seeded by ``split_seed``) and the
        validation split takes the validation share of ``split_fractions`` from the rest; a
        run per fold holds every group out once. 0: the fractional split.
    fold : int
        The held-out fold, in [0, n_folds).
    """

    split_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    split_seed: int = 0
    augment: bool = True
    batch_size: int = 32
    max_samples_per_split: int = 0
    shuffle_chunks: int = 1
    loader_workers: int = 0
    n_folds: int = 0
    fold: int = 0

    def __post_init__(self) -> None:
        if any(f <= 0 for f in self.split_fractions) or abs(sum(self.split_fractions) - 1) > 1e-6:
            raise ValueError(
                f"split_fractions {self.split_fractions}: expected three positive fractions "
                "summing to 1"
            )
        if self.batch_size < 1 or self.max_samples_per_split < 0:
            raise ValueError("need batch_size >= 1 and max_samples_per_split >= 0")
        if self.shuffle_chunks < 1 or self.loader_workers < 0:
            raise ValueError("need shuffle_chunks >= 1 and loader_workers >= 0")
        if self.n_folds == 1 or self.n_folds < 0 or not 0 <= self.fold < max(self.n_folds, 1):
            raise ValueError(
                f"n_folds={self.n_folds}, fold={self.fold}: expected n_folds 0 or >= 2 and "
                "0 <= fold < n_folds"
            )


@dataclass(frozen=True, kw_only=True)
class OptimConfig:
    """The optimisation: Adam on the task's loss, early stopping on the validation loss.

    Parameters
    ----------
    learning_rate : float
        Adam's step size (1e-4 in de los Rios et al. 2023).
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
    """What every training run has, whatever its task; tasks subclass it.

    Parameters
    ----------
    task : str
        The task's name in :func:`darkstack.train.tasks.get_task`; each task's subclass fixes
        it.
    run : str
        Name of the run directory under ``STORE/runs``; empty derives one from the task's
        settings (:attr:`run_name`).
    seed : int
        Seeds initialisation, batch order, augmentation, dropout and bootstrap resamples.
    n_members : int
        Networks trained together; more than one with ``bootstrap`` is a bootstrap ensemble
        (100 in de los Rios et al. 2023).
    bootstrap : bool
        Each member trains on its own resample with replacement of the training groups;
        off, members differ only by initialisation and dropout (a deep ensemble).
    mc_dropout_passes : int
        Stochastic passes of MC-dropout predictions.
    device : str
        Torch device of the loop without Ray (``cpu``, ``cuda``, ``cuda:1``, ``mps``).
    torch_threads : int
        Intra-op threads per process (0 leaves torch's default).
    data, optim, ray : configs
        Split and loader, optimisation and distribution.
    """

    task: str
    run: str = ""
    seed: int = 0
    n_members: int = 1
    bootstrap: bool = True
    mc_dropout_passes: int = 100
    device: str = "cpu"
    torch_threads: int = 0
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
        """The run directory's name: ``run``, or one made of the settings that tell runs apart."""
        return self.run or self.default_run_name()

    def default_run_name(self) -> str:
        """The run name when ``run`` is empty (tasks name their inputs and model in it)."""
        return f"{self.task}_m{self.n_members}_s{self.seed}"
