"""The profiles task's evaluation (de los Rios et al. 2023): accuracy, baselines, calibration,
Tully-Fisher, rotation curves, figures and the paper's comparative studies."""

from darkstack.evaluate import Evaluation
from darkstack.evaluate.profiles.report import EvaluateConfig, evaluate_run

__all__ = ["EVALUATION", "EvaluateConfig", "evaluate_run"]

#: What ``darkstack evaluate --task profiles`` runs.
EVALUATION = Evaluation(config_type=EvaluateConfig, evaluate=evaluate_run)
