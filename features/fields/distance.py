"""How far a painted field's P(k) is from the truth's: the score dm2gal's model selection
(:mod:`darkstack.train.tasks.dm2gal.selection`) and its evaluation
(:mod:`darkstack.evaluate.dm2gal.scores`) share.

Kasmanoff et al. (2020) keep the network whose stellar-mass power spectrum best matches the
validation cube's and report the test cube's. Both compare the P(k) of the mass fields (the
overdensity's times the squared mean, so a field scaled by ``c`` is ``2 |log10 c|`` away) by the
mean ``|log10(P_predicted / P_truth)|`` over bins from ``k_min_fundamental`` k_F to
``k_max_nyquist`` k_N of the cube (issue 18: 2 k_F to k_N / 2). The truth's side
(:func:`reference_power`) is measured once and compared with every prediction.
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
class ReferencePower:
    """The truth's mass-field P(k) over the scored k range, measured once for every field
    compared with it (each epoch's painting, every HOD realisation).

    Attributes
    ----------
    in_range : ndarray of bool
        Which of the measured k bins the range keeps.
    k_h_mpc, power : ndarray
        k and the truth's mass-field P(k) ((Mpc/h)^3 Msun^2) of the kept bins.
    mean : float
        The truth's mean voxel mass (Msun).
    """

    in_range: NDArray[np.bool_]
    k_h_mpc: NDArray[np.float64]
    power: NDArray[np.float64]
    mean: float


@dataclass(frozen=True)
class PowerDistance:
    """The P(k) distance of a predicted field from the truth and the curves behind it.

    Attributes
    ----------
    distance : float
        Mean ``|log10(P_predicted / P_truth)|`` over the range; 0 for a perfect prediction.
    power_predicted : ndarray
        The predicted mass field's P(k) over the reference's kept bins.
    mean_predicted : float
        Its mean voxel mass (Msun).
    reference : ReferencePower
        The truth's.
    """

    distance: float
    power_predicted: NDArray[np.float64]
    mean_predicted: float
    reference: ReferencePower


def _mean_msun(field: Any, name: str) -> float:
    mean = float(np.asarray(field.mean(dtype=np.float64)))
    if not mean > 0:
        raise ValueError(f"the {name} field's mean is {mean:g} Msun; it needs stellar mass")
    return mean


def reference_power(
    spectra: Spectra, truth: Any, *, k_min_fundamental: float, k_max_nyquist: float
) -> ReferencePower:
    """The truth's P(k) from ``k_min_fundamental`` k_F to ``k_max_nyquist`` k_N of its cube.

    Raises
    ------
    ValueError
        For a truth without mass, or a range holding no k bin.
    """
    n = int(truth.shape[0])
    mean = _mean_msun(truth, "truth")
    (pk,) = spectra.power([truth])
    box = spectra.box_mpc_h
    k_f = 2.0 * np.pi / box
    k_max = k_max_nyquist * np.pi * n / box
    in_range = (pk.bins >= k_min_fundamental * k_f) & (pk.bins <= k_max)
    if not in_range.any():
        raise ValueError(
            f"no k bin between {k_min_fundamental} k_F and {k_max_nyquist} k_N of a {n}³ cube "
            f"of {box:g} Mpc/h"
        )
    return ReferencePower(
        in_range=in_range, k_h_mpc=pk.bins[in_range], power=pk.values[in_range] * mean**2, mean=mean
    )


def power_distance(spectra: Spectra, predicted: Any, reference: ReferencePower) -> PowerDistance:
    """The P(k) distance of the cube ``predicted``, measured by ``spectra``, from the truth's
    ``reference``.

    Raises
    ------
    ValueError
        For a predicted field without mass.
    """
    mean = _mean_msun(predicted, "predicted")
    (pk,) = spectra.power([predicted])
    power = pk.values[reference.in_range] * mean**2
    return PowerDistance(
        distance=float(np.mean(np.abs(np.log10(power / reference.power)))),
        power_predicted=power,
        mean_predicted=mean,
        reference=reference,
    )
