"""Dark-matter targets and baseline profiles of one galaxy, from its cutout.

Pure functions of particle arrays (positions relative to the galaxy's potential minimum).
The target is the paper's: log10 of the *total* dark-matter mass inside spheres of 20
log-spaced radii (de los Rios et al. 2023, §2.4: "the total DM mass enclosed"), neighbours
included. The subhalo's own bound dark matter is kept beside it, for validation against
analytic profiles.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

import numpy as np
from numpy.typing import NDArray

from darkstack.measure import circular_velocity_kms, enclosed_mass_msun, half_mass_radius_kpc

FloatArray = NDArray[np.float64]


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
        ``v_circ_kms`` (all matter), ``r_half_star_cutout_kpc`` (the subhalo's own stars; NaN
        without any), ``v_rot_2rhalf_kms`` (circular velocity at twice that radius; NaN with
        r_half), ``hi_mass_msun`` and the particle counts of the sphere.
    """
    radius = {kind: np.linalg.norm(particles[kind]["position_kpc"], axis=1) for kind in particles}
    mass = {kind: np.asarray(particles[kind]["mass_msun"], dtype=np.float64) for kind in particles}
    enclosed = partial(enclosed_mass_msun, r_kpc=radii_kpc)
    own_dm = np.asarray(particles["dm"]["in_subhalo"], dtype=bool)
    dm_total = enclosed(distance_kpc=radius["dm"], mass_msun=mass["dm"])
    dm_own = enclosed(distance_kpc=radius["dm"][own_dm], mass_msun=mass["dm"][own_dm])
    stars = enclosed(distance_kpc=radius["stars"], mass_msun=mass["stars"])
    gas = enclosed(distance_kpc=radius["gas"], mass_msun=mass["gas"])
    hi = enclosed(distance_kpc=radius["gas"], mass_msun=particles["gas"]["hi_mass_msun"])
    own_stars = np.asarray(particles["stars"]["in_subhalo"], dtype=bool)
    # NaN for a subhalo without stars of its own in the cutout; so is the velocity at 2 r_half.
    r_half = half_mass_radius_kpc(
        distance_kpc=radius["stars"][own_stars], mass_msun=mass["stars"][own_stars]
    )
    v_rot_2rhalf = float("nan")
    if np.isfinite(r_half):
        at_2rhalf = enclosed_mass_msun(
            distance_kpc=np.concatenate(list(radius.values())),
            mass_msun=np.concatenate(list(mass.values())),
            r_kpc=2.0 * r_half,
        )
        v_rot_2rhalf = float(circular_velocity_kms(mass_msun=at_2rhalf, r_kpc=2.0 * r_half))
    with np.errstate(divide="ignore"):
        return {
            "log10_mdm_enclosed": np.log10(dm_total).tolist(),
            "log10_mdm_enclosed_subhalo": np.log10(dm_own).tolist(),
            "mstar_enclosed_msun": stars.tolist(),
            "mgas_enclosed_msun": gas.tolist(),
            "mhi_enclosed_msun": hi.tolist(),
            "v_circ_kms": circular_velocity_kms(
                mass_msun=dm_total + stars + gas, r_kpc=radii_kpc
            ).tolist(),
            "r_half_star_cutout_kpc": r_half,
            "v_rot_2rhalf_kms": v_rot_2rhalf,
            "hi_mass_msun": float(np.sum(particles["gas"]["hi_mass_msun"])),
            "cutout_n_gas": int(radius["gas"].size),
            "cutout_n_dm": int(radius["dm"].size),
            "cutout_n_stars": int(radius["stars"].size),
        }
