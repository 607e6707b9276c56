"""dm2gal's model selection by the validation cube's P(k), and the loop's ``select``.

The distance is checked against values known without the selection: a painting equal to the
truth is 0 away, one twice as heavy is ``2 log10 2`` away (P of the mass field goes as the
square of the mass), and a monotone distortion of the truth's logarithm is undone by the
quantile calibration. The loop's ``select`` is tested with the loop's schedule
(``tests/train/test_lr_schedule.py``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from numpy.typing import NDArray

from darkstack.features.fields.config import SpectraConfig
from darkstack.features.fields.distance import reference_power
from darkstack.features.fields.spectra import Spectra
from darkstack.train.tasks.dm2gal.samples import log1p10
from darkstack.train.tasks.dm2gal.selection import Dm2galSelectionConfig, PowerSelection

SIDE, GALAXIES = 24, 300


def _selection(calibration: str) -> tuple[PowerSelection, NDArray[np.float64]]:
    """A selection over a cube of lognormal galaxies, and their ``log10(1 + M*)``."""
    rng = np.random.default_rng(3)
    flat = rng.choice(SIDE**3, size=GALAXIES, replace=False)
    local = np.stack(np.unravel_index(flat, (SIDE,) * 3), axis=1).astype(np.int64)
    masses = 10 ** rng.normal(9.5, 0.6, GALAXIES)
    truth = np.zeros((SIDE,) * 3, dtype=np.float32)
    truth[tuple(local.T)] = masses
    truth_log = log1p10(masses).astype(np.float64)
    spectra = Spectra(config=SpectraConfig(deconvolve_window=False), box_mpc_h=10.0, scheme="cic")
    selection = PowerSelection(
        reference=reference_power(spectra, truth, k_min_fundamental=2.0, k_max_nyquist=0.5),
        shape=(SIDE,) * 3,
        local=local,
        truth_log=truth_log,
        spectra=spectra,
        config=Dm2galSelectionConfig(calibration=calibration),  # type: ignore[arg-type]
    )
    return selection, truth_log


def test_the_truth_is_zero_away_and_twice_the_mass_two_log2_away() -> None:
    selection, truth_log = _selection("none")
    assert selection.distance(truth_log) == pytest.approx(0.0, abs=1e-6)
    heavy = np.log10(2.0 * (10**truth_log - 1) + 1)
    assert selection.distance(heavy) == pytest.approx(2 * np.log10(2.0), abs=1e-4)
    # Two members at once, as the loop passes them: (n, members, 1).
    outputs = torch.from_numpy(np.stack([truth_log, heavy], axis=1)[:, :, None])
    assert selection(outputs) == pytest.approx([0.0, 2 * np.log10(2.0)], abs=1e-4)
    # A member that paints no mass at all (every log10(1 + M*) below 0) cannot be kept.
    assert selection.distance(np.full_like(truth_log, -1.0)) == float("inf")


def test_the_quantile_calibration_scores_the_ranking_not_the_amplitude() -> None:
    # A regression to the mean (0.75 of the truth's logarithm plus a shift) keeps the ranking
    # of the galaxies: under the quantile map it paints the truth again, so it is about 0 away;
    # uncalibrated it is far.
    calibrated, truth_log = _selection("quantile")
    narrow = 0.75 * truth_log + 2.0
    assert calibrated.distance(narrow) < 0.01
    raw, _ = _selection("none")
    assert raw.distance(narrow) > 0.1
    # A shuffled ranking is not undone.
    shuffled = np.random.default_rng(0).permutation(truth_log)
    assert calibrated.distance(shuffled) > calibrated.distance(narrow)
