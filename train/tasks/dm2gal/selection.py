"""dm2gal's model selection: the validation cube's P(k), as Kasmanoff et al. (2020, §2) select.

"Because the validation MSE value may correspond to good performance on only reconstructing
low-mass galaxies", the paper keeps the network whose painted stellar-mass power spectrum best
matches the validation cube's. Here, after every epoch, each member's predictions at the run's
validation centres (the hydro galaxies, or the Dark candidates of a ``dark_subhalos`` run: a
painting over candidates only, so it costs one validation pass) are painted into the validation
cube, zero elsewhere, and scored against the cube's ``hydro_stellar_mass_subhalo`` by
:func:`~darkstack.features.fields.distance.power_distance`, the evaluation's P(k) distance.
With ``calibration = "quantile"`` the painting is first mapped as ``darkstack evaluate`` paints
by default (:class:`~darkstack.train.tasks.dm2gal.paint.Calibration`, fitted on the same
validation centres), so the selection ranks what the evaluation will score.

Not the default: on `small` the validation cube's P(k) distance jumped between 0.03 and 0.26
from epoch to epoch while the training loss fell, and the epoch it kept painted the test cube
further from the truth in every score than the epoch of the best validation MSE
(docs/dm2gal.md). The ``paper`` preset selects by it, as the paper does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch
from numpy.typing import NDArray

from darkstack.config import Checked, Range
from darkstack.errors import InputError
from darkstack.features.fields.config import SpectraConfig
from darkstack.features.fields.distance import (
    DECONVOLVE_WINDOW,
    K_MAX_NYQUIST,
    K_MIN_FUNDAMENTAL,
    ReferencePower,
    power_distance,
    reference_power,
)
from darkstack.features.fields.spectra import Region, Spectra
from darkstack.store import StoreLayout
from darkstack.train.tasks.dm2gal.paint import (
    QUANTILE_KNOTS,
    Calibration,
    ensemble_log_mass,
    painted_msun,
)
from darkstack.train.tasks.dm2gal.samples import TARGET_FIELD
from darkstack.train.tasks.dm2gal.source import CropSource, box_and_scheme


@dataclass(frozen=True, kw_only=True)
class Dm2galSelectionConfig(Checked):
    """How a dm2gal run keeps its best epoch.

    Parameters
    ----------
    by : {"loss", "power"}
        "loss" (the default): the validation MSE, as every other task; "power": the validation
        cube's P(k) distance of the painting (the paper's, its preset's).
    calibration : {"quantile", "none"}
        Map the painting as ``darkstack evaluate`` paints by default before scoring it
        ("quantile"), or score the network's own answer ("none", the paper's).
    """

    by: Literal["loss", "power"] = "loss"
    calibration: Literal["quantile", "none"] = "quantile"
    calibration_quantiles: Annotated[int, Range(ge=2)] = QUANTILE_KNOTS


@dataclass(frozen=True, kw_only=True)
class PowerSelection:
    """Each member's P(k) distance of its painted validation cube from the truth.

    Attributes
    ----------
    reference : ReferencePower
        The validation cube's P(k) (its ``hydro_stellar_mass_subhalo``), measured once.
    shape : tuple of int
        The cube's voxels per axis.
    local : ndarray (m, 3)
        The validation centres inside the cube, in the order of the validation source.
    truth_log : ndarray (m,)
        ``log10(1 + M*)`` of the truth at the centres (what a calibration is fitted to).
    spectra : Spectra
        Measures the cube as a periodic box of its own, as the evaluation measures the test
        cube.
    config : Dm2galSelectionConfig
        The calibration.
    """

    reference: ReferencePower
    shape: tuple[int, int, int]
    local: NDArray[np.int64]
    truth_log: NDArray[np.float64]
    spectra: Spectra
    config: Dm2galSelectionConfig

    def __call__(self, outputs: torch.Tensor) -> list[float]:
        """The distance of each member from predictions ``(m, M, 1)`` of ``log10(1 + M*)``."""
        predicted = outputs.reshape(outputs.shape[0], outputs.shape[1]).double().numpy()
        return [self.distance(predicted[:, member]) for member in range(predicted.shape[1])]

    def distance(self, log_mass: NDArray[np.float64]) -> float:
        """The P(k) distance of one member's painting; inf when it paints no mass."""
        # One member painted as `darkstack evaluate` paints a network's answers.
        answers = np.asarray(log_mass, dtype=np.float32)[:, None]
        calibration = Calibration.fit(
            self.config.calibration,
            predicted=ensemble_log_mass(answers),
            truth=self.truth_log,
            quantiles=self.config.calibration_quantiles,
        )
        values = painted_msun(calibration, answers)
        if not values.sum() > 0:
            return float("inf")
        cube = np.zeros(self.shape, dtype=np.float32)
        cube[tuple(self.local.T)] = values
        return power_distance(self.spectra, cube, self.reference).distance


def power_selection(
    group: Any,
    *,
    validation: CropSource,
    cube: Region,
    config: Dm2galSelectionConfig,
    store: Path,
) -> PowerSelection:
    """The :class:`PowerSelection` of a run's validation centres (``validation``'s) in the
    validation ``cube`` of ``fields.zarr`` (``group``).

    Raises
    ------
    InputError
        When the fields lack the attributes that give the cube's size, or a centre lies
        outside the cube.
    """
    box_mpc_h, scheme = box_and_scheme(group, store=store)
    truth = np.asarray(group[TARGET_FIELD][cube.slices], dtype=np.float32)
    lows = np.array([lo for lo, _ in cube.bounds], dtype=np.int64)
    local = np.asarray(validation.centres, dtype=np.int64) - lows
    if local.size and not ((local >= 0).all() and (local < truth.shape[0]).all()):
        raise InputError(
            f"validation centres of {StoreLayout(store).zarr('fields')} lie outside the "
            f"validation cube {cube.label}; expected the run's own split"
        )
    grid = int(group[TARGET_FIELD].shape[0])
    spectra = Spectra(
        config=SpectraConfig(deconvolve_window=DECONVOLVE_WINDOW),
        box_mpc_h=box_mpc_h * truth.shape[0] / grid,
        scheme=scheme,
    )
    return PowerSelection(
        reference=reference_power(
            spectra, truth, k_min_fundamental=K_MIN_FUNDAMENTAL, k_max_nyquist=K_MAX_NYQUIST
        ),
        shape=truth.shape,
        local=local,
        truth_log=np.asarray(validation.targets, dtype=np.float64).reshape(-1),
        spectra=spectra,
        config=config,
    )
