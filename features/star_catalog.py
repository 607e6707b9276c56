"""A user's spectroscopic star table turned into the cusp_core network's phase-space maps.

The table (CSV, parquet or FITS, read by astropy) has ``ra_deg``, ``dec_deg``, ``v_los_kms``
and optionally ``v_err_kms`` and ``p_member`` (membership weights). Positions are offsets on
the sky around the centre (astropy's ``skyoffset_frame``: longitude and latitude offsets, exact
on the sphere) times the distance, in kpc; with an ellipticity e and position angle (east of
north, of the major axis), they are circularised so that hypot(x, y) is the elliptical radius
sqrt(q x_min^2 + y_maj^2 / q), q = 1 - e, the radius R_hlr is measured in (the training maps
use the median projected radius of equal-mass stars, as the default here does).

Velocity errors are matched to the training maps': those add a Gaussian error of
``velocity_error_kms`` (σ_train) to every star, so a star measured to ``v_err_kms`` < σ_train
gets a further N(0, σ_train² - v_err²) and every star then carries σ_train, as the maps the
network learnt from. An error cannot be taken away: a star with ``v_err_kms`` above σ_train is
refused (make maps with a larger ``velocity_error_kms`` and train on them). A table without
``v_err_kms`` is taken as exact.

Every problem with the input is a one-line ``StarTableError`` naming the file and column.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from darkstack.features.phase_space import (
    SCALARS,
    PhaseSpaceConfig,
    phase_space_maps,
    velocity_scale_kms,
    weighted_median,
)

FloatArray = NDArray[np.float64]
REQUIRED_COLUMNS = ("ra_deg", "dec_deg", "v_los_kms")
OPTIONAL_COLUMNS = ("v_err_kms", "p_member")


class StarTableError(ValueError):
    """The star table cannot be used; the message names the file and the column or value."""


@dataclass(frozen=True, kw_only=True)
class StarTable:
    """The stars of one table, as plain arrays (NaN-free)."""

    ra_deg: FloatArray
    dec_deg: FloatArray
    v_los_kms: FloatArray
    v_err_kms: FloatArray
    p_member: FloatArray


def read_star_table(path: str | Path) -> StarTable:
    """Read and check a star table (see the module)."""
    from astropy.table import Table

    path = Path(path)
    if not path.is_file():
        raise StarTableError(f"{path}: no such file")
    suffix = path.suffix.lower()
    formats = {".csv": "ascii.csv", ".parquet": "parquet", ".fits": "fits", ".fit": "fits"}
    if suffix not in formats:
        raise StarTableError(f"{path}: expected a .csv, .parquet or .fits table")
    table = Table.read(path, format=formats[suffix])
    missing = [name for name in REQUIRED_COLUMNS if name not in table.colnames]
    if missing:
        raise StarTableError(
            f"{path}: no column {missing[0]!r}; expected {', '.join(REQUIRED_COLUMNS)} "
            f"(and optionally {', '.join(OPTIONAL_COLUMNS)})"
        )
    columns: dict[str, FloatArray] = {}
    for name in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS):
        if name not in table.colnames:
            continue
        values = np.ma.filled(np.ma.asarray(table[name], dtype=np.float64), np.nan)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise StarTableError(
                f"{path}: column {name!r} has {bad.size} NaN or missing values (first at row "
                f"{bad[0]}); drop or fill those stars"
            )
        columns[name] = values
    n = len(table)
    p_member = columns.get("p_member", np.ones(n))
    if np.any((p_member < 0) | (p_member > 1)):
        raise StarTableError(f"{path}: column 'p_member' must lie in [0, 1]")
    return StarTable(
        ra_deg=columns["ra_deg"],
        dec_deg=columns["dec_deg"],
        v_los_kms=columns["v_los_kms"],
        v_err_kms=columns.get("v_err_kms", np.zeros(n)),
        p_member=p_member,
    )


def tangent_plane_kpc(
    *, ra_deg: FloatArray, dec_deg: FloatArray, centre_deg: tuple[float, float], distance_kpc: float
) -> tuple[FloatArray, FloatArray]:
    """(x east, y north) in kpc: sky offsets around the centre times the distance."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    centre = SkyCoord(centre_deg[0] * u.deg, centre_deg[1] * u.deg)
    offsets = SkyCoord(ra_deg * u.deg, dec_deg * u.deg).transform_to(centre.skyoffset_frame())
    return (
        distance_kpc * offsets.lon.to_value(u.rad),
        distance_kpc * offsets.lat.to_value(u.rad),
    )


