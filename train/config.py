"""Configuration of a training run, read from YAML and saved in the run directory.

:class:`TrainConfig` holds what every task shares: seeds, the ensemble, the split and the loader,
the optimisation and the distribution. Each task extends it with its inputs and its model
(:mod:`darkstack.train.tasks`); its ``task`` field names the task, so a run directory says which
task made it. The resolved config is written to ``STORE/runs/<run>/config.yaml`` and into every
checkpoint, so a result always says how it was made.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Annotated, ClassVar, Literal

from darkstack.config import Checked, Range, Rule
from darkstack.store import check_run_name

AtLeastOne = Annotated[int, Range(ge=1)]
NonNegative = Annotated[int, Range(ge=0)]


def _fractions_sum_to_one(config: DataConfig) -> str | None:
    fractions = config.split_fractions
    if all(f > 0 for f in fractions) and math.isclose(sum(fractions), 1.0, abs_tol=1e-6):
        return None
    return "three positive fractions (train, validation, test) summing to 1"


def _folds(config: DataConfig) -> str | None:
    if config.n_folds == 0 and config.fold == 0:
        return None
    if config.n_folds >= 2 and config.fold < config.n_folds:
        return None
    return f"0 (no folds) or >= 2, with 0 <= fold < n_folds (fold is {config.fold})"


def _plain_run_name(config: TrainConfig) -> str | None:
    try:
        if config.run:
            check_run_name(config.run)
    except ValueError:
        return "a plain directory name (no '/', not starting with '.')"
    return None


@dataclass(frozen=True, kw_only=True)
class DataConfig(Checked):
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
    batch_size: AtLeastOne = 32
    max_samples_per_split: NonNegative = 0
    shuffle_chunks: AtLeastOne = 1
    loader_workers: NonNegative = 0
    n_folds: NonNegative = 0
    fold: NonNegative = 0

    RULES: ClassVar[tuple[Rule, ...]] = (
        Rule("split_fractions", _fractions_sum_to_one),
        Rule("n_folds", _folds),
    )


@dataclass(frozen=True, kw_only=True)
class OptimConfig(Checked):
    """The optimisation: Adam on the task's loss, early stopping on the validation loss.

    Parameters
    ----------
    learning_rate : float
        Adam's initial step size (1e-4 in de los Rios et al. 2023).
    max_epochs : int
        Upper bound on passes over the training split.
    patience : int
        Epochs without a lower validation loss before a member stops improving; training ends
        when every member has run out of patience.
    weight_decay : float
        Adam's L2 penalty on the weights (0 in the paper).
    lr_schedule : {"none", "plateau"}
        ``none`` keeps ``learning_rate`` throughout; ``plateau`` is torch's
        ``ReduceLROnPlateau`` on the validation loss (the members' mean): the step size is
        multiplied by ``lr_factor`` once ``lr_patience`` epochs in a row have not lowered it
        (by torch's default relative threshold, 1e-4). Kasmanoff et al. (2020): patience 5.
    lr_patience : int
        Epochs without improvement the plateau schedule tolerates before it reduces the step.
    lr_factor : float
        What the plateau schedule multiplies the step size by (0.1 in Kasmanoff et al. 2020).
    """

    learning_rate: Annotated[float, Range(gt=0)] = 1e-4
    max_epochs: AtLeastOne = 200
    patience: AtLeastOne = 10
    weight_decay: Annotated[float, Range(ge=0)] = 0.0
    lr_schedule: Literal["none", "plateau"] = "none"
    lr_patience: NonNegative = 5
    lr_factor: Annotated[float, Range(gt=0, lt=1)] = 0.1


@dataclass(frozen=True, kw_only=True)
class RayConfig(Checked):
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

    num_workers: AtLeastOne = 1
    use_gpu: bool = False
    cpus_per_worker: Annotated[float, Range(gt=0)] = 1.0
    max_failures: NonNegative = 2


@dataclass(frozen=True, kw_only=True)
class TrainConfig(Checked):
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
    bootstrap_single : bool
        With ``bootstrap``, a lone network (``n_members`` 1) trains on a resample too, drawn
        from ``seed``: runs of seeds 0 ... M-1 are the M members of a bootstrap trained
        separately, as de los Rios et al. (2023) train theirs (own initialisation, resample,
        batch order and augmentation); ``tools/bootstrap_independence.py`` compares them with
        a joint ensemble. Off, a lone network trains on every group once.
    mc_dropout_passes : int
        Stochastic passes of MC-dropout predictions.
    device : str
        Torch device of the loop without Ray (``cpu``, ``cuda``, ``cuda:1``, ``mps``).
    torch_threads : int
        Intra-op threads per process (0 leaves torch's default).
    checkpoint_every_epochs : int
        Write the checkpoint (model, optimiser, every member's best weights so far) after every
        this many epochs, and always after a run's last epoch; a resumed run continues from
        the latest, repeating the epochs since. A checkpoint is ~4x the weights (Adam's two
        moments and the best weights), so a 100-member ensemble writes 2 GB each time
        (docs/train.md).
    data, optim, ray : configs
        Split and loader, optimisation and distribution.
    """

    task: str
    run: str = ""
    seed: int = 0
    n_members: AtLeastOne = 1
    bootstrap: bool = True
    bootstrap_single: bool = False
    mc_dropout_passes: AtLeastOne = 100
    device: str = "cpu"
    torch_threads: NonNegative = 0
    checkpoint_every_epochs: AtLeastOne = 1
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    ray: RayConfig = field(default_factory=RayConfig)

    RULES: ClassVar[tuple[Rule, ...]] = (Rule("run", _plain_run_name),)

    @property
    def run_name(self) -> str:
        """The run directory's name: ``run``, or one made of the settings that tell runs apart."""
        return self.run or self.default_run_name()

    def default_run_name(self) -> str:
        """The run name when ``run`` is empty (tasks name their inputs and model in it)."""
        return f"{self.task}_m{self.n_members}_s{self.seed}"
