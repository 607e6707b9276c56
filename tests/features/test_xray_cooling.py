"""The Sutherland & Dopita (1993) CIE cooling function shipped with darkstack."""

from __future__ import annotations

import numpy as np
import pytest

from darkstack.features.cluster_maps import bremsstrahlung_cooling_erg_cm3_s
from darkstack.features.xray_cooling import SD93_SOLAR_Z, SD93_TABLES, sd93_cooling_erg_cm3_s

#: SD93 solar CIE rows as published (log T, n_t at n_H = 1, log Lambda_N with
#: Lambda_N = Lambda_net / (n_e n_t)): the cooling peak near 2e5 K, 1e6 K and 1e8 K.
SOLAR_ROWS = [(5.35, 1.099, -20.96), (6.00, 1.099, -21.96), (8.00, 1.099, -22.58)]


@pytest.mark.parametrize(("log_t", "n_t", "log_lambda_n"), SOLAR_ROWS)
def test_solar_rows_match_the_published_normalised_cooling(
    log_t: float, n_t: float, log_lambda_n: float
) -> None:
    # Ours is per n_e n_H; the paper's Lambda_N is per n_e n_t: Lambda_N = Lambda n_H / n_t.
    ours = sd93_cooling_erg_cm3_s(10.0**log_t, SD93_SOLAR_Z) / n_t
    # Both columns are rounded to 0.01 dex in the tables: agreement to ~2.5%.
    assert np.log10(ours) == pytest.approx(log_lambda_n, abs=0.011)


def test_primordial_hot_gas_is_free_free() -> None:
    """Above 10^7.5 K a metal-free plasma cools by bremsstrahlung (Rybicki & Lightman 1979,
    Gaunt factor 1.2): SD93's primordial table agrees to the Gaunt factor's ~10%."""
    t = np.geomspace(10**7.5, 10**8.5, 5)
    ratio = sd93_cooling_erg_cm3_s(t, 0.0) / bremsstrahlung_cooling_erg_cm3_s(t)
    assert np.all(np.abs(ratio - 1.0) < 0.1), ratio


def test_metals_add_line_cooling_that_grows_with_z() -> None:
    t = np.array([1.0e6, 1.0e7, 1.0e8])
    z = SD93_SOLAR_Z * np.array([0.0, 0.1, 0.3, 1.0, 3.0])
    cooling = np.array([sd93_cooling_erg_cm3_s(t, zi) for zi in z])
    assert np.all(np.diff(cooling, axis=0) > 0)
    # Metal lines dominate the cooling at 1e6 K and add only tens of percent at 1e8 K.
    assert cooling[3, 0] / cooling[0, 0] > 10.0
    assert 1.1 < cooling[3, 2] / cooling[0, 2] < 1.6


def test_between_tables_lambda_is_linear_in_z() -> None:
    t = 3.0e7
    half = 10.0**-0.5 * SD93_SOLAR_Z
    middle = sd93_cooling_erg_cm3_s(t, 0.5 * (half + SD93_SOLAR_Z))
    ends = sd93_cooling_erg_cm3_s(t, np.array([half, SD93_SOLAR_Z]))
    assert middle == pytest.approx(ends.mean(), rel=1e-12)


def test_outside_the_tables() -> None:
    assert sd93_cooling_erg_cm3_s(5.0e3, SD93_SOLAR_Z) == 0.0
    hot = sd93_cooling_erg_cm3_s(np.array([10**8.5, 4 * 10**8.5]), SD93_SOLAR_Z)
    assert hot[1] / hot[0] == pytest.approx(2.0)
    # Every table is shipped and read.
    assert len(SD93_TABLES) == 8
