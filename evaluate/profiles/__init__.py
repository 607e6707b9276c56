"""The paper's evaluation of a trained run: accuracy, baselines, calibration, figures."""
