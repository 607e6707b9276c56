"""A user's star table: checks, tangent-plane projection, maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from darkstack.features.phase_space import PhaseSpaceConfig
from darkstack.features.star_catalog import (
    StarTableError,
    circularise,
    match_velocity_errors,
    read_star_table,
    sky_from_tangent_plane,
    star_maps,
    tangent_plane_kpc,
)


def test_tangent_plane_round_trip_and_known_offsets() -> None:
    rng = np.random.default_rng(0)
    centre = (260.05, 57.92)  # Draco
    ra = centre[0] + rng.normal(scale=0.3, size=200)
    dec = centre[1] + rng.normal(scale=0.3, size=200)
    x, y = tangent_plane_kpc(ra_deg=ra, dec_deg=dec, centre_deg=centre, distance_kpc=76.0)
    back_ra, back_dec = sky_from_tangent_plane(
        x_kpc=x, y_kpc=y, centre_deg=centre, distance_kpc=76.0
    )
    np.testing.assert_allclose(back_ra, ra, atol=1e-9)
    np.testing.assert_allclose(back_dec, dec, atol=1e-9)
    # Known values: 0.5 deg due north is y = D * 0.5 deg; due east at the centre's
    # declination, x = D * 0.5 deg * cos(dec) to first order.
    x, y = tangent_plane_kpc(
        ra_deg=np.array([centre[0], centre[0] + 0.5 / np.cos(np.deg2rad(centre[1]))]),
        dec_deg=np.array([centre[1] + 0.5, centre[1]]),
        centre_deg=centre,
        distance_kpc=76.0,
    )
    assert x[0] == pytest.approx(0.0, abs=1e-9) and y[0] == pytest.approx(76 * np.deg2rad(0.5))
    assert x[1] == pytest.approx(76 * np.deg2rad(0.5), rel=1e-4)


def test_circularised_radius_is_the_elliptical_radius() -> None:
    # Major axis due north (PA 0): a star on it at 1 kpc, one on the minor axis at 1 kpc.
    x, y = circularise(
        x_kpc=np.array([0.0, 1.0]),
        y_kpc=np.array([1.0, 0.0]),
        ellipticity=0.5,
        position_angle_deg=0,
    )
    np.testing.assert_allclose(np.hypot(x, y), [1 / np.sqrt(0.5), np.sqrt(0.5)])


def _write(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index=False)
    return path


def test_bad_tables_get_one_line_errors(tmp_path: Path) -> None:
    good = pd.DataFrame({"ra_deg": [10.0, 10.01], "dec_deg": [0.0, 0.01], "v_los_kms": [1.0, 2.0]})
    with pytest.raises(StarTableError, match="no column 'v_los_kms'"):
        read_star_table(_write(tmp_path / "a.csv", good.drop(columns="v_los_kms")))
    with pytest.raises(StarTableError, match="column 'dec_deg' has 1 NaN"):
        read_star_table(_write(tmp_path / "b.csv", good.assign(dec_deg=[0.0, np.nan])))
    stars = read_star_table(_write(tmp_path / "c.csv", good))
    config = PhaseSpaceConfig()
    with pytest.raises(StarTableError, match="fewer than the 100"):
        star_maps(stars, source="c.csv", distance_kpc=80.0, config=config, min_stars=100)
    with pytest.raises(StarTableError, match="outside the"):
        star_maps(
            stars,
            source="c.csv",
            distance_kpc=80.0,
            config=config,
            min_stars=1,
            centre_deg=(20.0, 0.0),
        )


def test_star_maps_of_a_plummer_like_sample(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    n = 500
    x, y = rng.normal(scale=0.3, size=(2, n))
    ra, dec = sky_from_tangent_plane(x_kpc=x, y_kpc=y, centre_deg=(150.0, 2.0), distance_kpc=80.0)
    frame = pd.DataFrame({"ra_deg": ra, "dec_deg": dec, "v_los_kms": rng.normal(50, 8, n)})
    frame.to_parquet(tmp_path / "s.parquet")
    stars = read_star_table(tmp_path / "s.parquet")
    maps, assumed = star_maps(
        stars, source="s.parquet", distance_kpc=80.0, config=PhaseSpaceConfig(), min_stars=100
    )
    assert maps.shape == (2, 64, 64)
    np.testing.assert_allclose(maps.sum(axis=(1, 2)), 1.0)
    assert assumed["v_sys_kms"] == pytest.approx(50.0, abs=1.5)
    assert assumed["r_half_kpc"] == pytest.approx(0.3 * np.sqrt(2 * np.log(2)), rel=0.1)


def test_velocity_errors_are_brought_to_the_training_maps_error() -> None:
    rng = np.random.default_rng(2)
    n = 40_000
    v = rng.normal(0.0, 10.0, n)
    # Stars measured to 0 and 3 km/s, trained with 5: the noise added has σ 5 and 4.
    for v_err, added in ((0.0, 5.0), (3.0, 4.0)):
        out, sigma = match_velocity_errors(
            v, np.full(n, v_err), target_kms=5.0, rng=np.random.default_rng(3), source="t"
        )
        np.testing.assert_allclose(sigma, added)
        # The sample deviation of n Gaussian draws has a relative error of 1/sqrt(2n).
        assert np.std(out - v) == pytest.approx(added, rel=3 / np.sqrt(2 * n))
    # Errors already at the target's (rounded in the table) add nothing.
    same, _ = match_velocity_errors(
        v, np.full(n, 5.0), target_kms=5.0, rng=np.random.default_rng(3), source="t"
    )
    np.testing.assert_array_equal(same, v)
    with pytest.raises(StarTableError, match=r"t: column 'v_err_kms' reaches 6 km/s \(1 stars"):
        match_velocity_errors(v[:3], np.array([1.0, 6.0, 2.0]), target_kms=5.0, rng=rng, source="t")


def test_star_maps_match_the_errors_and_report_what_they_added(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    n = 2000
    x, y = rng.normal(scale=0.3, size=(2, n))
    ra, dec = sky_from_tangent_plane(x_kpc=x, y_kpc=y, centre_deg=(150.0, 2.0), distance_kpc=80.0)
    v = rng.normal(0.0, 8.0, n)
    frame = pd.DataFrame({"ra_deg": ra, "dec_deg": dec, "v_los_kms": v, "v_err_kms": 2.0})
    frame.to_csv(tmp_path / "s.csv", index=False)
    stars = read_star_table(tmp_path / "s.csv")
    config = PhaseSpaceConfig(velocity_error_kms=6.0)
    _, assumed = star_maps(stars, source="s.csv", distance_kpc=80.0, config=config, min_stars=100)
    assert assumed["v_err_added_kms"] == pytest.approx(np.sqrt(6.0**2 - 2.0**2))
    # The rv map's scale, P98 of |v_los - v_sys| (2.326 σ for a Gaussian), is that of the
    # broadened velocities: σ = sqrt(8² + 6² - 2²) = 9.8 km/s (8 km/s would give 18.6).
    assert assumed["v_scale_kms"] == pytest.approx(2.326 * np.sqrt(64 + 32), rel=0.1)
    with pytest.raises(StarTableError, match="v_err_kms"):
        star_maps(
            stars,
            source="s.csv",
            distance_kpc=80.0,
            config=PhaseSpaceConfig(velocity_error_kms=1.0),
            min_stars=100,
        )
