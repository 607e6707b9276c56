"""The profiles task (de los Rios et al. 2023): its config, its data and the task itself."""

from darkstack.train.tasks.profiles.config import PRESETS, ProfilesDataConfig, ProfilesTrainConfig
from darkstack.train.tasks.profiles.task import TASK, ProfilesTask

__all__ = ["PRESETS", "TASK", "ProfilesDataConfig", "ProfilesTask", "ProfilesTrainConfig"]
