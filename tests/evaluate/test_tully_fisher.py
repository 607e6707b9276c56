"""The Tully-Fisher baseline: interpolation, procedures A and B, the per-sample table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from darkstack.constants import G_KPC_KMS2_PER_MSUN
from darkstack.evaluate.profiles.tully_fisher import (
    hall2012_velocity_kms,
    log10_profile_at_radius,
    procedure_a_velocity_kms,
    tully_fisher_summary,
    tully_fisher_table,
)

RADII_KPC = np.geomspace(1.0, 100.0, 20)


def _nfw_mass_msun(r_kpc: np.ndarray, *, mass_msun: float, scale_kpc: float) -> np.ndarray:
    x = r_kpc / scale_kpc
    return mass_msun * (np.log1p(x) - x / (1.0 + x))


def _hernquist_mass_msun(r_kpc: np.ndarray, *, mass_msun: float, scale_kpc: float) -> np.ndarray:
    return mass_msun * r_kpc**2 / (r_kpc + scale_kpc) ** 2


def _galaxies(n: int, seed: int = 0) -> pd.DataFrame:
    """Galaxies with analytic NFW dark matter, Hernquist stars and gas, and their true V_rot."""
    rng = np.random.default_rng(seed)
    rows = []
    for subhalo_id in range(n):
        dm = {"mass_msun": 10 ** rng.uniform(11.0, 12.0), "scale_kpc": rng.uniform(8.0, 25.0)}
        stars = {"mass_msun": 10 ** rng.uniform(9.5, 11.0), "scale_kpc": rng.uniform(1.0, 4.0)}
        gas = {"mass_msun": 10 ** rng.uniform(9.0, 10.0), "scale_kpc": rng.uniform(3.0, 8.0)}
        # A Hernquist sphere holds half its mass inside (1 + sqrt 2) a.
        r_half = (1.0 + np.sqrt(2.0)) * stars["scale_kpc"]

        def total(r: np.ndarray, dm=dm, stars=stars, gas=gas) -> np.ndarray:
            return (
                _nfw_mass_msun(r, **dm)
                + _hernquist_mass_msun(r, **stars)
                + _hernquist_mass_msun(r, **gas)
            )

        rows.append(
            {
                "subhalo_id": subhalo_id,
                "radii_kpc": RADII_KPC.tolist(),
                "log10_mdm_enclosed": np.log10(_nfw_mass_msun(RADII_KPC, **dm)).tolist(),
                "mstar_enclosed_msun": _hernquist_mass_msun(RADII_KPC, **stars).tolist(),
                "mgas_enclosed_msun": _hernquist_mass_msun(RADII_KPC, **gas).tolist(),
                "r_half_star_cutout_kpc": r_half,
                "stellar_mass_msun": stars["mass_msun"],
                "v_rot_2rhalf_kms": float(
                    np.sqrt(G_KPC_KMS2_PER_MSUN * total(np.array(2 * r_half)) / (2 * r_half))
                ),
            }
        )
    return pd.DataFrame(rows)


def _predictions(galaxies: pd.DataFrame, shift_dex: float = 0.0) -> pd.DataFrame:
    profiles = np.stack(galaxies["log10_mdm_enclosed"].to_numpy()) + shift_dex
    return pd.DataFrame(
        {
            "sample": np.arange(len(galaxies)) * 3,
            "subhalo_id": galaxies["subhalo_id"],
            "log10_mdm_median": list(profiles),
            "log10_mdm_p16": list(profiles - 0.1),
            "log10_mdm_p84": list(profiles + 0.1),
        }
    )


def test_log_log_interpolation_is_exact_for_power_laws() -> None:
    profiles = np.stack([np.log10(3e8 * RADII_KPC**1.7), np.log10(2e9 * RADII_KPC**0.4)])
    r = np.array([2.345, 77.0])
    got = log10_profile_at_radius(radii_kpc=RADII_KPC, log10_profile=profiles, r_kpc=r)
    np.testing.assert_allclose(got, [np.log10(3e8 * 2.345**1.7), np.log10(2e9 * 77.0**0.4)])
    at_nodes = log10_profile_at_radius(
        radii_kpc=RADII_KPC, log10_profile=profiles, r_kpc=RADII_KPC[[0, 19]]
    )
    np.testing.assert_allclose(at_nodes, [profiles[0, 0], profiles[1, 19]])


def test_interpolation_refuses_to_extrapolate_and_checks_its_input() -> None:
    profiles = np.log10(np.stack([RADII_KPC, RADII_KPC, RADII_KPC]))
    got = log10_profile_at_radius(
        radii_kpc=RADII_KPC, log10_profile=profiles, r_kpc=np.array([0.5, 150.0, np.nan])
    )
    assert np.isnan(got).all()
    with pytest.raises(ValueError, match="one r_kpc per row"):
        log10_profile_at_radius(radii_kpc=RADII_KPC, log10_profile=profiles, r_kpc=np.ones(2))
    with pytest.raises(ValueError, match="strictly increasing"):
        log10_profile_at_radius(radii_kpc=RADII_KPC[::-1], log10_profile=profiles, r_kpc=np.ones(3))


def test_procedure_a_adds_dark_matter_and_baryons() -> None:
    dm = np.log10(np.full((1, 20), 3e10))
    stars, gas = np.full((1, 20), 1e10), np.full((1, 20), 5e9)
    v = procedure_a_velocity_kms(
        radii_kpc=RADII_KPC,
        predicted_log10_mdm=dm,
        mstar_enclosed_msun=stars,
        mgas_enclosed_msun=gas,
        r_kpc=np.array([10.0]),
    )
    assert v[0] == pytest.approx(np.sqrt(G_KPC_KMS2_PER_MSUN * 4.5e10 / 10.0))
    with pytest.raises(ValueError, match=">= 0"):
        procedure_a_velocity_kms(
            radii_kpc=RADII_KPC,
            predicted_log10_mdm=dm,
            mstar_enclosed_msun=-stars,
            mgas_enclosed_msun=gas,
            r_kpc=np.array([10.0]),
        )


def test_procedure_a_with_the_true_profile_recovers_the_true_velocity() -> None:
    galaxies = _galaxies(40)
    table = tully_fisher_table(predictions=_predictions(galaxies), galaxies=galaxies)
    ratio = table["v_procedure_a_kms"] / table["v_true_kms"]
    # Only the log-log interpolation between the 20 radii separates them.
    assert np.abs(ratio - 1.0).max() < 0.005
    assert (np.abs(table["residual_a_dex"]) < 0.002).all()


def test_hall_relation_numbers() -> None:
    # log V = 0.264 log M - 0.558: 10^2.082 and 10^2.346 km/s.
    v = hall2012_velocity_kms(stellar_mass_msun=np.array([1e10, 1e11]))
    np.testing.assert_allclose(v, [10**2.082, 10**2.346], rtol=1e-12)
    assert v[0] == pytest.approx(120.78, abs=0.01)
    with pytest.raises(ValueError, match="stellar_mass_msun must be > 0"):
        hall2012_velocity_kms(stellar_mass_msun=np.array([1e10, 0.0]))


def test_table_columns_intervals_and_residuals() -> None:
    galaxies = _galaxies(12, seed=1)
    predictions = _predictions(galaxies, shift_dex=0.3)
    table = tully_fisher_table(predictions=predictions, galaxies=galaxies.iloc[::-1])
    assert table["sample"].tolist() == predictions["sample"].tolist()
    assert (table["v_procedure_a_p16_kms"] < table["v_procedure_a_kms"]).all()
    assert (table["v_procedure_a_kms"] < table["v_procedure_a_p84_kms"]).all()
    # Too much dark matter: procedure A overestimates the velocity.
    assert (table["residual_a_dex"] > 0.05).all()
    expected_b = np.log10(
        hall2012_velocity_kms(stellar_mass_msun=galaxies["stellar_mass_msun"].to_numpy())
        / galaxies["v_rot_2rhalf_kms"].to_numpy()
    )
    np.testing.assert_allclose(table["residual_b_dex"], expected_b)
    np.testing.assert_allclose(table["r_kpc"], 2 * galaxies["r_half_star_cutout_kpc"])
    without = tully_fisher_table(
        predictions=predictions[["sample", "subhalo_id", "log10_mdm_median"]],
        galaxies=galaxies,
        interval_columns=None,
    )
    assert "v_procedure_a_p16_kms" not in without.columns


def test_table_rejects_missing_columns_and_unknown_galaxies() -> None:
    galaxies = _galaxies(3)
    predictions = _predictions(galaxies)
    with pytest.raises(ValueError, match=r"galaxies lacks columns \['v_rot_2rhalf_kms'\]"):
        tully_fisher_table(
            predictions=predictions, galaxies=galaxies.drop(columns="v_rot_2rhalf_kms")
        )
    with pytest.raises(ValueError, match="predictions lacks columns"):
        tully_fisher_table(predictions=predictions.drop(columns="log10_mdm_p84"), galaxies=galaxies)
    predictions.loc[1, "subhalo_id"] = 99
    with pytest.raises(ValueError, match=r"subhalo_id \[99\] absent from galaxies"):
        tully_fisher_table(predictions=predictions, galaxies=galaxies)


def test_summary_bias_and_scatter() -> None:
    table = pd.DataFrame(
        {
            "residual_a_dex": [0.1, -0.1, 0.0, np.nan],
            "residual_b_dex": [0.2, 0.2, 0.2, 0.2],
        }
    )
    summary = tully_fisher_summary(table=table)
    assert summary.loc["A", "n"] == 3
    assert summary.loc["A", "bias_dex"] == pytest.approx(0.0, abs=1e-12)
    assert summary.loc["A", "scatter_dex"] == pytest.approx(0.1)
    assert summary.loc["A", "rms_dex"] == pytest.approx(np.sqrt(0.02 / 3))
    assert summary.loc["B", "bias_dex"] == pytest.approx(0.2)
    assert summary.loc["B", "scatter_dex"] == pytest.approx(0.0, abs=1e-12)
    assert summary.loc["B", "median_dex"] == pytest.approx(0.2)
