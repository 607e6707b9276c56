"""Dark-matter targets and baseline profiles of one galaxy, from its cutout.

Pure functions of particle arrays (positions relative to the galaxy's potential minimum).
The target is the paper's: log10 of the *total* dark-matter mass inside spheres of 20
log-spaced radii (de los Rios et al. 2023, §2.4: "the total DM mass enclosed"), neighbours
included. The subhalo's own bound dark matter is kept beside it, for validation against
analytic profiles.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from darkstack.constants import G_KPC_KMS2_PER_MSUN

FloatArray = NDArray[np.float64]


def enclosed_mass_msun(
    radius_kpc: FloatArray, mass_msun: FloatArray, radii_kpc: FloatArray
) -> FloatArray:
    """Mass of the particles strictly inside each of ``radii_kpc``."""
    order = np.argsort(radius_kpc)
    cumulative = np.concatenate([[0.0], np.cumsum(np.asarray(mass_msun, dtype=np.float64)[order])])
    return cumulative[np.searchsorted(radius_kpc[order], radii_kpc, side="left")]


def half_mass_radius_kpc(radius_kpc: FloatArray, mass_msun: FloatArray) -> float:
    """Radius enclosing half the mass (NaN without particles)."""
    if radius_kpc.size == 0:
        return float("nan")
    order = np.argsort(radius_kpc)
    cumulative = np.cumsum(np.asarray(mass_msun, dtype=np.float64)[order])
    return float(radius_kpc[order][np.searchsorted(cumulative, 0.5 * cumulative[-1])])


def circular_velocity_kms(enclosed_total_msun: FloatArray, radii_kpc: FloatArray) -> FloatArray:
    """sqrt(G M(<r) / r)."""
    return np.sqrt(G_KPC_KMS2_PER_MSUN * enclosed_total_msun / radii_kpc)


def galaxy_profiles(
    particles: Mapping[str, Mapping[str, np.ndarray]], *, radii_kpc: FloatArray
) -> dict[str, float | list[float]]:
    """Targets and baseline quantities of one galaxy.

    Parameters
    ----------
    particles : mapping
        ``{"gas": ..., "dm": ..., "stars": ...}``, each with ``position_kpc`` (n, 3),
        ``mass_msun`` and ``in_subhalo``; gas also ``hi_mass_msun``.
    radii_kpc : ndarray
        Radii of the profiles.

    Returns
    -------
    dict
        ``log10_mdm_enclosed`` (total DM, the target), ``log10_mdm_enclosed_subhalo`` (the
        subhalo's own), ``mstar_enclosed_msun``, ``mgas_enclosed_msun``, ``mhi_enclosed_msun``,
        ``v_circ_kms`` (all matter), ``r_half_star_kpc`` (the subhalo's stars),
        ``v_rot_2rhalf_kms`` (circular velocity at twice that radius), ``hi_mass_msun`` and the
        particle counts of the sphere.
    """
    radius = {kind: np.linalg.norm(particles[kind]["position_kpc"], axis=1) for kind in particles}
    mass = {kind: np.asarray(particles[kind]["mass_msun"], dtype=np.float64) for kind in particles}
    own_dm = np.asarray(particles["dm"]["in_subhalo"], dtype=bool)
    dm_total = enclosed_mass_msun(radius["dm"], mass["dm"], radii_kpc)
    dm_own = enclosed_mass_msun(radius["dm"][own_dm], mass["dm"][own_dm], radii_kpc)
    stars = enclosed_mass_msun(radius["stars"], mass["stars"], radii_kpc)
    gas = enclosed_mass_msun(radius["gas"], mass["gas"], radii_kpc)
    hi = enclosed_mass_msun(radius["gas"], particles["gas"]["hi_mass_msun"], radii_kpc)
    own_stars = np.asarray(particles["stars"]["in_subhalo"], dtype=bool)
    r_half = half_mass_radius_kpc(radius["stars"][own_stars], mass["stars"][own_stars])
    all_radius = np.concatenate(list(radius.values()))
    all_mass = np.concatenate(list(mass.values()))
    at_2rhalf = enclosed_mass_msun(all_radius, all_mass, np.array([2.0 * r_half]))
    with np.errstate(divide="ignore"):
        return {
            "log10_mdm_enclosed": np.log10(dm_total).tolist(),
            "log10_mdm_enclosed_subhalo": np.log10(dm_own).tolist(),
            "mstar_enclosed_msun": stars.tolist(),
            "mgas_enclosed_msun": gas.tolist(),
            "mhi_enclosed_msun": hi.tolist(),
            "v_circ_kms": circular_velocity_kms(dm_total + stars + gas, radii_kpc).tolist(),
            "r_half_star_cutout_kpc": r_half,
            "v_rot_2rhalf_kms": float(circular_velocity_kms(at_2rhalf, np.array([2.0 * r_half]))[0])
            if np.isfinite(r_half)
            else float("nan"),
            "hi_mass_msun": float(np.sum(particles["gas"]["hi_mass_msun"])),
            "cutout_n_gas": int(radius["gas"].size),
            "cutout_n_dm": int(radius["dm"].size),
            "cutout_n_stars": int(radius["stars"].size),
        }
