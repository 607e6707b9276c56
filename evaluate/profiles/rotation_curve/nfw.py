"""The NFW halo of the rotation-curve baseline's mass model (Navarro, Frenk & White 1996).

The NFW halo has M200 = 200 rho_crit(z=0) (4 pi / 3) R200^3 and V200^2 = G M200 / R200 with
TNG's h, so R200 = V200 / (10 H0).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from darkstack.constants import G_KPC_KMS2_PER_MSUN, RHO_CRIT0_H2_MSUN_PER_KPC3
from darkstack.evaluate.profiles.rotation_curve._types import FloatArray
from darkstack.measure import circular_velocity_kms


def nfw_r200_kpc(*, v200_kms: ArrayLike, hubble_param: float) -> FloatArray:
    """R200 of a halo with circular velocity V200 at R200, for 200 rho_crit at z = 0.

    Parameters
    ----------
    v200_kms : array_like
        V200.
    hubble_param : float
        h of the critical density.

    Returns
    -------
    ndarray
        R200 = V200 / sqrt(G (4 pi / 3) 200 rho_crit), which is V200 / (10 H0).
    """
    rho_crit = RHO_CRIT0_H2_MSUN_PER_KPC3 * hubble_param**2
    return np.asarray(v200_kms, dtype=np.float64) / math.sqrt(
        G_KPC_KMS2_PER_MSUN * 800.0 * math.pi / 3.0 * rho_crit
    )


def nfw_enclosed_mass_msun(
    *, r_kpc: ArrayLike, v200_kms: ArrayLike, c200: ArrayLike, hubble_param: float
) -> FloatArray:
    """Mass of an NFW halo inside radius r (Navarro, Frenk & White 1996).

    Parameters
    ----------
    r_kpc : array_like
        Radii (broadcast against the halo parameters).
    v200_kms : array_like
        V200 of the halo.
    c200 : array_like
        Concentration R200 / r_s.
    hubble_param : float
        h of the critical density.

    Returns
    -------
    ndarray
        M200 mu(c r / R200) / mu(c), mu(x) = ln(1 + x) - x / (1 + x), M200 = V200^2 R200 / G.
    """
    v200 = np.asarray(v200_kms, dtype=np.float64)
    concentration = np.asarray(c200, dtype=np.float64)
    r200 = nfw_r200_kpc(v200_kms=v200, hubble_param=hubble_param)
    m200 = v200**2 * r200 / G_KPC_KMS2_PER_MSUN
    scaled = concentration * np.asarray(r_kpc, dtype=np.float64) / r200
    return np.asarray(m200 * _nfw_mu(scaled) / _nfw_mu(concentration))


def nfw_velocity_kms(
    *, r_kpc: ArrayLike, v200_kms: ArrayLike, c200: ArrayLike, hubble_param: float
) -> FloatArray:
    """Circular velocity sqrt(G M_NFW(<r) / r) of an NFW halo.

    Parameters
    ----------
    r_kpc : array_like
        Radii, > 0.
    v200_kms, c200 : array_like
        Halo parameters.
    hubble_param : float
        h of the critical density.

    Returns
    -------
    ndarray
        Circular velocity in km/s.
    """
    radius = np.asarray(r_kpc, dtype=np.float64)
    mass = nfw_enclosed_mass_msun(
        r_kpc=radius, v200_kms=v200_kms, c200=c200, hubble_param=hubble_param
    )
    return circular_velocity_kms(mass_msun=mass, r_kpc=radius)


def _nfw_mu(x: FloatArray) -> FloatArray:
    return np.log1p(x) - x / (1.0 + x)
