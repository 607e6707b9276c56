"""Stellar mass of central cluster galaxies: Kravtsov, Vikhlinin & Meshcheryakov (2018, AstL 44, 8).

Their modified Behroozi et al. (2013) form for the stellar mass of central galaxies against
M200c (their Table 3, BCG stellar masses from their deeper photometry):
log M* = log(eps M1) + f(log(M/M1)) - f(0),
f(x) = -log10(10^(alpha x) + 1) + delta (log10(1 + e^x))^gamma / (1 + exp(10^-x)).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: Table 3 parameters for M200c (log10 M1 / Msun, log10 eps, alpha, delta, gamma).
KRAVTSOV18_M200C = {
    "log_m1": 11.35,
    "log_eps": -1.642,
    "alpha": -1.779,
    "delta": 4.394,
    "gamma": 0.547,
}


def _f(x: NDArray[np.float64], p: dict[str, float]) -> NDArray[np.float64]:
    return -np.log10(10.0 ** (p["alpha"] * x) + 1.0) + p["delta"] * np.log10(1.0 + np.exp(x)) ** p[
        "gamma"
    ] / (1.0 + np.exp(10.0 ** (-x)))


def kravtsov18_central_stellar_mass_msun(m200c_msun: ArrayLike) -> NDArray[np.float64]:
    """Median stellar mass (Msun) of the central galaxy of a halo of M200c (Msun)."""
    p = KRAVTSOV18_M200C
    x = np.log10(np.asarray(m200c_msun, dtype=np.float64)) - p["log_m1"]
    zero = np.zeros(1)
    return 10.0 ** (p["log_m1"] + p["log_eps"] + _f(x, p) - _f(zero, p)[0])


__all__ = ["KRAVTSOV18_M200C", "kravtsov18_central_stellar_mass_msun"]
