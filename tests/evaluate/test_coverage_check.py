"""The report flags coverages more than 3 binomial sigmas from 0.68, over the test galaxies."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from darkstack.evaluate.metrics import coverage_sigma, miscalibrated
from darkstack.evaluate.profiles.report import coverage_check


def test_binomial_sigma_of_a_coverage() -> None:
    # sqrt(0.68 * 0.32 / 25) = 0.0933
    assert coverage_sigma(nominal=0.68, n=25) == pytest.approx(0.09330, abs=1e-5)
    flagged = miscalibrated(np.array([0.68, 0.41, 0.39, 0.97]), nominal=0.68, n=25)
    assert flagged.tolist() == [False, False, True, True]
    with pytest.raises(ValueError, match="n=0"):
        coverage_sigma(nominal=0.68, n=0)


def test_the_report_warns_and_prints_the_number_of_galaxies() -> None:
    evaluation = SimpleNamespace(
        subhalo_id=np.repeat(np.arange(25), 3),  # 25 galaxies, 3 views each
        radii_kpc=np.array([1.0, 10.0, 100.0]),
        metrics={"coverage68_bootstrap": [0.68, 0.30, 0.70], "coverage68_mc_dropout": [0.6] * 3},
    )
    text = "\n".join(coverage_check(evaluation))  # type: ignore[arg-type]
    assert "over 25 test galaxies" in text and "0.68 ± 0.093" in text and "(0.40-0.96)" in text
    assert "**Warning: the ensemble's coverage is more than 3σ from 0.68 at 1 of 3 " in text
    assert "10.0 kpc (0.30)" in text
    assert "The MC-dropout's coverage is within 3σ of 0.68 at every radius." in text
