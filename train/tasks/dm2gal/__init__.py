"""dm2gal (Kasmanoff et al. 2020): stellar mass painted onto a gravity-only run by a 3D CNN.

Modules: :mod:`.rotations` (augmentation), :mod:`.regions` (held-out cubes and guard band),
:mod:`.samples` (centres, transforms, weighted sampler), :mod:`.crops` (periodic crops read by
chunk), :mod:`.source` (what the trainer streams), :mod:`.task` (the registered task).
"""

from darkstack.train.tasks.dm2gal.task import TASK, Dm2galTask, Dm2galTrainConfig

__all__ = ["TASK", "Dm2galTask", "Dm2galTrainConfig"]
