"""How far a painted field's P(k) is from the truth's: the score dm2gal's model selection
(:mod:`darkstack.train.tasks.dm2gal.selection`) and its evaluation
(:mod:`darkstack.evaluate.dm2gal.scores`) share.

Kasmanoff et al. (2020) keep the network whose stellar-mass power spectrum best matches the
validation cube's and report the test cube's. Both compare the P(k) of the mass fields (the
overdensity's times the squared mean, so a field scaled by ``c`` is ``2 |log10 c|`` away) by the
mean ``|log10(P_predicted / P_truth)|`` over bins from ``k_min_fundamental`` k_F to
``k_max_nyquist`` k_N of the cube (issue 18: 2 k_F to k_N / 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from darkstack.features.fields.spectra import Spectra

#: Issue 18's P(k) range: from 2 k_F to k_N / 2 of the cube.
K_MIN_FUNDAMENTAL, K_MAX_NYQUIST = 2.0, 0.5
#: The public code measures with Pylians' ``MAS=None``: no window deconvolution.
DECONVOLVE_WINDOW = False


@dataclass(frozen=True)
class PowerDistance:
    """The P(k) distance of a predicted field from the truth and the curves behind it.

    Attributes
    ----------
    distance : float
        Mean ``|log10(P_predicted / P_truth)|`` over the range; 0 for a perfect prediction.
    in_range : ndarray of bool
        Which of the measured k bins the range keeps.
    k_h_mpc, power_predicted, power_truth : ndarray
        k and the mass fields' P(k) ((Mpc/h)^3 Msun^2) of the kept bins.
    mean_predicted, mean_truth : float
        The fields' mean voxel mass (Msun).
    """

    distance: float
    in_range: NDArray[np.bool_]
    k_h_mpc: NDArray[np.float64]
    power_predicted: NDArray[np.float64]
    power_truth: NDArray[np.float64]
    mean_predicted: float
    mean_truth: float


def power_distance(
    spectra: Spectra,
    predicted: Any,
    truth: Any,
    *,
    k_min_fundamental: float,
    k_max_nyquist: float,
) -> PowerDistance:
    """The P(k) distance of ``predicted`` from ``truth``, two cubes measured by ``spectra``.

    Raises
    ------
    ValueError
        For a field without mass, or a range holding no k bin.
    """
    n = int(truth.shape[0])
    means = [float(np.asarray(field.mean(dtype=np.float64))) for field in (predicted, truth)]
    for name, mean in zip(("predicted", "truth"), means, strict=True):
        if not mean > 0:
            raise ValueError(f"the {name} field's mean is {mean:g} Msun; it needs stellar mass")
    (pk_p,) = spectra.power([predicted])
    (pk_t,) = spectra.power([truth])
    box = spectra.box_mpc_h
    k_f = 2.0 * np.pi / box
    k_max = k_max_nyquist * np.pi * n / box
    in_range = (pk_t.bins >= k_min_fundamental * k_f) & (pk_t.bins <= k_max)
    if not in_range.any():
        raise ValueError(
            f"no k bin between {k_min_fundamental} k_F and {k_max_nyquist} k_N of a {n}³ cube "
            f"of {box:g} Mpc/h"
        )
    mean_p, mean_t = means
    power_p = pk_p.values[in_range] * mean_p**2
    power_t = pk_t.values[in_range] * mean_t**2
    return PowerDistance(
        distance=float(np.mean(np.abs(np.log10(power_p / power_t)))),
        in_range=in_range,
        k_h_mpc=pk_t.bins[in_range],
        power_predicted=power_p,
        power_truth=power_t,
        mean_predicted=mean_p,
        mean_truth=mean_t,
    )
