"""The Tully-Fisher baseline: rotation velocities at twice the stellar half-mass radius.

de los Rios et al. (2023, §5.5, Fig. 8) compare two estimates of V_rot(2 r_half), the circular
velocity at twice the stellar half-mass radius, with its true value in the simulation:

- **Procedure A** (the network): V = sqrt(G [M_DM(<R) + M_b(<R)] / R) at R = 2 r_half, with
  M_DM the *predicted* enclosed dark-matter mass and M_b the *true* baryonic (stars + gas)
  mass enclosed, both read off their 20-radius profiles by linear interpolation in
  (log r, log M).
- **Procedure B** (the empirical relation): Hall et al. (2012, MNRAS 425, 2741) calibrated on
  3041 SDSS DR7 spirals with HI line widths, log10(V_rot / km s^-1) = 0.264 log10(M_* / Msun)
  - 0.558 (the paper's eq. 5), fed with the simulation's total stellar mass of the subhalo
  (``stellar_mass_msun``), as the paper does to leave photometric errors out.

Both are compared with ``v_rot_2rhalf_kms`` of the galaxies catalog, which ingest computes from
all the cutout's particles inside twice ``r_half_star_cutout_kpc``, the half-mass radius of the
subhalo's own stars in the cutout. Procedure A therefore uses that radius (not the group
catalog's ``r_half_star_kpc``) and the cutout's enclosed profiles, so with the true dark-matter
profile as its "prediction" it differs from the truth only by the interpolation between radii.
Residuals are log10(V_estimate / V_true) in dex.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from darkstack.measure import circular_velocity_kms

FloatArray = NDArray[np.float64]

#: Slope of the Hall et al. (2012) stellar-mass Tully-Fisher relation (log V vs log M_*).
HALL2012_SLOPE: Final = 0.264
#: Intercept of the same relation, for V in km/s and M_* in Msun.
HALL2012_INTERCEPT: Final = -0.558
#: Galaxies-catalog columns :func:`tully_fisher_table` reads.
GALAXY_COLUMNS: Final = (
    "subhalo_id",
    "radii_kpc",
    "mstar_enclosed_msun",
    "mgas_enclosed_msun",
    "r_half_star_cutout_kpc",
    "stellar_mass_msun",
    "v_rot_2rhalf_kms",
)


def log10_profile_at_radius(
    *, radii_kpc: ArrayLike, log10_profile: ArrayLike, r_kpc: ArrayLike
) -> FloatArray:
    """Read log10 profiles at one radius per galaxy, interpolating linearly in log-log.

    Parameters
    ----------
    radii_kpc : array_like, shape (n_radii,) or (n, n_radii)
        Increasing radii of the profiles, shared or one row per galaxy.
    log10_profile : array_like, shape (n, n_radii)
        log10 of the profile (e.g. an enclosed mass in Msun) at ``radii_kpc``.
    r_kpc : array_like, shape (n,)
        The radius to read each galaxy's profile at.

    Returns
    -------
    ndarray, shape (n,)
        The interpolated log10 values; NaN where ``r_kpc`` lies outside the profile's radii
        (no extrapolation), is not finite, or where a bracketing value is not finite (e.g. the
        log10 of a zero mass).
    """
    profile = np.atleast_2d(np.asarray(log10_profile, dtype=np.float64))
    radius = np.atleast_1d(np.asarray(r_kpc, dtype=np.float64))
    radii = np.broadcast_to(np.asarray(radii_kpc, dtype=np.float64), profile.shape)
    if profile.ndim != 2 or radius.shape != (profile.shape[0],):
        raise ValueError(
            f"log10_profile must be (n, n_radii) with one r_kpc per row, got shapes "
            f"{profile.shape} and {radius.shape}"
        )
    if np.any(radii <= 0) or np.any(np.diff(radii, axis=1) <= 0):
        raise ValueError("radii_kpc must be positive and strictly increasing along each row")
    out = np.full(profile.shape[0], np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_r = np.log10(radius)
        for row, (log_radii, values) in enumerate(zip(np.log10(radii), profile, strict=True)):
            if np.isfinite(log_r[row]):
                out[row] = np.interp(log_r[row], log_radii, values, left=np.nan, right=np.nan)
    return out


def procedure_a_velocity_kms(
    *,
    radii_kpc: ArrayLike,
    predicted_log10_mdm: ArrayLike,
    mstar_enclosed_msun: ArrayLike,
    mgas_enclosed_msun: ArrayLike,
    r_kpc: ArrayLike,
) -> FloatArray:
    """Circular velocity from a predicted dark-matter profile plus the true baryons (§5.5 A).

    Parameters
    ----------
    radii_kpc : array_like, shape (n_radii,) or (n, n_radii)
        Radii of the profiles.
    predicted_log10_mdm : array_like, shape (n, n_radii)
        Predicted log10 enclosed dark-matter mass (log10 Msun).
    mstar_enclosed_msun, mgas_enclosed_msun : array_like, shape (n, n_radii)
        True enclosed stellar and gas masses.
    r_kpc : array_like, shape (n,)
        Radius of the velocity, twice the stellar half-mass radius in the paper.

    Returns
    -------
    ndarray, shape (n,)
        sqrt(G [M_DM(<r) + M_b(<r)] / r) in km/s; NaN where either mass cannot be read at r
        (see :func:`log10_profile_at_radius`).
    """
    radius = np.atleast_1d(np.asarray(r_kpc, dtype=np.float64))
    baryons = np.asarray(mstar_enclosed_msun, dtype=np.float64) + np.asarray(
        mgas_enclosed_msun, dtype=np.float64
    )
    if np.any(baryons < 0):
        raise ValueError("mstar_enclosed_msun and mgas_enclosed_msun must be >= 0")
    with np.errstate(divide="ignore"):
        log10_baryons = np.log10(baryons)
    log10_dm = log10_profile_at_radius(
        radii_kpc=radii_kpc, log10_profile=predicted_log10_mdm, r_kpc=radius
    )
    log10_b = log10_profile_at_radius(
        radii_kpc=radii_kpc, log10_profile=log10_baryons, r_kpc=radius
    )
    total_msun = 10.0**log10_dm + 10.0**log10_b
    return circular_velocity_kms(mass_msun=total_msun, r_kpc=radius)


def hall2012_velocity_kms(*, stellar_mass_msun: ArrayLike) -> FloatArray:
    """V_rot from the stellar-mass Tully-Fisher relation of Hall et al. (2012) (§5.5 B).

    Parameters
    ----------
    stellar_mass_msun : array_like
        Stellar masses, > 0 (NaN propagates).

    Returns
    -------
    ndarray
        10^(0.264 log10 M_* - 0.558) in km/s.
    """
    mass = np.asarray(stellar_mass_msun, dtype=np.float64)
    if np.any(mass <= 0):
        raise ValueError(f"stellar_mass_msun must be > 0, got minimum {np.nanmin(mass):g}")
    return np.asarray(10.0 ** (HALL2012_SLOPE * np.log10(mass) + HALL2012_INTERCEPT))


def tully_fisher_table(
    *,
    predictions: pd.DataFrame,
    galaxies: pd.DataFrame,
    median_column: str = "log10_mdm_median",
    interval_columns: tuple[str, str] | None = ("log10_mdm_p16", "log10_mdm_p84"),
) -> pd.DataFrame:
    """Procedures A and B against the true V_rot(2 r_half), one row per test sample.

    Parameters
    ----------
    predictions : pandas.DataFrame
        One row per test sample with ``sample``, ``subhalo_id`` and the predicted profile
        (lists of log10 Msun at the catalog's radii) in ``median_column``.
    galaxies : pandas.DataFrame
        The store's ``catalogs/galaxies.parquet`` (see :data:`GALAXY_COLUMNS`).
    median_column : str
        Column of the predicted profile procedure A uses.
    interval_columns : tuple of 2 str, optional
        Columns of the 16th and 84th percentile profiles, turned into the 16/84 percentiles
        of procedure A's velocity (the velocity grows with the mass); None skips them.

    Returns
    -------
    pandas.DataFrame
        ``sample``, ``subhalo_id``, ``r_kpc`` (2 r_half), ``stellar_mass_msun``,
        ``v_true_kms``, ``v_procedure_a_kms`` (and ``_p16_kms``, ``_p84_kms`` with
        ``interval_columns``), ``v_procedure_b_kms``, ``residual_a_dex`` and
        ``residual_b_dex`` (log10 of estimate over truth), in the order of ``predictions``.
    """
    profile_columns = [median_column, *(interval_columns or ())]
    _require_columns(predictions, ("sample", "subhalo_id", *profile_columns), "predictions")
    _require_columns(galaxies, GALAXY_COLUMNS, "galaxies")
    merged = predictions[["sample", "subhalo_id", *profile_columns]].merge(
        galaxies[list(GALAXY_COLUMNS)], on="subhalo_id", how="left", validate="many_to_one"
    )
    missing = merged["radii_kpc"].isna()
    if missing.any():
        raise ValueError(
            f"predictions hold subhalo_id {merged.loc[missing, 'subhalo_id'].tolist()[:5]} "
            "absent from galaxies"
        )
    radius = 2.0 * merged["r_half_star_cutout_kpc"].to_numpy(np.float64)
    common = {
        "radii_kpc": np.stack(merged["radii_kpc"].to_numpy()),
        "mstar_enclosed_msun": np.stack(merged["mstar_enclosed_msun"].to_numpy()),
        "mgas_enclosed_msun": np.stack(merged["mgas_enclosed_msun"].to_numpy()),
        "r_kpc": radius,
    }
    v_true = merged["v_rot_2rhalf_kms"].to_numpy(np.float64)
    table = pd.DataFrame(
        {
            "sample": merged["sample"].to_numpy(),
            "subhalo_id": merged["subhalo_id"].to_numpy(),
            "r_kpc": radius,
            "stellar_mass_msun": merged["stellar_mass_msun"].to_numpy(np.float64),
            "v_true_kms": v_true,
        }
    )
    table["v_procedure_a_kms"] = procedure_a_velocity_kms(
        predicted_log10_mdm=_profiles(merged[median_column], median_column), **common
    )
    if interval_columns is not None:
        for suffix, column in zip(("p16", "p84"), interval_columns, strict=True):
            table[f"v_procedure_a_{suffix}_kms"] = procedure_a_velocity_kms(
                predicted_log10_mdm=_profiles(merged[column], column), **common
            )
    table["v_procedure_b_kms"] = hall2012_velocity_kms(
        stellar_mass_msun=table["stellar_mass_msun"].to_numpy()
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        table["residual_a_dex"] = np.log10(table["v_procedure_a_kms"] / v_true)
        table["residual_b_dex"] = np.log10(table["v_procedure_b_kms"] / v_true)
    return table


def tully_fisher_summary(*, table: pd.DataFrame) -> pd.DataFrame:
    """Bias and scatter of both procedures' residuals, the comparison of the paper's Fig. 8.

    Parameters
    ----------
    table : pandas.DataFrame
        The output of :func:`tully_fisher_table`.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``procedure`` (``A``: the network plus true baryons, ``B``: Hall et al.
        2012), with ``n`` (finite residuals), ``bias_dex`` (mean), ``median_dex``,
        ``scatter_dex`` (standard deviation), ``half_p16_p84_dex`` (half the 16-84
        percentile range, robust to outliers) and ``rms_dex``.
    """
    _require_columns(table, ("residual_a_dex", "residual_b_dex"), "table")
    rows = {}
    for procedure in ("A", "B"):
        residual = table[f"residual_{procedure.lower()}_dex"].to_numpy(np.float64)
        residual = residual[np.isfinite(residual)]
        if residual.size == 0:
            rows[procedure] = dict.fromkeys(
                ("bias_dex", "median_dex", "scatter_dex", "half_p16_p84_dex", "rms_dex"), np.nan
            ) | {"n": 0}
            continue
        p16, p84 = np.percentile(residual, [16.0, 84.0])
        rows[procedure] = {
            "n": residual.size,
            "bias_dex": float(np.mean(residual)),
            "median_dex": float(np.median(residual)),
            "scatter_dex": float(np.std(residual, ddof=1)) if residual.size > 1 else np.nan,
            "half_p16_p84_dex": float(0.5 * (p84 - p16)),
            "rms_dex": float(np.sqrt(np.mean(residual**2))),
        }
    summary = pd.DataFrame.from_dict(rows, orient="index")
    summary.index.name = "procedure"
    return summary[["n", "bias_dex", "median_dex", "scatter_dex", "half_p16_p84_dex", "rms_dex"]]


def _require_columns(frame: pd.DataFrame, columns: tuple[str, ...] | list[str], name: str) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(f"{name} lacks columns {missing}; it has {list(frame.columns)}")


def _profiles(column: pd.Series, name: str) -> FloatArray:
    """A column of per-row profile lists as an (n, n_radii) array."""
    try:
        return np.stack(column.to_numpy()).astype(np.float64)
    except ValueError as error:
        raise ValueError(f"column {name} must hold equal-length profiles: {error}") from None
