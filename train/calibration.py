"""Post-hoc calibration of a predictive's width per target, fitted on the validation split.

A network's predictive (its members' mixture, :mod:`darkstack.train.predict`) can be too
narrow or too wide; a calibration rescales its standard deviation per target so its intervals
cover what they claim on galaxies the network never trained on. Two methods:

``variance_scaling``
    One factor per target, ``s² = mean(z²)`` over the validation samples with
    ``z = (y - μ) / σ``: the maximum-likelihood scale of a Gaussian predictive (Kuleshov et
    al. 2018 and Levi et al. 2022 call it σ scaling). Both intervals use it.
``conformal``
    Split-conformal intervals (Angelopoulos & Bates 2023, §1.2) with the normalised score
    ``|y - μ| / σ``: per target and level, the ``⌈(n + 1) level⌉ / n`` empirical quantile of the
    scores, expressed as a factor on the Gaussian interval; finite-sample coverage at least the
    level for exchangeable samples.

The run keeps it in ``calibration.json`` (:attr:`darkstack.store.RunPaths.calibration`);
predictions apply it (:func:`darkstack.train.predict.summarise`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from darkstack.atomic import atomic_path
from darkstack.errors import InputError
from darkstack.train.predict import Z68, Z95

CalibrationMethod = Literal["none", "variance_scaling", "conformal"]


@dataclass(frozen=True, kw_only=True)
class Calibration:
    """Factors on the predictive standard deviation, per target.

    Attributes
    ----------
    method : {"variance_scaling", "conformal"}
        How they were fitted.
    scale68, scale95 : ndarray
        Factors of the 68% and 95% intervals (equal for ``variance_scaling``); ``scale68``
        also scales the reported standard deviation.
    n_samples : int
        Validation samples they were fitted on.
    """

    method: str
    scale68: NDArray[np.float64]
    scale95: NDArray[np.float64]
    n_samples: int

    def save(self, path: Path) -> None:
        """Write it as JSON, atomically."""
        payload = {
            "method": self.method,
            "scale68": self.scale68.tolist(),
            "scale95": self.scale95.tolist(),
            "n_samples": self.n_samples,
        }
        with atomic_path(path) as temporary:
            temporary.write_text(json.dumps(payload, indent=1))

    @classmethod
    def load(cls, path: Path) -> Calibration:
        """Read what :meth:`save` wrote; a one-line error naming the file otherwise."""
        try:
            payload = json.loads(path.read_text())
            return cls(
                method=str(payload["method"]),
                scale68=np.asarray(payload["scale68"], dtype=np.float64),
                scale95=np.asarray(payload["scale95"], dtype=np.float64),
                n_samples=int(payload["n_samples"]),
            )
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise InputError(
                f"{path} is not a calibration ({type(error).__name__}: {error}); delete it and "
                "rerun darkstack train to fit it again"
            ) from None


def fit_calibration(
    *,
    mean: NDArray[np.floating],
    sigma: NDArray[np.floating],
    true: NDArray[np.floating],
    method: CalibrationMethod,
) -> Calibration:
    """Fit the width factors on validation predictions.

    Parameters
    ----------
    mean, sigma : ndarray, shape (n_samples, *target_shape)
        The uncalibrated predictive's mean and standard deviation (> 0).
    true : ndarray, shape (n_samples, *target_shape)
        The validation targets.
    method : {"variance_scaling", "conformal"}
        See the module.

    Raises
    ------
    ValueError
        For ``method="none"``, no samples, or a standard deviation that is not positive (a
        single point-predicting member has no width to scale).
    """
    sigma = np.asarray(sigma, dtype=np.float64)
    if method == "none":
        raise ValueError("method='none' fits nothing; pass variance_scaling or conformal")
    if sigma.shape[0] == 0:
        raise ValueError("no validation samples to fit the calibration on")
    if not np.all(sigma > 0):
        raise ValueError(
            "the predictive standard deviation is 0 for some sample: a calibration needs a "
            "heteroscedastic head or more than one member"
        )
    z = np.abs(np.asarray(true, dtype=np.float64) - mean) / sigma
    n = z.shape[0]
    if method == "variance_scaling":
        scale = np.sqrt(np.mean(z**2, axis=0))
        return Calibration(method=method, scale68=scale, scale95=scale, n_samples=n)
    if method == "conformal":
        scales = []
        for level, z_level in ((0.68, Z68), (0.95, Z95)):
            # Fewer than 1 / (1 - level) - 1 samples make the strict quantile infinite; the
            # largest score is the honest finite stand-in.
            rank = min(math.ceil((n + 1) * level), n)
            scales.append(np.sort(z, axis=0)[rank - 1] / z_level)
        return Calibration(method=method, scale68=scales[0], scale95=scales[1], n_samples=n)
    raise ValueError(f"unknown calibration method {method!r}; known: variance_scaling, conformal")
