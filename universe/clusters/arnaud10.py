"""The universal electron-pressure profile of Arnaud et al. (2010, A&A 517, A92).

A generalised NFW (GNFW) shape in x = r / R500 with the parameters of their eq. 12 (the REXCESS
best fit, h70-scaled), the characteristic pressure P500 of their eq. 5 and the extra mass
dependence of their eq. 13 (alpha_P = 0.12, alpha'_P(x) of eq. 14). Their cosmology is
h = 0.7, Omega_m = 0.3 (flat); M500 is in Msun and h70 = h / 0.7 enters as the paper writes it.
pyccl's Arnaud profile defaults to Planck 2013's parameters, not these, so it is not used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.integrate import quad

from darkstack.constants import (
    ELECTRON_REST_ENERGY_ERG,
    KEV_ERG,
    MPC_CM,
    THOMSON_CROSS_SECTION_CM2,
)

FloatArray = NDArray[np.float64]

#: Mass pivot of the scalings, 3e14 h70^-1 Msun (divide by h70 for Msun).
MASS_PIVOT_MSUN_H70 = 3.0e14
#: Slope correction alpha_P of eq. 7/13: P500 M^{2/3} becomes M^{2/3 + alpha_P}.
ALPHA_P = 0.12


@dataclass(frozen=True, kw_only=True)
class GNFWParams:
    """GNFW shape p(x) = P0 / ((c500 x)^gamma (1 + (c500 x)^alpha)^((beta - gamma) / alpha)).

    Defaults are Arnaud et al. (2010) eq. 12; ``p0`` is at h70 = 1 (it scales as h70^-3/2).
    """

    p0: float = 8.403
    c500: float = 1.177
    gamma: float = 0.3081
    alpha: float = 1.0510
    beta: float = 5.4905


ARNAUD10 = GNFWParams()


def gnfw_shape(
    x: ArrayLike, *, params: GNFWParams = ARNAUD10, hubble_param: float = 0.7
) -> FloatArray:
    """Dimensionless pressure p(x) of eq. 11 at x = r / R500 (P0 scaled by h70^-3/2)."""
    cx = params.c500 * np.asarray(x, dtype=np.float64)
    p0 = params.p0 * (hubble_param / 0.7) ** -1.5
    return p0 / (
        cx**params.gamma * (1.0 + cx**params.alpha) ** ((params.beta - params.gamma) / params.alpha)
    )


def p500_kev_cm3(
    m500_msun: ArrayLike, *, hubble_ratio: ArrayLike, hubble_param: float = 0.7
) -> FloatArray:
    """Characteristic pressure P500 of eq. 5 in keV cm^-3 (self-similar: E(z)^{8/3} M^{2/3})."""
    h70 = hubble_param / 0.7
    mass = np.asarray(m500_msun, dtype=np.float64) * h70 / MASS_PIVOT_MSUN_H70
    return (
        1.65e-3
        * np.asarray(hubble_ratio, dtype=np.float64) ** (8.0 / 3.0)
        * mass ** (2.0 / 3.0)
        * h70**2
    )


def alpha_p_prime(x: ArrayLike) -> FloatArray:
    """Running slope alpha'_P(x) of eq. 14 (the mass dependence that varies with radius)."""
    u = (np.asarray(x, dtype=np.float64) / 0.5) ** 3
    return 0.10 - (ALPHA_P + 0.10) * u / (1.0 + u)


def electron_pressure_kev_cm3(
    x: ArrayLike,
    *,
    m500_msun: float,
    hubble_ratio: float,
    hubble_param: float = 0.7,
    params: GNFWParams = ARNAUD10,
    running_slope: bool = True,
) -> FloatArray:
    """P_e(r) = P500 p(x) (M500 / 3e14 h70^-1 Msun)^(alpha_P + alpha'_P(x)), eq. 13, keV cm^-3.

    ``running_slope=False`` drops alpha'_P(x) (their eq. 7/25 form).
    """
    xs = np.asarray(x, dtype=np.float64)
    mass = m500_msun * (hubble_param / 0.7) / MASS_PIVOT_MSUN_H70
    slope = ALPHA_P + (alpha_p_prime(xs) if running_slope else 0.0)
    return (
        p500_kev_cm3(m500_msun, hubble_ratio=hubble_ratio, hubble_param=hubble_param)
        * gnfw_shape(xs, params=params, hubble_param=hubble_param)
        * mass**slope
    )