def sky_from_tangent_plane(
    *, x_kpc: FloatArray, y_kpc: FloatArray, centre_deg: tuple[float, float], distance_kpc: float
) -> tuple[FloatArray, FloatArray]:
    """The inverse of :func:`tangent_plane_kpc`: (ra, dec) in degrees."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    centre = SkyCoord(centre_deg[0] * u.deg, centre_deg[1] * u.deg)
    frame = centre.skyoffset_frame()
    sky = SkyCoord(
        lon=x_kpc / distance_kpc * u.rad, lat=y_kpc / distance_kpc * u.rad, frame=frame
    ).icrs
    return sky.ra.to_value(u.deg), sky.dec.to_value(u.deg)


def circularise(
    *, x_kpc: FloatArray, y_kpc: FloatArray, ellipticity: float, position_angle_deg: float
) -> tuple[FloatArray, FloatArray]:
    """Coordinates whose hypot is the elliptical radius (major axis at the position angle)."""
    if not 0.0 <= ellipticity < 1.0:
        raise StarTableError(f"--ellipticity must lie in [0, 1), got {ellipticity}")
    theta = np.deg2rad(position_angle_deg)
    major = x_kpc * np.sin(theta) + y_kpc * np.cos(theta)
    minor = x_kpc * np.cos(theta) - y_kpc * np.sin(theta)
    q = 1.0 - ellipticity
    return minor * np.sqrt(q), major / np.sqrt(q)


def match_velocity_errors(
    v_los_kms: FloatArray,
    v_err_kms: FloatArray,
    *,
    target_kms: float,
    rng: np.random.Generator,
    source: str,
) -> tuple[FloatArray, FloatArray]:
    """``v_los_kms`` with Gaussian noise of σ = sqrt(target² - v_err²) per star, so that each
    then carries an error of ``target_kms``, and that σ of each star.

    Raises
    ------
    StarTableError
        If a star's ``v_err_kms`` exceeds ``target_kms``.
    """
    # Tables round their errors: a hair above the target is the target.
    above = v_err_kms > target_kms * (1.0 + 1e-6)
    if above.any():
        raise StarTableError(
            f"{source}: column 'v_err_kms' reaches {v_err_kms.max():.3g} km/s ({above.sum()} "
            f"stars above the {target_kms:g} km/s the training maps added); make maps with "
            "--set velocity_error_kms at least that and train on them, or drop those stars"
        )
    extra = np.sqrt(np.maximum(target_kms**2 - v_err_kms**2, 0.0))
    return v_los_kms + extra * rng.standard_normal(v_los_kms.size), extra


def star_maps(
    stars: StarTable,
    *,
    source: str,
    distance_kpc: float,
    config: PhaseSpaceConfig,
    min_stars: int,
    centre_deg: tuple[float, float] | None = None,
    r_half_kpc: float | None = None,
    ellipticity: float = 0.0,
    position_angle_deg: float = 0.0,
    v_sys_kms: float | None = None,
) -> tuple[FloatArray, dict[str, float]]:
    """The ``(2, S, S)`` maps of a star table and what was assumed or measured (centre, R_hlr,
    v_sys, the velocity scale of the rv map, the median velocity error added).

    Defaults: the centre is the members' weighted mean position, R_hlr the weighted median
    (elliptical) radius, v_sys the weighted median velocity. Velocities first get the noise
    that brings their errors to ``config.velocity_error_kms`` (:func:`match_velocity_errors`,
    drawn from ``config.seed``).
    """
    weight = stars.p_member
    n_effective = float(weight.sum())
    if n_effective < min_stars:
        raise StarTableError(
            f"{source}: {n_effective:.0f} member stars (sum of p_member), fewer than the "
            f"{min_stars} the network was trained on"
        )
    if centre_deg is None:
        centre_deg = (
            float(np.average(stars.ra_deg, weights=weight)),
            float(np.average(stars.dec_deg, weights=weight)),
        )
    x, y = tangent_plane_kpc(
        ra_deg=stars.ra_deg, dec_deg=stars.dec_deg, centre_deg=centre_deg, distance_kpc=distance_kpc
    )
    x, y = circularise(
        x_kpc=x, y_kpc=y, ellipticity=ellipticity, position_angle_deg=position_angle_deg
    )
    radius = np.hypot(x, y)
    if r_half_kpc is None:
        r_half_kpc = weighted_median(radius, weight)
    inside = (np.abs(x) <= config.extent_kpc) & (np.abs(y) <= config.extent_kpc)
    if not inside.any():
        raise StarTableError(
            f"{source}: every star lies outside the +-{config.extent_kpc} kpc map at "
            f"{distance_kpc} kpc; check --distance-kpc and --center"
        )
    v_los, added_kms = match_velocity_errors(
        stars.v_los_kms,
        stars.v_err_kms,
        target_kms=config.velocity_error_kms,
        rng=np.random.default_rng(config.seed),
        source=source,
    )
    v_sys = weighted_median(v_los, weight) if v_sys_kms is None else v_sys_kms
    try:
        maps = phase_space_maps(
            x_kpc=x,
            y_kpc=y,
            v_los_kms=v_los,
            v_sys_kms=v_sys,
            r_half_kpc=r_half_kpc,
            weights=weight,
            config=config,
        )
    except ValueError as error:
        raise StarTableError(f"{source}: {error}") from None
    assumed = {
        "ra_deg": centre_deg[0],
        "dec_deg": centre_deg[1],
        "r_half_kpc": float(r_half_kpc),
        "v_sys_kms": float(v_sys),
        "v_scale_kms": velocity_scale_kms(
            v_los, percentile=config.velocity_percentile, v_sys_kms=v_sys
        ),
        "n_member": n_effective,
        "v_err_added_kms": float(np.median(added_kms)),
    }
    return maps, assumed


def star_scalars(
    names: tuple[str, ...],
    *,
    assumed: dict[str, float],
    stellar_mass_msun: float | None,
    source: str,
) -> FloatArray:
    """The values of the ``SCALARS`` ``names`` of a star table, as the maps' samples hold them.

    ``assumed`` is :func:`star_maps`' second value; the stellar mass is the user's.

    Raises
    ------
    StarTableError
        If a name needs the stellar mass and none is given.
    """
    values = {
        SCALARS[0]: np.log10(assumed["v_scale_kms"]),
        SCALARS[1]: np.log10(assumed["r_half_kpc"]),
    }
    if stellar_mass_msun is not None:
        values[SCALARS[2]] = np.log10(stellar_mass_msun)
    missing = [name for name in names if name not in values]
    if missing:
        raise StarTableError(
            f"{source}: the network takes {missing[0]}; give --stellar-mass-msun (Msun)"
        )
    return np.array([values[name] for name in names], dtype=np.float64)