def integrated_shape(x: float = 1.0, *, params: GNFWParams = ARNAUD10) -> float:
    """I(x) = 3 int_0^x p(u) u^2 du at h70 = 1 (eq. 25; I(1) = 0.6145 in the paper)."""
    value, _ = quad(lambda u: 3.0 * float(gnfw_shape(u, params=params)) * u**2, 0.0, x, limit=200)
    return float(value)


def y_sph_mpc2(
    *,
    m500_msun: float,
    r500_kpc: float,
    hubble_ratio: float,
    hubble_param: float = 0.7,
    x_max: float = 1.0,
    params: GNFWParams = ARNAUD10,
    running_slope: bool = True,
) -> float:
    """Spherically integrated Compton parameter Y_sph(x_max R500) D_A^2 in Mpc^2.

    Y = sigma_T / (m_e c^2) int_0^R P_e 4 pi r^2 dr, integrated numerically over the profile.
    """
    return _y_mpc2(
        lambda u: 1.0,
        m500_msun=m500_msun,
        r500_kpc=r500_kpc,
        hubble_ratio=hubble_ratio,
        hubble_param=hubble_param,
        x_max=x_max,
        params=params,
        running_slope=running_slope,
        breakpoint=None,
    )


def y_cyl_mpc2(
    *,
    m500_msun: float,
    r500_kpc: float,
    hubble_ratio: float,
    hubble_param: float = 0.7,
    x_cylinder: float = 1.0,
    x_max: float = 5.0,
    params: GNFWParams = ARNAUD10,
    running_slope: bool = True,
) -> float:
    """Cylindrically integrated Y_cyl(x_cylinder R500) D_A^2 in Mpc^2, the profile cut at
    x_max R500 (Arnaud et al. 2010 integrate to 5 R500 along the line of sight, §6.3).

    Each spherical shell of radius r > R_cyl contributes its fraction inside the cylinder,
    1 - sqrt(1 - R_cyl^2 / r^2); what an SZ map measures inside an aperture.
    """

    def inside(u: float) -> float:
        return 1.0 if u <= x_cylinder else 1.0 - float(np.sqrt(1.0 - (x_cylinder / u) ** 2))

    return _y_mpc2(
        inside,
        m500_msun=m500_msun,
        r500_kpc=r500_kpc,
        hubble_ratio=hubble_ratio,
        hubble_param=hubble_param,
        x_max=x_max,
        params=params,
        running_slope=running_slope,
        breakpoint=x_cylinder if x_cylinder < x_max else None,
    )


def _y_mpc2(
    weight: Callable[[float], float],
    *,
    m500_msun: float,
    r500_kpc: float,
    hubble_ratio: float,
    hubble_param: float,
    x_max: float,
    params: GNFWParams,
    running_slope: bool,
    breakpoint: float | None,
) -> float:
    """sigma_T / (m_e c^2) int_0^{x_max R500} P_e(r) weight(r / R500) 4 pi r^2 dr, in Mpc^2."""
    r500_cm = r500_kpc * MPC_CM / 1.0e3

    def integrand(u: float) -> float:
        p = electron_pressure_kev_cm3(
            u,
            m500_msun=m500_msun,
            hubble_ratio=hubble_ratio,
            hubble_param=hubble_param,
            params=params,
            running_slope=running_slope,
        )
        return float(p) * u**2 * weight(u)

    points = None if breakpoint is None else [breakpoint]
    shape, _ = quad(integrand, 0.0, x_max, limit=200, points=points)
    y_cm2 = (
        THOMSON_CROSS_SECTION_CM2
        / ELECTRON_REST_ENERGY_ERG
        * 4.0
        * np.pi
        * r500_cm**3
        * shape
        * KEV_ERG
    )
    return float(y_cm2 / MPC_CM**2)


__all__ = [
    "ARNAUD10",
    "GNFWParams",
    "alpha_p_prime",
    "electron_pressure_kev_cm3",
    "gnfw_shape",
    "integrated_shape",
    "p500_kev_cm3",
    "y_cyl_mpc2",
    "y_sph_mpc2",
]
